import type { Analysis, Run } from '../api';
import { ApiError } from '../errors';
import { type RunApi, RunManager } from '../runs';
import { analysis, diagnostic, run, stageRun } from './fixtures';

function fakeApi(overrides: Partial<RunApi> = {}): jest.Mocked<RunApi> {
  return {
    analyze: jest.fn(async (): Promise<Analysis> => analysis()),
    startRun: jest.fn(async (): Promise<Run> => run()),
    getRun: jest.fn(async (): Promise<Run> => run()),
    cancelRun: jest.fn(async (): Promise<Run> => run()),
    listRuns: jest.fn(async (): Promise<Run[]> => []),
    ...overrides
  } as jest.Mocked<RunApi>;
}

const options = {
  path: 'work/churn.ipynb',
  save: () => Promise.resolve(),
  parameters: { n_estimators: 300 },
  jobs: 2
};

/** Let timers fire and the promises they start settle. */
async function tick(ms: number): Promise<void> {
  await jest.advanceTimersByTimeAsync(ms);
}

describe('RunManager', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('saves, checks the saved file, starts the run with the form values', async () => {
    const order: string[] = [];
    const api = fakeApi({
      analyze: jest.fn(async () => {
        order.push('analyze');
        return analysis();
      }),
      startRun: jest.fn(async () => {
        order.push('start');
        return run();
      })
    });
    const manager = new RunManager({ api });
    const save = jest.fn(async () => {
      order.push('save');
    });
    const state = await manager.productionize('nb', { ...options, save });
    expect(order).toEqual(['save', 'analyze', 'start']);
    expect(api.analyze).toHaveBeenCalledWith({ path: 'work/churn.ipynb' });
    expect(api.startRun).toHaveBeenCalledWith({
      path: 'work/churn.ipynb',
      parameters: { n_estimators: 300 },
      jobs: 2
    });
    expect(state.phase).toBe('running');
    manager.dispose();
  });

  it('polls every second until the run ends', async () => {
    const snapshots = [
      run({ stages: [stageRun({ status: 'running', started: 1 })] }),
      run({ status: 'succeeded' })
    ];
    const api = fakeApi({ getRun: jest.fn(async () => snapshots.shift() ?? run()) });
    const manager = new RunManager({ api, pollInterval: 1000 });
    await manager.productionize('nb', options);
    await tick(999);
    expect(api.getRun).not.toHaveBeenCalled();
    await tick(1);
    expect(api.getRun).toHaveBeenCalledWith('20261127-101500-3fa2c1');
    expect(manager.get('nb').run?.stages[0].status).toBe('running');
    await tick(1000);
    expect(manager.get('nb').phase).toBe('succeeded');
    await tick(5000);
    expect(api.getRun).toHaveBeenCalledTimes(2);
    manager.dispose();
  });

  it('stops at the check when the notebook has errors, and starts nothing', async () => {
    const problem = diagnostic();
    const warning = diagnostic({ severity: 'warning', code: 'maybe-undefined' });
    const api = fakeApi({
      analyze: jest.fn(async () => analysis({ ok: false, diagnostics: [warning, problem] }))
    });
    const manager = new RunManager({ api });
    const state = await manager.productionize('nb', options);
    expect(state.phase).toBe('blocked');
    expect(state.problems).toEqual([problem]);
    expect(api.startRun).not.toHaveBeenCalled();
  });

  it('reports a failed save with its reason', async () => {
    const api = fakeApi();
    const manager = new RunManager({ api });
    const state = await manager.productionize('nb', {
      ...options,
      save: () => Promise.reject(new Error('disk full'))
    });
    expect(state).toMatchObject({
      phase: 'error',
      message: 'Saving the notebook failed: disk full'
    });
    expect(api.analyze).not.toHaveBeenCalled();
  });

  it("shows the server's message when the run is refused", async () => {
    const api = fakeApi({
      startRun: jest.fn(async () => {
        throw new ApiError(400, 'parameter `n_estimators` must be an int');
      })
    });
    const state = await new RunManager({ api }).productionize('nb', options);
    expect(state.message).toBe('The run could not start: parameter `n_estimators` must be an int');
  });

  it('does not start a second run while one is under way', async () => {
    const api = fakeApi();
    const manager = new RunManager({ api });
    await manager.productionize('nb', options);
    await manager.productionize('nb', options);
    expect(api.startRun).toHaveBeenCalledTimes(1);
    manager.dispose();
  });

  it('cancels, and keeps polling until the server says cancelled', async () => {
    const api = fakeApi({
      getRun: jest.fn(async () => run({ status: 'cancelled' }))
    });
    const manager = new RunManager({ api });
    await manager.productionize('nb', options);
    await manager.cancel('nb');
    expect(api.cancelRun).toHaveBeenCalledWith('20261127-101500-3fa2c1');
    expect(manager.get('nb').phase).toBe('cancelling');
    await tick(1000);
    expect(manager.get('nb').phase).toBe('cancelled');
  });

  it('goes back to running when the cancel request fails', async () => {
    const api = fakeApi({
      cancelRun: jest.fn(async () => {
        throw new ApiError(409, 'the run has already finished');
      })
    });
    const manager = new RunManager({ api });
    await manager.productionize('nb', options);
    await manager.cancel('nb');
    expect(manager.get('nb')).toMatchObject({
      phase: 'running',
      message: 'the run has already finished'
    });
    manager.dispose();
  });

  it('keeps polling through a failed poll', async () => {
    const getRun = jest
      .fn<Promise<Run>, [string]>()
      .mockRejectedValueOnce(new ApiError(0, 'offline'))
      .mockResolvedValueOnce(run({ status: 'succeeded' }));
    const manager = new RunManager({ api: fakeApi({ getRun }) });
    await manager.productionize('nb', options);
    await tick(1000);
    expect(manager.get('nb').message).toBe("Could not get the run's progress: offline");
    await tick(1000);
    expect(manager.get('nb')).toMatchObject({ phase: 'succeeded', message: null });
  });

  it('stops following a run the server no longer knows', async () => {
    const getRun = jest.fn(async (): Promise<Run> => {
      throw new ApiError(404, 'no run `20261127-101500-3fa2c1`');
    });
    const manager = new RunManager({ api: fakeApi({ getRun }) });
    await manager.productionize('nb', options);
    await tick(1000);
    expect(manager.get('nb')).toMatchObject({
      phase: 'error',
      message: "Could not get the run's progress: no run `20261127-101500-3fa2c1`"
    });
    await tick(5000);
    expect(getRun).toHaveBeenCalledTimes(1);
  });

  it('resumes the latest run of the notebook and follows it', async () => {
    const api = fakeApi({
      listRuns: jest.fn(async () => [run(), run({ id: 'older', status: 'failed' })]),
      getRun: jest.fn(async () => run({ status: 'succeeded' }))
    });
    const manager = new RunManager({ api });
    await manager.resume('nb', 'work/churn.ipynb');
    expect(api.listRuns).toHaveBeenCalledWith('work/churn.ipynb');
    expect(manager.get('nb').phase).toBe('running');
    await tick(1000);
    expect(manager.get('nb').phase).toBe('succeeded');
  });

  it('resumes quietly when the server has nothing', async () => {
    const api = fakeApi({
      listRuns: jest.fn(async () => {
        throw new ApiError(404, 'Not Found', true);
      })
    });
    const manager = new RunManager({ api });
    await manager.resume('nb', 'x.ipynb');
    expect(manager.get('nb').phase).toBe('idle');
  });

  it('stops polling for a forgotten notebook', async () => {
    const api = fakeApi();
    const manager = new RunManager({ api });
    await manager.productionize('nb', options);
    manager.forget('nb');
    await tick(5000);
    expect(api.getRun).not.toHaveBeenCalled();
    expect(manager.get('nb').phase).toBe('idle');
  });
});
