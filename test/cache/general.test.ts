import { describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Operation } from "../../src/backend/types.ts";
import { GeneralCache } from "../../src/cache/general.ts";

function operation(status: string): Operation {
  return {
    id: "op-1",
    kind: "instance",
    status,
    error: null,
    createdAt: "",
    durationS: 1.5,
    resultImage: null,
    resultTag: null,
    inputImage: "img",
    command: "echo hi",
    disposable: true,
    registryUrl: null,
    result: {
      exit: { exitCode: 0, signal: null, timedOut: false },
      stdout: { bytes: new Uint8Array([104, 105, 0, 255]), truncated: false, droppedBytes: null },
      stderr: { bytes: new Uint8Array(), truncated: true, droppedBytes: 12 },
      resources: { elapsed_time: 1.5 },
    },
  };
}

const dir = () => mkdtempSync(join(tmpdir(), "contree-mcp-cache-"));

describe("GeneralCache", () => {
  test("keeps terminal operations only, bytes intact", () => {
    const cache = new GeneralCache(join(dir(), "cache.db"));
    cache.putOperation(operation("EXECUTING"));
    expect(cache.getOperation("op-1")).toBeNull();
    cache.putOperation(operation("SUCCESS"));
    const back = cache.getOperation("op-1");
    expect(back?.status).toBe("SUCCESS");
    expect(back?.result?.stdout.bytes).toEqual(new Uint8Array([104, 105, 0, 255]));
    expect(back?.result?.stderr.droppedBytes).toBe(12);
    cache.close();
  });

  test("lineage records merge and list children", () => {
    const cache = new GeneralCache(join(dir(), "cache.db"));
    cache.recordImage({
      uuid: "child",
      parent: "root",
      operationId: "op",
      command: "make",
      registryUrl: null,
      tag: null,
    });
    cache.recordImage({
      uuid: "child",
      parent: null,
      operationId: null,
      command: null,
      registryUrl: null,
      tag: "t",
    });
    expect(cache.image("child")).toMatchObject({ parent: "root", command: "make", tag: "t" });
    expect(cache.children("root")).toEqual(["child"]);
    cache.close();
  });

  test("a corrupt cache file is moved aside and rebuilt, not fatal", () => {
    const base = dir();
    const path = join(base, "cache.db");
    writeFileSync(path, "this is not a database, just garbage ".repeat(200));
    const cache = new GeneralCache(path);
    cache.putOperation(operation("SUCCESS"));
    expect(cache.getOperation("op-1")).not.toBeNull();
    cache.close();
    const aside = readdirSync(base).filter((name) => name.startsWith("cache.db.broken-"));
    expect(aside.length).toBe(1);
    expect(existsSync(join(base, aside[0]!))).toBe(true);
  });

  test("a cache from a newer schema is moved aside too", () => {
    const base = dir();
    const path = join(base, "cache.db");
    const first = new GeneralCache(path);
    first.db.exec("PRAGMA user_version = 99");
    first.close();
    const second = new GeneralCache(path);
    expect(second.getOperation("op-1")).toBeNull();
    second.close();
    expect(readdirSync(base).some((name) => name.startsWith("cache.db.broken-"))).toBe(true);
  });

  test("a cache another process is writing to is kept; pruning waits for another start", () => {
    const base = dir();
    const path = join(base, "cache.db");
    new GeneralCache(path).close();
    const holder = new Database(path);
    holder.exec("BEGIN IMMEDIATE");
    let cache: GeneralCache | undefined;
    try {
      cache = new GeneralCache(path);
      cache.db.exec("PRAGMA busy_timeout = 100");
    } finally {
      holder.exec("ROLLBACK");
      holder.close();
    }
    cache.putOperation(operation("SUCCESS"));
    expect(cache.getOperation("op-1")).not.toBeNull();
    cache.close();
    expect(readdirSync(base).some((name) => name.includes("broken"))).toBe(false);
  }, 20_000);

  test("prunes rows unused for longer than the retention", () => {
    const path = join(dir(), "cache.db");
    const cache = new GeneralCache(path, 1);
    cache.putOperation(operation("SUCCESS"));
    cache.db.run("UPDATE operations SET used_at = 0");
    cache.prune();
    expect(cache.getOperation("op-1")).toBeNull();
    cache.close();
  });
});
