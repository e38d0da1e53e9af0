/**
 * Stage colours, shared by the sidebar, the DAG and the cell badges so that a stage looks
 * the same everywhere. A stage's colour is picked by its position in run order.
 *
 * These are the only hard-coded colours of the extension: mid-dark tones that carry white
 * text and stay distinct on both the light and the dark JupyterLab theme.
 */
export const STAGE_COLORS: readonly string[] = [
  '#3566a8', // blue
  '#b8541a', // orange
  '#2f7d52', // green
  '#a8326f', // magenta
  '#6848b8', // violet
  '#23777a', // teal
  '#9b2c2c', // red
  '#7d6418' // ochre
];

export function stageColor(position: number): string {
  const size = STAGE_COLORS.length;
  return STAGE_COLORS[((position % size) + size) % size];
}
