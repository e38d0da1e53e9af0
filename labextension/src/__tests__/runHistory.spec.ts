import {
  canCancel,
  canRerun,
  comparedRuns,
  compareRuns,
  durationText,
  formatStarted,
  formatValue,
  isLive,
  MAX_VALUE_CHARS,
  metricPairs,
  newestFirst,
  parameterPairs,
  runDuration,
  runMetrics,
  sameValue,
  stageNotebookFile,
  stageNotebookPath,
  toggleChecked
} from '../runHistory';
import { run, stageRun } from './fixtures';

describe('the order of the runs', () => {
  it('lists the newest first, by creation time then id', () => {
    const runs = [
      run({ id: '20261127-101500-aaaaaa', created: 100 }),
      run({ id: '20261127-101700-cccccc', created: 300 }),
      run({ id: '20261127-101600-bbbbbb', created: 200 }),
      run({ id: '20261127-101600-dddddd', created: 200 })
    ];
    expect(newestFirst(runs).map(r => r.id)).toEqual([
      '20261127-101700-cccccc',
      '20261127-101600-dddddd',
      '20261127-101600-bbbbbb',
      '20261127-101500-aaaaaa'
    ]);
    expect(runs[0].id).toBe('20261127-101500-aaaaaa'); // the input is left alone
  });
});

describe('what a row shows', () => {
  it('times a finished run from its creation to its end', () => {
    expect(runDuration(run({ status: 'succeeded', created: 100, finished: 172.5 }), 999)).toBe(
      72.5
    );
  });

  it('counts a running run up to now, and gives a queued or unstarted one none', () => {
    expect(runDuration(run({ status: 'running', created: 100 }), 130)).toBe(30);
    expect(runDuration(run({ status: 'queued', created: 100 }), 130)).toBeNull();
    expect(runDuration(run({ status: 'cancelled', created: 100 }), 130)).toBeNull();
    expect(durationText(null)).toBe('');
    expect(durationText(75)).toBe('1 min 15 s');
    expect(durationText(2.25)).toBe('2.3 s');
  });

  it('shows the start in local time', () => {
    const local = new Date(2026, 10, 27, 9, 5, 3); // months from 0: November
    expect(formatStarted(local.getTime() / 1000)).toBe('2026-11-27 09:05:03');
  });

  it('shows values compactly, and exactly for the comparison', () => {
    expect(formatValue(0.977777777)).toBe('0.9778');
    expect(formatValue(0.977777777, true)).toBe('0.977777777');
    expect(formatValue(123456789)).toBe('123456789');
    expect(formatValue(1.5e-7)).toBe('1.5e-7');
    expect(formatValue('gini')).toBe('gini');
    expect(formatValue(true)).toBe('true');
    expect(formatValue(null)).toBe('null');
    expect(formatValue([1, 2])).toBe('[1,2]');
    expect(formatValue({ a: 1 })).toBe('{"a":1}');
    const long = 'x'.repeat(100);
    expect(formatValue(long)).toHaveLength(MAX_VALUE_CHARS);
    expect(formatValue(long).endsWith('…')).toBe(true);
    expect(formatValue(long, true)).toBe(long);
  });

  it('pairs the parameters and every stage’s metrics', () => {
    const shown = run({
      parameters: { n_estimators: 300, criterion: 'gini' },
      stages: [
        stageRun({ name: 'train', metrics: { loss: 0.123456 } }),
        stageRun({ name: 'evaluate', metrics: { accuracy: 0.97777 } })
      ]
    });
    expect(parameterPairs(shown)).toEqual(['n_estimators=300', 'criterion=gini']);
    expect(metricPairs(shown)).toEqual(['loss=0.1235', 'accuracy=0.9778']);
  });

  it('names a metric two stages log by its stage', () => {
    const shown = run({
      stages: [
        stageRun({ name: 'train', metrics: { accuracy: 1, loss: 0.5 } }),
        stageRun({ name: 'test', metrics: { accuracy: 0.9 } })
      ]
    });
    expect(runMetrics(shown).map(m => m.label)).toEqual([
      'train/accuracy',
      'loss',
      'test/accuracy'
    ]);
  });
});

