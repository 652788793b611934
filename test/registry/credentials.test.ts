import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
  mkdirSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { UserError } from "../../src/errors.ts";
import { redact } from "../../src/log.ts";
import { CredentialStore, defaultCredentialsPath } from "../../src/registry/credentials.ts";

let dir: string;
let path: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "contree-credentials-"));
  path = join(dir, "nested", "contree-mcp", "registries.json");
});

afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe("CredentialStore", () => {
  test("an absent file is an empty store", async () => {
    const store = new CredentialStore(path);
    expect(store.get("ghcr.io")).toBeNull();
    expect(store.list()).toEqual([]);
    expect(await store.delete("ghcr.io")).toBe(false);
    expect(existsSync(path)).toBe(false);
  });

  test("set creates the directory 0700 and the file 0600; get returns the entry; list hides passwords", async () => {
    const store = new CredentialStore(path);
    await store.set("GHCR.io", "octocat", "ghp_secret1");
    expect(statSync(join(dir, "nested", "contree-mcp")).mode & 0o777).toBe(0o700);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const entry = store.get("ghcr.io");
    expect(entry).toMatchObject({ registry: "ghcr.io", username: "octocat", password: "ghp_secret1" });
    expect(new Date(entry!.savedAt).toISOString()).toBe(entry!.savedAt);
    expect(store.list()).toEqual([{ registry: "ghcr.io", username: "octocat", savedAt: entry!.savedAt }]);
    expect(JSON.stringify(store.list())).not.toContain("ghp_secret1");
    // A second instance (another process) reads what the first wrote.
    expect(new CredentialStore(path).get("ghcr.io")?.password).toBe("ghp_secret1");
  });

  test("passwords are registered as secrets, so logs redact them", async () => {
    const store = new CredentialStore(path);
    await store.set("docker.io", "me", "dckr_pat_registered");
    expect(redact("token dckr_pat_registered here")).toBe("token *** here");
    writeFileSync(
      path,
      JSON.stringify({
        version: 1,
        registries: { "quay.io": { username: "r", password: "loaded-from-disk", savedAt: "x" } },
      }),
    );
    expect(redact("loaded-from-disk")).toBe("loaded-from-disk");
    new CredentialStore(path).get("quay.io");
    expect(redact("loaded-from-disk")).toBe("***");
  });

  test("set replaces one registry and keeps the others; delete removes only its entry", async () => {
    const store = new CredentialStore(path);
    await store.set("ghcr.io", "a", "pw-a");
    await store.set("docker.io", "b", "pw-b");
    await store.set("ghcr.io", "a2", "pw-a2");
    expect(store.list().map((e) => [e.registry, e.username])).toEqual([
      ["docker.io", "b"],
      ["ghcr.io", "a2"],
    ]);
    expect(await store.delete("ghcr.io")).toBe(true);
    expect(await store.delete("ghcr.io")).toBe(false);
    expect(store.get("docker.io")?.password).toBe("pw-b");
    expect(store.get("ghcr.io")).toBeNull();
  });

  test("writes replace the file by rename and leave no temp or lock files; a too-open file becomes 0600", async () => {
    const store = new CredentialStore(path);
    await store.set("ghcr.io", "a", "pw-a");
    const before = statSync(path).ino;
    await store.set("docker.io", "b", "pw-b");
    expect(statSync(path).ino).not.toBe(before);
    expect(readdirSync(join(dir, "nested", "contree-mcp"))).toEqual(["registries.json"]);

    writeFileSync(path, readFileSync(path), { mode: 0o644 });
    rmSync(path);
    writeFileSync(path, JSON.stringify({ version: 1, registries: {} }), { mode: 0o644 });
    await store.set("quay.io", "c", "pw-c");
    expect(statSync(path).mode & 0o777).toBe(0o600);
  });

  for (const [label, content] of [
    ["invalid JSON", "{ not json"],
    ["JSON of the wrong shape", JSON.stringify({ registries: { "ghcr.io": { username: 1 } } })],
  ] as const) {
    test(`a file with ${label} is kept: reads give nothing, set and delete throw a UserError saying what to do`, async () => {
      mkdirSync(join(dir, "nested", "contree-mcp"), { recursive: true });
      writeFileSync(path, content, { mode: 0o600 });
      const store = new CredentialStore(path);
      expect(store.get("ghcr.io")).toBeNull();
      expect(store.list()).toEqual([]);
      for (const write of [
        () => store.set("ghcr.io", "a", "pw-never-shown"),
        () => store.delete("ghcr.io"),
      ]) {
        let error: unknown;
        try {
          await write();
        } catch (caught) {
          error = caught;
        }
        expect(error).toBeInstanceOf(UserError);
        expect((error as Error).message).toContain(path);
        expect((error as Error).message).toMatch(/Move it aside/);
        expect((error as Error).message).not.toContain("pw-never-shown");
      }
      expect(readFileSync(path, "utf8")).toBe(content);
      expect(readdirSync(join(dir, "nested", "contree-mcp"))).toEqual(["registries.json"]);
    });
  }

  test("a lock left by a dead process is taken over", async () => {
    const store = new CredentialStore(path);
    await store.set("ghcr.io", "a", "pw-a");
    writeFileSync(`${path}.lock`, "");
    const old = new Date(Date.now() - 120_000);
    utimesSync(`${path}.lock`, old, old);
    await store.set("docker.io", "b", "pw-b");
    expect(store.list()).toHaveLength(2);
    expect(existsSync(`${path}.lock`)).toBe(false);
  });

  test("waiting for a held lock leaves the event loop running; concurrent sets in one process lose nothing", async () => {
    const store = new CredentialStore(path);
    await store.set("ghcr.io", "a", "pw-a");
    writeFileSync(`${path}.lock`, "");
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 5);
    const waiting = store.set("docker.io", "b", "pw-b");
    await Bun.sleep(100);
    clearInterval(ticker);
    // A sync sleep would have held the loop for the whole 100 ms.
    expect(ticks).toBeGreaterThan(5);
    expect(store.get("docker.io")).toBeNull();
    rmSync(`${path}.lock`);
    await waiting;
    expect(store.get("docker.io")?.password).toBe("pw-b");

    await Promise.all(Array.from({ length: 20 }, (_, i) => store.set(`r${i}.example.com`, "u", `pw-${i}`)));
    expect(store.list()).toHaveLength(22);
    expect(existsSync(`${path}.lock`)).toBe(false);
  });

  test("concurrent writers in separate processes lose no entries", async () => {
    const script = join(dir, "writer.ts");
    const module = join(import.meta.dir, "../../src/registry/credentials.ts");
    writeFileSync(
      script,
      `import { CredentialStore } from ${JSON.stringify(module)};
const [path, name] = process.argv.slice(2);
const store = new CredentialStore(path!);
for (let i = 0; i < 15; i++) await store.set(\`\${name}-\${i}.example.com\`, name!, \`pw-\${i}\`);
`,
    );
    const writers = ["a", "b", "c", "d"].map((name) =>
      Bun.spawn([process.execPath, script, path, name], { stdout: "inherit", stderr: "inherit" }),
    );
    expect(await Promise.all(writers.map((w) => w.exited))).toEqual([0, 0, 0, 0]);
    const list = new CredentialStore(path).list();
    expect(list).toHaveLength(60);
    expect(statSync(path).mode & 0o777).toBe(0o600);
  });
});

test("defaultCredentialsPath is under XDG_CONFIG_HOME", () => {
  expect(defaultCredentialsPath()).toBe(join(process.env.XDG_CONFIG_HOME!, "contree-mcp", "registries.json"));
});
