// MCP over Streamable HTTP on Bun.serve: /mcp (both protocol eras), the docs page at /, and /healthz.
import { createHash, timingSafeEqual } from "node:crypto";
import { hostname as machineName, networkInterfaces } from "node:os";
import {
  createMcpHandler,
  hostHeaderValidationResponse,
  localhostAllowedHostnames,
  originValidationResponse,
  validateHostHeader,
} from "@modelcontextprotocol/server";
import type { App } from "../app.ts";
import type { Config } from "../config.ts";
import { UserError } from "../errors.ts";
import { log } from "../log.ts";
import { VERSION } from "../version.ts";
import { createServerFactory } from "./create.ts";
import { collectPageData, serverCommand, renderPage, type PageTemplate } from "./page.ts";

/** Larger bodies get 413 before anything is parsed; tool arguments are small (files travel by upload). */
export const MAX_BODY_BYTES = 4 * 1024 * 1024;
/** How long calls in flight may finish after SIGINT/SIGTERM before they are aborted. */
export const SHUTDOWN_GRACE_MS = 5_000;
/** A connection that sends nothing for this long (e.g. a stalled request body) is closed. */
const IDLE_TIMEOUT_S = 30;

export interface HttpOptions {
  listen: string;
  port: number;
  /** When set, /mcp requires `Authorization: Bearer <token>`. */
  token?: string;
}

/** Bun's server, as far as the handler uses it: lifting the idle timeout for a long call. */
interface RequestTimeouts {
  timeout(request: Request, seconds: number): void;
}

export interface HttpHandler {
  fetch(request: Request, server?: RequestTimeouts): Promise<Response>;
  /** Exchanges on /mcp whose response has not finished yet. */
  readonly inflight: number;
  /** From now on /mcp answers 503: the server is going away. */
  drain(): void;
  /** Aborts what is still in flight. */
  close(): Promise<void>;
}

export function isLoopback(address: string): boolean {
  const bare = address.replace(/^\[(.*)\]$/, "$1").toLowerCase();
  return bare === "localhost" || bare === "::1" || /^127\.\d+\.\d+\.\d+$/.test(bare);
}

function isWildcard(address: string): boolean {
  return address === "" || address === "0.0.0.0" || address === "::" || address === "[::]";
}

function bracket(address: string): string {
  return address.includes(":") ? `[${address}]` : address;
}

/**
 * Host names a request may use (DNS-rebinding protection) and Origins a browser may send. Loopback only, unless
 * the server listens elsewhere with a token: then also the listen address, or for a wildcard bind every address
 * of this machine and its name (a reverse proxy that rewrites Host to its upstream keeps working).
 */
export function allowedHostnames(listen: string, token: string | undefined): string[] {
  const names = new Set(localhostAllowedHostnames());
  if (isLoopback(listen) || !token) return [...names];
  if (isWildcard(listen)) {
    for (const entries of Object.values(networkInterfaces())) {
      for (const entry of entries ?? []) names.add(bracket(entry.address.toLowerCase()));
    }
    names.add(machineName().toLowerCase());
  } else {
    names.add(bracket(listen.replace(/^\[(.*)\]$/, "$1").toLowerCase()));
  }
  return [...names];
}

function refuseOpenBind(options: HttpOptions): void {
  if (isLoopback(options.listen) || options.token) return;
  throw new UserError(
    `Refusing to serve HTTP on ${options.listen || "all addresses"} without a token: anyone who can reach it could run commands in your sandboxes. ` +
      "Set a bearer token with --http-token <secret> or the CONTREE_MCP_HTTP_TOKEN environment variable " +
      "(clients then send 'Authorization: Bearer <secret>'), or listen on 127.0.0.1 (--http-listen).",
  );
}

function jsonRpcError(
  status: number,
  code: number,
  message: string,
  headers: Record<string, string> = {},
): Response {
  return Response.json(
    { jsonrpc: "2.0", error: { code, message }, id: null },
    { status, headers: { "cache-control": "no-store", ...headers } },
  );
}

function digest(text: string): Buffer {
  return createHash("sha256").update(text).digest();
}

/** Compares hashes so neither the length nor the prefix of the token leaks through timing. */
function bearerMatches(header: string | null, expected: Buffer): boolean {
  const match = /^Bearer\s+(.+)$/i.exec(header?.trim() ?? "");
  return match !== null && timingSafeEqual(digest(match[1]!.trim()), expected);
}

