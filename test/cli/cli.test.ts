import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { cli } from "../support/cli.ts";
import { startFakeContree, type FakeContree } from "../support/fake-contree.ts";

// doctor and setup through the real command line: citty wiring, stdout/stderr and exit codes.
const ROOT = resolve(import.meta.dir, "../..");
const BUN = join(ROOT, "node_modules", ".bin", "bun");
const MAIN = join(ROOT, "src", "main.ts");
const TOKEN = "cli-secret-token-77";
let fake: FakeContree;
// Every test spawns the CLI, a second or more each on a busy machine.
const SLOW = 60_000;

beforeAll(async () => {
  fake = await startFakeContree({ token: TOKEN });
});

afterAll(async () => {
  await fake.close();
});

function freshHome(): string {
  return mkdtempSync(join(tmpdir(), "contree-mcp-cli-"));
}

describe("contree-mcp doctor", () => {
  test(
    "--json with an accepted token: exit 0, the token nowhere in the output",
    async () => {
      const home = freshHome();
      const result = await cli(home, ["doctor", "--json", "--url", fake.url], { CONTREE_MCP_TOKEN: TOKEN });
      expect(result.code).toBe(0);
      const report = JSON.parse(result.stdout);
      expect(report.ok).toBe(true);
      expect(report.backend.reason).toContain("env CONTREE_MCP_TOKEN");
      expect(result.stdout + result.stderr).not.toContain(TOKEN);
    },
    SLOW,
  );

  test(
    "a rejected token: text report, exit 1",
    async () => {
      const home = freshHome();
      const result = await cli(home, ["doctor", "--url", fake.url, "--token", "nope-nope-nope"]);
      expect(result.code).toBe(1);
      expect(result.stdout).toMatch(/fail\s+token\s+the service rejected the token/);
      expect(result.stdout).toContain("fix:");
      expect(result.stdout + result.stderr).not.toContain("nope-nope-nope");
    },
    SLOW,
  );
});

describe("contree-mcp setup", () => {
  test(
    "from source it writes bun and the absolute main.ts; settings flags pass on; idempotent",
    async () => {
      const home = freshHome();
      const first = await cli(home, ["setup", "cursor", "--backend", "local"]);
      expect(first.code).toBe(0);
      expect(first.stderr).toContain("running from source");
      const written = JSON.parse(readFileSync(join(home, ".cursor", "mcp.json"), "utf8"));
      expect(written.mcpServers.contree).toEqual({
        type: "stdio",
        command: process.execPath,
        args: [MAIN, "--backend", "local"],
      });
      const second = await cli(home, ["setup", "cursor", "--backend", "local"]);
      expect(second.code).toBe(0);
      expect(second.stdout).toContain("nothing changed");
    },
    SLOW,
  );

  test(
    "--command with arguments after --, and --print",
    async () => {
      const home = freshHome();
      const result = await cli(home, [
        "setup",
        "codex",
        "--print",
        "--command",
        "npx",
        "--",
        "-y",
        "contree-mcp",
      ]);
      expect(result.code).toBe(0);
      expect(result.stdout).toContain('+command = "npx"');
      expect(result.stdout).toContain('+args = ["-y", "contree-mcp"]');
    },
    SLOW,
  );

  test(
    "the token is written only with --env-token, and never printed",
    async () => {
      const home = freshHome();
      const plain = await cli(home, ["setup", "codex", "--command", "/opt/c", "--token", TOKEN]);
      expect(plain.code).toBe(0);
      expect(plain.stderr).toContain("--env-token");
      const config = join(home, ".codex", "config.toml");
      expect(readFileSync(config, "utf8")).not.toContain(TOKEN);

      const withToken = await cli(home, ["setup", "codex", "--command", "/opt/c", "--env-token"], {
        CONTREE_MCP_TOKEN: TOKEN,
      });
      expect(withToken.code).toBe(0);
      expect(withToken.stdout + withToken.stderr).not.toContain(TOKEN);
      expect(Bun.TOML.parse(readFileSync(config, "utf8"))).toEqual({
        mcp_servers: { contree: { command: "/opt/c", args: [], env: { CONTREE_MCP_TOKEN: TOKEN } } },
      });

      const none = await cli(freshHome(), ["setup", "codex", "--env-token"]);
      expect(none.code).toBe(1);
      expect(none.stderr).toContain("no token is configured");
    },
    SLOW,
  );

  test(
    "bad input: unknown client, no client, a config that does not parse",
    async () => {
      const home = freshHome();
      const unknown = await cli(home, ["setup", "emacs"]);
      expect(unknown.code).toBe(1);
      expect(unknown.stderr).toContain("Unknown client 'emacs'");
      expect((await cli(home, ["setup"])).code).toBe(1);
      mkdirSync(join(home, ".cursor"));
      writeFileSync(join(home, ".cursor", "mcp.json"), "{oops");
      const broken = await cli(home, ["setup", "cursor"]);
      expect(broken.code).toBe(1);
      expect(broken.stderr).toContain("left untouched");
      expect(readFileSync(join(home, ".cursor", "mcp.json"), "utf8")).toBe("{oops");
    },
    SLOW,
  );

  test("a compiled binary writes its own absolute path", async () => {
    const home = freshHome();
    const binary = join(home, "bin", "contree-mcp");
    const build = Bun.spawnSync([BUN, "build", "--compile", MAIN, "--outfile", binary], { cwd: home });
    expect(build.exitCode).toBe(0);
    const result = await cli(home, ["setup", "claude-code"], {}, [binary]);
    expect(result.code).toBe(0);
    expect(result.stderr).toBe("");
    const written = JSON.parse(readFileSync(join(home, ".claude.json"), "utf8"));
    expect(written.mcpServers.contree).toEqual({ type: "stdio", command: binary, args: [] });
  }, 120_000);
});

describe("contree-mcp serve", () => {
  test(
    "a bad setting is one line on stderr and exit 1, not a stack trace",
    async () => {
      const result = await cli(freshHome(), ["--mode", "bogus"]);
      expect(result.code).toBe(1);
      expect(result.stdout).toBe("");
      expect(result.stderr.trim()).toBe(
        "[contree-mcp] error: Invalid mode 'bogus' (from flag): use one of stdio, http.",
      );
    },
    SLOW,
  );
});
