import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { formatReport, runDoctor, type DoctorReport } from "../../src/cli/doctor.ts";
import { LocalBackend } from "../../src/backend/local/backend.ts";
import { startFakeContree, type FakeContree } from "../support/fake-contree.ts";

const TOKEN = "doctor-secret-token-42";
let fake: FakeContree;
let dir: string;

beforeAll(async () => {
  fake = await startFakeContree({ token: TOKEN });
  dir = mkdtempSync(join(tmpdir(), "contree-mcp-doctor-"));
});

afterAll(async () => {
  await fake.close();
});

function check(report: DoctorReport, name: string) {
  const found = report.checks.find((item) => item.name === name);
  if (!found) throw new Error(`no check '${name}' in ${JSON.stringify(report.checks)}`);
  return found;
}

/** Flags that keep every path in this test's dir. */
function paths(sub: string): Record<string, string> {
  return {
    cache_general: join(dir, sub, "cache.db"),
    cache_files: join(dir, sub, "files.db"),
    local_root: join(dir, sub, "local"),
  };
}

function expectNoToken(report: DoctorReport): void {
  expect(JSON.stringify(report)).not.toContain(TOKEN);
  expect(formatReport(report)).not.toContain(TOKEN);
}

describe("doctor: cloud", () => {
  test("an accepted token: ready, exit 0, token never shown", async () => {
    const report = await runDoctor({ ...paths("ok"), token: TOKEN, url: fake.url });
    expect(report.ok).toBe(true);
    expect(report.backend).toMatchObject({ configured: "auto", chosen: "cloud" });
    expect(check(report, "service")).toMatchObject({ status: "ok" });
    expect(check(report, "token")).toMatchObject({ status: "ok", detail: "accepted (--token)" });
    expect(check(report, "local backend").status).toBe("skip");
    expect(fake.requests.some((r) => r.path === "/v1/whoami")).toBe(true);
    expectNoToken(report);
    expect(formatReport(report)).toContain("Ready");
  });

  test("a rejected token (401): fail with the fix, exit 1", async () => {
    const report = await runDoctor({ ...paths("bad"), token: "wrong-token", url: fake.url });
    expect(report.ok).toBe(false);
    expect(check(report, "service").status).toBe("ok");
    const token = check(report, "token");
    expect(token.status).toBe("fail");
    expect(token.detail).toContain("401");
    expect(token.fix).toContain("new one");
    expect(JSON.stringify(report)).not.toContain("wrong-token");
    expect(formatReport(report)).toContain("problem to fix");
  });

  test("a service without /whoami is checked with a one-image list", async () => {
    fake.fail({ method: "GET", path: "/whoami", status: 404 });
    const report = await runDoctor({ ...paths("nowhoami"), token: TOKEN, url: fake.url });
    expect(report.ok).toBe(true);
    const listed = fake.requests.findLast((r) => r.path === "/v1/images");
    expect(listed?.query).toMatchObject({ limit: "1" });
  });

  test("whoami's expiry and permissions are reported", async () => {
    fake.fail({
      method: "GET",
      path: "/whoami",
      status: 200,
      body: { token_expiration: Date.now() / 1000 + 3600, permissions: { list: true, spawn: false } },
    });
    const report = await runDoctor({ ...paths("perm"), token: TOKEN, url: fake.url });
    const token = check(report, "token");
    expect(token.status).toBe("warn");
    expect(token.detail).toContain("lacks the permissions spawn");
    expect(report.ok).toBe(true);
  });

  test("an unreachable URL fails the service check; the token is not checked", async () => {
    const closed = Bun.serve({ port: 0, fetch: () => new Response("") });
    const url = `http://127.0.0.1:${closed.port}`;
    await closed.stop(true);
    const report = await runDoctor({ ...paths("down"), token: TOKEN, url }, { timeoutMs: 2000 });
    expect(report.ok).toBe(false);
    expect(check(report, "service")).toMatchObject({ status: "fail" });
    expect(check(report, "service").fix).toContain("URL");
    expect(check(report, "token").status).toBe("skip");
    expectNoToken(report);
  });

  test("--backend cloud without a token fails", async () => {
    const report = await runDoctor({ ...paths("notoken"), backend: "cloud" });
    expect(report.ok).toBe(false);
    expect(check(report, "token")).toMatchObject({ status: "fail" });
    expect(check(report, "token").fix).toContain("CONTREE_MCP_TOKEN");
  });

  test("an invalid setting is one failed check", async () => {
    const report = await runDoctor({ backend: "moon" });
    expect(report.ok).toBe(false);
    expect(report.backend).toBeNull();
    expect(check(report, "settings").detail).toContain("Invalid backend 'moon'");
  });
});