async function readBounded(request: Request, limit: number): Promise<Uint8Array | "too-large"> {
  if (!request.body) return new Uint8Array();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of request.body as unknown as AsyncIterable<Uint8Array>) {
    size += chunk.byteLength;
    if (size > limit) return "too-large";
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/**
 * 2025-era clients are served statelessly, one server instance per request, so a `notifications/cancelled` arrives
 * at an instance that never saw the call. To let it through anyway, a legacy `initialize` answer carries an
 * `Mcp-Session-Id` the client then sends with every request. Nothing is kept per session but the calls in flight:
 * any id is accepted (also after a restart), and a client can only name calls of its own session.
 */
const SESSION_HEADER = "mcp-session-id";

/** What a POST to /mcp is, as far as cancellation needs: its method and id, or the id it cancels. */
interface Envelope {
  method?: string;
  id?: string | number;
  cancels?: string | number;
}

function isId(value: unknown): value is string | number {
  return typeof value === "string" || typeof value === "number";
}

function envelope(body: Uint8Array): Envelope {
  let message: unknown;
  try {
    message = JSON.parse(new TextDecoder().decode(body));
  } catch {
    return {};
  }
  if (!message || typeof message !== "object" || Array.isArray(message)) return {};
  const { method, id, params } = message as {
    method?: unknown;
    id?: unknown;
    params?: { requestId?: unknown };
  };
  return {
    ...(typeof method === "string" && { method }),
    ...(isId(id) && { id }),
    ...(method === "notifications/cancelled" && isId(params?.requestId) && { cancels: params.requestId }),
  };
}

/** The session id a client sent, when it is one: visible ASCII, as the spec says, and not absurdly long. */
function sessionOf(request: Request): string | undefined {
  const value = request.headers.get(SESSION_HEADER);
  return value && /^[\x21-\x7e]{1,128}$/.test(value) ? value : undefined;
}

function callKey(session: string, id: string | number): string {
  return `${session} ${JSON.stringify(id)}`;
}

/** Calls `done` once the response body has been sent in full or the client went away. */
function onBodyFinished(response: Response, headers: Headers, done: () => void): Response {
  if (!response.body) {
    done();
    return new Response(null, { status: response.status, statusText: response.statusText, headers });
  }
  const reader = response.body.getReader();
  let finished = false;
  const finish = () => {
    if (finished) return;
    finished = true;
    done();
  };
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { done: end, value } = await reader.read();
        if (end) {
          finish();
          controller.close();
        } else {
          controller.enqueue(value);
        }
      } catch (error) {
        finish();
        controller.error(error);
      }
    },
    cancel(reason) {
      finish();
      return reader.cancel(reason);
    },
  });
  return new Response(body, { status: response.status, statusText: response.statusText, headers });
}

/**
 * DNS-rebinding protection. Every socket request carries Host (Bun builds request.url from it); a Request made in
 * process may not, and then its URL's host stands in.
 */
function hostRejection(request: Request, hosts: string[]): Response | undefined {
  if (request.headers.has("host")) return hostHeaderValidationResponse(request, hosts);
  const checked = validateHostHeader(new URL(request.url).host, hosts);
  return checked.ok ? undefined : jsonRpcError(403, -32000, checked.message);
}

/**
 * Where clients reach this server, for the page's snippets: behind a reverse proxy that terminates TLS, what the
 * proxy says in X-Forwarded-Proto/-Host, else the request's own URL. Only shown, never trusted for access.
 */
export function publicOrigin(request: Request): string {
  const url = new URL(request.url);
  const first = (name: string) => request.headers.get(name)?.split(",")[0]!.trim().toLowerCase();
  const proto = first("x-forwarded-proto");
  const host = first("x-forwarded-host");
  const scheme = proto === "https" || proto === "http" ? `${proto}:` : url.protocol;
  const authority =
    host && /^[a-z0-9.-]+(:\d{1,5})?$|^\[[0-9a-f:.]+\](:\d{1,5})?$/.test(host) ? host : url.host;
  return `${scheme}//${authority}`;
}

const SECURITY_HEADERS = {
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
};

/**
 * The HTTP face of the server as a plain `fetch(Request)`: tests call it in process, `runHttp` hands it to Bun.serve.
 * Throws UserError when the options are unsafe (a non-loopback address without a token).
 */
