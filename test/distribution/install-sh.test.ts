import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { VERSION, hostTarget, writeArchive, writeChecksums } from "../../scripts/build.ts";
import { ROOT, hostBinary } from "./support.ts";

/** A compiled binary, a download or npm on a busy machine: seconds each, far over the default 5 s. */
const SLOW = 60_000;

// install.sh against a local stand-in for GitHub releases: <base>/latest/download/<file> and
// <base>/download/v<version>/<file>, serving an archive of this machine's binary.
const target = hostTarget();
const dir = mkdtempSync(join(tmpdir(), "contree-mcp-install-"));
const files = new Map<string, Uint8Array>();
const requests: string[] = [];
let server: ReturnType<typeof Bun.serve> | undefined;
let archive = "";
let sums = "";

beforeAll(async () => {
  if (!target || target.platform === "win32") return;
  const release = join(dir, "release");
  mkdirSync(release);
  archive = await writeArchive(release, target, await hostBinary(), 1);
  await writeChecksums(release, [archive]);
  sums = await Bun.file(join(release, "SHA256SUMS")).text();
  const bytes = await Bun.file(join(release, archive)).bytes();
  for (const prefix of ["/releases/latest/download", `/releases/download/v${VERSION}`]) {
    files.set(`${prefix}/${archive}`, bytes);
    files.set(`${prefix}/SHA256SUMS`, new TextEncoder().encode(sums));
  }
  server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    fetch(req) {
      const path = new URL(req.url).pathname;
      requests.push(path);
      const body = files.get(path);
      return body ? new Response(body) : new Response("not found", { status: 404 });
    },
  });
}, 120_000);

afterAll(async () => {
  await server?.stop(true);
  rmSync(dir, { recursive: true, force: true });
});

// Async on purpose: a sync spawn would block this process, and with it the server the script downloads from.
async function install(name: string, args: string[] = [], env: Record<string, string> = {}) {
  const installDir = join(dir, name, "bin");
  const proc = Bun.spawn(["sh", join(ROOT, "install.sh"), ...args], {
    cwd: dir,
    env: {
      PATH: "/usr/local/bin:/usr/bin:/bin",
      HOME: join(dir, name),
      CONTREE_MCP_INSTALL_BASE_URL: `${server!.url.origin}/releases`,
      CONTREE_MCP_INSTALL_DIR: installDir,
      ...env,
    },
    stdout: "pipe",
    stderr: "pipe",
  });
  const [code, stdout, stderr] = await Promise.all([
    proc.exited,
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
  ]);
  return {
    code,
    stdout,
    stderr,
    installDir,
    binary: join(installDir, "contree-mcp"),
  };
}

describe.skipIf(!target || target.platform === "win32")("install.sh", () => {
  test(
    "installs the latest release's binary for this machine and says what to do next",
    async () => {
      requests.length = 0;
      const result = await install("latest");
      expect(result.stderr).toBe("");
      expect(result.code).toBe(0);
      expect(requests).toEqual([
        `/releases/latest/download/SHA256SUMS`,
        `/releases/latest/download/${archive}`,
      ]);
      const version = Bun.spawnSync([result.binary, "--version"]).stdout.toString().trim();
      expect(result.stdout).toContain(`Installed contree-mcp ${version} to ${result.binary}`);
      expect(result.stdout).toContain("is not on your PATH");
      expect(result.stdout).toContain("setup claude-code");
      // Nothing but the binary: no staging file left beside it.
      expect(readdirSync(result.installDir)).toEqual(["contree-mcp"]);
    },
    SLOW,
  );

  test(
    "installs a chosen version, from that release's URL",
    async () => {
      requests.length = 0;
      const result = await install("pinned", ["--version", `v${VERSION}`]);
      expect(result.code).toBe(0);
      expect(requests).toEqual([
        `/releases/download/v${VERSION}/SHA256SUMS`,
        `/releases/download/v${VERSION}/${archive}`,
      ]);
      expect(existsSync(result.binary)).toBe(true);
    },
    SLOW,
  );

  test(
    "a truncated download fails the checksum, and the binary already there stays as it was",
    async () => {
      const path = `/releases/latest/download/${archive}`;
      const good = files.get(path)!;
      files.set(path, good.subarray(0, good.length >> 1));
      try {
        const home = join(dir, "partial", "bin");
        mkdirSync(home, { recursive: true });
        writeFileSync(join(home, "contree-mcp"), "#!/bin/sh\necho old\n", { mode: 0o755 });
        const result = await install("partial");
        expect(result.code).not.toBe(0);
        expect(result.stderr).toContain(`checksum mismatch for ${archive}`);
        expect(result.stderr).toContain("nothing was installed");
        expect(readdirSync(result.installDir)).toEqual(["contree-mcp"]);
        expect(Bun.spawnSync([result.binary]).stdout.toString()).toBe("old\n");
      } finally {
        files.set(path, good);
      }
    },
    SLOW,
  );

  test(
    "a wrong checksum in SHA256SUMS aborts and installs nothing",
    async () => {
      const path = "/releases/latest/download/SHA256SUMS";
      files.set(path, new TextEncoder().encode(sums.replace(/^[0-9a-f]{64}/, "0".repeat(64))));
      try {
        const result = await install("mismatch");
        expect(result.code).not.toBe(0);
        expect(result.stderr).toContain("checksum mismatch");
        expect(existsSync(result.binary)).toBe(false);
      } finally {
        files.set(path, new TextEncoder().encode(sums));
      }
    },
    SLOW,
  );

  test(
    "a target the release lacks is named in the error",
    async () => {
      const other = target?.name === "linux-arm64-musl" ? "darwin-x64" : "linux-arm64-musl";
      const result = await install("other", ["--target", other]);
      expect(result.code).not.toBe(0);
      expect(result.stderr).toContain(`has no archive for ${other}`);
    },
    SLOW,
  );

  test(
    "a version that was never released fails on its SHA256SUMS",
    async () => {
      const result = await install("missing", ["--version", "0.0.0-nope"]);
      expect(result.code).not.toBe(0);
      expect(result.stderr).toContain("download failed");
      expect(result.stderr).toContain("/releases/download/v0.0.0-nope/SHA256SUMS");
    },
    SLOW,
  );

  const shellcheck = Bun.which("shellcheck");
  test.skipIf(!shellcheck)(`is clean under shellcheck -s sh (needs shellcheck)`, () => {
    const result = Bun.spawnSync([shellcheck!, "-s", "sh", join(ROOT, "install.sh")]);
    expect(result.stdout.toString()).toBe("");
    expect(result.exitCode).toBe(0);
  });
});
