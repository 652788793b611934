import { describe, expect, test } from "bun:test";
import { compileExcludes, normaliseExcludes } from "../../src/sync/exclude.ts";

describe("compileExcludes", () => {
  test("a bare name matches at any depth, and only that name", () => {
    const excluded = compileExcludes(["__pycache__", ".git"]);
    expect(excluded("__pycache__", true)).toBe(true);
    expect(excluded("pkg/sub/__pycache__", true)).toBe(true);
    expect(excluded(".git", true)).toBe(true);
    expect(excluded(".gitignore", false)).toBe(false);
    expect(excluded(".github", true)).toBe(false);
    expect(excluded("src/__pycache__x", true)).toBe(false);
  });

  test("wildcards match the last component anywhere, dotfiles included", () => {
    const excluded = compileExcludes(["*.pyc", "file?.txt"]);
    expect(excluded("a.pyc", false)).toBe(true);
    expect(excluded("deep/er/b.pyc", false)).toBe(true);
    expect(excluded("a.pyc.txt", false)).toBe(false);
    expect(excluded(".hidden.pyc", false)).toBe(true);
    expect(excluded("file1.txt", false)).toBe(true);
    expect(excluded("file10.txt", false)).toBe(false);
  });

  test("a trailing slash means directories only", () => {
    const excluded = compileExcludes(["build/"]);
    expect(excluded("build", true)).toBe(true);
    expect(excluded("src/build", true)).toBe(true);
    expect(excluded("build", false)).toBe(false);
  });

  test("a slash anchors the pattern to the root; ** spans directories", () => {
    const excluded = compileExcludes(["/dist", "docs/*.md", "**/gen/**"]);
    expect(excluded("dist", true)).toBe(true);
    expect(excluded("pkg/dist", true)).toBe(false);
    expect(excluded("docs/a.md", false)).toBe(true);
    expect(excluded("x/docs/a.md", false)).toBe(false);
    expect(excluded("a/gen/b.ts", false)).toBe(true);
  });

  test("matching is case-sensitive", () => {
    const excluded = compileExcludes(["*.LOG"]);
    expect(excluded("a.LOG", false)).toBe(true);
    expect(excluded("a.log", false)).toBe(false);
  });

  test("! takes a path back in; the last matching rule wins", () => {
    const excluded = compileExcludes(["*.log", "!keep.log"]);
    expect(excluded("a.log", false)).toBe(true);
    expect(excluded("sub/keep.log", false)).toBe(false);
  });

  test("blank lines and comments are ignored; no patterns excludes nothing", () => {
    expect(compileExcludes(["", "  ", "# note"])("anything", false)).toBe(false);
    expect(compileExcludes([])("x", true)).toBe(false);
  });

  test("a pattern of only slashes is refused", () => {
    expect(() => compileExcludes(["/"])).toThrow("matches nothing useful");
  });
});

describe("normaliseExcludes", () => {
  test("the same set in any order gives the same list", () => {
    expect(normaliseExcludes(["b", "a", " a ", ""])).toEqual(["a", "b"]);
    expect(normaliseExcludes(null)).toEqual([]);
  });

  test("with a negation the order is kept", () => {
    expect(normaliseExcludes(["*.log", "!keep.log"])).toEqual(["*.log", "!keep.log"]);
  });
});
