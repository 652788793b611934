import { afterAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { hashBytes, hashFile, mapLimit } from "../../src/sync/hash.ts";

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