export function createHttpHandler(app: App, options: HttpOptions): HttpHandler {
  refuseOpenBind(options);
  const factory = createServerFactory(app.deps);
  const mcp = createMcpHandler(() => factory(), {
    legacy: "stateless",
    maxRequestBodySize: MAX_BODY_BYTES,
    onerror: (error) => log.debug("mcp http:", error.message),
  });
  const hosts = allowedHostnames(options.listen, options.token);
  const expected = options.token ? digest(options.token) : undefined;
  const template: Promise<PageTemplate> = collectPageData(factory).then((data) =>
    renderPage({
      ...data,
      tokenRequired: expected !== undefined,
      backend: app.deps.backend.kind,
      command: serverCommand(),
    }),
  );
  // Surface a generator bug at startup, not only on the first page view.
  template.catch((error: unknown) => log.error("cannot build the page:", error));
  const pages = new Map<string, string>();
  /** Legacy calls in flight by session and JSON-RPC id, for `notifications/cancelled` to reach them. */
  const legacyCalls = new Map<string, AbortController>();
  let inflight = 0;
  let draining = false;

  async function serveMcp(request: Request, server?: RequestTimeouts): Promise<Response> {
    if (expected && !bearerMatches(request.headers.get("authorization"), expected)) {
      return jsonRpcError(
        401,
        -32001,
        "Unauthorized: send 'Authorization: Bearer <token>' (the --http-token).",
        {
          "www-authenticate": 'Bearer realm="contree-mcp"',
        },
      );
    }
    if (draining) return jsonRpcError(503, -32000, "The server is shutting down.", { connection: "close" });
    let forward = request;
    let message: Envelope = {};
    let call: { key: string; controller: AbortController } | undefined;
    const session = sessionOf(request);
    if (request.method === "POST") {
      const declared = Number(request.headers.get("content-length") ?? "0");
      const body = declared > MAX_BODY_BYTES ? "too-large" : await readBounded(request, MAX_BODY_BYTES);
      if (body === "too-large") {
        return jsonRpcError(413, -32000, `Request body too large (limit ${MAX_BODY_BYTES} bytes).`, {
          connection: "close",
        });
      }
      message = envelope(body);
      let signal = request.signal;
      if (session && message.cancels !== undefined) {
        legacyCalls.get(callKey(session, message.cancels))?.abort();
      } else if (session && message.id !== undefined && message.method) {
        call = { key: callKey(session, message.id), controller: new AbortController() };
        legacyCalls.set(call.key, call.controller);
        signal = AbortSignal.any([request.signal, call.controller.signal]);
      }
      forward = new Request(request.url, { method: "POST", headers: request.headers, body, signal });
    } else if (request.method === "DELETE" && session) {
      // The client ends its session: nobody is left to read the answers of its calls.
      for (const [key, controller] of legacyCalls) if (key.startsWith(`${session} `)) controller.abort();
    }
    // The body is in; a call may now run (and stay quiet) far longer than the idle timeout allows.
    server?.timeout(request, 0);
    inflight += 1;
    const finished = () => {
      inflight -= 1;
      if (call && legacyCalls.get(call.key) === call.controller) legacyCalls.delete(call.key);
    };
    try {
      const response = await mcp.fetch(forward);
      const headers = new Headers(response.headers);
      if (message.method === "initialize" && response.ok && !headers.has(SESSION_HEADER)) {
        headers.set(SESSION_HEADER, crypto.randomUUID());
      }
      return onBodyFinished(response, headers, finished);
    } catch (error) {
      finished();
      throw error;
    }
  }

  async function servePage(request: Request): Promise<Response> {
    const origin = publicOrigin(request);
    let html = pages.get(origin);
    if (html === undefined) {
      const built = await template.catch(() => undefined);
      if (!built) return new Response("The page could not be built; see the server log.\n", { status: 500 });
      html = built.render(`${origin}/mcp`);
      // Host is validated, so this holds a handful of entries at most; the cap is a backstop (forwarded headers).
      if (pages.size < 32) pages.set(origin, html);
    }
    return new Response(request.method === "HEAD" ? null : html, {
      headers: {
        "content-type": "text/html; charset=utf-8",
        "cache-control": "no-cache",
        "content-security-policy":
          "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        ...SECURITY_HEADERS,
      },
    });
  }

  return {
    async fetch(request, server) {
      const rejected = hostRejection(request, hosts) ?? originValidationResponse(request, hosts);
      if (rejected) return rejected;
      const { pathname } = new URL(request.url);
      if (pathname === "/mcp") return serveMcp(request, server);
      const readOnly = request.method === "GET" || request.method === "HEAD";
      if (pathname === "/healthz" && readOnly) {
        return Response.json(
          { status: draining ? "stopping" : "ok", backend: app.deps.backend.kind, version: VERSION },
          { status: draining ? 503 : 200, headers: { "cache-control": "no-store", ...SECURITY_HEADERS } },
        );
      }
      if (pathname === "/" && readOnly) return servePage(request);
      if (pathname === "/" || pathname === "/healthz") {
        return new Response("Method not allowed\n", { status: 405, headers: { allow: "GET, HEAD" } });
      }
      return new Response("Not found. MCP is at /mcp; setup help at /.\n", {
        status: 404,
        headers: { "content-type": "text/plain; charset=utf-8", ...SECURITY_HEADERS },
      });
    },
    get inflight() {
      return inflight;
    },
    drain() {
      draining = true;
    },
    close: () => mcp.close(),
  };
}

