import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compileExcludes } from "../../src/sync/exclude.ts";
import { walkTree } from "../../src/sync/walk.ts";

let base: string;
let root: string;

beforeEach(() => {
  base = mkdtempSync(join(tmpdir(), "contree-walk-"));
  root = join(base, "tree");
  mkdirSync(root);
});
afterEach(() => rmSync(base, { recursive: true, force: true }));

function write(rel: string, content = rel, mode?: number): void {
  const path = join(root, rel);
  mkdirSync(join(path, ".."), { recursive: true });
  writeFileSync(path, content);
  if (mode !== undefined) chmodSync(path, mode);
}

const walk = (excludes: string[] = []) =>
  walkTree(root, { exclude: compileExcludes(excludes), maxFiles: 1000 });

describe("walkTree", () => {
  test("lists regular files with relative paths, sizes and permission bits, sorted", async () => {
    write("b.txt", "bb");
    write("a/run.sh", "#!/bin/sh\n", 0o755);
    write("a/deep/x.py", "print(1)\n", 0o644);
    const { files, skipped } = await walk();
    expect(files.map((f) => f.rel)).toEqual(["a/deep/x.py", "a/run.sh", "b.txt"]);
    expect(files.find((f) => f.rel === "a/run.sh")?.mode).toBe(0o755);
    expect(files.find((f) => f.rel === "b.txt")?.size).toBe(2);
    expect(files.every((f) => f.abs === join(root, f.rel))).toBe(true);
    expect(skipped).toEqual([]);
  });

  test("excluded directories are not entered and excluded files are left out", async () => {
    write("src/app.py");
    write("src/__pycache__/app.cpython-311.pyc");
    write("__pycache__/top.pyc");
    write("lib/mod.pyc");
    write(".git/HEAD");
    write(".gitignore");
    const { files } = await walk(["__pycache__", "*.pyc", ".git"]);
    expect(files.map((f) => f.rel)).toEqual([".gitignore", "src/app.py"]);
  });

  test("symlinks inside the tree are followed; outside, broken and looping ones are reported", async () => {
    write("real/data.txt", "data");
    write("real/tool.sh", "x", 0o755);
    writeFileSync(join(base, "secret.txt"), "outside");
    symlinkSync("real/data.txt", join(root, "link.txt"));
    symlinkSync("real", join(root, "alias"));
    symlinkSync(join(base, "secret.txt"), join(root, "escape.txt"));
    symlinkSync("missing", join(root, "broken"));
    symlinkSync("..", join(root, "real", "loop"));
    const { files, skipped } = await walk();
    expect(files.map((f) => f.rel)).toEqual([
      "alias/data.txt",
      "alias/tool.sh",
      "link.txt",
      "real/data.txt",
      "real/tool.sh",
    ]);
    expect(files.find((f) => f.rel === "alias/tool.sh")?.mode).toBe(0o755);
    const reasons = Object.fromEntries(skipped.map((s) => [s.path, s.reason]));
    expect(reasons["escape.txt"]).toContain("outside the synced tree");
    expect(reasons["broken"]).toContain("broken symlink");
    expect(reasons["real/loop"]).toContain("symlink loop");
    expect(reasons["alias/loop"]).toContain("symlink loop");
  });

  test("special files are reported, not listed", async () => {
    write("a.txt");
    Bun.spawnSync(["mkfifo", join(root, "pipe")]);
    const { files, skipped } = await walk();
    expect(files.map((f) => f.rel)).toEqual(["a.txt"]);
    expect(skipped).toEqual([{ path: "pipe", reason: expect.stringContaining("special file") }]);
  });

  test.skipIf(process.getuid?.() === 0)("an unreadable directory is reported, not fatal", async () => {
    write("ok.txt");
    write("locked/inner.txt");
    chmodSync(join(root, "locked"), 0o000);
    try {
      const { files, skipped } = await walk();
      expect(files.map((f) => f.rel)).toEqual(["ok.txt"]);
      expect(skipped[0]?.reason).toContain("not readable");
    } finally {
      chmodSync(join(root, "locked"), 0o755);
    }
  });

  test("a single file as the root yields that file under its name", async () => {
    write("one.txt", "1");
    const { files } = await walkTree(join(root, "one.txt"), { exclude: () => false, maxFiles: 10 });
    expect(files.map((f) => f.rel)).toEqual(["one.txt"]);
  });

  test("too many files stops the walk", async () => {
    for (let i = 0; i < 5; i++) write(`f${i}`);
    await expect(walkTree(root, { exclude: () => false, maxFiles: 3 })).rejects.toThrow("more than 3 files");
  });
});
