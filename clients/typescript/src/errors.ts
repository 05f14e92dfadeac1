/**
 * Errors the client throws: one class per error code of the Weir API. Every API error has
 * the shape `{"error": {"code", "message", "details"}}`; the client throws the class named
 * by its `code`, so callers branch with `instanceof`, not on strings.
 */

/** Base class of everything this client throws. */
export class WeirError extends Error {
  override name = "WeirError";
}

/** The server could not be reached, or the connection broke mid-request. */
export class TransportError extends WeirError {
  override name = "TransportError";
}

/** The server answered with an error. */
export class ApiError extends WeirError {
  override name = "ApiError";
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: unknown = null,
    readonly retryAfter: number | null = null,
  ) {
    super(`${status} ${code}: ${message}`);
  }
}

/** 400 `bad_request`: the request is malformed. */
export class BadRequest extends ApiError {
  override name = "BadRequest";
}

/**
 * One schema violation: the JSON pointer of the offending value (`/` for the whole input)
 * and what is wrong with it; `text` is the server's line as sent.
 */
export interface Violation {
  path: string | null;
  message: string;
  text: string;
}

/** A violation from the server's `at <path>: <message>` line. */
export function parseViolation(text: string): Violation {
  const sep = text.indexOf(": ");
  if (text.startsWith("at ") && sep > 3) return { path: text.slice(3, sep), message: text.slice(sep + 2), text };
  return { path: null, message: text, text };
}

/** 422 `invalid_input`: the input does not match a schema; see `violations`. */
export class InvalidInput extends ApiError {
  override name = "InvalidInput";
  /** Every violation, each naming its JSON path and what is wrong. */
  get violations(): Violation[] {
    const details = this.details as { violations?: unknown } | null;
    if (!Array.isArray(details?.violations)) return [];
    return details.violations.map((v: unknown) => parseViolation(typeof v === "string" ? v : JSON.stringify(v)));
  }
}

/** 401 `unauthorized`. */
export class Unauthorized extends ApiError {
  override name = "Unauthorized";
}

/** 404 `not_found`. */
export class NotFound extends ApiError {
  override name = "NotFound";
}

/** 405 `method_not_allowed`. */
export class MethodNotAllowed extends ApiError {
  override name = "MethodNotAllowed";
}

/** 409 `conflict`: an ended run, a decided review, a key used for another input or workflow. */
export class Conflict extends ApiError {
  override name = "Conflict";
}

/** 413 `payload_too_large`. */
export class PayloadTooLarge extends ApiError {
  override name = "PayloadTooLarge";
}

/** 415 `unsupported_media_type`. */
export class UnsupportedMediaType extends ApiError {
  override name = "UnsupportedMediaType";
}

/** 429 `overloaded`: the run queue is full; `retryAfter` says when to come back (seconds). */
export class Overloaded extends ApiError {
  override name = "Overloaded";
}

/** 503 `unavailable`: shutting down or not ready. */
export class Unavailable extends ApiError {
  override name = "Unavailable";
}

/** 500 `internal`. */
export class InternalError extends ApiError {
  override name = "InternalError";
}

type ErrorClass = new (
  status: number,
  code: string,
  message: string,
  details?: unknown,
  retryAfter?: number | null,
) => ApiError;

/** The class of each error code. */
export const ERRORS_BY_CODE: Readonly<Record<string, ErrorClass>> = {
  bad_request: BadRequest,
  invalid_input: InvalidInput,
  unauthorized: Unauthorized,
  not_found: NotFound,
  method_not_allowed: MethodNotAllowed,
  conflict: Conflict,
  payload_too_large: PayloadTooLarge,
  unsupported_media_type: UnsupportedMediaType,
  overloaded: Overloaded,
  unavailable: Unavailable,
  internal: InternalError,
};

// A status without a JSON body (a proxy in between) still maps to a class.
const BY_STATUS: Readonly<Record<number, string>> = {
  400: "bad_request",
  401: "unauthorized",
  404: "not_found",
  405: "method_not_allowed",
  409: "conflict",
  413: "payload_too_large",
  415: "unsupported_media_type",
  422: "invalid_input",
  429: "overloaded",
  503: "unavailable",
};

/** The error an error response carries: by its `code`, else by its status. */
export function errorFromResponse(status: number, body: unknown, retryAfter: number | null): ApiError {
  let code = "";
  let message = "";
  let details: unknown = null;
  const error = (body as { error?: unknown } | null)?.error;
  if (error && typeof error === "object") {
    const e = error as { code?: unknown; message?: unknown; details?: unknown };
    code = String(e.code ?? "");
    message = String(e.message ?? "");
    details = e.details ?? null;
  } else if (typeof body === "string") {
    message = body.trim();
  }
  const known = ERRORS_BY_CODE[code] ? code : BY_STATUS[status] ?? (status >= 500 ? "internal" : "");
  const cls: ErrorClass = ERRORS_BY_CODE[known] ?? ApiError;
  return new cls(status, code || known || "unknown", message || `the server answered ${status}`, details, retryAfter);
}
