import {
  cachedNote,
  failureHeading,
  failureOf,
  formatDuration,
  metricsOf,
  IDLE,
  isActive,
  isCancellable,
  isPolling,
  isPreparing,
  neverStarted,
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
    const reported = run({ stages: [stageRun({ status: 'running', started: 1 })] });
    expect(statusText(reduce(play(...started), { type: 'run', run: reported }))).toBe('running');
  });
});

describe('before the first stage reports', () => {
  it('says preparing, not running, until a stage starts', () => {
    const preparing = play(...started);
    expect(preparing.phase).toBe('running');
    expect(isPreparing(preparing)).toBe(true);
    expect(statusText(preparing)).toBe('preparing');
    // The server's first answer may list no stages yet (the run has no run.json).
    const bare = reduce(play({ type: 'save' }, { type: 'check' }, { type: 'start' }), {
      type: 'run',
      run: run({ stages: [] })
    });
    expect(statusText(bare)).toBe('preparing');
    for (const first of [
      stageRun({ status: 'running', started: 5 }),
      stageRun({ status: 'cached', cached_from: 'a'.repeat(32) }),
      stageRun({ status: 'failed', started: 5, finished: 6 })
    ]) {
      const state = reduce(preparing, {
        type: 'run',
        run: run({ stages: [first, stageRun({ name: 'train' })] })
      });
      expect([isPreparing(state), statusText(state)]).toEqual([false, 'running']);
    }
  });

  it('is only said of a running run', () => {
    expect(isPreparing(play({ type: 'save' }, { type: 'check' }, { type: 'start' }))).toBe(false);
    const queued = reduce(play({ type: 'save' }, { type: 'check' }, { type: 'start' }), {
      type: 'run',
      run: run({ status: 'queued' })
    });
    expect(statusText(queued)).toBe('queued: waiting for a free run slot');
    const ended = reduce(play(...started), { type: 'run', run: run({ status: 'cancelled' }) });
    expect(statusText(ended)).toBe('cancelled');
  });

  it('lists the stages the check found until the run lists its own', () => {
    const planned = [
      { name: 'load', cells: [3, 4] },
      { name: 'train', cells: [6] }
    ];
    const waiting = stageProgress(null, 0, planned);
    expect(waiting.map(row => [row.name, row.status, row.label, row.duration, row.cells])).toEqual([
      ['load', 'queued', 'queued', null, [3, 4]],
      ['train', 'queued', 'queued', null, [6]]
    ]);
    expect(stageProgress(run({ stages: [] }), 0, planned).map(row => row.name)).toEqual([
      'load',
      'train'
    ]);
    // Once the run lists them, its stages are shown, not the plan.
    const listed = stageProgress(run({ stages: [stageRun({ name: 'only' })] }), 0, planned);
    expect(listed.map(row => row.name)).toEqual(['only']);
    expect(stageProgress(null, 0)).toEqual([]);
  });
});

describe('stage rows', () => {
  it('says "not started" without a duration for a stage cancelled before it ran', () => {
    const rows = stageProgress(
      run({
        status: 'cancelled',
        stages: [
          stageRun({ status: 'cancelled', started: 10, finished: 14, duration: 4 }),
          // the server gives a stage stopped at its start its end as start: 0 s
          stageRun({ name: 'train', status: 'cancelled', started: 20, finished: 20, duration: 0 }),
          stageRun({ name: 'evaluate', status: 'cancelled' }),
          stageRun({ name: 'report', status: 'skipped' })
        ]
      }),
      30
    );
    expect(rows.map(row => [row.name, row.label, row.duration])).toEqual([
      ['load', 'cancelled', 4],
      ['train', 'not started', null],
      ['evaluate', 'not started', null],
      ['report', 'skipped', null]
    ]);
    expect(rows.map(row => row.status)).toEqual(['cancelled', 'cancelled', 'cancelled', 'skipped']);
  });

  it('knows a stage that never started', () => {
    expect(neverStarted(stageRun({ status: 'cancelled' }))).toBe(true);
    expect(neverStarted(stageRun({ status: 'cancelled', started: 3, finished: 3 }))).toBe(true);
    expect(
      neverStarted(stageRun({ status: 'cancelled', started: 3, finished: 5, duration: 2 }))
    ).toBe(false);
    expect(neverStarted(stageRun({ status: 'queued' }))).toBe(false);
    expect(neverStarted(stageRun({ status: 'failed', started: 3, finished: 3 }))).toBe(false);
  });

  it('notes where a cached stage comes from, short, with the whole id for a tooltip', () => {
    const id = '0123456789abcdef0123456789abcdef';
    const [cached, done] = stageProgress(
      run({
        stages: [
          stageRun({ status: 'cached', cached_from: id, duration: 0.01 }),
          stageRun({ name: 'train', status: 'done', started: 1, finished: 2, duration: 1 })
        ]
      }),
      3
    );
    expect([cached.label, cached.note, cached.noteTitle, cached.cachedFrom]).toEqual([
      'cached',
      'from MLflow run 01234567',
      `outputs of MLflow run ${id}`,
      id
    ]);
    expect([done.note, done.noteTitle]).toEqual([null, null]);
  });

  it('names the origin of cached outputs as the command line does', () => {
    expect(cachedNote('0123456789abcdef0123456789abcdef').note).toBe('from MLflow run 01234567');
    expect(cachedNote('20261127-101500-3fa2c1')).toEqual({
      note: 'from run 20261127-101500-3fa2c1',
      title: 'outputs of run 20261127-101500-3fa2c1'
    });
    expect(cachedNote(null).note).toBe('from an earlier run');
    // Not an MLflow id: upper case hex, or too short.
    expect(cachedNote('0123456789ABCDEF0123456789ABCDEF').note).toMatch(/^from run /);
    expect(cachedNote('0123abcd').note).toBe('from run 0123abcd');
  });
});

describe('a failure', () => {
  const error = (message: string) => ({
    message,
    cell: 5,
    line: 2,
    exception: 'ValueError: total 10 is too big',
    traceback: null
  });

  it('is said once: no heading when the message names the failed stage', () => {
    const message =
      'stage `check` failed in cell 5 of failing.ipynb, line 2: ValueError: total 10 is too big';
    expect(failureHeading({ stage: 'check', error: error(message) })).toBeNull();
    const other = 'stage `check` could not run: OSError: disk full';
    expect(failureHeading({ stage: 'check', error: error(other) })).toBeNull();
  });

  it('names the stage when its message does not', () => {
    expect(failureHeading({ stage: 'check', error: error('the kernel died') })).toBe('stage');
    // another stage's name at the start is no mention of this one
    const message = 'stage `check_more` failed in cell 5: ValueError: x';
    expect(failureHeading({ stage: 'check', error: error(message) })).toBe('stage');
  });

  it('says the run failed when no stage did', () => {
    const message = 'lost the MLflow tracking server at http://x during the run';
    expect(failureHeading({ stage: null, error: error(message) })).toBe('run');
  });
});
