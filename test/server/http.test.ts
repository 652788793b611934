import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import type { CallToolResult } from "@modelcontextprotocol/client";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openApp, type App } from "../../src/app.ts";
import { resolveConfig, type OptionName } from "../../src/config.ts";
import { UserError } from "../../src/errors.ts";
import {
  MAX_BODY_BYTES,
  allowedHostnames,
  createHttpHandler,
  publicOrigin,
  runHttp,
  type HttpHandler,
  type HttpOptions,
} from "../../src/server/http.ts";
import { TOOLS } from "../../src/tools/index.ts";
import { VERSION } from "../../src/version.ts";
import { startFakeContree, cloudBackendFor } from "../support/fake-contree.ts";

type Fake = Awaited<ReturnType<typeof startFakeContree>>;

const ROOT = join(import.meta.dir, "../..");
const BUN = join(ROOT, "node_modules/.bin/bun");
const INSPECTOR = join(ROOT, "node_modules/.bin/mcp-inspector");

let fake: Fake;
let dir: string;
let app: App;
let base: string;
const opened: { close(): Promise<void> }[] = [];

function config(flags: Partial<Record<OptionName, string>> = {}) {
  return resolveConfig({
    cache_general: join(dir, `cache-${opened.length}.db`),
    cache_files: join(dir, `files-${opened.length}.db`),
    local_root: join(dir, "local"),
    ...flags,
  });
}

async function newApp(flags: Partial<Record<OptionName, string>> = {}): Promise<App> {
  const fresh = await openApp(config(flags), cloudBackendFor(fake));
  fresh.deps.pollIntervalMs = { min: 5, max: 50 };
  return fresh;
}

interface Served {
  handler: HttpHandler;
  origin: string;
  mcp: URL;
}

/** A real Bun.serve on port 0 in front of the handler. */
function serve(options: Partial<HttpOptions> = {}, served: App = app): Served {
  const handler = createHttpHandler(served, { listen: "127.0.0.1", port: 0, ...options });
  const server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: (req, s) => handler.fetch(req, s) });
  opened.push({
    close: async () => {
      await server.stop(true);
      await handler.close();
    },
  });
  const origin = `http://127.0.0.1:${server.port}`;
  return { handler, origin, mcp: new URL(`${origin}/mcp`) };
}

async function connectClient(
  url: URL,
  options: { token?: string; era?: "legacy" | "modern" } = {},
): Promise<Client> {
  const client = new Client(
    { name: "http-test", version: "0" },
    options.era === "modern" ? { versionNegotiation: { mode: { pin: "2026-07-28" } } } : {},
  );
  const transport = new StreamableHTTPClientTransport(url, {
    requestInit: options.token ? { headers: { authorization: `Bearer ${options.token}` } } : {},
  });
  await client.connect(transport);
  opened.push({ close: () => client.close() });
  return client;
}

const initialize = JSON.stringify({
  jsonrpc: "2.0",
  id: 1,
  method: "initialize",
  params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "raw", version: "0" } },
});

function post(
  url: string,
  headers: Record<string, string> = {},
  body: string | ReadableStream<Uint8Array> = initialize,
): Request {
  return new Request(url, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      ...headers,
    },
    body,
  });
}

async function inspector(args: string[]): Promise<{ code: number; out: string; err: string }> {
  if (!existsSync(INSPECTOR)) throw new Error(`${INSPECTOR} is missing: run npm install`);
  const proc = Bun.spawn([BUN, "--bun", INSPECTOR, "--cli", ...args], {
    cwd: dir,
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, NO_COLOR: "1", MCP_CATALOG_PATH: join(dir, "inspector-catalog.json") },
  });
  const [out, err, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  return { code, out, err };
}

async function until(condition: () => boolean, ms = 10_000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) return false;
    await Bun.sleep(20);
  }
  return true;
}

/** The fake ConTree server received a run (POST /v1/instances) after request number `from`. */
function started(from: number): boolean {
  return fake.requests.slice(from).some((r) => r.method === "POST" && r.path === "/v1/instances");
}

/** The fake ConTree server received a cancel (DELETE /v1/operations/...) after request number `from`. */
function cancelled(from: number): boolean {
  return fake.requests.slice(from).some((r) => r.method === "DELETE" && r.path.startsWith("/v1/operations/"));
}

