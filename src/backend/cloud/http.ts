// HTTP transport for ConTree v1: auth headers, retries with backoff that honours Retry-After, a bound on
// concurrent requests, and every failure turned into a BackendError that names method, URL and status.
import { ofetch } from "ofetch";
import { BackendError, backendCodeForStatus } from "../../errors.ts";
import { log, registerSecret } from "../../log.ts";

export interface RetryOptions {
  /** Tries in total, the first one included. */
  attempts?: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
}

export interface ContreeHttpOptions {
  /** Service root without /v1, e.g. https://contree.dev */
  url: string;
  token: string;
  project?: string;
  userAgent: string;
  retry?: RetryOptions;
  maxConcurrent?: number;
  /** Per attempt, until the response headers arrive (JSON calls: until the body is read). */
  timeoutMs?: number;
}

export type Query = Record<string, string | number | undefined>;

export interface RequestOptions {
  query?: Query;
  /** Sent as JSON. */
  body?: unknown;
  /** Sent as application/octet-stream. */
  upload?: Blob;
}

// A Retry-After longer than this is treated as this: a tool call should not sit silent for minutes.
const MAX_RETRY_AFTER_MS = 30_000;
const MAX_DETAIL_CHARS = 500;

// Statuses worth another try for a request that is safe to repeat (plus every 5xx, and 410 with Retry-After).
const RETRY_STATUSES = new Set([425, 429]);
// POST is not idempotent; the service promises these two were rejected before any processing.
const POST_RETRY_STATUSES = new Set([425, 429]);
const IDEMPOTENT_METHODS = new Set(["GET", "HEAD", "PUT", "DELETE", "PATCH"]);

/** Bounds concurrent requests; a slot is held per attempt, never while sleeping between attempts. */
class Limiter {
  private active = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(private readonly max: number) {}

  async acquire(): Promise<() => void> {
    if (this.active >= this.max) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.active++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    };
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}

