import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { CLIENTS } from "../../src/cli/clients.ts";
import { currentServer, runSetup, type Output, type SetupOptions } from "../../src/cli/setup.ts";

// Every client path derives from HOME (and XDG_CONFIG_HOME on Linux), pointed at a fresh dir per test.
let home: string;
const saved = {
  HOME: process.env.HOME,
  XDG_CONFIG_HOME: process.env.XDG_CONFIG_HOME,
  CODEX_HOME: process.env.CODEX_HOME,
};

beforeEach(() => {
  home = mkdtempSync(join(tmpdir(), "contree-mcp-setup-"));
  process.env.HOME = home;
  process.env.XDG_CONFIG_HOME = join(home, ".config");
  delete process.env.CODEX_HOME;
});

afterEach(() => {
  Object.assign(process.env, saved);
  if (saved.CODEX_HOME === undefined) delete process.env.CODEX_HOME;
  rmSync(home, { recursive: true, force: true });
});

function capture(): Output & { stdout: string; stderr: string } {
  const io = {
    stdout: "",
    stderr: "",
    out(text: string) {
      io.stdout += text;
    },
    err(text: string) {
      io.stderr += text;
    },
  };
  return io;
}

function setup(client: string, extra: Partial<SetupOptions> = {}) {
  const io = capture();
  const code = runSetup({ client, command: "/opt/contree/contree-mcp", ...extra }, io);
  return { code, ...io };
}

function backups(path: string): string[] {
  return readdirSync(dirname(path)).filter((name) => name.startsWith(`${basename(path)}.bak-`));
}

const JSON_SHAPES: Record<string, { key: string; type?: string }> = {
  "claude-code": { key: "mcpServers", type: "stdio" },
  "claude-desktop": { key: "mcpServers" },
  cursor: { key: "mcpServers", type: "stdio" },
  vscode: { key: "servers", type: "stdio" },
};

describe("setup: each client from nothing", () => {
  test("paths live under HOME", () => {
    for (const client of Object.values(CLIENTS)) expect(client.path().startsWith(home)).toBe(true);
    expect(CLIENTS["claude-code"]!.path()).toBe(join(home, ".claude.json"));
    expect(CLIENTS.codex!.path()).toBe(join(home, ".codex", "config.toml"));
    expect(CLIENTS.cursor!.path()).toBe(join(home, ".cursor", "mcp.json"));
    if (process.platform === "linux") {
      expect(CLIENTS.vscode!.path()).toBe(join(home, ".config", "Code", "User", "mcp.json"));
      expect(CLIENTS["claude-desktop"]!.path()).toBe(
        join(home, ".config", "Claude", "claude_desktop_config.json"),
      );
    }
  });

  for (const [id, shape] of Object.entries(JSON_SHAPES)) {
    test(id, () => {
      const result = setup(id);
      expect(result.code).toBe(0);
      const path = CLIENTS[id]!.path();
      const written = JSON.parse(readFileSync(path, "utf8"));
      expect(written).toEqual({
        [shape.key]: {
          contree: {
            ...(shape.type ? { type: shape.type } : {}),
            command: "/opt/contree/contree-mcp",
            args: [],
          },
        },
      });
      expect(statSync(path).mode & 0o777).toBe(0o600);
      expect(backups(path)).toEqual([]);
      expect(result.stdout).toContain(`Added 'contree'`);
      expect(result.stdout).toContain("no token written");
    });
  }

  test("codex", () => {
    expect(setup("codex", { serverArgs: ["--backend", "local"] }).code).toBe(0);
    const text = readFileSync(join(home, ".codex", "config.toml"), "utf8");
    expect(text).toBe(
      '[mcp_servers.contree]\ncommand = "/opt/contree/contree-mcp"\nargs = ["--backend", "local"]\n',
    );
  });

  test("codex honours CODEX_HOME", () => {
    process.env.CODEX_HOME = join(home, "elsewhere");
    expect(setup("codex").code).toBe(0);
    expect(existsSync(join(home, "elsewhere", "config.toml"))).toBe(true);
  });
});

