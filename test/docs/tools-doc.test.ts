import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { toolsDocument } from "../../src/guide/reference.ts";
import { TOOLS } from "../../src/tools/index.ts";

test("docs/tools.md is generated from the current tools (run `bun scripts/docs.ts` after changing a tool)", () => {
  const onDisk = readFileSync(join(import.meta.dir, "..", "..", "docs", "tools.md"), "utf8");
  expect(onDisk).toBe(toolsDocument(TOOLS));
});
