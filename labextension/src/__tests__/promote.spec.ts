import type { Promotion, PromoteRequest } from '../api';
import { ApiError } from '../errors';
import {
  canConfirm,
  checkPromotion,
  checkRows,
  checksSummary,
  confirmPromotion,
  outcomeText,
  type PromoteAction,
  type PromoteApi,
  PROMOTE_IDLE,
  type PromoteState,
  reducePromote
} from '../promote';

/** The version the flows promote, registered by a run of work/wine.ipynb. */
const WINE = { name: 'wine-classifier', version: '3', path: 'work/wine.ipynb' };

function promotion(overrides: Partial<Promotion> = {}): Promotion {
  return {
    name: 'wine-classifier',
    version: '3',
    to: 'champion',
    passed: true,
    moved: false,
    checks: [
      { name: 'min accuracy', passed: true, detail: 'accuracy 0.97 ≥ 0.9' },
      { name: 'smoke test', passed: true, detail: 'loaded and predicted 5 rows' }
    ],
    champion_before: '2',
    dry_run: true,
    ...overrides
  };
}

const failing = promotion({
  passed: false,
  checks: [
    { name: 'min accuracy', passed: false, detail: 'accuracy 0.81 < 0.9' },
    { name: 'smoke test', passed: true, detail: 'loaded and predicted 5 rows' }
  ]
});

/** A flow against a fake server: the requests it made and the states it went through. */
function flow(answers: Array<Promotion | Error>): {
  api: PromoteApi;
  requests: PromoteRequest[];
  states: PromoteState[];
  dispatch: (action: PromoteAction) => void;
} {
  const requests: PromoteRequest[] = [];
  const states: PromoteState[] = [PROMOTE_IDLE];
  const api: PromoteApi = {
    promoteModel: async (name, version, request) => {
      expect([name, version]).toEqual(['wine-classifier', '3']);
      requests.push(request);
      const answer = answers.shift();
      if (answer === undefined || answer instanceof Error) {
        throw answer ?? new Error('no answer');
      }
      return answer;
    }
  };
  const dispatch = (action: PromoteAction): void => {
    states.push(reducePromote(states[states.length - 1], action));
  };
  return { api, requests, states, dispatch };
}

describe('the promote flow', () => {
  it('checks with a dry run, then promotes once confirmed', async () => {
    const { api, requests, states, dispatch } = flow([
      promotion(),
      promotion({ moved: true, dry_run: false })
    ]);
    await checkPromotion(api, WINE, dispatch);
    expect(states.map(s => s.phase)).toEqual(['idle', 'checking', 'checked']);
    await confirmPromotion(api, WINE, states[states.length - 1], dispatch);
    expect(requests).toEqual([
      { to: 'champion', dry_run: true, path: 'work/wine.ipynb' },
      { to: 'champion', dry_run: false, path: 'work/wine.ipynb' }
    ]);
    const last = states[states.length - 1];
    expect(last.phase).toBe('promoted');
    expect(outcomeText(last.result!)).toBe('v3 is now champion (was v2)');
  });

  it('does not promote when a check failed', async () => {
    const { api, requests, states, dispatch } = flow([failing]);
    await checkPromotion(api, WINE, dispatch);
    await confirmPromotion(api, WINE, states[states.length - 1], dispatch);
    expect(requests).toEqual([{ to: 'champion', dry_run: true, path: 'work/wine.ipynb' }]); // no promotion sent
    expect(states[states.length - 1].phase).toBe('checked');
  });

  it('shows a promotion the server refused (the champion changed meanwhile)', async () => {
    const refused = promotion({
      passed: false,
      dry_run: false,
      checks: [{ name: 'beats champion', passed: false, detail: 'accuracy 0.95 < v4 0.97' }]
    });
    const { api, states, dispatch } = flow([promotion(), refused]);
    await checkPromotion(api, WINE, dispatch);
    await confirmPromotion(api, WINE, states[states.length - 1], dispatch);
    const last = states[states.length - 1];
    expect(last.phase).toBe('refused');
    expect(outcomeText(last.result!)).toBe('v3 was not promoted: 1 of 1 check failed');
  });

  it('leaves the store to the server when no notebook is known (a run made up)', async () => {
    const { api, requests, dispatch } = flow([promotion()]);
    await checkPromotion(api, { ...WINE, path: null }, dispatch);
    expect(requests).toEqual([{ to: 'champion', dry_run: true }]);
  });

  it("ends in an error with the server's message", async () => {
    const { api, states, dispatch } = flow([
      new ApiError(404, 'no version 3 of registered model `wine-classifier`')
    ]);
    await checkPromotion(api, WINE, dispatch);
    expect(states[states.length - 1]).toEqual({
      phase: 'error',
      result: null,
      message: 'no version 3 of registered model `wine-classifier`'
    });
  });
});

describe('reducePromote', () => {
  it('ignores a second check while one is under way, and closes only when idle-able', () => {
    const checking = reducePromote(PROMOTE_IDLE, { type: 'check' });
    expect(reducePromote(checking, { type: 'check' })).toBe(checking);
    expect(reducePromote(checking, { type: 'close' })).toBe(checking);
    const checked = reducePromote(checking, { type: 'answer', result: promotion() });
    expect(reducePromote(checked, { type: 'close' })).toEqual(PROMOTE_IDLE);
  });

  it('ignores an answer nobody waits for', () => {
    expect(reducePromote(PROMOTE_IDLE, { type: 'answer', result: promotion() })).toBe(PROMOTE_IDLE);
    expect(reducePromote(PROMOTE_IDLE, { type: 'fail', message: 'x' })).toBe(PROMOTE_IDLE);
  });
});

describe('what the sidebar shows', () => {
  it('lists each check with ✓ or ✗ and its figures', () => {
    expect(checkRows(failing)).toEqual([
      {
        key: '0:min accuracy',
        name: 'min accuracy',
        passed: false,
        symbol: '✗',
        detail: 'accuracy 0.81 < 0.9'
      },
      {
        key: '1:smoke test',
        name: 'smoke test',
        passed: true,
        symbol: '✓',
        detail: 'loaded and predicted 5 rows'
      }
    ]);
  });

  it('summarizes the checks', () => {
    expect(checksSummary(promotion())).toBe('all 2 checks passed');
    expect(checksSummary(failing)).toBe('1 of 2 checks failed');
    expect(checksSummary(promotion({ checks: [] }))).toBe('no checks declared');
  });

  it('allows the confirm only when every check passed, and says why not', () => {
    expect(canConfirm(promotion())).toEqual({ allowed: true, reason: null });
    expect(canConfirm(failing)).toEqual({
      allowed: false,
      reason: 'not promotable: min accuracy failed'
    });
    expect(canConfirm(promotion({ champion_before: '3' }))).toEqual({
      allowed: false,
      reason: 'v3 is already champion'
    });
    expect(canConfirm(null).allowed).toBe(false);
  });

  it('says what a promotion did', () => {
    expect(outcomeText(promotion({ moved: true, champion_before: null }))).toBe(
      'v3 is now champion'
    );
  });
});
