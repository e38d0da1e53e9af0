import type { Verification } from '../api';
import { ApiError } from '../errors';
import {
  isVerifying,
  type VerifyApi,
  VerifyManager,
  verifyOutcome,
  verifyStatusText,
  verifyTimings
} from '../verify';
import { difference, verification, verifyReport } from './fixtures';

const divergent = verifyReport({
  identical: false,
  folder: 'mlops-runs/nb/verify-20261127-101500-3fa2c1',
  differences: [difference()]
});

describe('verifyOutcome', () => {
  it('says how many values match when identical', () => {
    const outcome = verifyOutcome(verifyReport());
    expect(outcome.summary).toBe("✓ identical: 2 values match the notebook's");
    expect(outcome.differences).toEqual([]);
    expect(outcome.notes).toEqual([]);
    expect(verifyOutcome(verifyReport({ values: 1 })).summary).toBe(
      "✓ identical: 1 value matches the notebook's"
    );
  });

  it('lists each divergent value with its stage, detail and cell', () => {
    const outcome = verifyOutcome(divergent);
    expect(outcome.summary).toBe(
      "✗ divergent: 1 value differs from the notebook's (2 values compared)"
    );
    expect(outcome.differences).toEqual([
      {
        key: 'b/n',
        stage: 'b',
        label: 'n',
        detail: 'the notebook has 2, the pipeline 1',
        cell: 2,
        readers: ['c']
      }
    ]);
  });

  it('keeps unseeded randomness apart, as a note that does not make it divergent', () => {
    const random = difference({
      stage: 'a',
      variable: 'x.numpy',
      label: "the state of numpy's random generator",
      cell: 0,
      detail: 'the notebook has a different state',
      unseeded: true
    });
    const outcome = verifyOutcome(verifyReport({ differences: [random] }));
    expect(outcome.summary).toBe("✓ identical: 2 values match the notebook's");
    expect(outcome.differences).toEqual([]);
    expect(outcome.notes.map(note => [note.stage, note.label, note.key])).toEqual([
      ['a', "the state of numpy's random generator", 'a/x.numpy']
    ]);
    const both = verifyOutcome(
      verifyReport({
        identical: false,
        differences: [random, difference(), difference({ variable: 'm', label: 'm', cell: null })]
      })
    );
    expect(both.summary).toBe(
      "✗ divergent: 2 values differ from the notebook's (2 values compared)"
    );
    expect(both.differences.map(row => [row.label, row.cell])).toEqual([
      ['n', 2],
      ['m', null]
    ]);
    expect(both.notes).toHaveLength(1);
  });

  it('falls back to the variable when a report has no label', () => {
    const outcome = verifyOutcome(
      verifyReport({ identical: false, differences: [difference({ label: '' })] })
    );
    expect(outcome.differences[0].label).toBe('n');
  });

  it('formats the two runs’ times', () => {
    expect(verifyTimings(divergent)).toBe('notebook 1.7 s, pipeline 12.4 s');
  });
});

function fakeApi(overrides: Partial<VerifyApi> = {}): jest.Mocked<VerifyApi> {
  return {
    startVerification: jest.fn(async () => ({ id: '20261127-101500-3fa2c1' })),
    getVerification: jest.fn(async (): Promise<Verification> => verification()),
    ...overrides
  } as jest.Mocked<VerifyApi>;
}

const options = { path: 'work/nb.ipynb', save: () => Promise.resolve() };

async function tick(ms: number): Promise<void> {
  await jest.advanceTimersByTimeAsync(ms);
}

