import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { formula } from "../../scripts/homebrew.ts";
import { ROOT } from "./support.ts";

const hex = (c: string) => c.repeat(64);
const SUMS = [
  `${hex("1")}  contree-mcp-1.2.3-darwin-arm64.tar.gz`,
  `${hex("2")}  contree-mcp-1.2.3-darwin-x64.tar.gz`,
  `${hex("3")}  contree-mcp-1.2.3-linux-arm64-musl.tar.gz`,
  `${hex("4")}  contree-mcp-1.2.3-linux-arm64.tar.gz`,
  `${hex("5")}  contree-mcp-1.2.3-linux-x64-musl.tar.gz`,
  `${hex("6")}  contree-mcp-1.2.3-linux-x64.tar.gz`,
  `${hex("7")}  contree-mcp-1.2.3-windows-x64.zip`,
].join("\n");

/** The url and sha256 lines of one `on_<os> do … on_<cpu> do` block. */
function block(rb: string, os: string, cpu: string): string {
  const section = rb.split(`on_${os} do`)[1]!.split(/\n {2}end\n/)[0]!;
  return section.split(`on_${cpu} do`)[1]!.split("end")[0]!;
}

describe("Homebrew formula", () => {
  test("points each OS and CPU at its glibc archive with that archive's checksum", () => {
    const rb = formula(SUMS);
    expect(rb).toContain('version "1.2.3"');
    const expected = [
      ["macos", "arm", "darwin-arm64", "1"],
      ["macos", "intel", "darwin-x64", "2"],
      ["linux", "arm", "linux-arm64", "4"],
      ["linux", "intel", "linux-x64", "6"],
    ] as const;
    for (const [os, cpu, target, digit] of expected) {
      const text = block(rb, os, cpu);
      expect(text).toContain(`/releases/download/v#{version}/contree-mcp-#{version}-${target}.tar.gz"`);
      expect(text).toContain(`sha256 "${hex(digit)}"`);
    }
    expect(rb).not.toContain("musl");
  });

  test("refuses SHA256SUMS without an archive it needs", () => {
    expect(() => formula(SUMS.replace(/.*darwin-x64.*\n/, ""))).toThrow("no archive for darwin-x64");
  });

  test("the formula in packaging/ is the generator's output for its own checksums", async () => {
    const committed = await Bun.file(join(ROOT, "packaging/homebrew/contree-mcp.rb")).text();
    const version = /version "([^"]+)"/.exec(committed)![1]!;
    const sums = ["darwin-arm64", "darwin-x64", "linux-arm64", "linux-x64"].map((target) => {
      const sha = /sha256 "([0-9a-f]{64})"/.exec(
        block(
          committed,
          target.startsWith("darwin") ? "macos" : "linux",
          target.endsWith("arm64") ? "arm" : "intel",
        ),
      )![1];
      return `${sha}  contree-mcp-${version}-${target}.tar.gz`;
    });
    expect(formula(sums.join("\n"))).toBe(committed);
  });

  const ruby = Bun.which("ruby");
  test.skipIf(!ruby)("parses as Ruby (needs ruby)", () => {
    const check = Bun.spawnSync([ruby!, "-c", join(ROOT, "packaging/homebrew/contree-mcp.rb")]);
    expect(check.stdout.toString()).toContain("Syntax OK");
  });
});
