/**
 * Typed access to the jupyter-mlops server extension (docs/REST-API.md).
 *
 * The interfaces say what the UI reads of the server's JSON. They are checked against the
 * server's own models when this file is compiled: `generated/api-types.ts` is generated from
 * them (`python -m jupyter_mlops.server.apidoc`), and the `Contract` at the end fails to
 * compile when an answer the server sends is not a value of the type the UI reads it as, or a
 * request the UI sends is not one the server accepts. Requests go through
 * `ServerConnection.makeRequest`, which adds the token and the XSRF header that the server
 * checks on POST and DELETE.
 */
import { URLExt } from '@jupyterlab/coreutils';
import type * as nbformat from '@jupyterlab/nbformat';
import { ServerConnection } from '@jupyterlab/services';

import { ApiError } from './errors';
import type * as wire from './generated/api-types';
import type {
  Promotion,
  PromoteRequest,
  ServerConfig,
  Sweep,
  SweepList,
  SweepRequest,
  Verification,
  VerificationStarted,
  VerifyRequest
} from './generated/api-types';

/** The URL namespace of the server extension, under the server's base URL. */
export const API_NAMESPACE = 'jupyter-mlops';

// --- the server's JSON -------------------------------------------------------------------
//
// The generated types, as the server sends them; where the UI reads less (a field it never
// reads left out, so that its tests need not make one up) or differently, the `Contract` at
// the end checks that what the server sends is still what the UI reads.

export type {
  CellInfo,
  CellRole,
  ConvertRequest,
  Diagnostic,
  Edge,
  MlflowRun,
  Parameter,
  ParameterType,
  PipelineSettings,
  Promotion,
  PromotionCheck,
  PromoteRequest,
  RegisteredModel,
  RunStatus,
  ServerConfig,
  Severity,
  StageError,
  StageStatus,
  Sweep,
  SweepList,
  SweepRequest,
  SweepStatus,
  SweepTrial,
  TrialStatus,
  VerificationStarted,
  VerificationStatus,
  Verification,
  VerifyDifference,
  VerifyReport,
  VerifyRequest
} from './generated/api-types';

/** `POST runs`. */
export type StartRunRequest = wire.RunRequest;

/** `POST analyze`: the notebook as JupyterLab holds it, or its path. */
export interface AnalyzeRequest {
  notebook?: nbformat.INotebookContent;
  path?: string;
}

export type Stage = Omit<wire.Stage, 'early_inputs'>;

export type Analysis = Omit<wire.Analysis, 'stages' | 'random_generators'> & { stages: Stage[] };

export type ConvertResponse = Omit<wire.ConvertResponse, 'analysis'> & { analysis: Analysis };

/**
 * A stage of a run as the UI reads it. Only the Runs panel reads `notebook` (the executed
 * stage notebook, relative to the run's `folder`): a run made up without it has none to open.
 */
export type StageRun = Omit<wire.StageRun, 'notebook' | 'log'> & { notebook?: string | null };

/**
 * A run as the UI reads it: `mlflow` may be missing from a run it makes up itself, and
 * `folder` and `run_dir` (read by the Runs panel only, to open the executed stage notebooks,
 * or to say where they are) too.
 */
export type Run = Omit<wire.Run, 'stages' | 'mlflow' | 'folder' | 'run_dir'> & {
  stages: StageRun[];
  mlflow: wire.MlflowRun | null;
  folder?: string | null;
  run_dir?: string;
};

export interface RunList {
  runs: Run[];
}

/** The value the seeded random generators' state travels as (jupyter_mlops.state). */
export const RANDOM_STATE = '__mlops_random_state__';

/** A handed-over value as the user knows it. */
export function valueName(variable: string): string {
  return variable === RANDOM_STATE ? '(random state)' : variable;
}

// --- requests ---------------------------------------------------------------------------

/**
 * Call an endpoint of the server extension and return its JSON.
 *
 * Rejects with an `ApiError` carrying the server's own `message` when there is one. A 404
 * without a JSON message comes from Jupyter itself, not from our handlers: the route is
 * missing, which the UI shows as "server extension not available".
 */
export async function requestAPI<T>(
  endpoint: string,
  init: RequestInit = {},
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<T> {
  const url = URLExt.join(settings.baseUrl, API_NAMESPACE, endpoint);
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    throw new ApiError(0, `The Jupyter server could not be reached: ${String(error)}`);
  }
  const text = await response.text();
  const data = parseJSON(text);
  if (!response.ok) {
    const message = serverMessage(data);
    throw new ApiError(
      response.status,
      message ?? `${response.status} ${response.statusText}`.trim(),
      response.status === 404 && message === undefined
    );
  }
  return data as T;
}

