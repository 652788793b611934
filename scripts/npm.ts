// Lays out the npm packages (the esbuild/Biome pattern) from the binaries of `bun scripts/build.ts --release`:
//   <out>/contree-mcp/        the `contree-mcp` package: a small node launcher + one optionalDependency per platform
//   <out>/<target>/           @contree-mcp/<platform>-<arch>[-musl]: one binary, with os/cpu/libc so npm picks it
//   bun scripts/npm.ts [--release dist/release] [--out dist/npm] [--targets linux-x64,...]
// Publish the platform packages first, then the main one (release.yml does).
import { chmodSync, copyFileSync, existsSync, mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import pkg from "../package.json" with { type: "json" };
import { TARGETS, VERSION, binaryName, type Target } from "./build.ts";

const ROOT = join(import.meta.dir, "..");

export function platformPackageName(target: Target): string {
  const name = target.name.replace(/^windows-/, "win32-");
  return `@contree-mcp/${name}`;
}

function common(version: string) {
  return {
    version,
    license: pkg.license,
    repository: pkg.repository,
    homepage: pkg.homepage,
  };
}

async function writeJson(path: string, value: unknown): Promise<void> {
  await Bun.write(path, `${JSON.stringify(value, null, 2)}\n`);
}

/** The main package; returns its directory. */
export async function writeMainPackage(outDir: string, version = VERSION): Promise<string> {
  const dir = join(outDir, "contree-mcp");
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, "bin"), { recursive: true });
  copyFileSync(join(ROOT, "packaging/npm/contree-mcp.cjs"), join(dir, "bin/contree-mcp.cjs"));
  chmodSync(join(dir, "bin/contree-mcp.cjs"), 0o755);
  copyFileSync(join(ROOT, "README.md"), join(dir, "README.md"));
  copyFileSync(join(ROOT, "LICENSE"), join(dir, "LICENSE"));
  await writeJson(join(dir, "package.json"), {
    name: "contree-mcp",
    ...common(version),
    description: pkg.description,
    keywords: pkg.keywords,
    bin: { "contree-mcp": "bin/contree-mcp.cjs" },
    files: ["bin"],
    engines: { node: ">=18" },
    optionalDependencies: Object.fromEntries(TARGETS.map((t) => [platformPackageName(t), version])),
  });
  return dir;
}

/** One platform package holding `binary`; returns its directory. */
export async function writePlatformPackage(
  outDir: string,
  target: Target,
  binary: string,
  version = VERSION,
): Promise<string> {
  const dir = join(outDir, target.name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, "bin"), { recursive: true });
  const dest = join(dir, "bin", binaryName(target));
  copyFileSync(binary, dest);
  chmodSync(dest, 0o755);
  copyFileSync(join(ROOT, "LICENSE"), join(dir, "LICENSE"));
  const libc = target.libc ? ` (${target.libc})` : "";
  await Bun.write(
    join(dir, "README.md"),
    `# ${platformPackageName(target)}\n\nThe \`contree-mcp\` binary for ${target.name}${libc}. ` +
      "Install [`contree-mcp`](https://www.npmjs.com/package/contree-mcp) instead: it picks this package when it fits.\n",
  );
  await writeJson(join(dir, "package.json"), {
    name: platformPackageName(target),
    ...common(version),
    description: `The contree-mcp binary for ${target.name}${libc}`,
    os: [target.platform],
    cpu: [target.arch],
    ...(target.libc ? { libc: [target.libc] } : {}),
    files: ["bin"],
    // Yarn PnP would otherwise keep the binary inside a zip, where it cannot be executed.
    preferUnplugged: true,
  });
  return dir;
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: { release: { type: "string" }, out: { type: "string" }, targets: { type: "string" } },
  });
  const releaseDir = values.release ?? "dist/release";
  const outDir = values.out ?? "dist/npm";
  const only = values.targets?.split(",").map((s) => s.trim());
  const targets = TARGETS.filter((t) => !only || only.includes(t.name));
  const missing = targets.filter((t) => !existsSync(join(releaseDir, "bin", t.name, binaryName(t))));
  if (missing.length > 0) {
    console.error(
      `no binary for ${missing.map((t) => t.name).join(", ")} under ${releaseDir}/bin; run \`bun scripts/build.ts --release\` first`,
    );
    process.exit(1);
  }
  for (const target of targets) {
    const dir = await writePlatformPackage(
      outDir,
      target,
      join(releaseDir, "bin", target.name, binaryName(target)),
    );
    console.log(`${platformPackageName(target)}@${VERSION}: ${dir}`);
  }
  console.log(`contree-mcp@${VERSION}: ${await writeMainPackage(outDir)}`);
}
