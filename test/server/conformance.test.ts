import { afterAll, beforeAll, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openApp, type App } from "../../src/app.ts";
import { resolveConfig } from "../../src/config.ts";
import { createHttpHandler } from "../../src/server/http.ts";
import { startFakeContree, cloudBackendFor } from "../support/fake-contree.ts";

// The MCP conformance suite (HTTP only; it needs Node 22's fs.globSync, so it runs under bun --bun), with the
// expected failures listed and explained in the baseline files. Two runs:
// - @modelcontextprotocol/conformance 0.1.16 (npm `latest`): every active scenario of the 2025 revisions;
// - its 0.2.0 pre-release, installed as the alias `conformance-2026`: the scenarios that revision 2026-07-28
//   requires (`--requirements 2026-07-28`). Skipped, saying so, when that devDependency is not installed.
const ROOT = join(import.meta.dir, "../..");
const BUN = join(ROOT, "node_modules/.bin/bun");
const CONFORMANCE = join(ROOT, "node_modules/@modelcontextprotocol/conformance/dist/index.js");
const CONFORMANCE_2026 = join(ROOT, "node_modules/conformance-2026/dist/index.js");

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
  app = await openApp(config, cloudBackendFor(fake));
  const handler = createHttpHandler(app, { listen: "127.0.0.1", port: 0 });
  server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: (req, s) => handler.fetch(req, s) });
});

afterAll(async () => {
  await server?.stop(true);
  await app?.close();
  await fake?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Runs `conformance server` and returns its exit code and its report without colours. */
async function conformance(
  entry: string,
  baseline: string,
  extra: string[],
): Promise<{ code: number; report: string }> {
  const proc = Bun.spawn(
    [
      BUN,
      "--bun",
      entry,
      "server",
      "--url",
      `http://127.0.0.1:${server.port}/mcp`,
      "--expected-failures",
      join(ROOT, "test", baseline),
      "-o",
      join(dir, `results-${baseline}`),
      ...extra,
    ],
    { cwd: dir, stdout: "pipe", stderr: "pipe", env: { ...process.env, NO_COLOR: "1" } },
  );
  const [out, err, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  return { code, report: Bun.stripANSI(out + err) };
}

/** On failure, shows the runner's summary: which scenarios failed unexpectedly, or which now pass (stale entries). */
function expectClean({ code, report }: { code: number; report: string }): void {
  expect({ code, summary: code === 0 ? "" : report.slice(report.indexOf("=== SUMMARY ===")) }).toEqual({
    code: 0,
    summary: "",
  });
}

function expectPassed(report: string, scenarios: string[]): void {
  for (const scenario of scenarios) {
    expect(report).toMatch(new RegExp(`✓ ${scenario}: [1-9]\\d* passed, 0 failed`));
  }
}

test("conformance (2025 revisions): every active server scenario passes or is an expected failure", async () => {
  // A devDependency: missing means a broken install, which should fail rather than skip.
  if (!existsSync(CONFORMANCE)) throw new Error(`${CONFORMANCE} is missing: run npm install`);
  const run = await conformance(CONFORMANCE, "conformance-baseline.yml", []);
  expectClean(run);
  expectPassed(run.report, [
    "server-initialize",
    "ping",
    "tools-list",
    "resources-list",
    "prompts-list",
    "dns-rebinding-protection",
  ]);
}, 90_000);

test.skipIf(!existsSync(CONFORMANCE_2026))(
  `conformance (2026-07-28 requirements) passes or fails as the baseline says (needs the devDependency conformance-2026 = npm:@modelcontextprotocol/conformance@0.2.0-alpha.12)`,
  async () => {
    const run = await conformance(CONFORMANCE_2026, "conformance-baseline-2026.yml", [
      "--requirements",
      "2026-07-28",
    ]);
    expectClean(run);
    expectPassed(run.report, [
      "tools-list",
      "resources-list",
      "prompts-list",
      "dns-rebinding-protection",
      "sep-2164-resource-not-found",
      "caching",
      "http-header-validation",
    ]);
  },
  90_000,
);
