/**
 * Verify for each open notebook: save, start `jupyter-mlops verify` on the server, follow it
 * to its verdict, and turn the report into what the sidebar shows.
 *
 * A verification runs the notebook top to bottom and then as a pipeline, and compares every
 * value a stage hands on. The requests are injected (`VerifyApi`), so the flow runs in tests
 * against a fake server, like Productionize's (`runs.ts`).
 */
import type {
  Verification,
  VerificationStarted,
  VerifyDifference,
  VerifyReport,
  VerifyRequest
} from './api';
import { errorMessage } from './errors';
import { isGone, PolledStates, type PolledStatesOptions } from './polling';

export interface VerifyApi {
  startVerification(request: VerifyRequest): Promise<VerificationStarted>;
  getVerification(id: string): Promise<Verification>;
}

/**
 * idle -> saving -> starting -> verifying -> identical | divergent | failed; `failed` also
 * ends it when a request fails (the message says which).
 */
export type VerifyPhase =
  'idle' | 'saving' | 'starting' | 'verifying' | 'identical' | 'divergent' | 'failed';

export interface VerifyState {
  phase: VerifyPhase;
  /** the verification being followed, once started */
  id: string | null;
  report: VerifyReport | null;
  /** why it failed, or a passing problem such as a failed poll while verifying */
  message: string | null;
}

export const VERIFY_IDLE: VerifyState = { phase: 'idle', id: null, report: null, message: null };

const ACTIVE: ReadonlySet<VerifyPhase> = new Set(['saving', 'starting', 'verifying']);

/** Whether a verification is under way (a second one must wait). */
export function isVerifying(state: VerifyState): boolean {
  return ACTIVE.has(state.phase);
}

export interface VerifyOptions {
  /** the notebook's path relative to the server root */
  path: string;
  /** saves the notebook, so that the verification sees what the user sees */
  save: () => Promise<void>;
}

export type VerifyManagerOptions = PolledStatesOptions<VerifyApi>;

/** Each notebook's verification; a started one is polled until its verdict. */
export class VerifyManager extends PolledStates<VerifyState, VerifyApi> {
  constructor(options: VerifyManagerOptions) {
    super(VERIFY_IDLE, options);
  }

  /**
   * Save the notebook and start verifying it. Resolves once it has started (or the flow
   * stopped before that) with the state then; polling goes on in the background.
   */
  async verify(key: string, options: VerifyOptions): Promise<VerifyState> {
    if (isVerifying(this.get(key))) {
      return this.get(key);
    }
    this._set(key, { ...VERIFY_IDLE, phase: 'saving' });
    try {
      await options.save();
    } catch (error) {
      this._set(key, {
        ...VERIFY_IDLE,
        phase: 'failed',
        message: `Saving the notebook failed: ${errorMessage(error)}`
      });
      return this.get(key);
    }
    this._set(key, { ...VERIFY_IDLE, phase: 'starting' });
    let started: VerificationStarted;
    try {
      started = await this._api.startVerification({ path: options.path });
    } catch (error) {
      this._set(key, {
        ...VERIFY_IDLE,
        phase: 'failed',
        message: `The verification could not start: ${errorMessage(error)}`
      });
      return this.get(key);
    }
    this._set(key, { ...VERIFY_IDLE, phase: 'verifying', id: started.id });
    this._schedulePoll(key);
    return this.get(key);
  }

  protected _polledId(state: VerifyState): string | null {
    return state.phase === 'verifying' ? state.id : null;
  }

  protected async _pollOnce(key: string, id: string): Promise<void> {
    let verification: Verification;
    try {
      verification = await this._api.getVerification(id);
    } catch (error) {
      // A verification the server does not know will not come back: following it ends.
      this._update(key, id, {
        ...(isGone(error) ? { phase: 'failed' } : {}),
        message: `Could not get the verification's progress: ${errorMessage(error)}`
      });
      return;
    }
    this._update(key, id, {
      phase: verification.status === 'running' ? 'verifying' : verification.status,
      report: verification.report,
      message: verification.status === 'failed' ? (verification.error ?? 'failed') : null
    });
  }

  /** Apply an answer about verification `id`, unless another one is followed by now. */
  private _update(key: string, id: string, change: Partial<VerifyState>): void {
    const state = this.get(key);
    if (this._polledId(state) !== id) {
      return;
    }
    const next = { ...state, ...change };
    const same = (Object.keys(next) as Array<keyof VerifyState>).every(
      field => next[field] === state[field]
    );
    if (!same) {
      this._set(key, next);
    }
  }
}

// --- what the UI shows ------------------------------------------------------------------

const STATUS_TEXT: Record<VerifyPhase, string> = {
  idle: '',
  saving: 'saving the notebook',
  starting: 'starting',
  verifying: 'verifying…',
  identical: 'identical',
  divergent: 'divergent',
  failed: 'failed'
};

export function verifyStatusText(state: VerifyState): string {
  return STATUS_TEXT[state.phase];
}

/** One handed-over value that differs, as the sidebar lists it. */
export interface DifferenceRow {
  /** unique within a report, for React */
  key: string;
  stage: string;
  /** the variable, or "the state of X's random generator" */
  label: string;
  detail: string;
  /** the notebook cell to show (0-based, all cells counted), or null when unknown */
  cell: number | null;
  readers: string[];
}

export interface VerifyOutcome {
  /** one line: "✓ identical: 2 values match the notebook's", "✗ 1 of 2 values differ…" */
  summary: string;
  /** values the pipeline hands on differently: a divergence */
  differences: DifferenceRow[];
  /** values the notebook itself doesn't reproduce from run to run: a note, not a divergence */
  notes: DifferenceRow[];
}

function plural(count: number, one: string, many: string): string {
  return `${count} ${count === 1 ? one : many}`;
}

function row(difference: VerifyDifference): DifferenceRow {
  return {
    key: `${difference.stage}/${difference.variable}`,
    stage: difference.stage,
    label: difference.label || difference.variable,
    detail: difference.detail,
    cell: difference.cell,
    readers: difference.readers
  };
}

/** Turn a verification report into the summary line and the rows the sidebar shows. */
export function verifyOutcome(report: VerifyReport): VerifyOutcome {
  const differences = report.differences.filter(d => !d.unseeded).map(row);
  const notes = report.differences.filter(d => d.unseeded).map(row);
  const values = plural(report.values, 'value', 'values');
  let summary: string;
  if (report.identical || differences.length === 0) {
    const match = report.values === 1 ? 'matches' : 'match';
    summary = `✓ identical: ${values} ${match} the notebook's`;
  } else {
    const differ = plural(differences.length, 'value differs', 'values differ');
    summary = `✗ divergent: ${differ} from the notebook's (${values} compared)`;
  }
  return { summary, differences, notes };
}

/** How long the two runs took: "notebook 1.7 s, pipeline 12.4 s". */
export function verifyTimings(report: VerifyReport): string {
  const plain = report.plain_seconds.toFixed(1);
  return `notebook ${plain} s, pipeline ${report.pipeline_seconds.toFixed(1)} s`;
}
