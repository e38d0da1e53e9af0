import type { Run, StartRunRequest } from '../api';
import { ApiError } from '../errors';
import { type RunsApi, RunsModel } from '../runsModel';
import { run, stageRun } from './fixtures';

const PATH = 'work/churn.ipynb';

const done = run({
  id: '20261127-101500-aaaaaa',
  created: 100,
  finished: 160,
  status: 'succeeded',
  parameters: { n_estimators: 300 },
  stages: [stageRun({ status: 'done', metrics: { accuracy: 0.9 } })]
});
const older = run({
  id: '20261127-101400-bbbbbb',
  created: 50,
  finished: 90,
  status: 'failed',
  parameters: { n_estimators: 100 }
});

function fakeApi(overrides: Partial<RunsApi> = {}): jest.Mocked<RunsApi> {
  return {
    listRuns: jest.fn(async (): Promise<Run[]> => [older, done]),
    getRun: jest.fn(async (id: string): Promise<Run> => ({ ...done, id, log_tail: 'log' })),
    startRun: jest.fn(async (request: StartRunRequest): Promise<Run> =>
      run({
        id: '20261127-101600-cccccc',
        created: 200,
        status: 'running',
        parameters: request.parameters ?? {}
      })
    ),
    cancelRun: jest.fn(async (id: string): Promise<Run> => run({ id, status: 'running' })),
    ...overrides
  } as jest.Mocked<RunsApi>;
}

/** Let timers fire and the promises they start settle. */
async function tick(ms: number): Promise<void> {
  await jest.advanceTimersByTimeAsync(ms);
}

