import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Client } from "@modelcontextprotocol/client";
import { StdioClientTransport } from "@modelcontextprotocol/client/stdio";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startFakeContree, cloudBackendFor } from "../support/fake-contree.ts";
import { connect } from "../support/mcp.ts";

// The shipped artifact, end to end: compile it, move nothing beside it, talk MCP over its stdio.
const dir = mkdtempSync(join(tmpdir(), "contree-mcp-binary-"));
const binary = join(dir, "contree-mcp");
let fake: Awaited<ReturnType<typeof startFakeContree>>;

beforeAll(async () => {
  const build = Bun.spawnSync(["bun", "scripts/build.ts", binary], {
    cwd: join(import.meta.dir, "../.."),
    env: { ...process.env, PATH: `${join(import.meta.dir, "../../node_modules/.bin")}:${process.env.PATH}` },
  });
  if (build.exitCode !== 0) throw new Error(`build failed: ${build.stderr.toString()}`);
  fake = await startFakeContree();
}, 120_000);

afterAll(async () => {
  await fake?.close();
});

function env(extra: Record<string, string> = {}): Record<string, string> {
  return {
    PATH: "/usr/bin:/bin",
    HOME: dir,
    CONTREE_MCP_CACHE_GENERAL: join(dir, "cache.db"),
    CONTREE_MCP_CACHE_FILES: join(dir, "files.db"),
    ...extra,
  };
}

describe("compiled binary", () => {
  test("--version and --help work, and --help shows no secret", () => {
    const version = Bun.spawnSync([binary, "--version"], { env: env(), cwd: dir });
    expect(version.exitCode).toBe(0);
    expect(version.stdout.toString().trim()).toMatch(/^\d+\.\d+\.\d+/);
    const help = Bun.spawnSync([binary, "--help"], {
      env: env({ CONTREE_MCP_TOKEN: "sekrit-help-token" }),
      cwd: dir,
    });
    expect(help.exitCode).toBe(0);
    const text = help.stdout.toString() + help.stderr.toString();
    expect(text).toContain("--tool-prefix");
    expect(text).not.toContain("sekrit-help-token");
  });

  test("serves MCP over stdio against the cloud backend, logging only to stderr", async () => {
    const transport = new StdioClientTransport({
      command: binary,
      cwd: dir,
      env: env({ CONTREE_MCP_TOKEN: fake.token, CONTREE_MCP_URL: fake.url, CONTREE_MCP_LOG_LEVEL: "debug" }),
      stderr: "pipe",
    });
    let stderr = "";
    transport.stderr?.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const client = new Client({ name: "binary-test", version: "0" });
    await client.connect(transport);
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name)).toContain("contree_run");
    // The binary lists the JSON Schemas the build converted; they must be what the source converts now.
    const source = await connect(cloudBackendFor(fake));
    try {
      expect(tools).toEqual((await source.client.listTools()).tools);
    } finally {
      await source.close();
    }
    const result = await client.callTool({ name: "contree_list_images", arguments: {} });
    expect(result.isError).toBeFalsy();
    const ran = await client.callTool({
      name: "contree_run",
      arguments: { command: "echo hello", image: fake.addImage({ tag: "base" }).uuid },
    });
    expect(ran.isError).toBeFalsy();
    expect((ran.structuredContent as { status: string }).status).toBe("SUCCESS");
    await client.close();
    expect(stderr).toContain("backend: ConTree cloud");
    expect(stderr).not.toContain(fake.token);
  });
});