describe('what can be done to a run', () => {
  it('re-runs a run whose parameters are known, cancels a live one', () => {
    expect(canRerun(run({ status: 'succeeded' }))).toBe(true);
    expect(canRerun(run({ status: 'succeeded', path: null }))).toBe(false);
    // No run.json yet (queued, or cancelled before it started): no parameters to repeat.
    expect(canRerun(run({ status: 'queued', stages: [] }))).toBe(false);
    expect(canCancel(run({ status: 'running' }))).toBe(true);
    expect(canCancel(run({ status: 'queued' }))).toBe(true);
    expect(canCancel(run({ status: 'failed' }))).toBe(false);
    expect(isLive(run({ status: 'cancelled' }))).toBe(false);
  });

  it('finds the executed stage notebook under the run folder', () => {
    const done = stageRun({ status: 'done', notebook: 'notebooks/01_load.ipynb' });
    const folder = 'mlops-runs/churn/20261127-101500-3fa2c1';
    expect(stageNotebookPath(run({ folder }), done)).toBe(`${folder}/notebooks/01_load.ipynb`);
    expect(stageNotebookPath(run({ folder: `${folder}/` }), done)).toBe(
      `${folder}/notebooks/01_load.ipynb`
    );
    expect(stageNotebookPath(run({ folder: null }), done)).toBeNull(); // outside the root
    expect(stageNotebookPath(run({}), done)).toBeNull();
    expect(stageNotebookPath(run({ folder }), stageRun({ status: 'queued' }))).toBeNull();
    expect(stageNotebookPath(run({ folder }), stageRun({ status: 'done' }))).toBeNull();
  });

  it('says where an executed notebook is when its run folder is outside the root', () => {
    const done = stageRun({ status: 'done', notebook: 'notebooks/01_load.ipynb' });
    const runDir = '/home/ds/churn/mlops-runs/churn/20261127-101500-3fa2c1';
    const outside = run({ folder: null, run_dir: runDir });
    expect(stageNotebookFile(outside, done)).toBe(`${runDir}/notebooks/01_load.ipynb`);
    expect(stageNotebookPath(outside, done)).toBeNull();
    // Inside the root it is opened instead; an unstarted stage has none; nor a made-up run.
    expect(stageNotebookFile(run({ folder: 'mlops-runs/x', run_dir: runDir }), done)).toBeNull();
    expect(stageNotebookFile(outside, stageRun({ status: 'queued' }))).toBeNull();
    expect(stageNotebookFile(run({ folder: null }), done)).toBeNull();
  });

  it('keeps at most two runs ticked, the earliest making room', () => {
    let checked = toggleChecked([], 'a');
    checked = toggleChecked(checked, 'b');
    expect(checked).toEqual(['a', 'b']);
    expect(toggleChecked(checked, 'c')).toEqual(['b', 'c']);
    expect(toggleChecked(checked, 'a')).toEqual(['b']);
  });
});

describe('the comparison of two runs', () => {
  const older = run({
    id: '20261127-101500-aaaaaa',
    created: 100,
    status: 'succeeded',
    parameters: { n: 3, criterion: 'gini', layers: [8, 4] },
    stages: [
      stageRun({ name: 'train', metrics: { loss: 0.5 } }),
      stageRun({ name: 'evaluate', metrics: { accuracy: 0.9, f1: 0.8 } })
    ]
  });
  const newer = run({
    id: '20261127-101600-bbbbbb',
    created: 200,
    status: 'succeeded',
    parameters: { layers: [8, 4], n: 5, seed: 1, criterion: 'gini' },
    stages: [
      stageRun({ name: 'train', metrics: { loss: 0.5 } }),
      stageRun({ name: 'evaluate', metrics: { accuracy: 0.95 } })
    ]
  });

  it('puts the older run on the left, whichever was ticked first', () => {
    for (const [a, b] of [
      [older, newer],
      [newer, older]
    ]) {
      const comparison = compareRuns(a, b);
      expect(comparison.left.id).toBe(older.id);
      expect(comparison.right.id).toBe(newer.id);
    }
  });

  it('marks the parameters that differ or that one run lacks', () => {
    const { parameters } = compareRuns(older, newer);
    expect(parameters.map(row => [row.name, row.left, row.right, row.differs])).toEqual([
      ['n', '3', '5', true],
      ['criterion', 'gini', 'gini', false],
      ['layers', '[8,4]', '[8,4]', false],
      ['seed', null, '1', true]
    ]);
  });

  it('compares every stage’s metrics, stage by stage', () => {
    const { metrics } = compareRuns(older, newer);
    expect(metrics.map(row => [row.stage, row.name, row.left, row.right, row.differs])).toEqual([
      ['train', 'loss', '0.5', '0.5', false],
      ['evaluate', 'accuracy', '0.9', '0.95', true],
      ['evaluate', 'f1', '0.8', null, true]
    ]);
  });

  it('tells equal JSON values apart from different ones', () => {
    expect(sameValue({ a: 1, b: [1, { c: 2 }] }, { b: [1, { c: 2 }], a: 1 })).toBe(true);
    expect(sameValue({ a: 1 }, { a: 1, b: 2 })).toBe(false);
    expect(sameValue({ a: undefined }, { b: undefined })).toBe(false);
    expect(sameValue([1, 2], [2, 1])).toBe(false);
    expect(sameValue([1], { 0: 1 })).toBe(false);
    expect(sameValue(1, '1')).toBe(false);
    expect(sameValue(NaN, NaN)).toBe(true);
    expect(sameValue(null, {})).toBe(false);
  });

  it('compares once exactly two listed runs are ticked', () => {
    const runs = [newer, older];
    expect(comparedRuns(runs, [older.id])).toBeNull();
    expect(comparedRuns(runs, [older.id, 'gone'])).toBeNull();
    expect(comparedRuns(runs, [older.id, newer.id])?.map(r => r.id)).toEqual([newer.id, older.id]);
  });
});
