import { afterAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { hashBytes, hashFile, mapLimit } from "../../src/sync/hash.ts";
import { hashMany } from "../../src/sync/hash-pool.ts";

const dir = mkdtempSync(join(tmpdir(), "contree-hash-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const sha = (data: Uint8Array | string) => createHash("sha256").update(data).digest("hex");

describe("hashFile", () => {
  test("hashes an empty file", async () => {
    writeFileSync(join(dir, "empty"), "");
    expect(await hashFile(join(dir, "empty"))).toEqual({ sha256: sha(""), size: 0 });
  });

  test("hashes small files in one read and big ones streamed, with the same result as node:crypto", async () => {
    const small = new Uint8Array(1000).map((_, i) => i % 251);
    const big = new Uint8Array(3 * 1024 * 1024 + 17).map((_, i) => (i * 7) % 256);
    writeFileSync(join(dir, "small"), small);
    writeFileSync(join(dir, "big"), big);
    expect(await hashFile(join(dir, "small"))).toEqual({ sha256: sha(small), size: small.length });
    expect(await hashFile(join(dir, "big"))).toEqual({ sha256: sha(big), size: big.length });
    // A stale size hint (the file grew after the stat) still hashes what is there.
    expect((await hashFile(join(dir, "big"), 10)).sha256).toBe(sha(big));
  });

  test("a missing file rejects with ENOENT", async () => {
    await expect(hashFile(join(dir, "nope"))).rejects.toMatchObject({ code: "ENOENT" });
  });

  test("hashBytes matches", () => {
    expect(hashBytes(new TextEncoder().encode("abc"))).toBe(sha("abc"));
  });
});

describe("mapLimit", () => {
  test("keeps the order and never runs more than the limit at once", async () => {
    let running = 0;
    let peak = 0;
    const results = await mapLimit([5, 1, 4, 2, 3], 2, async (n) => {
      running += 1;
      peak = Math.max(peak, running);
      await Bun.sleep(n);
      running -= 1;
      return n * 10;
    });
    expect(results).toEqual([50, 10, 40, 20, 30]);
    expect(peak).toBe(2);
  });
});

describe("hashMany", () => {
  const many = Array.from({ length: 150 }, (_, i) => {
    const path = join(dir, `many-${i}`);
    const data = new Uint8Array(i * 97).map((_byte, j) => (i + j) % 256);
    writeFileSync(path, data);
    return { abs: path, size: data.length, sha256: sha(data) };
  });

  test("on worker threads and on this one, the same hashes in input order", async () => {
    const expected = many.map((f) => ({ sha256: f.sha256, size: f.size }));
    expect(await hashMany(many, { workers: 3 })).toEqual(expected);
    expect(await hashMany(many, { workers: 0 })).toEqual(expected);
  });

  test("a file that cannot be read gets its error; the others are hashed", async () => {
    const files = [...many.slice(0, 80), { abs: join(dir, "missing"), size: 5 }, ...many.slice(80)];
    for (const workers of [2, 0]) {
      const outcomes = await hashMany(files, { workers });
      expect(outcomes[80]).toMatchObject({ code: "ENOENT" });
      expect(outcomes[81]).toEqual({ sha256: many[80]!.sha256, size: many[80]!.size });
    }
  });

  test("where threads cannot start, the files are hashed on this thread", async () => {
    const original = globalThis.Worker;
    globalThis.Worker = function NoThreads() {
      throw new Error("no threads here");
    } as unknown as typeof Worker;
    try {
      expect(await hashMany(many, { workers: 2 })).toEqual(
        many.map((f) => ({ sha256: f.sha256, size: f.size })),
      );
    } finally {
      globalThis.Worker = original;
    }
  });

  test("reports progress and stops when aborted", async () => {
    const seen: number[] = [];
    await hashMany(many, { workers: 2, onProgress: (files) => seen.push(files) });
    expect(seen.at(-1)).toBe(many.length);
    const abort = new AbortController();
    abort.abort(new Error("stop"));
    await expect(hashMany(many, { workers: 2, signal: abort.signal })).rejects.toThrow("stop");
    const midway = new AbortController();
    const stopping = hashMany(many, {
      workers: 2,
      signal: midway.signal,
      onProgress: () => midway.abort(new Error("stopped midway")),
    });
    await expect(stopping).rejects.toThrow("stopped midway");
  });
});
