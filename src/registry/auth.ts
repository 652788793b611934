// Registry authentication as the distribution spec and Docker do it: an unauthenticated request answers 401 with
// WWW-Authenticate; Basic registries then take the credentials directly, Bearer registries hand out a short-lived
// token from their realm for a scope. Unlike the Python original this validates Basic registries too and sends a
// scope, so token servers that need one (ghcr.io, private repositories) answer.
import { BackendError, backendCodeForStatus } from "../errors.ts";
import { registerSecret } from "../log.ts";
import type { ImageReference } from "./reference.ts";

export interface Challenge {
  scheme: "bearer" | "basic";
  realm: string;
  service?: string;
  scope?: string;
}

export interface RegistryCredentials {
  username: string;
  password: string;
}

const DEFAULT_TIMEOUT_MS = 30_000;
const MAX_REDIRECTS = 10;
const REDIRECTS = new Set([301, 302, 303, 307, 308]);
/** The distribution spec's default when a token response has no expires_in. */
const DEFAULT_TOKEN_LIFETIME_S = 60;
/** Ask for a new token a little before the old one runs out, so a request never carries a token that just expired. */
const TOKEN_EXPIRY_MARGIN_MS = 10_000;

const TOKEN_CHAR = /[!#$%&'*+.^_`|~0-9A-Za-z-]/;

interface RawChallenge {
  scheme: string;
  params: Record<string, string>;
}

/** RFC 7235 challenges: `Scheme k=v, k="quoted, with commas", Other k=v`. */
function parseChallenges(header: string): RawChallenge[] {
  const challenges: RawChallenge[] = [];
  let current: RawChallenge | null = null;
  let i = 0;
  const skipSpace = () => {
    while (i < header.length && /[\s,]/.test(header[i]!)) i++;
  };
  const readToken = () => {
    const start = i;
    while (i < header.length && TOKEN_CHAR.test(header[i]!)) i++;
    return header.slice(start, i);
  };
  const readQuoted = () => {
    let value = "";
    i++; // opening quote
    while (i < header.length && header[i] !== '"') {
      if (header[i] === "\\" && i + 1 < header.length) i++;
      value += header[i];
      i++;
    }
    i++; // closing quote
    return value;
  };
  while (i < header.length) {
    skipSpace();
    const name = readToken();
    if (!name) {
      i++;
      continue;
    }
    while (i < header.length && /[ \t]/.test(header[i]!)) i++;
    if (header[i] === "=") {
      i++;
      while (i < header.length && /[ \t]/.test(header[i]!)) i++;
      const value = header[i] === '"' ? readQuoted() : readToken();
      if (current) current.params[name.toLowerCase()] = value;
    } else {
      current = { scheme: name.toLowerCase(), params: {} };
      challenges.push(current);
    }
  }
  return challenges;
}

/** The Bearer challenge of a WWW-Authenticate header if it has one with a realm, else its Basic challenge, else null. */
export function parseChallenge(header: string | null): Challenge | null {
  if (!header) return null;
  const challenges = parseChallenges(header);
  const bearer = challenges.find((c) => c.scheme === "bearer" && c.params.realm);
  if (bearer) {
    const challenge: Challenge = { scheme: "bearer", realm: bearer.params.realm! };
    if (bearer.params.service !== undefined) challenge.service = bearer.params.service;
    if (bearer.params.scope !== undefined) challenge.scope = bearer.params.scope;
    return challenge;
  }
  const basic = challenges.find((c) => c.scheme === "basic");
  return basic ? { scheme: "basic", realm: basic.params.realm ?? "" } : null;
}

function basicAuthorization(credentials: RegistryCredentials): string {
  const bytes = new TextEncoder().encode(`${credentials.username}:${credentials.password}`);
  return `Basic ${Buffer.from(bytes).toString("base64")}`;
}

function tokenUrl(challenge: Challenge, scope: string | undefined, origin: string): URL {
  let url: URL;
  try {
    url = new URL(challenge.realm, origin);
  } catch (error) {
    throw new BackendError({
      code: "protocol",
      detail: `the registry's token realm ${JSON.stringify(challenge.realm)} is not a URL`,
      url: origin,
      cause: error,
    });
  }
  // Credentials go to the realm as Basic auth: an https registry must not send them to a plain http token server,
  // where anyone on the path could read them. An http registry (a loopback test registry) has nothing to lose.
  if (url.protocol !== "https:" && new URL(origin).protocol === "https:") {
    throw new BackendError({
      code: "protocol",
      detail: `the registry's token realm ${JSON.stringify(challenge.realm)} is not https although the registry is; no credentials or token requests are sent there`,
      url: origin,
    });
  }
  if (challenge.service) url.searchParams.set("service", challenge.service);
  if (scope) url.searchParams.set("scope", scope);
  return url;
}

function registryOrigin(ref: ImageReference): string {
  return `${ref.scheme}://${ref.apiHost}`;
}

function describeError(error: unknown): string {
  if (error instanceof Error) {
    const cause = error.cause instanceof Error ? `: ${error.cause.message}` : "";
    return `${error.message}${cause}`;
  }
  return String(error);
}

/**
 * One HTTP request with a deadline for the response headers (a large blob body may take longer). Network failures
 * become BackendError "unreachable" with the URL; an abort by the caller's own signal is rethrown as is.
 */
async function request(
  fetchFn: typeof fetch,
  url: URL,
  init: RequestInit,
  timeoutMs: number,
): Promise<Response> {
  const deadline = new AbortController();
  const signal = init.signal ? AbortSignal.any([init.signal, deadline.signal]) : deadline.signal;
  const timer = setTimeout(() => deadline.abort(), timeoutMs);
  const method = init.method ?? "GET";
  try {
    return await fetchFn(url, { ...init, signal });
  } catch (error) {
    if (init.signal?.aborted) throw error;
    const detail = deadline.signal.aborted
      ? `no answer within ${Math.round(timeoutMs / 1000)} s`
      : `cannot reach the registry (${describeError(error)})`;
    throw new BackendError({ code: "unreachable", detail, method, url: url.href, cause: error });
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Follows redirects by hand so that an Authorization header only ever goes to `origin`: blob GETs redirect to
 * storage hosts (S3, CDNs) that must not see registry credentials, and some reject requests that carry them.
 */
async function requestFollowing(
  fetchFn: typeof fetch,
  url: URL,
  init: RequestInit,
  origin: string,
  timeoutMs: number,
): Promise<Response> {
  let target = url;
  let method = init.method ?? "GET";
  let body = init.body;
  for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
    const headers = new Headers(init.headers);
    if (target.origin !== origin) headers.delete("authorization");
    const response = await request(
      fetchFn,
      target,
      { ...init, method, body, headers, redirect: "manual" },
      timeoutMs,
    );
    const location = response.headers.get("location");
    if (!REDIRECTS.has(response.status) || !location) return response;
    await response.body?.cancel();
    target = new URL(location, target);
    if (
      response.status === 303 ||
      ((response.status === 301 || response.status === 302) && method === "POST")
    ) {
      method = "GET";
      body = undefined;
    }
  }
  throw new BackendError({
    code: "protocol",
    detail: `more than ${MAX_REDIRECTS} redirects`,
    method: init.method ?? "GET",
    url: url.href,
  });
}

function tokenFrom(body: unknown): { token: string; expiresInS: number } | null {
  if (typeof body !== "object" || body === null) return null;
  const record = body as Record<string, unknown>;
  const token = typeof record.token === "string" && record.token ? record.token : record.access_token;
  if (typeof token !== "string" || !token) return null;
  const expiresIn = typeof record.expires_in === "number" && record.expires_in > 0 ? record.expires_in : null;
  return { token, expiresInS: expiresIn ?? DEFAULT_TOKEN_LIFETIME_S };
}

interface CachedToken {
  authorization: string;
  expiresAt: number;
}

/**
 * An authenticated fetch against one registry: GET <scheme>://<apiHost>/v2/...; on 401 reads WWW-Authenticate, does
 * Basic or the Bearer token flow (GET realm?service=..&scope=<challenge scope, or repository:<repo>:pull> with Basic
 * credentials when given, anonymous otherwise; token from `token` or `access_token`), caches the token until
 * expires_in, and retries the request once. Bodies must be re-sendable (bytes or strings, not streams).
 *
 * Returns the registry's response, 401 included when access is still denied (anonymous tokens often grant nothing).
 * Throws BackendError "unauthorized" when the token server refuses the credentials, "unreachable" when the registry
 * or token server cannot be reached, "protocol" when the token server answers nonsense.
 */
export class RegistryClient {
  readonly origin: string;
  readonly #ref: ImageReference;
  readonly #credentials: RegistryCredentials | undefined;
  readonly #fetch: typeof fetch;
  readonly #timeoutMs: number;
  readonly #tokens = new Map<string, CachedToken>();
  /** Sent up front on later requests, which saves most 401 round trips. */
  #authorization: string | null = null;

  constructor(
    ref: ImageReference,
    credentials?: RegistryCredentials,
    options: { fetch?: typeof fetch; timeoutMs?: number } = {},
  ) {
    this.#ref = ref;
    this.#credentials = credentials;
    this.#fetch = options.fetch ?? fetch;
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.origin = registryOrigin(ref);
    registerSecret(credentials?.password);
  }

  /** `path` is "/v2/…" on the registry, or an absolute URL the registry handed out (an upload Location). */
  async fetch(path: string, init: RequestInit = {}): Promise<Response> {
    const url = new URL(path, this.origin);
    const sent = this.#authorization;
    const response = await this.#send(url, init, sent);
    if (response.status !== 401) return response;
    const challenge = parseChallenge(response.headers.get("www-authenticate"));
    if (!challenge) return response;
    const authorization = await this.#authorize(challenge, sent);
    if (!authorization || authorization === sent) return response;
    await response.body?.cancel();
    this.#authorization = authorization;
    return this.#send(url, init, authorization);
  }

  #send(url: URL, init: RequestInit, authorization: string | null): Promise<Response> {
    const headers = new Headers(init.headers);
    if (authorization && url.origin === this.origin && !headers.has("authorization")) {
      headers.set("authorization", authorization);
    }
    return requestFollowing(this.#fetch, url, { ...init, headers }, this.origin, this.#timeoutMs);
  }

  async #authorize(challenge: Challenge, sent: string | null): Promise<string | null> {
    if (challenge.scheme === "basic") {
      return this.#credentials ? basicAuthorization(this.#credentials) : null;
    }
    const scope = challenge.scope || `repository:${this.#ref.repository}:pull`;
    const key = `${challenge.realm} ${challenge.service ?? ""} ${scope}`;
    const cached = this.#tokens.get(key);
    // A cached token that was just refused is stale (revoked, or the server restarted): fetch a new one.
    if (cached && cached.expiresAt > Date.now() && cached.authorization !== sent) return cached.authorization;
    const token = await this.#requestToken(challenge, scope);
    this.#tokens.set(key, token);
    return token.authorization;
  }

  async #requestToken(challenge: Challenge, scope: string): Promise<CachedToken> {
    const url = tokenUrl(challenge, scope, this.origin);
    const headers = new Headers({ accept: "application/json" });
    if (this.#credentials) headers.set("authorization", basicAuthorization(this.#credentials));
    const response = await requestFollowing(this.#fetch, url, { headers }, url.origin, this.#timeoutMs);
    if (response.status === 401 || response.status === 403) {
      await response.body?.cancel();
      const who = this.#credentials ? `user '${this.#credentials.username}'` : "anonymous access";
      throw new BackendError({
        code: "unauthorized",
        detail: `the token server of ${this.#ref.registry} refused ${who} for ${scope}`,
        method: "GET",
        url: url.href,
        status: response.status,
      });
    }
    if (!response.ok) await response.body?.cancel();
    const token = response.ok ? tokenFrom(await response.json().catch(() => null)) : null;
    if (!token) {
      throw new BackendError({
        code: response.ok ? "protocol" : backendCodeForStatus(response.status),
        detail: response.ok ? "token response has no token" : "token request failed",
        method: "GET",
        url: url.href,
        status: response.status,
      });
    }
    registerSecret(token.token);
    const lifetimeMs = token.expiresInS * 1000;
    return {
      authorization: `Bearer ${token.token}`,
      expiresAt: Date.now() + Math.max(lifetimeMs - TOKEN_EXPIRY_MARGIN_MS, lifetimeMs / 2),
    };
  }
}

function unexpected(response: Response, url: URL, what: string): BackendError {
  return new BackendError({
    code: response.ok ? "protocol" : backendCodeForStatus(response.status),
    detail: what,
    method: "GET",
    url: url.href,
    status: response.status,
  });
}

/**
 * True when the registry accepts these credentials: Basic registries answer GET /v2/ with 200, Bearer registries
 * hand out a token for repository:<repo>:pull. False on 401/403. An open registry (GET /v2/ is 200 without
 * credentials) accepts anything. Throws BackendError "unreachable" (with the URL) when the registry cannot be reached.
 */
export async function validateCredentials(
  ref: ImageReference,
  credentials: RegistryCredentials,
  options: { fetch?: typeof fetch; timeoutMs?: number } = {},
): Promise<boolean> {
  registerSecret(credentials.password);
  const fetchFn = options.fetch ?? fetch;
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const origin = registryOrigin(ref);
  const base = new URL("/v2/", origin);
  const withBasic = { headers: { authorization: basicAuthorization(credentials) } };

  const probe = await requestFollowing(fetchFn, base, {}, origin, timeoutMs);
  await probe.body?.cancel();
  let challenge: Challenge | null = null;
  if (probe.status === 401) {
    challenge = parseChallenge(probe.headers.get("www-authenticate"));
    if (!challenge) {
      throw new BackendError({
        code: "protocol",
        detail: "the registry answered 401 without a Basic or Bearer WWW-Authenticate challenge",
        method: "GET",
        url: base.href,
        status: 401,
      });
    }
  } else if (!probe.ok) {
    throw unexpected(
      probe,
      base,
      "expected 200 or 401 from the registry API root, which every container registry answers",
    );
  }

  if (challenge?.scheme === "bearer") {
    const url = tokenUrl(challenge, `repository:${ref.repository}:pull`, origin);
    const response = await requestFollowing(fetchFn, url, withBasic, url.origin, timeoutMs);
    if (response.status === 401 || response.status === 403) {
      await response.body?.cancel();
      return false;
    }
    if (!response.ok) {
      await response.body?.cancel();
      throw unexpected(response, url, "token request failed");
    }
    const token = tokenFrom(await response.json().catch(() => null));
    if (!token) throw unexpected(response, url, "token response has no token");
    registerSecret(token.token);
    return true;
  }

  const response = await requestFollowing(fetchFn, base, withBasic, origin, timeoutMs);
  await response.body?.cancel();
  if (response.status === 401 || response.status === 403) return false;
  if (!response.ok) throw unexpected(response, base, "credential check failed");
  return true;
}