describe('VerifyManager', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('saves, starts the verification of the saved file and polls it to its verdict', async () => {
    const order: string[] = [];
    const answers = [verification(), verification({ status: 'divergent', report: divergent })];
    const api = fakeApi({
      startVerification: jest.fn(async () => {
        order.push('start');
        return { id: '20261127-101500-3fa2c1' };
      }),
      getVerification: jest.fn(async () => answers.shift() ?? verification())
    });
    const manager = new VerifyManager({ api, pollInterval: 1000 });
    const phases: string[] = [];
    manager.changed.connect((_, key) => phases.push(manager.get(key).phase));
    const save = jest.fn(async () => {
      order.push('save');
    });
    const state = await manager.verify('nb', { ...options, save });
    expect(order).toEqual(['save', 'start']);
    expect(api.startVerification).toHaveBeenCalledWith({ path: 'work/nb.ipynb' });
    expect(state.phase).toBe('verifying');
    expect(verifyStatusText(state)).toBe('verifying…');
    expect(isVerifying(state)).toBe(true);

    expect(await manager.verify('nb', options)).toBe(state); // one at a time
    expect(api.startVerification).toHaveBeenCalledTimes(1);

    await tick(1000);
    expect(manager.get('nb').phase).toBe('verifying');
    await tick(1000);
    expect(manager.get('nb').phase).toBe('divergent');
    expect(manager.get('nb').report).toEqual(divergent);
    await tick(5000);
    expect(api.getVerification).toHaveBeenCalledTimes(2);
    expect(phases).toEqual(['saving', 'starting', 'verifying', 'divergent']);
    manager.dispose();
  });

  it('shows a failed verification’s error', async () => {
    const api = fakeApi({
      getVerification: jest.fn(async () =>
        verification({ status: 'failed', error: 'the notebook itself does not run' })
      )
    });
    const manager = new VerifyManager({ api });
    await manager.verify('nb', options);
    await tick(1000);
    expect(manager.get('nb')).toMatchObject({
      phase: 'failed',
      report: null,
      message: 'the notebook itself does not run'
    });
    expect(isVerifying(manager.get('nb'))).toBe(false);
    manager.dispose();
  });

  it('fails with the reason when saving or starting fails, and starts nothing', async () => {
    const api = fakeApi({
      startVerification: jest.fn(async () => {
        throw new ApiError(403, '`../x.ipynb` is not a path inside the server’s root');
      })
    });
    const manager = new VerifyManager({ api });
    const saveFailed = await manager.verify('nb', {
      ...options,
      save: () => Promise.reject(new Error('disk full'))
    });
    expect(saveFailed).toMatchObject({
      phase: 'failed',
      message: 'Saving the notebook failed: disk full'
    });
    expect(api.startVerification).not.toHaveBeenCalled();
    const refused = await manager.verify('nb', options);
    expect(refused.phase).toBe('failed');
    expect(refused.message).toContain('could not start: `../x.ipynb` is not a path inside');
    await tick(5000);
    expect(api.getVerification).not.toHaveBeenCalled();
    manager.dispose();
  });

  it('keeps polling through a passing error, and stops on a 404', async () => {
    const answers: Array<() => Promise<Verification>> = [
      () => Promise.reject(new ApiError(0, 'The Jupyter server could not be reached')),
      () => Promise.resolve(verification()),
      () => Promise.reject(new ApiError(404, 'no verification `20261127-101500-3fa2c1`'))
    ];
    const api = fakeApi({ getVerification: jest.fn(() => answers.shift()!()) });
    const manager = new VerifyManager({ api });
    await manager.verify('nb', options);
    await tick(1000);
    expect(manager.get('nb').phase).toBe('verifying');
    expect(manager.get('nb').message).toContain('could not be reached');
    await tick(1000);
    expect(manager.get('nb').message).toBeNull();
    await tick(1000);
    expect(manager.get('nb').phase).toBe('failed');
    await tick(5000);
    expect(api.getVerification).toHaveBeenCalledTimes(3);
    manager.dispose();
  });

  it('forgets a closed notebook and ignores answers for it', async () => {
    let answer: (value: Verification) => void = () => undefined;
    const api = fakeApi({
      getVerification: jest.fn(() => new Promise<Verification>(resolve => (answer = resolve)))
    });
    const manager = new VerifyManager({ api });
    await manager.verify('nb', options);
    await tick(1000);
    manager.forget('nb');
    answer(verification({ status: 'identical', report: verifyReport() }));
    await tick(1000);
    expect(manager.get('nb').phase).toBe('idle');
    manager.dispose();
  });
});
