// Two channels. What the model can fix (bad input, unknown image, a backend that says no) is a UserError
// or a BackendError and becomes an isError tool result that says what to change. Anything else is a bug
// and is thrown as is.
import { redact } from "./log.ts";

/** Bad input or a state the model can change: the message says what was wrong and what to do instead. */
export class UserError extends Error {
  override readonly name = "UserError";
}

export type BackendErrorCode =
  | "not_found"
  | "unauthorized"
  | "forbidden"
  | "invalid"
  | "conflict"
  | "rate_limited"
  | "unavailable"
  | "unreachable"
  | "protocol";

export interface BackendErrorInit {
  code: BackendErrorCode;
  /** What the backend said (or what went wrong on the way), without secrets. */
  detail: string;
  method?: string;
  url?: string;
  status?: number;
  cause?: unknown;
}

/** A backend refused or failed a request. Carries method, URL and status when it came over HTTP. */
export class BackendError extends Error {
  override readonly name = "BackendError";
  readonly code: BackendErrorCode;
  readonly detail: string;
  readonly method: string | undefined;
  readonly url: string | undefined;
  readonly status: number | undefined;

  constructor(init: BackendErrorInit) {
    // A reply body may echo the request, Authorization header included: known secrets never leave this object.
    const detail = redact(init.detail);
    const url = init.url === undefined ? undefined : redact(init.url);
    const where = init.method && url ? `[${init.method}] ${JSON.stringify(url)}: ` : "";
    const status = init.status ? `${init.status} ` : "";
    super(`${where}${status}${detail}`, { cause: init.cause });
    this.code = init.code;
    this.detail = detail;
    this.method = init.method;
    this.url = url;
    this.status = init.status;
  }
}

export function backendCodeForStatus(status: number): BackendErrorCode {
  if (status === 401) return "unauthorized";
  if (status === 403) return "forbidden";
  if (status === 404 || status === 410) return "not_found";
  if (status === 409) return "conflict";
  if (status === 425 || status === 429) return "rate_limited";
  if (status >= 500) return "unavailable";
  return "invalid";
}