function parseJSON(text: string): unknown {
  if (!text) {
    return undefined;
  }
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function serverMessage(data: unknown): string | undefined {
  if (typeof data === 'object' && data !== null && 'message' in data) {
    const message = (data as { message: unknown }).message;
    if (typeof message === 'string' && message) {
      return message;
    }
  }
  return undefined;
}

function post(body: unknown): RequestInit {
  return { method: 'POST', body: JSON.stringify(body) };
}

/** Where runs go: those of the notebook `path` (its project's), else the server root's. */
export function getConfig(path?: string): Promise<ServerConfig> {
  const query = path === undefined ? '' : URLExt.objectToQueryString({ path });
  return requestAPI<ServerConfig>(`config${query}`);
}

export function analyze(body: AnalyzeRequest): Promise<Analysis> {
  return requestAPI<Analysis>('analyze', post(body));
}

export function startRun(body: StartRunRequest): Promise<Run> {
  return requestAPI<Run>('runs', post(body));
}

export function getRun(id: string): Promise<Run> {
  return requestAPI<Run>(`runs/${encodeURIComponent(id)}`);
}

export async function listRuns(path: string): Promise<Run[]> {
  const query = URLExt.objectToQueryString({ path });
  const list = await requestAPI<RunList>(`runs${query}`);
  return list.runs;
}

export function cancelRun(id: string): Promise<Run> {
  return requestAPI<Run>(`runs/${encodeURIComponent(id)}`, { method: 'DELETE' });
}

export function startVerification(body: VerifyRequest): Promise<VerificationStarted> {
  return requestAPI<VerificationStarted>('verifications', post(body));
}

export function getVerification(id: string): Promise<Verification> {
  return requestAPI<Verification>(`verifications/${encodeURIComponent(id)}`);
}

/** `POST sweeps`: check a sweep request and start `jupyter-mlops sweep` (400: refused). */
export function startSweep(body: SweepRequest): Promise<Sweep> {
  return requestAPI<Sweep>('sweeps', post(body));
}

export function getSweep(id: string): Promise<Sweep> {
  return requestAPI<Sweep>(`sweeps/${encodeURIComponent(id)}`);
}

/** The notebook's sweeps, newest first. */
export async function listSweeps(path: string): Promise<Sweep[]> {
  const query = URLExt.objectToQueryString({ path });
  const list = await requestAPI<SweepList>(`sweeps${query}`);
  return list.sweeps;
}

/** Stop a sweep (the trial running is cancelled); it can resume later. */
export function stopSweep(id: string): Promise<Sweep> {
  return requestAPI<Sweep>(`sweeps/${encodeURIComponent(id)}`, { method: 'DELETE' });
}

/** Run the trials a stopped sweep had not finished. */
export function resumeSweep(id: string): Promise<Sweep> {
  return requestAPI<Sweep>(`sweeps/${encodeURIComponent(id)}/resume`, post({}));
}

/**
 * `POST models/{name}/versions/{version}/promote`: the promotion gate's checks for a
 * registered version (`dry_run`: nothing moves). A failed check is an answer, not an error.
 */
export function promoteModel(
  name: string,
  version: string,
  body: PromoteRequest
): Promise<Promotion> {
  const path = `models/${encodeURIComponent(name)}/versions/${encodeURIComponent(version)}`;
  return requestAPI<Promotion>(`${path}/promote`, post(body));
}

// --- the contract with the server's models ------------------------------------------------

/** Compiles only when `Server` (what the server sends) is a `Client` (what the UI reads). */
type Reads<Client, Server extends Client> = [Client, Server];

/**
 * Answers: each one the server sends is a value of the type the UI reads it as. Requests:
 * each one the UI sends is one the server accepts. Not used at run time: `tsc` is the test.
 */
export type Contract = [
  Reads<Analysis, wire.Analysis>,
  Reads<ConvertResponse, wire.ConvertResponse>,
  Reads<Run, wire.Run>,
  Reads<RunList, wire.RunList>,
  Reads<{ message: string }, wire.ErrorBody>,
  Reads<wire.AnalyzeRequest, AnalyzeRequest>
];
