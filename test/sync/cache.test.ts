import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Database } from "bun:sqlite";
import { FileCache, type StateFile } from "../../src/sync/cache.ts";

let dir: string;
let cache: FileCache;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "contree-filecache-"));
  cache = new FileCache(join(dir, "files.db"));
});
afterEach(() => {
  cache.close();
  rmSync(dir, { recursive: true, force: true });
});

const file = (path: string, sha256 = "a".repeat(64)) => ({
  path,
  size: 1,
  mtimeMs: 1.5,
  ino: 7,
  mode: 0o644,
  sha256,
});

const stateFile = (rel: string): StateFile => ({
  rel,
  sha256: "s",
  uuid: "u",
  mode: 0o644,
  size: 1,
  mtimeMs: 2.5,
  ino: 3,
});

/** A state with a fixed key, source and destination, for tests about its files. */
function newState(): ReturnType<FileCache["ensureState"]> {
  return cache.ensureState({ key: "k", backend: "b", source: "/s", destination: "/d", excludes: [] });
}

describe("FileCache", () => {
  test("knownFiles returns the root and what lies under it, not neighbours with the same prefix", () => {
    cache.rememberFiles([file("/p/a"), file("/p/a/x"), file("/p/a/y/z"), file("/p/ab"), file("/p/a0")]);
    expect([...cache.knownFiles("/p/a").keys()].toSorted()).toEqual(["/p/a", "/p/a/x", "/p/a/y/z"]);
    expect(cache.knownFiles("/p/a/x").get("/p/a/x")).toEqual(file("/p/a/x"));
  });

  test("a state keeps its id for the same key and belongs to one backend", () => {
    const init = { key: "k1", backend: "cloud:x", source: "/src", destination: "/app", excludes: ["*.pyc"] };
    const first = cache.ensureState(init);
    const again = cache.ensureState(init);
    const other = cache.ensureState({ ...init, key: "k2" });
    expect(again.id).toBe(first.id);
    expect(other.id).not.toBe(first.id);
    expect(cache.state(first.id, "cloud:x")?.excludes).toEqual(["*.pyc"]);
    expect(cache.state(first.id, "local:y")).toBeNull();
    expect(cache.state(9999, "cloud:x")).toBeNull();
  });

  test("replaceStateFiles holds exactly the given files", () => {
    const { id } = newState();
    cache.replaceStateFiles(id, [stateFile("a"), stateFile("b")], 1);
    cache.replaceStateFiles(id, [stateFile("b"), stateFile("c")], 1);
    expect(cache.stateFiles(id).map((x) => x.rel)).toEqual(["b", "c"]);
    cache.replaceStateFiles(
      id,
      [{ ...stateFile("b"), sha256: "t", uuid: "v", mode: 0o755 }, stateFile("d")],
      1,
    );
    expect(cache.stateFiles(id)).toEqual([
      { ...stateFile("b"), sha256: "t", uuid: "v", mode: 0o755 },
      stateFile("d"),
    ]);
    expect(cache.stateLooks(id)).toEqual([
      ["b", 1, 2.5, 3, 0o755],
      ["d", 1, 2.5, 3, 0o644],
    ]);
  });

  test("what a caller read of a state is reused only if nobody wrote the state since", async () => {
    const { id } = newState();
    cache.replaceStateFiles(id, [stateFile("a"), stateFile("b")], 1);
    const seen = { files: cache.stateFiles(id), syncedAt: cache.stateByKey("k")!.syncedAt };
    await Bun.sleep(3);
    // Another server sharing the cache adds a file meanwhile: it must not survive our write.
    cache.replaceStateFiles(id, [stateFile("a"), stateFile("b"), stateFile("c")], 1);
    cache.replaceStateFiles(id, [stateFile("a")], 1, seen);
    expect(cache.stateFiles(id).map((f) => f.rel)).toEqual(["a"]);
  });

  test("a state remembers when its blobs were last confirmed", () => {
    const { id, blobsCheckedAt } = newState();
    expect(blobsCheckedAt).toBe(0);
    cache.replaceStateFiles(id, [stateFile("a")], 1234);
    expect(cache.stateByKey("k")?.blobsCheckedAt).toBe(1234);
    cache.touchState(id);
    expect(cache.stateByKey("k")?.blobsCheckedAt).toBe(1234);
    cache.touchState(id, 5678);
    expect(cache.stateByKey("k")?.blobsCheckedAt).toBe(5678);
  });

  test("a version 1 cache is migrated: its state files get a look that never matches", () => {
    const { id } = newState();
    cache.replaceStateFiles(id, [stateFile("a")], 1);
    cache.close();
    const path = join(dir, "files.db");
    const old = new Database(path);
    old.exec(`
      ALTER TABLE state_files DROP COLUMN mtime_ms;
      ALTER TABLE state_files DROP COLUMN ino;
      ALTER TABLE states DROP COLUMN blobs_checked_at;
      PRAGMA user_version = 1;
    `);
    old.close();
    cache = new FileCache(path);
    expect(cache.stateFiles(id)).toEqual([{ ...stateFile("a"), mtimeMs: -1, ino: -1 }]);
    expect(cache.stateByKey("k")?.blobsCheckedAt).toBe(0);
  });

  test("blobs are per backend", () => {
    cache.rememberBlob("one", "sha", "uuid-1");
    expect(cache.blob("one", "sha")?.uuid).toBe("uuid-1");
    expect(cache.blob("two", "sha")).toBeNull();
    cache.forgetBlob("one", "sha");
    expect(cache.blob("one", "sha")).toBeNull();
  });

  test("a corrupt cache file is moved aside and a fresh one is built", () => {
    cache.close();
    const path = join(dir, "bad.db");
    writeFileSync(path, "this is not a database, just text that is long enough to be read as a header....");
    cache = new FileCache(path);
    cache.rememberFiles([file("/x")]);
    expect(cache.knownFiles("/x").size).toBe(1);
    expect(readdirSync(dir).some((name) => name.startsWith("bad.db.broken-"))).toBe(true);
    expect(existsSync(path)).toBe(true);
  });
});
