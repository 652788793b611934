import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Client } from "@modelcontextprotocol/client";
import { StdioClientTransport } from "@modelcontextprotocol/client/stdio";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { hostTarget } from "../../scripts/build.ts";
import { writeMainPackage, writePlatformPackage } from "../../scripts/npm.ts";
import { BUN_PATH, hostBinary, run } from "./support.ts";

/** A compiled binary, a download or npm on a busy machine: seconds each, far over the default 5 s. */
const SLOW = 60_000;

// What `npx contree-mcp` does on a user's machine, offline: pack the main package and this platform's package,
// install both from the tarballs into an empty project, and run the launcher npm put on the PATH.
const target = hostTarget();
const dir = mkdtempSync(join(tmpdir(), "contree-mcp-npm-"));
const app = join(dir, "app");
const launcher = join(app, "node_modules/.bin/contree-mcp");

/** npm with nothing from the developer's npm setup and no registry: everything must come from the tarballs. */
function npmEnv(): Record<string, string | undefined> {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.toLowerCase().startsWith("npm_")),
  );
  return {
    ...env,
    npm_config_cache: join(dir, "npm-cache"),
    npm_config_registry: "http://127.0.0.1:9/",
    npm_config_update_notifier: "false",
    npm_config_userconfig: join(dir, "npmrc"),
  };
}

beforeAll(async () => {
  if (!target) return;
  const binary = await hostBinary();
  const out = join(dir, "out");
  const packs = join(dir, "packs");
  mkdirSync(packs);
  mkdirSync(app);
  const packages = [await writeMainPackage(out), await writePlatformPackage(out, target, binary)];
  const packed = await Promise.all(
    packages.map(async (pkg) => {
      const { stdout } = await run(["npm", "pack", "--pack-destination", packs], { cwd: pkg, env: npmEnv() });
      return join(packs, stdout.trim().split("\n").at(-1)!);
    }),
  );
  await Bun.write(join(app, "package.json"), '{ "name": "app", "private": true }\n');
  await run(["npm", "install", "--offline", "--no-audit", "--no-fund", ...packed], {
    cwd: app,
    env: npmEnv(),
  });
}, 240_000);

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(!target)(`npm packages (host ${target?.name ?? "not a shipped platform"})`, () => {
  test(
    "npx contree-mcp --version runs the platform binary",
    async () => {
      const { stdout } = await run(["npx", "--offline", "contree-mcp", "--version"], {
        cwd: app,
        env: npmEnv(),
      });
      const direct = await run([await hostBinary(), "--version"], { cwd: app });
      expect(stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
      expect(stdout.trim()).toBe(direct.stdout.trim());
    },
    SLOW,
  );

  test(
    "MCP initialize and tools/list over the launcher's stdio",
    async () => {
      const transport = new StdioClientTransport({
        command: launcher,
        cwd: app,
        env: {
          PATH: process.env.PATH ?? "/usr/bin:/bin",
          HOME: dir,
          CONTREE_MCP_CACHE_GENERAL: join(dir, "c.db"),
        },
        stderr: "pipe",
      });
      const client = new Client({ name: "npm-test", version: "0" });
      await client.connect(transport);
      expect(client.getServerVersion()?.name).toBe("contree-mcp");
      const { tools } = await client.listTools();
      expect(tools.map((t) => t.name)).toContain("contree_run");
      await client.close();
    },
    SLOW,
  );

  test(
    "the exit code of the binary comes through",
    async () => {
      const proc = Bun.spawn([launcher, "--mode", "bogus"], { cwd: app, stdout: "pipe", stderr: "pipe" });
      const [code, stderr] = await Promise.all([proc.exited, new Response(proc.stderr).text()]);
      expect(code).toBe(1);
      expect(stderr).toContain("Invalid mode 'bogus'");
      // Any code, not just 1, and a death by signal stays a death by that signal.
      const other = { cwd: app, env: { PATH: process.env.PATH, CONTREE_MCP_BINARY_PATH: "/bin/sh" } };
      expect(await Bun.spawn([launcher, "-c", "exit 7"], other).exited).toBe(7);
      const env = Bun.spawn([launcher, "-c", 'echo "$CONTREE_MCP_NPM_LAUNCHER"'], {
        ...other,
        stdout: "pipe",
      });
      expect(await new Response(env.stdout).text()).toEndWith(
        "/node_modules/contree-mcp/bin/contree-mcp.cjs\n",
      );
      const killed = Bun.spawn([launcher, "-c", "kill -TERM $$"], other);
      await killed.exited;
      expect(killed.signalCode).toBe("SIGTERM");
    },
    SLOW,
  );

  test.skipIf(process.platform === "win32")(
    "SIGTERM to the launcher stops the server too",
    async () => {
      const proc = Bun.spawn([launcher], {
        cwd: app,
        env: { PATH: process.env.PATH, HOME: dir, CONTREE_MCP_CACHE_GENERAL: join(dir, "s.db") },
        stdin: "pipe",
        stdout: "pipe",
        stderr: "ignore",
      });
      // Wait until the server answers, so the binary surely runs under the launcher.
      const init = {
        jsonrpc: "2.0",
        id: 1,
        method: "initialize",
        params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "t", version: "0" } },
      };
      proc.stdin.write(`${JSON.stringify(init)}\n`);
      const reader = proc.stdout.getReader();
      const first = await reader.read();
      expect(new TextDecoder().decode(first.value)).toContain('"id":1');
      const children = Bun.spawnSync(["pgrep", "-P", String(proc.pid)])
        .stdout.toString()
        .trim()
        .split("\n");
      expect(children.length).toBe(1);
      proc.kill("SIGTERM");
      await proc.exited;
      expect(proc.signalCode === "SIGTERM" || proc.exitCode === 0).toBe(true);
      // The binary is gone too: no orphan keeps running after its client let go.
      const alive = Bun.spawnSync(["kill", "-0", children[0]!]);
      expect(alive.exitCode).not.toBe(0);
    },
    SLOW,
  );

  test(
    "without the platform package the launcher says what is missing",
    async () => {
      const lone = join(dir, "out/contree-mcp/bin/contree-mcp.cjs");
      const proc = Bun.spawn(["node", lone, "--version"], {
        cwd: dir,
        stderr: "pipe",
        env: { PATH: BUN_PATH },
      });
      const [code, stderr] = await Promise.all([proc.exited, new Response(proc.stderr).text()]);
      expect(code).toBe(1);
      expect(stderr).toContain(`@contree-mcp/${target!.name}`);
      expect(stderr).toContain("not installed");
    },
    SLOW,
  );
});
