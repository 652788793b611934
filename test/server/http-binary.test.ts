import { afterAll, beforeAll, expect, test } from "bun:test";
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TOOLS } from "../../src/tools/index.ts";
import { startFakeContree } from "../support/fake-contree.ts";

// HTTP mode of the shipped artifact: the page (its HTML shell is bundled as text) and /mcp from the compiled binary
// alone, in a directory with nothing beside it.
const ROOT = join(import.meta.dir, "../..");
const dir = mkdtempSync(join(tmpdir(), "contree-mcp-http-binary-"));
const binary = join(dir, "contree-mcp");
let fake: Awaited<ReturnType<typeof startFakeContree>>;

beforeAll(async () => {
  const build = Bun.spawnSync([join(ROOT, "node_modules/.bin/bun"), "scripts/build.ts", binary], {
    cwd: ROOT,
    env: { ...process.env, PATH: `${join(ROOT, "node_modules/.bin")}:${process.env.PATH}` },
  });
  if (build.exitCode !== 0) throw new Error(`build failed: ${build.stderr.toString()}`);
  fake = await startFakeContree();
}, 120_000);

afterAll(async () => {
  await fake?.close();
  rmSync(dir, { recursive: true, force: true });
});

test("the compiled binary serves the page, /healthz and MCP over HTTP, and stops on SIGTERM", async () => {
  const proc = Bun.spawn([binary, "--mode", "http", "--http-port", "0"], {
    cwd: dir,
    env: {
      PATH: "/usr/bin:/bin",
      HOME: dir,
      CONTREE_MCP_CONFIG: join(dir, "none.ini"),
      CONTREE_MCP_TOKEN: fake.token,
      CONTREE_MCP_URL: fake.url,
      CONTREE_MCP_CACHE_GENERAL: join(dir, "cache.db"),
      CONTREE_MCP_CACHE_FILES: join(dir, "files.db"),
    },
    stdout: "pipe",
    stderr: "pipe",
  });
  try {
    const reader = proc.stderr.getReader();
    let log = "";
    while (!/serving MCP at (\S+)\/mcp/.test(log)) {
      const { done, value } = await reader.read();
      if (done) throw new Error(`the server exited before listening:\n${log}`);
      log += new TextDecoder().decode(value);
    }
    reader.releaseLock();
    const base = /serving MCP at (\S+)\/mcp/.exec(log)![1]!;

    const page = await fetch(`${base}/`);
    expect(page.headers.get("content-type")).toContain("text/html");
    const html = await page.text();
    expect(html).toStartWith("<!doctype html>");
    for (const tool of TOOLS) expect(html).toContain(`contree_${tool.name}`);
    // The stdio snippets start this very binary.
    expect(html).toContain(`-- ${binary}`);
    expect(html).not.toContain(fake.token);

    expect(await (await fetch(`${base}/healthz`)).json()).toMatchObject({ status: "ok", backend: "cloud" });

    const client = new Client({ name: "binary-test", version: "0" });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${base}/mcp`)));
    expect((await client.listTools()).tools.length).toBe(TOOLS.length);
    await client.close();

    proc.kill("SIGTERM");
    expect(await proc.exited).toBe(0);
    expect(await new Response(proc.stdout).text()).toBe("");
  } finally {
    proc.kill("SIGKILL");
  }
}, 30_000);
