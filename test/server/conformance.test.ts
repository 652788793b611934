import { afterAll, beforeAll, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openApp, type App } from "../../src/app.ts";
import { CloudBackend } from "../../src/backend/cloud/backend.ts";
import { resolveConfig } from "../../src/config.ts";
import { createHttpHandler } from "../../src/server/http.ts";
import { startFakeContree } from "../support/fake-contree.ts";

// The MCP conformance suite (HTTP only; it needs Node 22's fs.globSync, so it runs under bun --bun) over every
// active server scenario, with the expected failures listed and explained in test/conformance-baseline.yml.
const ROOT = join(import.meta.dir, "../..");
const BUN = join(ROOT, "node_modules/.bin/bun");
const CONFORMANCE = join(ROOT, "node_modules/.bin/conformance");
const BASELINE = join(ROOT, "test/conformance-baseline.yml");

let fake: Awaited<ReturnType<typeof startFakeContree>>;
let dir: string;
let app: App;
let server: ReturnType<typeof Bun.serve>;

beforeAll(async () => {
  fake = await startFakeContree();
  dir = mkdtempSync(join(tmpdir(), "contree-mcp-conformance-"));
  const config = resolveConfig({
    cache_general: join(dir, "cache.db"),
    cache_files: join(dir, "files.db"),
    local_root: join(dir, "local"),
  });
  app = await openApp(config, new CloudBackend({ url: fake.url, token: fake.token, version: "test" }));
  const handler = createHttpHandler(app, { listen: "127.0.0.1", port: 0 });
  server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: (req, s) => handler.fetch(req, s) });
});

afterAll(async () => {
  await server?.stop(true);
  await app?.close();
  await fake?.close();
  rmSync(dir, { recursive: true, force: true });
});

test.skipIf(!existsSync(CONFORMANCE))(
  `conformance server scenarios pass or are expected failures (needs ${CONFORMANCE})`,
  async () => {
    const proc = Bun.spawn(
      [
        BUN,
        "--bun",
        CONFORMANCE,
        "server",
        "--url",
        `http://127.0.0.1:${server.port}/mcp`,
        "--expected-failures",
        BASELINE,
        "-o",
        join(dir, "results"),
      ],
      { cwd: dir, stdout: "pipe", stderr: "pipe", env: { ...process.env, NO_COLOR: "1" } },
    );
    const [out, err, code] = await Promise.all([
      new Response(proc.stdout).text(),
      new Response(proc.stderr).text(),
      proc.exited,
    ]);
    const report = Bun.stripANSI(out + err);
    // On failure, show the runner's summary: which scenarios failed unexpectedly, or which now pass (stale entries).
    expect({ code, summary: code === 0 ? "" : report.slice(report.indexOf("=== SUMMARY ===")) }).toEqual({
      code: 0,
      summary: "",
    });
    for (const scenario of ["server-initialize", "ping", "tools-list", "dns-rebinding-protection"]) {
      expect(report).toMatch(new RegExp(`✓ ${scenario}: [1-9]\\d* passed, 0 failed`));
    }
  },
  60_000,
);