describe("setup: existing files", () => {
  const CLAUDE = `{
    "numStartups": 1.50,
    "big": 12345678901234567890,
    "mcpServers": {
        "other": {"command": "x"}
    },
    "projects": {"/a": {"note": "\\u00e9"}}
}
`;

  test("JSON: only our member is added, every other byte stays; a backup is kept; a second run changes nothing", () => {
    const path = join(home, ".claude.json");
    writeFileSync(path, CLAUDE, { mode: 0o644 });
    const first = setup("claude-code");
    expect(first.code).toBe(0);
    const after = readFileSync(path, "utf8");
    expect(after).toBe(
      CLAUDE.replace(
        `"other": {"command": "x"}\n`,
        `"other": {"command": "x"},
        "contree": {
            "type": "stdio",
            "command": "/opt/contree/contree-mcp",
            "args": []
        }\n`,
      ),
    );
    // The file keeps its mode; the backup holds the original.
    expect(statSync(path).mode & 0o777).toBe(0o644);
    const [backup] = backups(path);
    expect(backup).toMatch(/^\.claude\.json\.bak-\d{8}T\d{6}Z$/);
    expect(readFileSync(join(home, backup!), "utf8")).toBe(CLAUDE);
    expect(first.stdout).toContain("backup:");

    const second = setup("claude-code");
    expect(second.code).toBe(0);
    expect(second.stdout).toContain("nothing changed");
    expect(readFileSync(path, "utf8")).toBe(after);
    expect(backups(path)).toHaveLength(1);
  });

  test("an existing entry is updated in place and keeps the keys the user added", () => {
    const path = join(home, ".cursor", "mcp.json");
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(
      path,
      '{"mcpServers": {"contree": {"command": "uvx", "args": ["contree-mcp"], "env": {"A": "1"}, "timeout": 600}, "z": {}}}\n',
    );
    expect(setup("cursor").code).toBe(0);
    const written = JSON.parse(readFileSync(path, "utf8"));
    expect(written.mcpServers.contree).toEqual({
      type: "stdio",
      command: "/opt/contree/contree-mcp",
      args: [],
      env: { A: "1" },
      timeout: 600,
    });
    expect(written.mcpServers.z).toEqual({});
    expect(setup("cursor").stdout).toContain("nothing changed");
  });

  test("VS Code JSONC: comments and trailing commas survive", () => {
    const path = CLIENTS.vscode!.path();
    mkdirSync(dirname(path), { recursive: true });
    const original =
      '// mine\n{\n\t"servers": {\n\t\t// gh\n\t\t"github": {"type": "http", "url": "https://x"},\n\t},\n\t"inputs": [],\n}\n';
    writeFileSync(path, original);
    expect(setup("vscode").code).toBe(0);
    const after = readFileSync(path, "utf8");
    expect(
      after.startsWith(
        '// mine\n{\n\t"servers": {\n\t\t// gh\n\t\t"github": {"type": "http", "url": "https://x"},\n\t\t"contree": {\n\t\t\t"type": "stdio",',
      ),
    ).toBe(true);
    expect(after.endsWith('\t},\n\t"inputs": [],\n}\n')).toBe(true);
    expect(Bun.JSONC.parse(after)).toMatchObject({
      servers: { github: { type: "http" }, contree: { type: "stdio" } },
    });
  });

  test("TOML: our table (and its sub-table) is replaced, the rest is byte-identical", () => {
    const path = join(home, ".codex", "config.toml");
    mkdirSync(dirname(path), { recursive: true });
    const head = '# my codex\nmodel = "o3"\n\n[mcp_servers.other]\ncommand = "x"\n\n';
    const tail = '\n# profiles\n[profiles.a]\nmodel = "b"\ntext = """\n[mcp_servers.contree]\n"""\n';
    writeFileSync(
      path,
      `${head}[mcp_servers.contree]\ncommand = "uvx"\nargs = ["contree-mcp"]\nstartup_timeout_sec = 30\n\n[mcp_servers.contree.env]\nFOO = "1"\n${tail}`,
    );
    expect(setup("codex").code).toBe(0);
    expect(readFileSync(path, "utf8")).toBe(
      `${head}[mcp_servers.contree]\ncommand = "/opt/contree/contree-mcp"\nargs = []\nstartup_timeout_sec = 30\nenv = { FOO = "1" }\n${tail}`,
    );
    expect(backups(path)).toHaveLength(1);
    expect(setup("codex").stdout).toContain("nothing changed");
    expect(backups(path)).toHaveLength(1);
  });

  test("TOML: appended after the last line when absent", () => {
    const path = join(home, ".codex", "config.toml");
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, 'model = "o3"');
    expect(setup("codex", { name: "sandbox box" }).code).toBe(0);
    expect(readFileSync(path, "utf8")).toBe(
      'model = "o3"\n\n[mcp_servers."sandbox box"]\ncommand = "/opt/contree/contree-mcp"\nargs = []\n',
    );
  });

  test("a CRLF file stays CRLF", () => {
    const path = join(home, ".claude.json");
    writeFileSync(path, '{\r\n  "a": 1\r\n}\r\n');
    expect(setup("claude-code").code).toBe(0);
    const after = readFileSync(path, "utf8");
    expect(after).not.toMatch(/(?<!\r)\n/);
    expect(JSON.parse(after).mcpServers.contree.command).toBe("/opt/contree/contree-mcp");
  });

  test("a symlinked config is edited where it lives", () => {
    const real = join(home, "dotfiles", "mcp.json");
    mkdirSync(dirname(real), { recursive: true });
    writeFileSync(real, "{}\n");
    mkdirSync(join(home, ".cursor"));
    symlinkSync(real, join(home, ".cursor", "mcp.json"));
    expect(setup("cursor").code).toBe(0);
    expect(JSON.parse(readFileSync(real, "utf8")).mcpServers.contree.command).toBe(
      "/opt/contree/contree-mcp",
    );
  });
});