beforeAll(async () => {
  fake = await startFakeContree();
  dir = mkdtempSync(join(tmpdir(), "contree-mcp-http-"));
  app = await newApp();
  base = fake.addImage({ tag: "common/base/alpine:3" }).uuid;
});

afterAll(async () => {
  for (const item of opened.toReversed()) await item.close().catch(() => undefined);
  await app?.close();
  await fake?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("MCP over HTTP with the SDK client", () => {
  for (const era of ["legacy", "modern"] as const) {
    test(`${era} era: lists every tool and calls list_images and run`, async () => {
      const { mcp } = serve();
      const client = await connectClient(mcp, { era });
      expect(client.getProtocolEra()).toBe(era);
      const { tools } = await client.listTools();
      expect(tools.map((t) => t.name).toSorted()).toEqual(TOOLS.map((t) => `contree_${t.name}`).toSorted());
      const listed = (await client.callTool({
        name: "contree_list_images",
        arguments: {},
      })) as CallToolResult;
      expect(listed.isError).toBeFalsy();
      expect(JSON.stringify(listed.structuredContent)).toContain(base);
      const ran = (await client.callTool({
        name: "contree_run",
        arguments: { command: `echo ${era}`, image: base },
      })) as CallToolResult;
      expect(ran.isError).toBeFalsy();
      expect((ran.structuredContent as { status: string }).status).toBe("SUCCESS");
    });

    test(`${era} era: progress notifications stream all through a long run, before its result`, async () => {
      const { mcp } = serve();
      const client = await connectClient(mcp, { era });
      const seen: { message?: string; at: number }[] = [];
      const startedAt = Date.now();
      const result = (await client.callTool(
        { name: "contree_run", arguments: { command: "sleep 3", image: base } },
        { onprogress: (p) => seen.push({ message: p.message, at: Date.now() }) },
      )) as CallToolResult;
      const finishedAt = Date.now();
      expect(result.isError).toBeFalsy();
      expect((result.structuredContent as { status: string }).status).toBe("SUCCESS");
      expect(seen.length).toBeGreaterThanOrEqual(3);
      expect(seen.some((p) => p.message?.includes("sleep 3"))).toBe(true);
      // Streamed, not sent in a burst with the result: no silence longer than 2 s from the call to the result.
      const times = [startedAt, ...seen.map((p) => p.at), finishedAt];
      const gaps = times.slice(1).map((t, i) => t - times[i]!);
      expect(Math.max(...gaps)).toBeLessThan(2_000);
      expect(seen[0]!.at).toBeLessThan(finishedAt - 2_000);
    });
  }

  test("a quiet wait still sends a heartbeat: the last progress message again after 5 s", async () => {
    // Polls 6 s apart: between them the run reports nothing new, and only the heartbeat speaks.
    const quiet = await newApp();
    quiet.deps.pollIntervalMs = { min: 6_000, max: 6_000 };
    opened.push(quiet);
    const { mcp } = serve({}, quiet);
    const client = await connectClient(mcp);
    const seen: { message?: string; at: number }[] = [];
    const result = (await client.callTool(
      { name: "contree_run", arguments: { command: "sleep 5", image: base } },
      { onprogress: (p) => seen.push({ message: p.message, at: Date.now() }) },
    )) as CallToolResult;
    const finishedAt = Date.now();
    expect((result.structuredContent as { status: string }).status).toBe("SUCCESS");
    const repeated = seen.filter((p, i) => i > 0 && p.message === seen[i - 1]!.message);
    expect(repeated.length).toBeGreaterThanOrEqual(1);
    const first = seen.find((p) => p.message === repeated[0]!.message)!;
    expect(repeated[0]!.at - first.at).toBeGreaterThanOrEqual(4_500);
    expect(repeated[0]!.at).toBeLessThan(finishedAt - 300);
  }, 20_000);

  test("several clients at once are served independently", async () => {
    const { mcp } = serve();
    const clients = await Promise.all([1, 2, 3, 4].map(() => connectClient(mcp)));
    const slow = clients[0]!.callTool({
      name: "contree_run",
      arguments: { command: "sleep 1", image: base },
    });
    const quick = await Promise.all(
      clients.slice(1).map((c) => c.callTool({ name: "contree_list_images", arguments: {} })),
    );
    expect(quick.every((r) => !r.isError)).toBe(true);
    expect(((await slow) as CallToolResult).isError).toBeFalsy();
  });

  for (const era of ["legacy", "modern"] as const) {
    test(`the MCP Inspector CLI lists and calls tools with the bearer token (${era} era)`, async () => {
      const token = "inspector-token-0123";
      const { mcp } = serve({ token });
      const common = ["--transport", "http", "--protocol-era", era, "--format", "json", "--quiet"];
      const auth = ["--header", `Authorization: Bearer ${token}`];
      const listed = await inspector([mcp.href, ...common, ...auth, "--method", "tools/list"]);
      expect({ code: listed.code, err: listed.code === 0 ? "" : listed.err }).toEqual({ code: 0, err: "" });
      const names = (JSON.parse(listed.out) as { result: { tools: { name: string }[] } }).result.tools.map(
        (t) => t.name,
      );
      expect(names.toSorted()).toEqual(TOOLS.map((t) => `contree_${t.name}`).toSorted());

      const called = await inspector([
        mcp.href,
        ...common,
        ...auth,
        "--method",
        "tools/call",
        "--tool-name",
        "contree_list_images",
        "--tool-args-json",
        "{}",
      ]);
      expect({ code: called.code, err: called.code === 0 ? "" : called.err }).toEqual({ code: 0, err: "" });
      const result = (JSON.parse(called.out) as { result: CallToolResult }).result;
      expect(result.isError).toBeFalsy();
      expect(JSON.stringify(result.structuredContent)).toContain(base);

      // Exit code 3 is the Inspector's "authentication failed".
      const refused = await inspector([mcp.href, ...common, "--method", "tools/list"]);
      expect(refused.code).toBe(3);
      expect(refused.out).not.toContain("contree_run");
    }, 30_000);
  }

  for (const era of ["legacy", "modern"] as const) {
    test(`${era} era: the run of a client that goes away mid-call is cancelled`, async () => {
      const { mcp, handler } = serve();
      const client = await connectClient(mcp, { era });
      const before = fake.requests.length;
      const call = client
        .callTool(
          { name: "contree_run", arguments: { command: "sleep 30", image: base } },
          { onprogress: () => {} },
        )
        .then(
          () => "finished",
          () => "aborted",
        );
      expect(await until(() => started(before))).toBe(true);
      // Closing the client drops its connections: the server sees the response stream close.
      await client.close();
      expect(await call).toBe("aborted");
      expect(await until(() => cancelled(before), 5_000)).toBe(true);
      expect(await until(() => handler.inflight === 0, 2_000)).toBe(true);
    }, 15_000);
  }

  for (const era of ["legacy", "modern"] as const) {
    test(`${era} era: cancelling a call cancels the run`, async () => {
      const { mcp, handler } = serve();
      const client = await connectClient(mcp, { era });
      const before = fake.requests.length;
      const abort = new AbortController();
      const call = client
        .callTool(
          { name: "contree_run", arguments: { command: "sleep 30", image: base } },
          { signal: abort.signal, onprogress: () => {} },
        )
        .then(
          () => "finished",
          () => "aborted",
        );
      expect(await until(() => started(before))).toBe(true);
      abort.abort();
      expect(await call).toBe("aborted");
      expect(await until(() => cancelled(before), 5_000)).toBe(true);
      expect(await until(() => handler.inflight === 0, 2_000)).toBe(true);
    }, 15_000);
  }
});

test("legacy era: a cancel reaches only the call of its own session", async () => {
  const { mcp } = serve();
  // Fresh clients number their requests alike: both calls have the same JSON-RPC id.
  const [mine, theirs] = await Promise.all([connectClient(mcp), connectClient(mcp)]);
  const before = fake.requests.length;
  const abort = new AbortController();
  const cancelledCall = mine
    .callTool(
      { name: "contree_run", arguments: { command: "sleep 30", image: base } },
      { signal: abort.signal },
    )
    .catch(() => "aborted");
  const otherCall = theirs.callTool({ name: "contree_run", arguments: { command: "sleep 1", image: base } });
  const runs = () =>
    fake.requests.slice(before).filter((r) => r.method === "POST" && r.path === "/v1/instances").length;
  expect(await until(() => runs() === 2)).toBe(true);
  abort.abort();
  expect(await cancelledCall).toBe("aborted");
  const other = (await otherCall) as CallToolResult;
  expect((other.structuredContent as { status: string }).status).toBe("SUCCESS");
  const deletes = fake.requests.slice(before).filter((r) => r.method === "DELETE");
  expect(deletes.length).toBe(1);
});

describe("safe defaults", () => {
  test("a foreign Origin gets 403, a local one passes", async () => {
    const handler = createHttpHandler(app, { listen: "127.0.0.1", port: 9452 });
    const foreign = await handler.fetch(
      post("http://127.0.0.1:9452/mcp", { origin: "https://evil.example" }),
    );
    expect(foreign.status).toBe(403);
    const local = await handler.fetch(post("http://127.0.0.1:9452/mcp", { origin: "http://localhost:3000" }));
    expect(local.status).toBe(200);
    await handler.close();
  });

  test("a foreign Host (DNS rebinding) gets 403 on every path", async () => {
    const handler = createHttpHandler(app, { listen: "127.0.0.1", port: 9452 });
    for (const path of ["/mcp", "/", "/healthz"]) {
      const request = new Request(`http://attacker.example:9452${path}`, {
        method: path === "/mcp" ? "POST" : "GET",
      });
      expect((await handler.fetch(request)).status).toBe(403);
    }
    await handler.close();
  });

  test("with a token, a missing or wrong bearer gets 401 and the right one 200", async () => {
    const token = "http-token-0123456789";
    const handler = createHttpHandler(app, { listen: "127.0.0.1", port: 9452, token });
    const url = "http://127.0.0.1:9452/mcp";
    const missing = await handler.fetch(post(url));
    expect(missing.status).toBe(401);
    expect(missing.headers.get("www-authenticate")).toStartWith("Bearer");
    for (const wrong of ["Bearer nope", `Bearer ${token}x`, `Basic ${btoa(`u:${token}`)}`, token]) {
      expect((await handler.fetch(post(url, { authorization: wrong }))).status).toBe(401);
    }
    const right = await handler.fetch(post(url, { authorization: `Bearer ${token}` }));
    expect(right.status).toBe(200);
    expect(await right.text()).toContain("serverInfo");
    // The page and the health check stay open: they hold nothing secret.
    expect((await handler.fetch(new Request("http://127.0.0.1:9452/healthz"))).status).toBe(200);
    const page = await (await handler.fetch(new Request("http://127.0.0.1:9452/"))).text();
    expect(page).not.toContain(token);
    expect(page).toContain("Authorization");
    await handler.close();
  });

  test("the SDK client with the bearer token works over a real socket", async () => {
    const token = "socket-token-abcdef";
    const { mcp } = serve({ token });
    const client = await connectClient(mcp, { token });
    expect((await client.listTools()).tools.length).toBe(TOOLS.length);
    await expect(connectClient(mcp, { token: "wrong" })).rejects.toThrow();
  });

  test("a non-loopback address without a token is refused, saying how to set one", () => {
    for (const listen of ["0.0.0.0", "::", "192.168.1.10"]) {
      let error: unknown;
      try {
        createHttpHandler(app, { listen, port: 9452 });
      } catch (caught) {
        error = caught;
      }
      expect(error).toBeInstanceOf(UserError);
      expect((error as Error).message).toContain("--http-token");
      expect((error as Error).message).toContain("CONTREE_MCP_HTTP_TOKEN");
    }
    for (const listen of ["127.0.0.1", "localhost", "::1", "127.0.0.2"]) {
      expect(() => createHttpHandler(app, { listen, port: 9452 })).not.toThrow();
    }
  });

  test("with a token, the listen address is an allowed Host too", async () => {
    expect(allowedHostnames("127.0.0.1", undefined)).toEqual(["localhost", "127.0.0.1", "[::1]"]);
    expect(allowedHostnames("10.1.2.3", "t")).toContain("10.1.2.3");
    expect(allowedHostnames("fd00::5", "t")).toContain("[fd00::5]");
    const token = "lan-token-123456";
    const handler = createHttpHandler(app, { listen: "10.1.2.3", port: 9452, token });
    const ok = await handler.fetch(post("http://10.1.2.3:9452/mcp", { authorization: `Bearer ${token}` }));
    expect(ok.status).toBe(200);
    const rebound = await handler.fetch(
      post("http://evil.example:9452/mcp", { authorization: `Bearer ${token}` }),
    );
    expect(rebound.status).toBe(403);
    await handler.close();
  });

  test("a body over the limit gets 413, declared or streamed", async () => {
    const handler = createHttpHandler(app, { listen: "127.0.0.1", port: 9452 });
    const big = `{"jsonrpc":"2.0","id":1,"method":"ping","params":{"pad":"${"x".repeat(MAX_BODY_BYTES)}"}}`;
    const declared = await handler.fetch(post("http://127.0.0.1:9452/mcp", {}, big));
    expect(declared.status).toBe(413);
    const chunk = new TextEncoder().encode("x".repeat(64 * 1024));
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent > MAX_BODY_BYTES + chunk.length) return controller.close();
        sent += chunk.length;
        controller.enqueue(chunk);
      },
    });
    const streamed = await handler.fetch(post("http://127.0.0.1:9452/mcp", {}, stream));
    expect(streamed.status).toBe(413);
    await handler.close();
  });

  test("over a real socket, a too-large body gets 413 too", async () => {
    const { origin } = serve();
    const response = await fetch(`${origin}/mcp`, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json, text/event-stream" },
      body: "x".repeat(MAX_BODY_BYTES + 10),
    });
    expect(response.status).toBe(413);
  });

  test("a client stalled mid-body does not hold up the others", async () => {
    const { origin, mcp } = serve();
    const { port } = new URL(origin);
    const stalled = await Bun.connect({
      hostname: "127.0.0.1",
      port: Number(port),
      socket: { data() {} },
    });
    stalled.write(
      "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n" +
        'Accept: application/json, text/event-stream\r\nContent-Length: 1000\r\n\r\n{"jsonrpc":',
    );
    const client = await connectClient(mcp);
    const result = (await client.callTool({ name: "contree_list_images", arguments: {} })) as CallToolResult;
    expect(result.isError).toBeFalsy();
    stalled.end();
  });

  test("a malformed body gets 400 and the server goes on serving", async () => {
    const handler = createHttpHandler(app, { listen: "127.0.0.1", port: 9452 });
    for (const body of ["{not json", "[]", '{"jsonrpc":"2.0","id":1}', "null"]) {
      const response = await handler.fetch(post("http://127.0.0.1:9452/mcp", {}, body));
      expect(response.status).toBe(400);
      await response.text();
    }
    const ok = await handler.fetch(post("http://127.0.0.1:9452/mcp"));
    expect(ok.status).toBe(200);
    await ok.text();
    expect(handler.inflight).toBe(0);
    await handler.close();
  });

  test("only a 2025 initialize gets an Mcp-Session-Id; it is random", async () => {
    const handler = createHttpHandler(app, { listen: "127.0.0.1", port: 9452 });
    const first = await handler.fetch(post("http://127.0.0.1:9452/mcp"));
    const second = await handler.fetch(post("http://127.0.0.1:9452/mcp"));
    const id = first.headers.get("mcp-session-id");
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    expect(second.headers.get("mcp-session-id")).not.toBe(id);
    const listed = await handler.fetch(
      post(
        "http://127.0.0.1:9452/mcp",
        { "mcp-protocol-version": "2025-11-25", "mcp-session-id": id! },
        JSON.stringify({ jsonrpc: "2.0", id: 2, method: "tools/list", params: {} }),
      ),
    );
    expect(listed.status).toBe(200);
    expect(listed.headers.has("mcp-session-id")).toBe(false);
    await handler.close();
  });

  test("the ConTree token appears in no response", async () => {
    const handler = createHttpHandler(app, { listen: "127.0.0.1", port: 9452 });
    const bodies = await Promise.all(
      [
        new Request("http://127.0.0.1:9452/"),
        new Request("http://127.0.0.1:9452/healthz"),
        post("http://127.0.0.1:9452/mcp"),
        post(
          "http://127.0.0.1:9452/mcp",
          { "mcp-protocol-version": "2025-11-25" },
          JSON.stringify({ jsonrpc: "2.0", id: 2, method: "tools/list", params: {} }),
        ),
      ].map(async (request) => {
        const response = await handler.fetch(request);
        return [...response.headers.entries()].join("\n") + (await response.text());
      }),
    );
    for (const body of bodies) expect(body).not.toContain(fake.token);
    await handler.close();
  });
});

