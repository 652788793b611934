// A damaged store database is the user's to deal with: one line naming the file, never a repair (it is the only
// record of the store's images) and never a bare SQLite stack.
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LocalBackend } from "../../../src/backend/local/backend.ts";
import { removeTree } from "../../../src/backend/local/fsx.ts";
import { UserError } from "../../../src/errors.ts";
import { cli } from "../../support/cli.ts";

const dirs: string[] = [];

function corruptRoot(): { root: string; db: string; bytes: Buffer } {
  const root = mkdtempSync(join(tmpdir(), "contree-local-corrupt-"));
  dirs.push(root);
  const db = join(root, "store.sqlite");
  const bytes = Buffer.from(crypto.getRandomValues(new Uint8Array(8192)));
  writeFileSync(db, bytes);
  return { root, db, bytes };
}

afterEach(() => {
  for (const dir of dirs.splice(0)) removeTree(dir);
});

describe("a corrupt local store", () => {
  test("opening it is a UserError naming the file; the file is left as it was", async () => {
    const { root, db, bytes } = corruptRoot();
    let caught: unknown;
    try {
      const backend = new LocalBackend({ root, network: "none", maxConcurrent: 1 });
      await backend.close();
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(UserError);
    const message = (caught as Error).message;
    expect(message).toContain(db);
    expect(message).toContain("aside");
    expect(message).toContain("--local-root");
    expect(readFileSync(db).equals(bytes)).toBe(true);
  });

  test("serve --backend local says so in one line and exits 1", async () => {
    const { root, db } = corruptRoot();
    const home = mkdtempSync(join(tmpdir(), "contree-local-corrupt-home-"));
    dirs.push(home);
    const { stderr, code } = await cli(home, ["serve", "--backend", "local", "--local-root", root]);
    expect(code).toBe(1);
    expect(stderr).toContain(db);
    expect(stderr).not.toContain("SQLiteError");
    expect(stderr.trim().split("\n")).toHaveLength(1);
  }, 30_000);
});
