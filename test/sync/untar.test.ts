import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { packTar, type TarEntry } from "modern-tar";
import { extractTar } from "../../src/sync/untar.ts";

let base: string;
let out: string;

beforeEach(() => {
  base = mkdtempSync(join(tmpdir(), "contree-untar-"));
  out = join(base, "out");
  mkdirSync(out);
});
afterEach(() => rmSync(base, { recursive: true, force: true }));

async function extract(entries: TarEntry[]) {
  const bytes = await packTar(entries);
  return extractTar(new Blob([bytes]).stream(), out);
}

describe("extractTar", () => {
  test("writes files, directories and symlinks with their modes", async () => {
    const result = await extract([
      { header: { name: "./", type: "directory", size: 0 } },
      { header: { name: "./bin/", type: "directory", size: 0, mode: 0o755 } },
      { header: { name: "./bin/tool", size: 3, mode: 0o4755 }, body: "abc" },
      { header: { name: "./README", size: 5, mode: 0o644 }, body: "hello" },
      { header: { name: "./link", type: "symlink", size: 0, linkname: "README" } },
      { header: { name: "./abs", type: "symlink", size: 0, linkname: "/etc/passwd" } },
    ]);
    expect(result).toMatchObject({ files: 2, directories: 1, symlinks: 2, bytes: 8, skipped: [] });
    expect(readFileSync(join(out, "bin/tool"), "utf8")).toBe("abc");
    expect(lstatSync(join(out, "bin/tool")).mode & 0o7777).toBe(0o755);
    expect(readlinkSync(join(out, "link"))).toBe("README");
    expect(readlinkSync(join(out, "abs"))).toBe("/etc/passwd");
  });

  test("never writes outside the directory, by name or through a symlink", async () => {
    const result = await extract([
      { header: { name: "../escape", size: 1 }, body: "x" },
      { header: { name: "a/../../escape2", size: 1 }, body: "x" },
      { header: { name: "out-link", type: "symlink", size: 0, linkname: base } },
      { header: { name: "out-link/pwned", size: 1 }, body: "x" },
      { header: { name: "/abs/file", size: 2 }, body: "ok" },
    ]);
    expect(existsSync(join(base, "escape"))).toBe(false);
    expect(existsSync(join(base, "escape2"))).toBe(false);
    expect(existsSync(join(base, "pwned"))).toBe(false);
    expect(readFileSync(join(out, "abs/file"), "utf8")).toBe("ok");
    expect(result.skipped.map((s) => s.path).toSorted()).toEqual([
      "../escape",
      "a/../../escape2",
      "out-link/pwned",
    ]);
  });

  test("hard links to extracted files become links; device entries are skipped", async () => {
    const result = await extract([
      { header: { name: "a", size: 2 }, body: "hi" },
      { header: { name: "b", type: "link", size: 0, linkname: "a" } },
      { header: { name: "dev", type: "character-device", size: 0 } },
    ]);
    expect(readFileSync(join(out, "b"), "utf8")).toBe("hi");
    expect(result.skipped).toEqual([{ path: "dev", reason: expect.stringContaining("not extracted") }]);
  });
});