describe("other routes", () => {
  test("/healthz reports backend kind and version", async () => {
    const handler = createHttpHandler(app, { listen: "127.0.0.1", port: 9452 });
    const response = await handler.fetch(new Request("http://localhost:9452/healthz"));
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: "ok", backend: "cloud", version: VERSION });
    await handler.close();
  });

  test("GET /unknown is 404, GET /mcp is 405 (no sessions), POST / is 405", async () => {
    const handler = createHttpHandler(app, { listen: "127.0.0.1", port: 9452 });
    expect((await handler.fetch(new Request("http://127.0.0.1:9452/unknown"))).status).toBe(404);
    expect(
      (
        await handler.fetch(
          new Request("http://127.0.0.1:9452/mcp", { headers: { accept: "text/event-stream" } }),
        )
      ).status,
    ).toBe(405);
    expect((await handler.fetch(new Request("http://127.0.0.1:9452/", { method: "POST" }))).status).toBe(405);
    await handler.close();
  });

  test("behind a TLS proxy, the page shows the address clients use", () => {
    const behind = (headers: Record<string, string>) =>
      publicOrigin(new Request("http://127.0.0.1:9452/", { headers }));
    expect(behind({})).toBe("http://127.0.0.1:9452");
    expect(behind({ "x-forwarded-proto": "https", "x-forwarded-host": "mcp.example.com" })).toBe(
      "https://mcp.example.com",
    );
    expect(behind({ "x-forwarded-proto": "https, http", "x-forwarded-host": "a.example:8443, b" })).toBe(
      "https://a.example:8443",
    );
    expect(behind({ "x-forwarded-proto": "javascript", "x-forwarded-host": '"><script>' })).toBe(
      "http://127.0.0.1:9452",
    );
  });

  test("the page lists every tool with this server's URL", async () => {
    const handler = createHttpHandler(app, { listen: "127.0.0.1", port: 9452 });
    const response = await handler.fetch(new Request("http://localhost:9452/"));
    expect(response.headers.get("content-type")).toContain("text/html");
    const html = await response.text();
    for (const tool of TOOLS) expect(html).toContain(`contree_${tool.name}`);
    expect(html).toContain("claude mcp add --transport http contree http://localhost:9452/mcp");
    expect(html).not.toContain("@@CONTREE_MCP_URL@@");
    await handler.close();
  });
});