describe("doctor: files", () => {
  test("a token in a world-readable INI file and loose registry credentials are warnings", async () => {
    const ini = join(dir, "loose", "mcp.ini");
    mkdirSync(dirname(ini), { recursive: true });
    writeFileSync(ini, `[DEFAULT]\ntoken = ${TOKEN}\nurl = ${fake.url}\n`);
    chmodSync(ini, 0o644);
    // Its own XDG_CONFIG_HOME: the registry credentials path is shared with every other test file.
    const savedConfigHome = process.env.XDG_CONFIG_HOME;
    process.env.XDG_CONFIG_HOME = join(dir, "loose", "config");
    const credentials = join(process.env.XDG_CONFIG_HOME, "contree-mcp", "registries.json");
    mkdirSync(dirname(credentials), { recursive: true });
    writeFileSync(credentials, '{"version": 1, "registries": {}}');
    chmodSync(credentials, 0o644);
    try {
      const report = await runDoctor({ ...paths("loose"), config: ini });
      expect(check(report, "config file")).toMatchObject({ status: "warn", fix: `chmod 600 '${ini}'` });
      expect(check(report, "token").detail).toContain(`in ${ini}`);
      expect(check(report, "registry credentials")).toMatchObject({ status: "warn" });
      expect(report.ok).toBe(true);
      expectNoToken(report);
    } finally {
      process.env.XDG_CONFIG_HOME = savedConfigHome;
    }
  });

  test("cache schema versions: current is ok, another version is a warning", async () => {
    const flags = paths("caches");
    mkdirSync(dirname(flags.cache_general!), { recursive: true });
    const other = new Database(flags.cache_files!, { create: true });
    other.exec("CREATE TABLE t (x); PRAGMA user_version = 99");
    other.close();
    const { GeneralCache } = await import("../../src/cache/general.ts");
    new GeneralCache(flags.cache_general!).close();
    const report = await runDoctor({ ...flags, token: TOKEN, url: fake.url });
    expect(check(report, "general cache")).toMatchObject({ status: "ok" });
    expect(check(report, "general cache").detail).toContain("schema v1");
    expect(check(report, "file cache").status).toBe("warn");
    expect(check(report, "file cache").detail).toContain("schema v99");
  });
});

describe("doctor: local backend", () => {
  test("checks this machine; exit code follows LocalBackend.check()", async () => {
    const problem = await LocalBackend.check();
    const report = await runDoctor({ ...paths("local"), backend: "local" });
    expect(report.backend).toMatchObject({ chosen: "local" });
    expect(check(report, "cloud backend").status).toBe("skip");
    const requirements = check(report, "requirements");
    if (problem) {
      expect(requirements).toMatchObject({ status: "fail", detail: problem });
      expect(report.ok).toBe(false);
      return;
    }
    expect(requirements.status).toBe("ok");
    for (const name of ["bubblewrap", "overlayfs", "disk", "image store"]) {
      expect([name, check(report, name).status]).toEqual([name, "ok"]);
    }
    expect(["ok", "warn"]).toContain(check(report, "cgroups").status);
    expect(report.ok).toBe(true);
  });

  test("a local root on overlayfs (a container's root) fails with the fix", async () => {
    if ((await LocalBackend.check()) || process.getuid?.() !== 0) return;
    const base = mkdtempSync(join(tmpdir(), "contree-mcp-doctor-ovl-"));
    for (const sub of ["l", "u", "w", "m"]) mkdirSync(join(base, sub));
    const opts = `lowerdir=${base}/l,upperdir=${base}/u,workdir=${base}/w`;
    expect(Bun.spawnSync(["mount", "-t", "overlay", "overlay", "-o", opts, join(base, "m")]).exitCode).toBe(
      0,
    );
    try {
      const report = await runDoctor({
        ...paths("ovl"),
        backend: "local",
        local_root: join(base, "m", "root"),
      });
      expect(check(report, "overlayfs")).toMatchObject({ status: "fail" });
      expect(check(report, "overlayfs").fix).toContain("mount a volume there");
      expect(report.ok).toBe(false);
    } finally {
      Bun.spawnSync(["umount", join(base, "m")]);
    }
  });

  test("auto with no token means local, and says why", async () => {
    const report = await runDoctor(paths("auto"));
    expect(report.backend?.chosen).toBe("local");
    expect(check(report, "backend").detail).toContain("no ConTree token is set");
  });
});

describe("doctor: MCP clients", () => {
  test("lists the clients that start contree, warns when their command is gone, hides tokens in args", async () => {
    const saved = process.env.HOME;
    const home = join(dir, "clients-home");
    process.env.HOME = home;
    try {
      const none = await runDoctor({ ...paths("clients"), token: TOKEN, url: fake.url });
      expect(check(none, "clients").status).toBe("skip");

      mkdirSync(join(home, ".cursor"), { recursive: true });
      writeFileSync(
        join(home, ".cursor", "mcp.json"),
        JSON.stringify({
          mcpServers: { contree: { command: "/no/such/contree-mcp", args: ["--token", "arg-token-zzz"] } },
        }),
      );
      mkdirSync(join(home, ".codex"), { recursive: true });
      writeFileSync(
        join(home, ".codex", "config.toml"),
        `[mcp_servers.contree]\ncommand = "${process.execPath}"\n`,
      );
      const report = await runDoctor({ ...paths("clients"), token: TOKEN, url: fake.url });
      expect(check(report, "cursor")).toMatchObject({ status: "warn" });
      expect(check(report, "cursor").detail).toContain("/no/such/contree-mcp does not exist");
      expect(check(report, "cursor").fix).toContain("contree-mcp setup cursor");
      expect(JSON.stringify(report)).not.toContain("arg-token-zzz");
      expect(check(report, "codex")).toMatchObject({ status: "ok" });
      expect(report.ok).toBe(true);
    } finally {
      process.env.HOME = saved;
    }
  });
});
