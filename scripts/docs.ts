// Writes docs/tools.md from the tool registry. test/docs/tools-doc.test.ts fails when it is out of date.
import { join } from "node:path";
import { toolsDocument } from "../src/guide/reference.ts";
import { TOOLS } from "../src/tools/index.ts";

const path = join(import.meta.dir, "..", "docs", "tools.md");
await Bun.write(path, toolsDocument(TOOLS));
process.stdout.write(`wrote ${path}\n`);
