import {
  failureOf,
  formatDuration,
  metricsOf,
  IDLE,
  isActive,
  isCancellable,
  isPolling,
  type ProgressAction,
  type ProgressState,
  reduce,
  stageProgress,
  statusText
} from '../progress';
import { diagnostic, run, stageRun } from './fixtures';

function play(...actions: ProgressAction[]): ProgressState {
  return actions.reduce(reduce, IDLE);
}

const started: ProgressAction[] = [
  { type: 'save' },
  { type: 'check' },
  { type: 'start' },
  { type: 'run', run: run() }
];

describe('the Productionize flow', () => {
  it('goes from saving to running', () => {
    expect(play({ type: 'save' }).phase).toBe('saving');
    expect(play({ type: 'save' }, { type: 'check' }).phase).toBe('checking');
    const state = play(...started);
    expect(state.phase).toBe('running');
    expect(state.run?.id).toBe('20261127-101500-3fa2c1');
    expect(isActive(state)).toBe(true);
  });

  it('stops when the check finds errors', () => {
    const problem = diagnostic();
    const state = play(
      { type: 'save' },
      { type: 'check' },
      { type: 'blocked', problems: [problem] }
    );
    expect(state.phase).toBe('blocked');
    expect(state.problems).toEqual([problem]);
    expect(isActive(state)).toBe(false);
  });

  it('ends in error when a request fails, and can start again', () => {
    const failed = play({ type: 'save' }, { type: 'fail', message: 'Saving failed: disk full' });
    expect(failed.phase).toBe('error');
    expect(failed.message).toBe('Saving failed: disk full');
    expect(reduce(failed, { type: 'save' }).phase).toBe('saving');
  });

  it('does not start twice', () => {
    const running = play(...started);
    expect(reduce(running, { type: 'save' })).toBe(running);
  });

  it('ignores steps out of order', () => {
    expect(reduce(IDLE, { type: 'check' })).toBe(IDLE);
    expect(reduce(IDLE, { type: 'start' })).toBe(IDLE);
    expect(reduce(IDLE, { type: 'cancel' })).toBe(IDLE);
    expect(reduce(IDLE, { type: 'fail', message: 'x' })).toBe(IDLE);
    expect(reduce(IDLE, { type: 'run', run: run() })).toBe(IDLE);
  });

  it('adopts a run that ends at once', () => {
    const state = play(
      { type: 'save' },
      { type: 'check' },
      { type: 'start' },
      { type: 'run', run: run({ status: 'failed' }) }
    );
    expect(state.phase).toBe('failed');
  });
});