describe("setup: --print, tokens, bad files", () => {
  test("--print shows a diff and writes nothing", () => {
    const path = join(home, ".claude.json");
    writeFileSync(path, '{\n  "a": 1\n}\n');
    const result = setup("claude-code", { print: true });
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`--- ${path}`);
    expect(result.stdout).toContain('+  "mcpServers": {');
    expect(result.stdout).toContain('+      "command": "/opt/contree/contree-mcp",');
    expect(result.stdout).toContain("was not changed");
    expect(readFileSync(path, "utf8")).toBe('{\n  "a": 1\n}\n');
    expect(backups(path)).toEqual([]);
  });

  test("a token goes into env only when given, and --print never shows it", () => {
    const token = "tok-very-secret-123";
    const printed = setup("codex", { env: { CONTREE_MCP_TOKEN: token }, print: true });
    expect(printed.stdout).toContain('env = { CONTREE_MCP_TOKEN = "***" }');
    expect(printed.stdout).not.toContain(token);
    const written = setup("codex", { env: { CONTREE_MCP_TOKEN: token } });
    expect(written.stdout).not.toContain(token);
    expect(written.stdout).toContain("clear text");
    expect(Bun.TOML.parse(readFileSync(join(home, ".codex", "config.toml"), "utf8"))).toEqual({
      mcp_servers: {
        contree: { command: "/opt/contree/contree-mcp", args: [], env: { CONTREE_MCP_TOKEN: token } },
      },
    });
  });

  test("a token narrows a world-readable config and its backup to 0600, and says so", () => {
    const token = "tok-very-secret-456";
    const path = join(home, ".claude.json");
    writeFileSync(path, '{"a": 1}\n');
    chmodSync(path, 0o644);
    const result = setup("claude-code", { env: { CONTREE_MCP_TOKEN: token } });
    expect(result.code).toBe(0);
    expect(readFileSync(path, "utf8")).toContain(token);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const [backup] = backups(path);
    expect(statSync(join(home, backup!)).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(home, backup!), "utf8")).toBe('{"a": 1}\n');
    expect(result.stdout).toContain("narrowed from 0644 to 0600");

    // Without a token the mode is the user's business: an update keeps it.
    chmodSync(path, 0o640);
    expect(setup("claude-code").code).toBe(0);
    expect(statSync(path).mode & 0o777).toBe(0o640);
  });

  const BROKEN: Record<string, [string, string]> = {
    "claude-code": [".claude.json", '{"mcpServers": {'],
    cursor: [".cursor/mcp.json", "not json"],
    codex: [".codex/config.toml", "[mcp_servers.contree\ncommand = 1\n"],
  };
  for (const [id, [file, text]] of Object.entries(BROKEN)) {
    test(`${id}: a file that does not parse is left untouched, exit 1`, () => {
      const path = join(home, file);
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, text);
      const before = statSync(path).mtimeMs;
      const result = setup(id);
      expect(result.code).toBe(1);
      expect(result.stderr).toContain("does not parse");
      expect(result.stderr).toContain("left untouched");
      expect(result.stderr).toContain("/opt/contree/contree-mcp");
      expect(readFileSync(path, "utf8")).toBe(text);
      expect(statSync(path).mtimeMs).toBe(before);
      expect(backups(path)).toEqual([]);
    });
  }

  test("a shape we cannot edit (servers as an inline TOML table) is left untouched", () => {
    const path = join(home, ".codex", "config.toml");
    mkdirSync(dirname(path), { recursive: true });
    const text = 'mcp_servers = { other = { command = "x" } }\n';
    writeFileSync(path, text);
    const result = setup("codex");
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("left untouched");
    expect(readFileSync(path, "utf8")).toBe(text);
  });

  test("a JSON servers member that is not an object is left untouched", () => {
    const path = join(home, ".claude.json");
    writeFileSync(path, '{"mcpServers": []}');
    const result = setup("claude-code");
    expect(result.code).toBe(1);
    expect(readFileSync(path, "utf8")).toBe('{"mcpServers": []}');
  });
});