/** The environment of a server process run by a test: the fake ConTree server, caches in the temp dir. */
function processEnv(): Record<string, string> {
  return {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: dir,
    CONTREE_MCP_CONFIG: join(dir, "no-such.ini"),
    CONTREE_MCP_TOKEN: fake.token,
    CONTREE_MCP_URL: fake.url,
    CONTREE_MCP_CACHE_GENERAL: join(dir, "process-cache.db"),
    CONTREE_MCP_CACHE_FILES: join(dir, "process-files.db"),
  };
}

/** Reads a stream into a growing string, for waiting on a log line. */
function collect(stream: ReadableStream<Uint8Array>): { text: string } {
  const sink = { text: "" };
  void (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of stream as unknown as AsyncIterable<Uint8Array>)
      sink.text += decoder.decode(chunk);
  })();
  return sink;
}

/** runHttp on port 0 with its own app (it closes the app when it stops). */
async function startRunHttp(graceMs: number) {
  const ownApp = await newApp({ http_port: "0" });
  let listening!: (url: string) => void;
  const url = new Promise<string>((resolve) => (listening = resolve));
  const done = runHttp(ownApp, ownApp.deps.config, { graceMs, onListening: listening });
  return { done, url: await url };
}

describe("runHttp", () => {
  test("SIGTERM lets a call in flight finish, then stops", async () => {
    const { done, url } = await startRunHttp(5_000);
    const client = await connectClient(new URL(`${url}/mcp`));
    const before = fake.requests.length;
    const call = client.callTool({ name: "contree_run", arguments: { command: "sleep 1", image: base } });
    while (!fake.requests.slice(before).some((r) => r.method === "POST" && r.path === "/v1/instances")) {
      await Bun.sleep(20);
    }
    process.emit("SIGTERM");
    const result = (await call) as CallToolResult;
    expect(result.isError).toBeFalsy();
    expect((result.structuredContent as { status: string }).status).toBe("SUCCESS");
    await done;
    await expect(fetch(`${url}/healthz`)).rejects.toThrow();
  });

  test("calls still running after the grace period are aborted and their runs cancelled", async () => {
    const { done, url } = await startRunHttp(300);
    const client = await connectClient(new URL(`${url}/mcp`));
    const before = fake.requests.length;
    const call = client
      .callTool({ name: "contree_run", arguments: { command: "sleep 30", image: base } })
      .then(
        () => "finished",
        () => "aborted",
      );
    while (!fake.requests.slice(before).some((r) => r.method === "POST" && r.path === "/v1/instances")) {
      await Bun.sleep(20);
    }
    process.emit("SIGINT");
    await done;
    expect(await call).toBe("aborted");
    expect(
      fake.requests.slice(before).some((r) => r.method === "DELETE" && r.path.startsWith("/v1/operations/")),
    ).toBe(true);
  });

  test("the server process on SIGTERM: stops accepting, lets a short call finish, cancels a long one, exits 0", async () => {
    const proc = Bun.spawn([BUN, join(ROOT, "src/main.ts"), "--mode", "http", "--http-port", "0"], {
      cwd: dir,
      env: processEnv(),
      stdout: "ignore",
      stderr: "pipe",
    });
    const stderr = collect(proc.stderr);
    try {
      expect(await until(() => /serving MCP at \S+/.test(stderr.text), 15_000)).toBe(true);
      const mcp = new URL(/serving MCP at (\S+\/mcp)/.exec(stderr.text)![1]!);
      const [shortClient, longClient] = await Promise.all([connectClient(mcp), connectClient(mcp)]);
      const before = fake.requests.length;
      const outcome = (promise: Promise<unknown>) =>
        promise.then(
          (result) => result as CallToolResult,
          () => "aborted" as const,
        );
      const long = outcome(
        longClient.callTool({ name: "contree_run", arguments: { command: "sleep 30", image: base } }),
      );
      const short = outcome(
        shortClient.callTool({ name: "contree_run", arguments: { command: "sleep 2", image: base } }),
      );
      const runs = () =>
        fake.requests.slice(before).filter((r) => r.method === "POST" && r.path === "/v1/instances").length;
      expect(await until(() => runs() === 2)).toBe(true);
      const signalledAt = Date.now();
      proc.kill("SIGTERM");
      // Stops accepting: soon a new connection is refused (or, on one still open, answered 503).
      let late: number | string = 200;
      for (let tries = 0; late === 200 && tries < 100; tries++) {
        await Bun.sleep(20);
        late = await fetch(`${mcp.origin}/healthz`).then(
          (r) => r.status,
          () => "refused",
        );
      }
      expect([503, "refused"]).toContain(late);

      const shortResult = await short;
      expect(shortResult).not.toBe("aborted");
      expect(((shortResult as CallToolResult).structuredContent as { status: string }).status).toBe(
        "SUCCESS",
      );
      expect(await long).toBe("aborted");
      expect(await proc.exited).toBe(0);
      // The grace period (5 s) passed before the long call was given up.
      expect(Date.now() - signalledAt).toBeGreaterThanOrEqual(4_500);
      expect(cancelled(before)).toBe(true);
      expect(stderr.text).not.toContain(fake.token);
    } finally {
      proc.kill("SIGKILL");
    }
  }, 30_000);

  test("main refuses --mode http on a public address without a token", () => {
    const result = Bun.spawnSync(
      [BUN, join(ROOT, "src/main.ts"), "--mode", "http", "--http-listen", "0.0.0.0", "--http-port", "0"],
      {
        cwd: dir,
        env: processEnv(),
        timeout: 20_000,
      },
    );
    expect(result.exitCode).toBe(1);
    const stderr = result.stderr.toString();
    expect(stderr).toContain("CONTREE_MCP_HTTP_TOKEN");
    expect(stderr).not.toContain(fake.token);
  });
});
