import { LabIcon } from '@jupyterlab/ui-components';

/** Three stages joined into a pipeline: the sidebar tab and the Productionize button. */
export const pipelineIcon = new LabIcon({
  name: 'jupyter-mlops:pipeline',
  svgstr: `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="#616161">
    <rect x="2" y="3" width="8" height="5" rx="1.5"/>
    <rect x="14" y="9.5" width="8" height="5" rx="1.5"/>
    <rect x="2" y="16" width="8" height="5" rx="1.5"/>
    <path d="M10 5h3a1.5 1.5 0 0 1 1.5 1.5V9.5h-1.5V6.5H10zM13 14.5h1.5v3a1.5 1.5 0 0 1-1.5 1.5h-3v-1.5h3z"/>
  </g>
</svg>`
});
