/** The stage DAG as a small SVG drawing; clicking a stage goes to its first cell. */
import * as React from 'react';

import { type Analysis, valueName } from '../api';
import { DEFAULT_SIZES, type DagLink, layoutDag } from '../dag';
import { stageColor } from '../palette';

const MAX_LABEL = 11;

export function DagView(props: {
  analysis: Analysis;
  onShowCell: (index: number) => void;
}): React.ReactElement | null {
  const { analysis, onShowCell } = props;
  if (analysis.stages.length === 0) {
    return null;
  }
  const layout = layoutDag(analysis.stages, analysis.edges);
  const { nodeWidth, nodeHeight } = DEFAULT_SIZES;
  // Room around the nodes for the arrows and for links that bow out sideways.
  const margin = 4;
  const side = nodeWidth / 3;
  const firstCell = new Map(analysis.stages.map(stage => [stage.name, stage.cells[0]]));
  return (
    <svg
      className="jp-mlops-dag"
      data-testid="mlops-dag"
      role="img"
      aria-label="Stage dependency graph"
      width={layout.width + 2 * side}
      height={layout.height + 2 * margin}
      viewBox={`${-side} ${-margin} ${layout.width + 2 * side} ${layout.height + 2 * margin}`}
    >
      <defs>
        <marker
          id="jp-mlops-arrow"
          viewBox="0 0 8 8"
          refX="7"
          refY="4"
          markerWidth="6"
          markerHeight="6"
          orient="auto-start-reverse"
        >
          <path d="M0,0 L8,4 L0,8 z" className="jp-mlops-dag-arrow" />
        </marker>
      </defs>
      {layout.links.map(link => (
        <path
          key={`${link.source}->${link.target}`}
          className={`jp-mlops-dag-link${link.explicit ? ' jp-mod-explicit' : ''}`}
          d={curve(link)}
          markerEnd="url(#jp-mlops-arrow)"
        >
          <title>
            {`${link.source} → ${link.target}` +
              (link.variables.length
                ? `: ${link.variables.map(valueName).join(', ')}`
                : ' (after:)')}
          </title>
        </path>
      ))}
      {layout.nodes.map(node => {
        const cell = firstCell.get(node.name);
        return (
          <g
            key={node.name}
            className="jp-mlops-dag-node"
            data-stage={node.name}
            transform={`translate(${node.x - nodeWidth / 2}, ${node.y - nodeHeight / 2})`}
            onClick={() => cell !== undefined && onShowCell(cell)}
          >
            <title>{node.name}</title>
            <rect width={nodeWidth} height={nodeHeight} rx={4} fill={stageColor(node.position)} />
            <text
              x={nodeWidth / 2}
              y={nodeHeight / 2}
              dominantBaseline="central"
              textAnchor="middle"
            >
              {node.name.length > MAX_LABEL ? `${node.name.slice(0, MAX_LABEL - 1)}…` : node.name}
            </text>
          </g>
        );
      })}
    </svg>
  );
}

/**
 * A vertical S-curve. A link that skips rows bows out sideways (away from where it is
 * going, to the right when straight down) so it does not run behind the nodes between.
 */
function curve(link: DagLink): string {
  const bend = (link.y2 - link.y1) / 2;
  const side = link.span > 1 ? (link.x2 < link.x1 ? -1 : 1) * DEFAULT_SIZES.nodeWidth : 0;
  return (
    `M${link.x1},${link.y1} ` +
    `C${link.x1 + side},${link.y1 + bend} ${link.x2 + side},${link.y2 - bend} ${link.x2},${link.y2}`
  );
}
