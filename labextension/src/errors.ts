/**
 * The error every request to the jupyter-mlops server endpoints rejects with.
 *
 * It lives apart from `api.ts` so that the pure modules (and their Jest tests) can tell
 * errors apart without loading JupyterLab's services package.
 */
export class ApiError extends Error {
  constructor(
    /** The HTTP status, or 0 when the server could not be reached at all. */
    readonly status: number,
    message: string,
    /**
     * True when the route itself does not exist: the Python server extension is not
     * installed or failed to load, so no request to it can succeed.
     */
    readonly unavailable = false
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** The sentence to show a user for any error a request or a step threw. */
export function errorMessage(error: unknown): string {
  if (error instanceof Error) {
    return error.message;
  }
  return String(error);
}

/** Whether an error says that the server extension is missing rather than a request failed. */
export function isUnavailable(error: unknown): boolean {
  return error instanceof ApiError && error.unavailable;
}