describe("the command setup writes", () => {
  const compiled = (execPath: string, launcher?: string) =>
    currentServer({ compiled: true, execPath, main: "/$bunfs/root/contree-mcp", launcher });

  test("a downloaded binary: its own path", () => {
    expect(compiled("/home/me/.local/bin/contree-mcp")).toEqual({
      command: "/home/me/.local/bin/contree-mcp",
      args: [],
    });
  });

  test("Homebrew: the opt/ path, which survives brew upgrade", () => {
    expect(compiled("/opt/homebrew/Cellar/contree-mcp/0.2.0/bin/contree-mcp").command).toBe(
      "/opt/homebrew/opt/contree-mcp/bin/contree-mcp",
    );
  });

  test("npx and bunx caches: the npx/bunx form, found through the npm launcher", () => {
    const platformBinary = "/home/me/.npm/_npx/ab12/node_modules/@contree-mcp/linux-x64/bin/contree-mcp";
    const launcher = "/home/me/.npm/_npx/ab12/node_modules/contree-mcp/bin/contree-mcp.cjs";
    expect(compiled(platformBinary, launcher)).toMatchObject({ command: "npx", args: ["-y", "contree-mcp"] });
    expect(
      compiled("/tmp/bunx-0-contree-mcp@latest/node_modules/@contree-mcp/linux-x64/bin/contree-mcp"),
    ).toMatchObject({ command: "bunx", args: ["contree-mcp"] });
  });

  test("a global npm install: node and the launcher, not the platform package's binary", () => {
    const launcher = "/usr/lib/node_modules/contree-mcp/bin/contree-mcp.cjs";
    expect(compiled("/usr/lib/node_modules/@contree-mcp/linux-x64/bin/contree-mcp", launcher)).toMatchObject({
      command: "node",
      args: [launcher],
    });
  });

  test("from source: bun and the absolute main.ts", () => {
    expect(
      currentServer({ compiled: false, execPath: "/usr/bin/bun", main: "/src/contree/src/main.ts" }),
    ).toMatchObject({
      command: "/usr/bin/bun",
      args: ["/src/contree/src/main.ts"],
    });
  });
});
