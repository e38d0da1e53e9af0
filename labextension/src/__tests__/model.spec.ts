import type { Analysis, AnalyzeRequest } from '../api';
import { ApiError } from '../errors';
import { AnalysisModel, EMPTY, type Snapshot } from '../model';
import { analysis } from './fixtures';

/** A fake `POST analyze` whose answers the test releases one by one, in any order. */
class FakeServer {
  requests: AnalyzeRequest[] = [];
  private pending: Array<{ resolve: (a: Analysis) => void; reject: (e: Error) => void }> = [];

  analyze = (request: AnalyzeRequest): Promise<Analysis> => {
    this.requests.push(request);
    return new Promise((resolve, reject) => this.pending.push({ resolve, reject }));
  };

  async answer(index: number, result: Analysis | Error): Promise<void> {
    const { resolve, reject } = this.pending[index];
    if (result instanceof Error) {
      reject(result);
    } else {
      resolve(result);
    }
    await Promise.resolve();
    await Promise.resolve();
  }
}

function snapshot(path: string, cellIds = ['a', 'b']): () => Snapshot {
  return () => ({ request: { path }, cellIds });
}

describe('AnalysisModel', () => {
  let server: FakeServer;
  let model: AnalysisModel;

  beforeEach(() => {
    jest.useFakeTimers();
    server = new FakeServer();
    model = new AnalysisModel({ analyze: server.analyze, delay: 500 });
  });

  afterEach(() => {
    model.dispose();
    jest.useRealTimers();
  });

  it('debounces: one request after the edits stop', () => {
    model.schedule('nb', snapshot('first.ipynb'));
    jest.advanceTimersByTime(300);
    model.schedule('nb', snapshot('second.ipynb'));
    jest.advanceTimersByTime(300);
    model.schedule('nb', snapshot('third.ipynb'));
    jest.advanceTimersByTime(499);
    expect(server.requests).toEqual([]);
    jest.advanceTimersByTime(1);
    expect(server.requests).toEqual([{ path: 'third.ipynb' }]);
    expect(model.get('nb').pending).toBe(true);
  });

  it('takes the snapshot when the request is sent, not when it was scheduled', () => {
    let path = 'before.ipynb';
    model.schedule('nb', () => ({ request: { path }, cellIds: [] }));
    path = 'after.ipynb';
    jest.advanceTimersByTime(500);
    expect(server.requests).toEqual([{ path: 'after.ipynb' }]);
  });

  it('uses the delay set later', () => {
    model.delay = 100;
    model.schedule('nb', snapshot('x.ipynb'));
    jest.advanceTimersByTime(100);
    expect(server.requests).toHaveLength(1);
  });

  it('keeps the answer with the cell ids it belongs to', async () => {
    const changes: string[] = [];
    model.changed.connect((_, key) => changes.push(key));
    const result = analysis();
    const pending = model.refresh('nb', snapshot('x.ipynb', ['c1', 'c2']));
    await server.answer(0, result);
    const state = await pending;
    expect(state).toEqual({ ...EMPTY, analysis: result, cellIds: ['c1', 'c2'] });
    expect(changes).toEqual(['nb', 'nb']);
  });

  it('drops stale answers that arrive after a newer request', async () => {
    const older = analysis({ imports: ['old'] });
    const newer = analysis({ imports: ['new'] });
    void model.refresh('nb', snapshot('x.ipynb', ['old']));
    void model.refresh('nb', snapshot('x.ipynb', ['new']));
    await server.answer(1, newer);
    await server.answer(0, older);
    expect(model.get('nb').analysis).toBe(newer);
    expect(model.get('nb').cellIds).toEqual(['new']);
    expect(model.get('nb').pending).toBe(false);
  });

  it('stays pending while a newer request is out', async () => {
    void model.refresh('nb', snapshot('x.ipynb'));
    void model.refresh('nb', snapshot('x.ipynb'));
    await server.answer(0, analysis());
    expect(model.get('nb')).toMatchObject({ analysis: null, pending: true });
  });

  it('keeps the last good analysis when a request fails', async () => {
    const good = analysis();
    void model.refresh('nb', snapshot('x.ipynb'));
    await server.answer(0, good);
    void model.refresh('nb', snapshot('x.ipynb'));
    await server.answer(1, new ApiError(400, 'the notebook is not valid JSON'));
    expect(model.get('nb')).toMatchObject({
      analysis: good,
      error: 'the notebook is not valid JSON',
      unavailable: false,
      pending: false
    });
  });

  it('tells a missing server extension apart', async () => {
    void model.refresh('nb', snapshot('x.ipynb'));
    await server.answer(0, new ApiError(404, '404 Not Found', true));
    expect(model.get('nb').unavailable).toBe(true);
  });

  it('keeps notebooks apart and forgets closed ones', async () => {
    void model.refresh('a', snapshot('a.ipynb'));
    model.schedule('b', snapshot('b.ipynb'));
    model.forget('b');
    jest.advanceTimersByTime(1000);
    expect(server.requests).toEqual([{ path: 'a.ipynb' }]);
    model.forget('a');
    await server.answer(0, analysis());
    expect(model.get('a')).toBe(EMPTY);
  });

  it('does nothing once disposed', async () => {
    model.schedule('nb', snapshot('x.ipynb'));
    model.dispose();
    jest.advanceTimersByTime(1000);
    expect(server.requests).toEqual([]);
    expect(await model.refresh('nb', snapshot('x.ipynb'))).toBe(EMPTY);
    expect(model.isDisposed).toBe(true);
  });
});