describe('RunsModel', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('lists the notebook’s runs newest first, and polls no more once none is live', async () => {
    const api = fakeApi();
    const model = new RunsModel({ api });
    const changes: string[] = [];
    model.changed.connect((_, key) => changes.push(key));
    expect(model.get(PATH).loaded).toBe(false);
    await model.open(PATH);
    const state = model.get(PATH);
    expect(api.listRuns).toHaveBeenCalledWith(PATH);
    expect(state.loaded).toBe(true);
    expect(state.runs.map(r => r.id)).toEqual([done.id, older.id]);
    expect(changes).toContain(PATH);
    await tick(10_000);
    expect(api.listRuns).toHaveBeenCalledTimes(1);
    model.dispose();
  });

  it('says when there are no runs, and why the listing failed', async () => {
    const empty = new RunsModel({ api: fakeApi({ listRuns: jest.fn(async () => []) }) });
    await empty.open(PATH);
    expect(empty.get(PATH)).toMatchObject({ loaded: true, runs: [], error: null });

    const failing = new RunsModel({
      api: fakeApi({
        listRuns: jest.fn(async () => {
          throw new ApiError(404, 'Not Found', true);
        })
      })
    });
    await failing.open(PATH);
    expect(failing.get(PATH)).toMatchObject({
      loaded: true,
      error: 'Could not list the runs: Not Found',
      unavailable: true
    });
    empty.dispose();
    failing.dispose();
  });

  it('polls while a run is live, until it ends', async () => {
    const running = run({ ...done, status: 'running', finished: null });
    const api = fakeApi({
      listRuns: jest
        .fn()
        .mockResolvedValueOnce([running])
        .mockResolvedValueOnce([running])
        .mockResolvedValue([done])
    });
    const model = new RunsModel({ api, pollInterval: 1000 });
    await model.open(PATH);
    await tick(1000);
    expect(api.listRuns).toHaveBeenCalledTimes(2);
    await tick(1000);
    expect(model.get(PATH).runs[0].status).toBe('succeeded');
    await tick(5000);
    expect(api.listRuns).toHaveBeenCalledTimes(3);
    model.dispose();
  });

  it('opens a run with its logs, and closes it on a second click', async () => {
    const api = fakeApi();
    const model = new RunsModel({ api });
    await model.open(PATH);
    await model.select(PATH, done.id);
    expect(api.getRun).toHaveBeenCalledWith(done.id);
    expect(model.get(PATH)).toMatchObject({ openId: done.id, detailError: null });
    expect(model.get(PATH).detail?.log_tail).toBe('log');
    await model.select(PATH, done.id);
    expect(model.get(PATH)).toMatchObject({ openId: null, detail: null });
    model.dispose();
  });

  it('says when the opened run is gone', async () => {
    const api = fakeApi({
      getRun: jest.fn(async () => {
        throw new ApiError(404, 'no run');
      })
    });
    const model = new RunsModel({ api });
    await model.open(PATH);
    await model.select(PATH, done.id);
    expect(model.get(PATH).detailError).toBe(`The server no longer knows run ${done.id}.`);
    model.dispose();
  });

  it('fetches the opened run again while it runs, and once more when it has ended', async () => {
    const running = run({ ...done, status: 'running', finished: null });
    const api = fakeApi({
      listRuns: jest
        .fn()
        .mockResolvedValueOnce([running])
        .mockResolvedValueOnce([running])
        .mockResolvedValue([done]),
      getRun: jest
        .fn()
        .mockResolvedValueOnce(running)
        .mockResolvedValueOnce(running)
        .mockResolvedValue(done)
    });
    const model = new RunsModel({ api, pollInterval: 1000 });
    await model.open(PATH);
    await model.select(PATH, done.id);
    await tick(1000);
    expect(api.getRun).toHaveBeenCalledTimes(2);
    await tick(1000);
    expect(model.get(PATH).detail?.status).toBe('succeeded');
    await tick(5000);
    expect(api.getRun).toHaveBeenCalledTimes(3);
    model.dispose();
  });

  it('re-runs with the same parameters: the new run is at the top and followed', async () => {
    const api = fakeApi();
    const model = new RunsModel({ api, pollInterval: 1000, jobs: () => 2 });
    await model.open(PATH);
    const started = await model.rerun(PATH, done.id);
    expect(api.startRun).toHaveBeenCalledWith({
      path: PATH,
      parameters: { n_estimators: 300 },
      jobs: 2
    });
    expect(started?.id).toBe('20261127-101600-cccccc');
    const state = model.get(PATH);
    expect(state.runs.map(r => r.id)).toEqual([started?.id, done.id, older.id]);
    expect(state.pending).toEqual({});
    await tick(1000); // it is live: the list is polled
    expect(api.listRuns).toHaveBeenCalledTimes(2);
    model.dispose();
  });

  it('drops a listing asked for before a re-run changed the list', async () => {
    let answer: (runs: Run[]) => void = () => undefined;
    const api = fakeApi({
      listRuns: jest
        .fn()
        .mockResolvedValueOnce([older, done])
        .mockImplementationOnce(() => new Promise<Run[]>(resolve => (answer = resolve)))
        .mockResolvedValue([older, done])
    });
    const model = new RunsModel({ api });
    await model.open(PATH);
    const refresh = model.refresh(PATH);
    const started = await model.rerun(PATH, done.id);
    answer([older, done]); // stale: the new run is not in it
    await refresh;
    expect(model.get(PATH).runs[0].id).toBe(started?.id);
    model.dispose();
  });

  it("shows why a re-run was refused, until it's dismissed", async () => {
    const api = fakeApi({
      startRun: jest.fn(async () => {
        throw new ApiError(400, 'parameter `n_estimators` must be an int');
      })
    });
    const model = new RunsModel({ api });
    await model.open(PATH);
    expect(await model.rerun(PATH, done.id)).toBeNull();
    expect(model.get(PATH).notice).toBe(
      `Could not re-run ${done.id}: parameter \`n_estimators\` must be an int`
    );
    model.dismiss(PATH);
    expect(model.get(PATH).notice).toBeNull();
    model.dispose();
  });

  it('cancels a live run and follows it until the server says cancelled', async () => {
    const running = run({ id: '20261127-101600-cccccc', created: 200, status: 'running' });
    const cancelled = { ...running, status: 'cancelled' as const, finished: 210 };
    const api = fakeApi({
      listRuns: jest.fn().mockResolvedValueOnce([running, done]).mockResolvedValue([cancelled]),
      cancelRun: jest.fn(async () => running)
    });
    const model = new RunsModel({ api, pollInterval: 1000 });
    await model.open(PATH);
    const cancelling = model.cancel(PATH, running.id);
    expect(model.get(PATH).pending).toEqual({ [running.id]: 'cancel' });
    await cancelling;
    expect(api.cancelRun).toHaveBeenCalledWith(running.id);
    expect(model.get(PATH).pending).toEqual({});
    await tick(1000);
    expect(model.get(PATH).runs[0].status).toBe('cancelled');
    model.dispose();
  });

  it('does not cancel a run that has ended, and says why a cancel failed', async () => {
    const running = run({ id: '20261127-101600-cccccc', created: 200, status: 'running' });
    const api = fakeApi({
      listRuns: jest.fn().mockResolvedValueOnce([running, done]).mockResolvedValue([done]),
      cancelRun: jest.fn(async () => {
        throw new ApiError(409, 'run has already finished (succeeded)');
      })
    });
    const model = new RunsModel({ api });
    await model.open(PATH);
    await model.cancel(PATH, done.id);
    expect(api.cancelRun).not.toHaveBeenCalled();
    await model.cancel(PATH, running.id);
    expect(model.get(PATH).notice).toBe(
      `Could not cancel ${running.id}: run has already finished (succeeded)`
    );
    expect(model.get(PATH).runs.map(r => r.id)).toEqual([done.id]); // listed again
    model.dispose();
  });

  it('keeps the ticked runs that are still listed', async () => {
    const api = fakeApi({
      listRuns: jest.fn().mockResolvedValueOnce([done, older]).mockResolvedValue([done])
    });
    const model = new RunsModel({ api });
    await model.open(PATH);
    model.toggleChecked(PATH, done.id);
    model.toggleChecked(PATH, older.id);
    expect(model.get(PATH).checked).toEqual([done.id, older.id]);
    await model.refresh(PATH);
    expect(model.get(PATH).checked).toEqual([done.id]);
    model.dispose();
  });

  it('lists again when Productionize reports a run the panel does not show', async () => {
    const api = fakeApi();
    const model = new RunsModel({ api });
    model.notice(run({ path: PATH })); // no panel: nothing to do
    expect(api.listRuns).not.toHaveBeenCalled();
    await model.open(PATH);
    model.notice(done); // known, same status
    model.notice({ ...done, path: 'other.ipynb' });
    expect(api.listRuns).toHaveBeenCalledTimes(1);
    model.notice(run({ id: '20261127-101600-cccccc', path: PATH }));
    model.notice({ ...done, status: 'running' });
    expect(api.listRuns).toHaveBeenCalledTimes(3);
    model.dispose();
  });

  it('forgets a closed panel: no state kept, no polling', async () => {
    const running = run({ ...done, status: 'running', finished: null });
    const api = fakeApi({ listRuns: jest.fn(async () => [running]) });
    const model = new RunsModel({ api, pollInterval: 1000 });
    await model.open(PATH);
    model.forget(PATH);
    await tick(5000);
    expect(api.listRuns).toHaveBeenCalledTimes(1);
    expect(model.get(PATH).loaded).toBe(false);
    expect(model.follows(PATH)).toBe(false);
    model.dispose();
  });
});
