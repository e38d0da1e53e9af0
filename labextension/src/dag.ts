/**
 * Layout of the stage DAG drawn in the sidebar: one row per dependency depth (a stage sits
 * one row below its deepest upstream), stages of a row side by side in run order.
 */
import type { Edge, Stage } from './api';

export interface DagSizes {
  nodeWidth: number;
  nodeHeight: number;
  gapX: number;
  gapY: number;
}

export const DEFAULT_SIZES: DagSizes = { nodeWidth: 84, nodeHeight: 24, gapX: 12, gapY: 26 };

export interface DagNode {
  name: string;
  /** position in run order, which picks the colour */
  position: number;
  depth: number;
  /** centre of the node */
  x: number;
  y: number;
}

export interface DagLink {
  source: string;
  target: string;
  variables: string[];
  explicit: boolean;
  /** how many rows the link goes down: more than 1 passes other rows' nodes */
  span: number;
  /** from the bottom centre of the source to the top centre of the target */
  x1: number;
  y1: number;
  x2: number;
  y2: number;
}

export interface DagLayout {
  nodes: DagNode[];
  links: DagLink[];
  width: number;
  height: number;
}

type StageLinks = Pick<Stage, 'name' | 'upstream'>;

/**
 * Each stage's depth: 0 without upstream stages, else one more than its deepest one.
 * Stages come in run order, so upstream stages are met first; a name that is unknown or
 * not yet met (which only a cycle the server reported can cause) counts as depth 0.
 */
export function depths(stages: readonly StageLinks[]): Map<string, number> {
  const depth = new Map<string, number>();
  for (const stage of stages) {
    const above = stage.upstream.map(name => depth.get(name) ?? -1);
    depth.set(stage.name, Math.max(-1, ...above) + 1);
  }
  return depth;
}

export function layoutDag(
  stages: readonly StageLinks[],
  edges: readonly Edge[],
  sizes: DagSizes = DEFAULT_SIZES
): DagLayout {
  const depth = depths(stages);
  const rows: StageLinks[][] = [];
  for (const stage of stages) {
    const row = depth.get(stage.name) ?? 0;
    (rows[row] ??= []).push(stage);
  }
  const widest = Math.max(0, ...rows.map(row => row?.length ?? 0));
  const width = Math.max(0, widest * (sizes.nodeWidth + sizes.gapX) - sizes.gapX);
  const height = Math.max(0, rows.length * (sizes.nodeHeight + sizes.gapY) - sizes.gapY);

  const nodes = new Map<string, DagNode>();
  rows.forEach((row, rowIndex) => {
    const rowWidth = row.length * (sizes.nodeWidth + sizes.gapX) - sizes.gapX;
    const left = (width - rowWidth) / 2;
    row.forEach((stage, slot) => {
      nodes.set(stage.name, {
        name: stage.name,
        position: stages.indexOf(stage),
        depth: rowIndex,
        x: left + slot * (sizes.nodeWidth + sizes.gapX) + sizes.nodeWidth / 2,
        y: rowIndex * (sizes.nodeHeight + sizes.gapY) + sizes.nodeHeight / 2
      });
    });
  });

  const links: DagLink[] = [];
  for (const edge of edges) {
    const from = nodes.get(edge.source);
    const to = nodes.get(edge.target);
    if (from && to) {
      links.push({
        source: edge.source,
        target: edge.target,
        variables: edge.variables,
        explicit: edge.explicit,
        span: to.depth - from.depth,
        x1: from.x,
        y1: from.y + sizes.nodeHeight / 2,
        x2: to.x,
        y2: to.y - sizes.nodeHeight / 2
      });
    }
  }
  return { nodes: [...nodes.values()], links, width, height };
}
