import { DEFAULT_SIZES, depths, layoutDag } from '../dag';

const stages = [
  { name: 'load', upstream: [] },
  { name: 'split', upstream: ['load'] },
  { name: 'train', upstream: ['split'] },
  { name: 'evaluate', upstream: ['split', 'train'] },
  { name: 'report', upstream: ['split', 'train'] }
];

describe('depths', () => {
  it('puts a stage one below its deepest upstream', () => {
    expect([...depths(stages)]).toEqual([
      ['load', 0],
      ['split', 1],
      ['train', 2],
      ['evaluate', 3],
      ['report', 3]
    ]);
  });

  it('treats unknown upstream stages as absent', () => {
    expect(depths([{ name: 'a', upstream: ['ghost'] }]).get('a')).toBe(0);
  });
});

describe('layoutDag', () => {
  const edges = [
    { source: 'load', target: 'split', variables: ['df'], explicit: false },
    { source: 'train', target: 'evaluate', variables: ['model'], explicit: false },
    { source: 'ghost', target: 'load', variables: [], explicit: true }
  ];
  const layout = layoutDag(stages, edges);
  const { nodeWidth, nodeHeight, gapX, gapY } = DEFAULT_SIZES;

  it('sizes the drawing to its widest row', () => {
    expect(layout.width).toBe(2 * nodeWidth + gapX);
    expect(layout.height).toBe(4 * nodeHeight + 3 * gapY);
  });

  it('centres rows and keeps run order within a row', () => {
    const byName = new Map(layout.nodes.map(node => [node.name, node]));
    expect(byName.get('load')?.x).toBe(layout.width / 2);
    expect(byName.get('evaluate')!.x).toBeLessThan(byName.get('report')!.x);
    expect(byName.get('report')?.position).toBe(4);
    expect(byName.get('train')?.depth).toBe(2);
  });

  it('links the bottom of the source to the top of the target, skipping unknown stages', () => {
    expect(layout.links).toHaveLength(2);
    const [link] = layout.links;
    expect(link.y1).toBe(nodeHeight);
    expect(link.y2).toBe(nodeHeight + gapY);
    expect(link.span).toBe(1);
  });

  it('draws nothing for no stages', () => {
    expect(layoutDag([], [])).toEqual({ nodes: [], links: [], width: 0, height: 0 });
  });
});
