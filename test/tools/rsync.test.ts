import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startFakeContree, cloudBackendFor } from "../support/fake-contree.ts";
import { connect, textOf, type TestSession } from "../support/mcp.ts";

type Fake = Awaited<ReturnType<typeof startFakeContree>>;
interface SyncView {
  directory_state_id: number;
  files: number;
  uploaded: number;
  reused: number;
  hashed: number;
  bytes_uploaded: number;
  skipped: Array<{ path: string; reason: string }>;
}

let fake: Fake;
let session: TestSession;
let base: string;
let image: string;
let work: string;

beforeAll(async () => {
  fake = await startFakeContree();
  session = await connect(cloudBackendFor(fake));
  image = fake.addImage({ tag: "common/base/alpine:3" }).uuid;
  work = mkdtempSync(join(tmpdir(), "contree-rsync-"));
  base = work;
});

afterAll(async () => {
  await session?.close();
  await fake?.close();
  rmSync(work, { recursive: true, force: true });
});

function tree(name: string, files: Record<string, string | { content: string; mode: number }>): string {
  const root = join(base, name);
  for (const [rel, spec] of Object.entries(files)) {
    const path = join(root, rel);
    mkdirSync(join(path, ".."), { recursive: true });
    writeFileSync(path, typeof spec === "string" ? spec : spec.content);
    if (typeof spec !== "string") chmodSync(path, spec.mode);
  }
  return root;
}

const view = (result: { structuredContent?: unknown }) => result.structuredContent as SyncView;
const fileRequests = () => fake.requests.filter((r) => r.path.startsWith("/v1/files")).length;
const uploads = () => fake.requests.filter((r) => r.method === "POST" && r.path === "/v1/files").length;

/** The files a run with this state sends to the backend: container path -> {uuid, mode}. */
async function runFiles(
  args: Record<string, unknown>,
): Promise<Record<string, { uuid: string; mode: string }>> {
  const result = await session.call("run", { command: "true", image, ...args });
  expect(result.isError, textOf(result)).toBeFalsy();
  const request = fake.requests.filter((r) => r.method === "POST" && r.path === "/v1/instances").at(-1);
  const body = (request?.body ?? {}) as { files?: Record<string, { uuid: string; mode: string }> };
  return body.files ?? {};
}

