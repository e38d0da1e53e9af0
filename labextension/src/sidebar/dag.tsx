/** The stage DAG as a small SVG drawing; clicking a stage goes to its first cell. */
import * as React from 'react';

import { type Analysis, valueName } from '../api';
import { fontMeasure, type Measure, wrapText } from '../cells/labels';
import { DEFAULT_SIZES, type DagLink, type DagSizes, layoutDag } from '../dag';
import { stageColor } from '../palette';

/** The labels' font size (px, as in base.css), line height and room around them. */
const FONT_SIZE = 11;
const LINE_HEIGHT = 13;
const PADDING_X = 6;
const PADDING_Y = 5;
/** The widest a node grows to fit its name; a longer name wraps onto more lines. */
const MAX_NODE_WIDTH = 120;

let labelMeasure: Measure | null = null;

/** Widths of the labels' font: the UI font the theme sets, measured once. */
function measureLabels(): Measure {
  if (!labelMeasure) {
    const family =
      typeof document === 'undefined'
        ? ''
        : getComputedStyle(document.body).getPropertyValue('--jp-ui-font-family').trim();
    labelMeasure = fontMeasure(`${FONT_SIZE}px ${family || 'sans-serif'}`);
  }
  return labelMeasure;
}

/**
 * Every node's name on as many lines as it needs within `MAX_NODE_WIDTH`, nothing cut, and
 * the node size that holds the longest of them (all nodes share one size).
 */
function labelLayout(names: readonly string[]): { lines: Map<string, string[]>; sizes: DagSizes } {
  const measure = measureLabels();
  const room = MAX_NODE_WIDTH - 2 * PADDING_X;
  const lines = new Map(names.map(name => [name, wrapText(name, room, measure)]));
  let width = 0;
  let rows = 1;
  for (const wrapped of lines.values()) {
    rows = Math.max(rows, wrapped.length);
    width = Math.max(width, ...wrapped.map(measure));
  }
  return {
    lines,
    sizes: {
      ...DEFAULT_SIZES,
      nodeWidth: Math.max(DEFAULT_SIZES.nodeWidth, Math.ceil(width) + 2 * PADDING_X),
      nodeHeight: Math.max(DEFAULT_SIZES.nodeHeight, rows * LINE_HEIGHT + 2 * PADDING_Y)
    }
  };
}

export function DagView(props: {
  analysis: Analysis;
  onShowCell: (index: number) => void;
}): React.ReactElement | null {
  const { analysis, onShowCell } = props;
  if (analysis.stages.length === 0) {
    return null;
  }
  const { lines, sizes } = labelLayout(analysis.stages.map(stage => stage.name));
  const layout = layoutDag(analysis.stages, analysis.edges, sizes);
  const { nodeWidth, nodeHeight } = sizes;
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
          d={curve(link, nodeWidth)}
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
        const label = lines.get(node.name) ?? [node.name];
        // The lines centred on the node's middle.
        const top = nodeHeight / 2 - ((label.length - 1) * LINE_HEIGHT) / 2;
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
            {label.map((line, index) => (
              <text
                key={index}
                x={nodeWidth / 2}
                y={top + index * LINE_HEIGHT}
                dominantBaseline="central"
                textAnchor="middle"
              >
                {line}
              </text>
            ))}
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
function curve(link: DagLink, nodeWidth: number): string {
  const bend = (link.y2 - link.y1) / 2;
  const side = link.span > 1 ? (link.x2 < link.x1 ? -1 : 1) * nodeWidth : 0;
  return (
    `M${link.x1},${link.y1} ` +
    `C${link.x1 + side},${link.y1 + bend} ${link.x2 + side},${link.y2 - bend} ${link.x2},${link.y2}`
  );
}