function displayHost(listen: string): string {
  if (isWildcard(listen)) return "127.0.0.1";
  return listen.includes(":") && !listen.startsWith("[") ? `[${listen}]` : listen;
}

async function until(condition: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() >= deadline) return false;
    await Bun.sleep(25);
  }
  return true;
}

export interface RunHttpHooks {
  /** Defaults to SHUTDOWN_GRACE_MS. */
  graceMs?: number;
  /** Called with the base URL once the server listens (tests bind port 0). */
  onListening?(url: string): void;
}

/** Serves HTTP until SIGINT or SIGTERM, then shuts down gracefully. */
export async function runHttp(app: App, config: Config, hooks: RunHttpHooks = {}): Promise<void> {
  const graceMs = hooks.graceMs ?? SHUTDOWN_GRACE_MS;
  const handler = createHttpHandler(app, {
    listen: config.httpListen,
    port: config.httpPort,
    token: config.httpToken,
  });
  let server: ReturnType<typeof Bun.serve>;
  try {
    server = Bun.serve({
      hostname: config.httpListen,
      port: config.httpPort,
      idleTimeout: IDLE_TIMEOUT_S,
      // Bun refuses bodies beyond this outright; the handler answers 413 for anything over MAX_BODY_BYTES.
      maxRequestBodySize: MAX_BODY_BYTES + 1024,
      fetch: (request, bunServer) => handler.fetch(request, bunServer),
      error: (error) => {
        log.error("http:", error);
        return new Response("Internal server error\n", { status: 500 });
      },
    });
  } catch (error) {
    await app.close();
    throw new UserError(
      `Cannot listen on ${config.httpListen}:${config.httpPort}: ${error instanceof Error ? error.message : String(error)}. Choose another --http-port or --http-listen.`,
    );
  }
  const base = `http://${displayHost(config.httpListen)}:${server.port}`;
  // Shown at every log level: people need the URL to configure a client.
  process.stderr.write(
    `[contree-mcp] serving MCP at ${base}/mcp (setup help: ${base}/)${config.httpToken ? ", bearer token required" : ""}\n`,
  );
  hooks.onListening?.(base);

  const signal = await new Promise<string>((resolve) => {
    process.once("SIGINT", () => resolve("SIGINT"));
    process.once("SIGTERM", () => resolve("SIGTERM"));
  });
  log.info(`${signal}: stopping; ${handler.inflight} call(s) in flight`);
  handler.drain();
  const stopped = server.stop(false);
  const finished = await until(() => handler.inflight === 0, graceMs);
  if (!finished) {
    log.warn(`${handler.inflight} call(s) still running after ${graceMs / 1000} s: aborting them`);
    // Closing the connections aborts each call's signal; tools then cancel the runs they were waiting for.
    await handler.close().catch(() => undefined);
    await server.stop(true).catch(() => undefined);
    await until(() => handler.inflight === 0, 1_000);
    // Tools send their cancel requests to the backend on abort; give those a moment to leave.
    await Bun.sleep(250);
  }
  await Promise.race([stopped, Bun.sleep(1_000)]);
  await app.close();
}
