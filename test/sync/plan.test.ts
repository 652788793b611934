import { describe, expect, test } from "bun:test";
import {
  normaliseDestination,
  planHashing,
  sameLooks,
  sameStateFiles,
  stateKey,
  targetPath,
} from "../../src/sync/plan.ts";
import type { StateLook } from "../../src/sync/cache.ts";
import type { LocalFile } from "../../src/sync/walk.ts";

const local = (rel: string, over: Partial<LocalFile> = {}): LocalFile => ({
  rel,
  abs: `/t/${rel}`,
  size: 10,
  mtimeMs: 1000.25,
  ino: 1,
  mode: 0o644,
  ...over,
});

describe("planHashing", () => {
  test("a file that looks the same is not hashed again; any change in size, mtime, inode or mode is", () => {
    const known = new Map(
      ["a", "b", "c", "d", "e"].map((rel) => [
        `/t/${rel}`,
        { ...local(rel), path: `/t/${rel}`, sha256: rel },
      ]),
    );
    const plan = planHashing(
      [
        local("a"),
        local("b", { size: 11 }),
        local("c", { mtimeMs: 1000.26 }),
        local("d", { ino: 2 }),
        local("e", { mode: 0o755 }),
        local("new"),
      ],
      (file) => known.get(file.abs),
    );
    expect(plan.unchanged.map((u) => [u.file.rel, u.sha256])).toEqual([["a", "a"]]);
    expect(plan.changed.map((f) => f.rel)).toEqual(["b", "c", "d", "e", "new"]);
  });
});

describe("paths and keys", () => {
  test("destinations are absolute and normalised", () => {
    expect(normaliseDestination("/app/")).toBe("/app");
    expect(normaliseDestination("/app//src/../lib")).toBe("/app/lib");
    expect(normaliseDestination("/")).toBe("/");
    expect(normaliseDestination("app")).toBeNull();
    expect(targetPath("/", "a/b")).toBe("/a/b");
    expect(targetPath("/app", "a/b")).toBe("/app/a/b");
  });

  test("the state key separates backend, source, destination and excludes", () => {
    const keys = new Set([
      stateKey("b", "/s", "/d", []),
      stateKey("b2", "/s", "/d", []),
      stateKey("b", "/s2", "/d", []),
      stateKey("b", "/s", "/d2", []),
      stateKey("b", "/s", "/d", ["x"]),
    ]);
    expect(keys.size).toBe(5);
  });

  test("sameStateFiles compares every field", () => {
    const f = { rel: "a", sha256: "s", uuid: "u", mode: 0o644, size: 1, mtimeMs: 5, ino: 6 };
    expect(sameStateFiles([f], [{ ...f }])).toBe(true);
    expect(sameStateFiles([f], [{ ...f, mode: 0o755 }])).toBe(false);
    expect(sameStateFiles([f], [{ ...f, mtimeMs: 5.5 }])).toBe(false);
    expect(sameStateFiles([f], [])).toBe(false);
  });

  test("sameLooks: the walked files look exactly as the state recorded them, in order", () => {
    const files = [local("a"), local("b", { mode: 0o4755 })];
    const looks: StateLook[] = [
      ["a", 10, 1000.25, 1, 0o644],
      ["b", 10, 1000.25, 1, 0o755],
    ];
    expect(sameLooks(looks, files)).toBe(true);
    expect(sameLooks(looks.slice(0, 1), files)).toBe(false);
    expect(sameLooks([looks[0]!, ["b", 10, 1000.5, 1, 0o755]], files)).toBe(false);
    expect(sameLooks([looks[0]!, ["c", 10, 1000.25, 1, 0o755]], files)).toBe(false);
  });
});