/** Milliseconds from a Retry-After header (delta seconds or an HTTP date), or null. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | null {
  if (!value) return null;
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.min(Number(trimmed) * 1000, MAX_RETRY_AFTER_MS);
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return null;
  return Math.min(Math.max(0, date - now), MAX_RETRY_AFTER_MS);
}

function errorDetail(text: string): string {
  const trimmed = text.trim();
  try {
    const parsed: unknown = JSON.parse(trimmed);
    if (parsed && typeof parsed === "object" && !Array.isArray(parsed) && "error" in parsed) {
      const error = (parsed as { error: unknown }).error;
      const message = typeof error === "string" ? error : JSON.stringify(error);
      return message.slice(0, MAX_DETAIL_CHARS);
    }
  } catch {
    // not JSON: fall through to the raw text
  }
  return trimmed.length > MAX_DETAIL_CHARS ? `${trimmed.slice(0, MAX_DETAIL_CHARS)}…` : trimmed;
}

function causeMessage(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  // ofetch wraps the fetch failure; the useful words are in its cause.
  const inner = error.cause instanceof Error ? error.cause : error;
  const code = (inner as { code?: unknown }).code;
  return typeof code === "string" && !inner.message.includes(code)
    ? `${inner.message} (${code})`
    : inner.message;
}

export class ContreeHttp {
  /** Base URL including /v1, without a trailing slash. */
  readonly base: string;
  private readonly headers: Record<string, string>;
  private readonly attempts: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly timeoutMs: number;
  private readonly limiter: Limiter;
  private readonly closing = new AbortController();

  constructor(options: ContreeHttpOptions) {
    // Whoever builds a client, its token is kept out of every log line and error text from then on.
    registerSecret(options.token);
    this.base = `${options.url.replace(/\/+$/, "")}/v1`;
    this.headers = {
      Authorization: `Bearer ${options.token}`,
      "User-Agent": options.userAgent,
      "Accept-Encoding": "gzip",
    };
    if (options.project) this.headers.Project = options.project;
    this.attempts = Math.max(1, options.retry?.attempts ?? 5);
    this.baseDelayMs = options.retry?.baseDelayMs ?? 250;
    this.maxDelayMs = options.retry?.maxDelayMs ?? 8000;
    this.timeoutMs = options.timeoutMs ?? 60_000;
    this.limiter = new Limiter(Math.max(1, options.maxConcurrent ?? 16));
  }

  /** Full URL of a path below /v1 with the query parameters that are set. */
  url(path: string, query?: Query): string {
    const url = new URL(`${this.base}/${path.replace(/^\/+/, "")}`);
    for (const [key, value] of Object.entries(query ?? {})) {
      if (value !== undefined) url.searchParams.set(key, String(value));
    }
    return url.toString();
  }

  /** Parsed JSON body, or undefined for an empty one (204, or a 201/202 that only sets Location). */
  async json<T = unknown>(
    method: string,
    path: string,
    options: RequestOptions = {},
  ): Promise<T | undefined> {
    const { response, text } = await this.send(method, path, options, "json");
    const trimmed = (text ?? "").trim();
    if (!trimmed) return undefined;
    try {
      return JSON.parse(trimmed) as T;
    } catch (error) {
      throw new BackendError({
        code: "protocol",
        detail: `reply is not JSON: ${errorDetail(trimmed)}`,
        method,
        url: response.url || this.url(path, options.query),
        status: response.status,
        cause: error,
      });
    }
  }

  /** A successful Response with its body unread (for Location headers and bodies read by the caller). */
  async raw(method: string, path: string, options: RequestOptions = {}): Promise<Response> {
    return (await this.send(method, path, options, "raw")).response;
  }

  /** The body of a successful GET as a byte stream (downloads, archives). */
  async stream(path: string, query?: Query): Promise<ReadableStream<Uint8Array>> {
    const response = await this.raw("GET", path, { query });
    return response.body ?? new Blob([]).stream();
  }

  /** Aborts every request in flight and refuses new ones. */
  close(): void {
    this.closing.abort();
  }

  private retryable(method: string, status: number, retryAfter: number | null): boolean {
    if (method === "POST") return POST_RETRY_STATUSES.has(status);
    if (!IDEMPOTENT_METHODS.has(method)) return false;
    if (status === 410) return retryAfter !== null;
    return RETRY_STATUSES.has(status) || status >= 500;
  }

  private backoff(attempt: number): number {
    const ceiling = Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** attempt);
    // Half fixed, half random: spreads out clients that failed together without ever retrying at once.
    return ceiling / 2 + Math.random() * (ceiling / 2);
  }

  private async send(
    method: string,
    path: string,
    options: RequestOptions,
    mode: "json" | "raw",
  ): Promise<{ response: Response; text?: string }> {
    const url = this.url(path, options.query);
    const headers: Record<string, string> = { ...this.headers };
    let body: string | Blob | undefined;
    if (options.upload) {
      headers["Content-Type"] = "application/octet-stream";
      body = options.upload;
    } else if (options.body !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(options.body);
    }
    if (mode === "json" || options.body !== undefined) headers.Accept = "application/json";

    for (let attempt = 0; ; attempt++) {
      if (this.closing.signal.aborted) {
        throw new BackendError({ code: "unreachable", detail: "the client was closed", method, url });
      }
      const last = attempt + 1 >= this.attempts;
      const release = await this.limiter.acquire();
      const attemptAbort = new AbortController();
      const onClose = () => attemptAbort.abort(this.closing.signal.reason);
      this.closing.signal.addEventListener("abort", onClose, { once: true });
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        attemptAbort.abort(new Error(`no reply within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.closing.signal.removeEventListener("abort", onClose);
        release();
      };

      let response: Response;
      try {
        response = await ofetch.raw(url, {
          method,
          headers,
          body,
          retry: 0,
          ignoreResponseError: true,
          // We read the body ourselves: ofetch would otherwise guess a parser from the content type.
          responseType: "stream",
          signal: attemptAbort.signal,
        });
      } catch (error) {
        cleanup();
        if (this.closing.signal.aborted) {
          throw new BackendError({
            code: "unreachable",
            detail: "the client was closed",
            method,
            url,
            cause: error,
          });
        }
        const detail = timedOut
          ? `no reply from ${url} within ${this.timeoutMs} ms`
          : `cannot reach ${url}: ${causeMessage(error)}`;
        if (!last && IDEMPOTENT_METHODS.has(method)) {
          const delay = this.backoff(attempt);
          log.debug(`${method} ${url}: ${detail}; retrying in ${Math.round(delay)} ms`);
          await sleep(delay, this.closing.signal);
          continue;
        }
        throw new BackendError({ code: "unreachable", detail, method, url, cause: error });
      }

      if (response.status >= 300 && response.status < 400) {
        // fetch follows real redirects; what arrives here (300, 304, a 3xx without Location) is not an answer.
        cleanup();
        await response.body?.cancel().catch(() => undefined);
        throw new BackendError({
          code: "protocol",
          detail: `unexpected ${response.status} without a redirect to follow`,
          method,
          url,
          status: response.status,
        });
      }
      if (response.ok) {
        if (mode === "raw") {
          // The caller reads the body at its own pace; only the wait for headers was bounded.
          cleanup();
          return { response };
        }
        try {
          const text = await response.text();
          return { response, text };
        } catch (error) {
          if (this.closing.signal.aborted || !IDEMPOTENT_METHODS.has(method) || last) {
            const detail = timedOut
              ? `no complete reply from ${url} within ${this.timeoutMs} ms`
              : `reply from ${url} broke off: ${causeMessage(error)}`;
            throw new BackendError({
              code: "unreachable",
              detail,
              method,
              url,
              status: response.status,
              cause: error,
            });
          }
          await sleep(this.backoff(attempt), this.closing.signal);
          continue;
        } finally {
          cleanup();
        }
      }

      let text = "";
      try {
        text = await response.text();
      } catch {
        // the status says enough
      } finally {
        cleanup();
      }
      const retryAfter = parseRetryAfter(response.headers.get("retry-after"));
      if (!last && this.retryable(method, response.status, retryAfter)) {
        const delay = retryAfter ?? this.backoff(attempt);
        log.debug(`${method} ${url}: ${response.status}; retrying in ${Math.round(delay)} ms`);
        await sleep(delay, this.closing.signal);
        continue;
      }
      throw new BackendError({
        code: backendCodeForStatus(response.status),
        detail: errorDetail(text) || response.statusText || "no details",
        method,
        url: response.url || url,
        status: response.status,
      });
    }
  }
}