describe("rsync", () => {
  test("a second sync of an unchanged 1,000-file tree uploads nothing and hashes nothing", async () => {
    const files: Record<string, string> = {};
    for (let i = 0; i < 1000; i++) files[`pkg${i % 10}/file${i}.txt`] = `content ${i}\n`;
    const root = tree("thousand", files);
    const first = await session.call("rsync", { source: root, destination: "/app" });
    expect(first.isError, textOf(first)).toBeFalsy();
    expect(view(first)).toMatchObject({ files: 1000, uploaded: 1000, reused: 0, hashed: 1000, skipped: [] });
    expect(textOf(first)).toContain(`directory_state_id=${view(first).directory_state_id}`);
    const before = fileRequests();
    const second = await session.call("rsync", { source: root, destination: "/app/" });
    expect(view(second)).toMatchObject({
      directory_state_id: view(first).directory_state_id,
      files: 1000,
      uploaded: 0,
      reused: 1000,
      hashed: 0,
      bytes_uploaded: 0,
    });
    expect(fileRequests()).toBe(before);
  });

  test("a changed file is hashed and uploaded alone; a deleted one leaves the state", async () => {
    const root = tree("edits", { "a.txt": "a", "b.txt": "b", "c.txt": "c" });
    const first = view(await session.call("rsync", { source: root, destination: "/src" }));
    writeFileSync(join(root, "b.txt"), "b changed");
    unlinkSync(join(root, "c.txt"));
    const before = uploads();
    const second = view(await session.call("rsync", { source: root, destination: "/src" }));
    expect(second).toMatchObject({
      directory_state_id: first.directory_state_id,
      files: 2,
      hashed: 1,
      uploaded: 1,
    });
    expect(uploads()).toBe(before + 1);
    expect(Object.keys(await runFiles({ directory_state_id: first.directory_state_id })).toSorted()).toEqual([
      "/src/a.txt",
      "/src/b.txt",
    ]);
  });

  test("a touched file is hashed again but not sent; blobs unconfirmed for a day are asked about again", async () => {
    const root = tree("touched", { "a.txt": "a", "b.txt": "b" });
    const first = view(await session.call("rsync", { source: root, destination: "/t" }));
    utimesSync(join(root, "a.txt"), new Date(), new Date(Date.now() + 5000));
    const before = fileRequests();
    const touched = view(await session.call("rsync", { source: root, destination: "/t" }));
    expect(touched).toMatchObject({ directory_state_id: first.directory_state_id, hashed: 1, uploaded: 0 });
    expect(view(await session.call("rsync", { source: root, destination: "/t" })).hashed).toBe(0);
    expect(fileRequests()).toBe(before);

    session.app.deps.fileCache!.db.run("UPDATE blobs SET checked_at = 0");
    session.app.deps.fileCache!.db.run("UPDATE states SET blobs_checked_at = 0");
    const stale = view(await session.call("rsync", { source: root, destination: "/t" }));
    expect(stale).toMatchObject({ hashed: 0, uploaded: 0, reused: 2 });
    expect(fileRequests()).toBe(before + 2);
    expect(view(await session.call("rsync", { source: root, destination: "/t" })).hashed).toBe(0);
    expect(fileRequests()).toBe(before + 2);
  });

  test("a state whose file the backend lost is re-checked and re-uploaded by the next rsync once distrusted", async () => {
    const root = tree("lost", { "keep.txt": "kept content", "lost.txt": "content the backend loses" });
    const id = view(await session.call("rsync", { source: root, destination: "/lost" })).directory_state_id;
    const lost = [...fake.state.files.values()].find(
      (blob) => new TextDecoder().decode(blob.content) === "content the backend loses",
    )!;
    fake.state.files.delete(lost.sha256);
    // Trusted for a day, the state would be sent again as it is: the failed run distrusts it and says to resync.
    const failed = await session.call("run", { command: "true", image, directory_state_id: id });
    expect(failed.isError).toBe(true);
    expect(textOf(failed)).toContain(`contree_rsync again with the same source and destination`);
    const before = uploads();
    const resynced = view(await session.call("rsync", { source: root, destination: "/lost" }));
    expect(resynced).toMatchObject({ directory_state_id: id, hashed: 0, uploaded: 1, reused: 1 });
    expect(uploads()).toBe(before + 1);
    const ran = await session.call("run", { command: "true", image, directory_state_id: id });
    expect(ran.isError, textOf(ran)).toBeFalsy();
  });

  test("content the backend already has is not uploaded again", async () => {
    const root = tree("dedup", { "one.txt": "shared content", "two.txt": "shared content" });
    const before = uploads();
    const result = view(await session.call("rsync", { source: root, destination: "/d" }));
    expect(result).toMatchObject({ files: 2, uploaded: 1, reused: 1 });
    expect(uploads()).toBe(before + 1);
    const again = tree("dedup-copy", { "x.txt": "shared content" });
    expect(view(await session.call("rsync", { source: again, destination: "/d2" }))).toMatchObject({
      uploaded: 0,
      reused: 1,
      hashed: 1,
    });
  });

  test("excludes match at any depth, .git does not exclude .gitignore, dir/ matches directories", async () => {
    const root = tree("excludes", {
      "app.py": "x",
      "pkg/__pycache__/app.cpython-311.pyc": "x",
      "pkg/mod.pyc": "x",
      "pkg/mod.py": "x",
      ".git/HEAD": "x",
      ".gitignore": "x",
      "build/out.txt": "x",
      "src/build": "a file named build",
    });
    const result = await session.call("rsync", {
      source: root,
      destination: "/app",
      exclude: ["__pycache__", "*.pyc", ".git", "build/"],
    });
    const id = view(result).directory_state_id;
    expect(Object.keys(await runFiles({ directory_state_id: id })).toSorted()).toEqual([
      "/app/.gitignore",
      "/app/app.py",
      "/app/pkg/mod.py",
      "/app/src/build",
    ]);
    const other = await session.call("rsync", { source: root, destination: "/app", exclude: ["*.pyc"] });
    expect(view(other).directory_state_id).not.toBe(id);
    const reordered = await session.call("rsync", {
      source: root,
      destination: "/app",
      exclude: ["build/", ".git", "*.pyc", "__pycache__"],
    });
    expect(view(reordered).directory_state_id).toBe(id);
  });

  test("two trees with identical files get separate states holding only their own files", async () => {
    const one = tree("twin-one", { "__init__.py": "", "a.py": "same" });
    const two = tree("twin-two", { "__init__.py": "", "b.py": "same" });
    const first = view(await session.call("rsync", { source: one, destination: "/one" }));
    const second = view(await session.call("rsync", { source: two, destination: "/two" }));
    expect(second.directory_state_id).not.toBe(first.directory_state_id);
    expect(Object.keys(await runFiles({ directory_state_id: first.directory_state_id })).toSorted()).toEqual([
      "/one/__init__.py",
      "/one/a.py",
    ]);
    expect(Object.keys(await runFiles({ directory_state_id: second.directory_state_id })).toSorted()).toEqual(
      ["/two/__init__.py", "/two/b.py"],
    );
    // A resync of the first is still a no-op: the second tree's files never leak into it.
    expect(view(await session.call("rsync", { source: one, destination: "/one" })).hashed).toBe(0);
  });

  test("modes are kept, and files entries override state paths", async () => {
    const root = tree("modes", {
      "run.sh": { content: "#!/bin/sh\necho hi\n", mode: 0o755 },
      "data.txt": { content: "data", mode: 0o600 },
    });
    const id = view(await session.call("rsync", { source: root, destination: "/w" })).directory_state_id;
    const upload = await session.call("upload", { content: "override" });
    const uuid = (upload.structuredContent as { uuid: string }).uuid;
    const files = await runFiles({ directory_state_id: id, files: { "/w/data.txt": uuid } });
    expect(Number.parseInt(files["/w/run.sh"]!.mode.replace(/^0o/, ""), 8)).toBe(0o755);
    expect(files["/w/data.txt"]!.uuid).toBe(uuid);
  });

  test("symlinks inside the tree are followed; one leading outside is reported in skipped", async () => {
    const root = tree("links", { "real/x.txt": "x" });
    writeFileSync(join(base, "outside.txt"), "secret");
    symlinkSync("real/x.txt", join(root, "inside.txt"));
    symlinkSync(join(base, "outside.txt"), join(root, "outside.txt"));
    const result = await session.call("rsync", { source: root, destination: "/l" });
    expect(view(result).files).toBe(2);
    expect(view(result).skipped).toEqual([
      { path: "outside.txt", reason: expect.stringContaining("outside") },
    ]);
    expect(textOf(result)).toContain("outside.txt");
  });

  // Root reads everything, so this runs only as another user (CI does).
  test.skipIf(process.getuid?.() === 0)(
    "unreadable files are reported in skipped; the rest syncs",
    async () => {
      const root = tree("unreadable", { "ok.txt": "ok", "secret.txt": "secret", "locked/inner.txt": "x" });
      chmodSync(join(root, "secret.txt"), 0o000);
      chmodSync(join(root, "locked"), 0o000);
      try {
        const result = await session.call("rsync", { source: root, destination: "/u" });
        expect(result.isError, textOf(result)).toBeFalsy();
        expect(view(result).files).toBe(1);
        expect(view(result).skipped).toEqual([
          { path: "locked", reason: expect.stringContaining("not readable") },
          { path: "secret.txt", reason: expect.stringContaining("permission denied") },
        ]);
      } finally {
        chmodSync(join(root, "locked"), 0o755);
      }
    },
  );

  test("a large tree sends progress notifications", async () => {
    const files: Record<string, string> = {};
    for (let i = 0; i < 300; i++) files[`f${i}.txt`] = `progress ${i}`;
    const root = tree("progress", files);
    const seen: unknown[] = [];
    const result = await session.call(
      "rsync",
      { source: root, destination: "/p" },
      { onprogress: (p) => seen.push(p) },
    );
    expect(result.isError).toBeFalsy();
    expect(seen.length).toBeGreaterThan(0);
  });

  test("bad input is a clear isError", async () => {
    const empty = join(base, "empty");
    mkdirSync(join(empty, "sub"), { recursive: true });
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ source: "relative/dir", destination: "/app" }, "absolute path"],
      [{ source: join(base, "nope"), destination: "/app" }, "does not exist"],
      [{ source: empty, destination: "/app" }, "No files to sync"],
      [{ source: base, destination: "app" }, "absolute directory in the sandbox"],
    ];
    for (const [args, message] of cases) {
      const result = await session.call("rsync", args);
      expect(result.isError).toBe(true);
      expect(textOf(result)).toContain(message);
    }
  });

  test("run refuses an unknown directory_state_id and says to call rsync", async () => {
    const result = await session.call("run", { command: "true", image, directory_state_id: 987654 });
    expect(result.isError).toBe(true);
    expect(textOf(result)).toContain("Unknown directory_state_id 987654");
    expect(textOf(result)).toContain("rsync");
  });
});
