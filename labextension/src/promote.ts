/**
 * Promote for a registered model version of a succeeded run, as a pure reducer and two
 * steps: check (the promotion gate as a dry run: nothing moves), then, once every check
 * passed and the user confirms, promote (the gate again, and the alias moves).
 *
 * The server runs the checks again when promoting: the champion may have changed since the
 * dry run, so a promotion can still be refused, and then shows the checks that failed.
 * The request is injected (`PromoteApi`), so the flow runs in tests against a fake server.
 */
import type { Promotion, PromotionCheck, PromoteRequest } from './api';
import { errorMessage } from './errors';

/** The alias the sidebar promotes to (`jupyter-mlops promote`'s default). */
export const CHAMPION = 'champion';

export interface PromoteApi {
  promoteModel(name: string, version: string, request: PromoteRequest): Promise<Promotion>;
}

/**
 * The version to promote, and the notebook whose run registered it: the server checks it
 * in that notebook's project's store (each project has its own).
 */
export interface PromoteTarget {
  name: string;
  version: string;
  path?: string | null;
}

/**
 * idle -> checking -> checked -> promoting -> promoted | refused; `error` when a request
 * fails (the message says why); `idle` again when the user closes the checks.
 */
export type PromotePhase =
  'idle' | 'checking' | 'checked' | 'promoting' | 'promoted' | 'refused' | 'error';

export interface PromoteState {
  phase: PromotePhase;
  /** the latest answer: the dry run's, then the promotion's */
  result: Promotion | null;
  /** why the last request failed */
  message: string | null;
}

export type PromoteAction =
  | { type: 'check' }
  | { type: 'promote' }
  | { type: 'answer'; result: Promotion }
  | { type: 'fail'; message: string }
  | { type: 'close' };

export const PROMOTE_IDLE: PromoteState = { phase: 'idle', result: null, message: null };

/** Whether a request is under way (the buttons wait for it). */
export function isBusy(state: PromoteState): boolean {
  return state.phase === 'checking' || state.phase === 'promoting';
}

export function reducePromote(state: PromoteState, action: PromoteAction): PromoteState {
  switch (action.type) {
    case 'check':
      return isBusy(state) ? state : { ...PROMOTE_IDLE, phase: 'checking' };
    case 'promote':
      return state.phase === 'checked' && canConfirm(state.result).allowed
        ? { ...state, phase: 'promoting', message: null }
        : state;
    case 'answer':
      if (state.phase === 'checking') {
        return { phase: 'checked', result: action.result, message: null };
      }
      if (state.phase === 'promoting') {
        const phase = action.result.moved ? 'promoted' : 'refused';
        return { phase, result: action.result, message: null };
      }
      return state;
    case 'fail':
      return isBusy(state) ? { ...state, phase: 'error', message: action.message } : state;
    case 'close':
      return isBusy(state) ? state : PROMOTE_IDLE;
  }
}

/** Run the checks only: what promoting would decide, with nothing moved. */
export async function checkPromotion(
  api: PromoteApi,
  target: PromoteTarget,
  dispatch: (action: PromoteAction) => void
): Promise<void> {
  dispatch({ type: 'check' });
  await answer(api, target, true, dispatch);
}

/**
 * Promote for real, once the user confirmed checks that all passed (`state`, the one the
 * confirm was shown in); nothing is sent otherwise.
 */
export async function confirmPromotion(
  api: PromoteApi,
  target: PromoteTarget,
  state: PromoteState,
  dispatch: (action: PromoteAction) => void
): Promise<void> {
  if (state.phase !== 'checked' || !canConfirm(state.result).allowed) {
    return;
  }
  dispatch({ type: 'promote' });
  await answer(api, target, false, dispatch);
}

async function answer(
  api: PromoteApi,
  target: PromoteTarget,
  dryRun: boolean,
  dispatch: (action: PromoteAction) => void
): Promise<void> {
  const request: PromoteRequest = { to: CHAMPION, dry_run: dryRun };
  if (target.path) {
    request.path = target.path;
  }
  try {
    const result = await api.promoteModel(target.name, target.version, request);
    dispatch({ type: 'answer', result });
  } catch (error) {
    dispatch({ type: 'fail', message: errorMessage(error) });
  }
}

// --- what the UI shows ------------------------------------------------------------------

export interface CheckRow {
  key: string;
  name: string;
  passed: boolean;
  /** ✓ or ✗ */
  symbol: string;
  detail: string;
}

export function checkRows(result: Promotion): CheckRow[] {
  return result.checks.map((check: PromotionCheck, index: number) => ({
    key: `${index}:${check.name}`,
    name: check.name,
    passed: check.passed,
    symbol: check.passed ? '✓' : '✗',
    detail: check.detail
  }));
}

/** "v3" */
export function versionLabel(version: string): string {
  return `v${version}`;
}

/** A summary of the checks: "all 3 checks passed", "1 of 3 checks failed". */
export function checksSummary(result: Promotion): string {
  const total = result.checks.length;
  const failed = result.checks.filter(check => !check.passed).length;
  const checks = `${total} check${total === 1 ? '' : 's'}`;
  if (total === 0) {
    return 'no checks declared';
  }
  if (failed === 0) {
    return total === 1 ? 'the check passed' : `all ${checks} passed`;
  }
  return `${failed} of ${checks} failed`;
}

/** Whether the user may confirm the promotion, and why not when not. */
export function canConfirm(result: Promotion | null): { allowed: boolean; reason: string | null } {
  if (result === null) {
    return { allowed: false, reason: 'check the version first' };
  }
  if (!result.passed) {
    const failed = result.checks.filter(check => !check.passed).map(check => check.name);
    return {
      allowed: false,
      reason: `not promotable: ${failed.length ? failed.join(', ') : 'the checks'} failed`
    };
  }
  if (result.champion_before === result.version) {
    return {
      allowed: false,
      reason: `${versionLabel(result.version)} is already ${result.to}`
    };
  }
  return { allowed: true, reason: null };
}

/** What a promotion did: "v3 is now champion (was v2)", or why it was refused. */
export function outcomeText(result: Promotion): string {
  const label = versionLabel(result.version);
  if (result.moved) {
    const before =
      result.champion_before !== null ? ` (was ${versionLabel(result.champion_before)})` : '';
    return `${label} is now ${result.to}${before}`;
  }
  return `${label} was not promoted: ${checksSummary(result)}`;
}
