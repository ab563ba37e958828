/**
 * The one error class of deltaedit. Every user-facing failure carries a stable `code`
 * and names the file, tensor, field, argument or request at fault.
 *
 * The CLI prints `message` (and `hint` when present) for a DeltaEditError and a full
 * stack trace only for anything else (a bug).
 */
export type ErrorCode =
  | "E_ARG" // wrong argument type/length/value at an API boundary
  | "E_SHAPE" // a tensor shape does not match what was expected
  | "E_NATIVE_LOAD" // the native addon could not be loaded
  | "E_NATIVE" // a native routine reported a numerical failure
  | "E_NOT_PD" // a matrix expected to be positive definite is not
  | "E_CHECKPOINT" // a checkpoint file is malformed or inconsistent
  | "E_CONFIG" // config.json is missing a field or names an unsupported model
  | "E_TOKENIZER" // tokenizer.json missing or unusable
  | "E_NOT_FOUND" // a file, model or cache entry does not exist
  | "E_NETWORK" // a download failed or the network is unavailable
  | "E_REQUEST" // an edit request is malformed
  | "E_SESSION" // a session directory is inconsistent
  | "E_LOCKED" // another process holds the session's writer lock
  | "E_LIMIT" // an input exceeds a documented size limit (positions, ids, elements, depth, bytes)
  | "E_IO" // a write failed or was short (full disk, permissions)
  | "E_USAGE"; // bad command-line usage

/** The one error class of deltaedit: a stable `code`, a message naming the file, tensor, field or request at fault, an optional `hint`, and `context`. */
export class DeltaEditError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;
  readonly context: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, opts: { hint?: string; context?: Record<string, unknown>; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = "DeltaEditError";
    this.code = code;
    this.hint = opts.hint;
    this.context = opts.context ?? {};
  }
}

/** True when `e` is a `DeltaEditError`. */
export function isDeltaEditError(e: unknown): e is DeltaEditError {
  return e instanceof DeltaEditError;
}