describe('following a run', () => {
  it('takes each new snapshot and ends with the run', () => {
    const loading = run({ stages: [stageRun({ status: 'running', started: 1 })] });
    let state = reduce(play(...started), { type: 'run', run: loading });
    expect(state.run).toBe(loading);
    state = reduce(state, { type: 'run', run: run({ status: 'succeeded' }) });
    expect(state.phase).toBe('succeeded');
    expect(isActive(state)).toBe(false);
  });

  it('ignores snapshots of another run', () => {
    const state = play(...started);
    expect(reduce(state, { type: 'run', run: run({ id: 'other', status: 'failed' }) })).toBe(state);
  });

  it('never lets a late running snapshot undo the end', () => {
    const done = reduce(play(...started), { type: 'run', run: run({ status: 'succeeded' }) });
    expect(reduce(done, { type: 'run', run: run() })).toBe(done);
  });

  it('stays cancelling until the server reports the run cancelled', () => {
    let state = reduce(play(...started), { type: 'cancel' });
    expect(state.phase).toBe('cancelling');
    state = reduce(state, { type: 'run', run: run() });
    expect(state.phase).toBe('cancelling');
    state = reduce(state, { type: 'run', run: run({ status: 'cancelled' }) });
    expect(state.phase).toBe('cancelled');
    expect(statusText(state)).toBe('cancelled');
  });

  it('goes back to running when cancelling fails', () => {
    const state = reduce(reduce(play(...started), { type: 'cancel' }), {
      type: 'cancel-failed',
      message: 'run already finished'
    });
    expect(state.phase).toBe('running');
    expect(state.message).toBe('run already finished');
  });

  it('waits in the queue, can be cancelled there, and then runs', () => {
    const queued = reduce(play({ type: 'save' }, { type: 'check' }, { type: 'start' }), {
      type: 'run',
      run: run({ status: 'queued' })
    });
    expect(queued.phase).toBe('queued');
    expect(isPolling(queued) && isActive(queued) && isCancellable(queued)).toBe(true);
    expect(statusText(queued)).toBe('queued: waiting for a free run slot');
    const running = reduce(queued, { type: 'run', run: run() });
    expect(running.phase).toBe('running');
    expect(reduce(running, { type: 'run', run: run({ status: 'queued' }) }).phase).toBe('running');
    const cancelling = reduce(queued, { type: 'cancel' });
    expect(cancelling.phase).toBe('cancelling');
    expect(reduce(cancelling, { type: 'cancel-failed', message: 'no' }).phase).toBe('queued');
    const cancelled = reduce(cancelling, { type: 'run', run: run({ status: 'cancelled' }) });
    expect(cancelled.phase).toBe('cancelled');
    expect(isCancellable(cancelled)).toBe(false);
  });

  it('shows a failed poll until the next snapshot', () => {
    const warned = reduce(play(...started), { type: 'warning', message: 'network down' });
    expect(warned.phase).toBe('running');
    expect(warned.message).toBe('network down');
    expect(reduce(warned, { type: 'run', run: run() }).message).toBeNull();
  });

  it('resumes the latest run only when nothing is shown', () => {
    const resumed = reduce(IDLE, { type: 'resume', run: run({ status: 'succeeded' }) });
    expect(resumed.phase).toBe('succeeded');
    const running = play(...started);
    expect(reduce(running, { type: 'resume', run: run({ id: 'x' }) })).toBe(running);
  });
});

describe('what the UI shows', () => {
  it('counts the duration of a running stage', () => {
    const rows = stageProgress(
      run({
        stages: [
          stageRun({ status: 'done', started: 1, finished: 3.5, duration: 2.5 }),
          stageRun({ name: 'train', status: 'running', started: 10 }),
          stageRun({ name: 'evaluate', status: 'queued' })
        ]
      }),
      14
    );
    expect(rows.map(row => [row.name, row.status, row.duration])).toEqual([
      ['load', 'done', 2.5],
      ['train', 'running', 4],
      ['evaluate', 'queued', null]
    ]);
  });

  it('finds the failing stage and its error', () => {
    const error = {
      message: 'stage `train` failed in cell 6 of churn.ipynb, line 2: ValueError: boom',
      cell: 6,
      line: 2,
      exception: 'ValueError: boom',
      traceback: '...'
    };
    const failed = run({
      status: 'failed',
      stages: [stageRun({ status: 'done' }), stageRun({ name: 'train', status: 'failed', error })],
      error
    });
    expect(failureOf(failed)).toEqual({ stage: 'train', error });
    expect(failureOf(run())).toBeNull();
  });

  it('lists the logged metrics in stage order, to 4 significant digits', () => {
    const done = run({
      stages: [
        stageRun({ status: 'done' }),
        stageRun({
          name: 'evaluate',
          status: 'cached',
          metrics: { accuracy: 0.977777, f1_macro: 1 }
        })
      ]
    });
    expect(metricsOf(done)).toEqual(['accuracy 0.9778', 'f1_macro 1']);
    expect(metricsOf(run())).toEqual([]);
  });

  it('formats durations', () => {
    expect(formatDuration(2.54)).toBe('2.5 s');
    expect(formatDuration(63)).toBe('1 min 03 s');
  });

  it('has a status text for every phase', () => {
    expect(statusText(IDLE)).toBe('');
    expect(statusText(play(...started))).toBe('running');
  });
});
