// Compiles the server into standalone executables.
//   bun scripts/build.ts [outfile]         this machine's platform, to dist/contree-mcp (or outfile)
//   bun scripts/build.ts --release (or --all) [--targets linux-x64,darwin-arm64] [--out dist/release]
//                                          every target (or the listed ones): binaries under <out>/bin/<name>/,
//                                          archives contree-mcp-<version>-<name>.tar.gz (.zip for Windows), SHA256SUMS
// The version comes from CONTREE_MCP_VERSION, else package.json. Cross-compiling downloads each target's Bun runtime
// from the npm registry (@oven/bun-<target>) once, into ~/.bun/install/cache.
import { crc32, deflateRawSync } from "node:zlib";
import { mkdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { packTar } from "modern-tar";
import pkg from "../package.json" with { type: "json" };

export interface Target {
  /** Archive and directory suffix: `<os>-<arch>[-musl]`. */
  name: string;
  bun: Bun.Build.CompileTarget;
  /** As in `process.platform` / `process.arch`, which npm's os/cpu fields use. */
  platform: "linux" | "darwin" | "win32";
  arch: "x64" | "arm64";
  libc?: "glibc" | "musl";
}

export const TARGETS: readonly Target[] = [
  { name: "linux-x64", bun: "bun-linux-x64", platform: "linux", arch: "x64", libc: "glibc" },
  { name: "linux-arm64", bun: "bun-linux-arm64", platform: "linux", arch: "arm64", libc: "glibc" },
  { name: "linux-x64-musl", bun: "bun-linux-x64-musl", platform: "linux", arch: "x64", libc: "musl" },
  { name: "linux-arm64-musl", bun: "bun-linux-arm64-musl", platform: "linux", arch: "arm64", libc: "musl" },
  { name: "darwin-x64", bun: "bun-darwin-x64", platform: "darwin", arch: "x64" },
  { name: "darwin-arm64", bun: "bun-darwin-arm64", platform: "darwin", arch: "arm64" },
  { name: "windows-x64", bun: "bun-windows-x64", platform: "win32", arch: "x64" },
];

export function binaryName(target: Target): string {
  return target.platform === "win32" ? "contree-mcp.exe" : "contree-mcp";
}

export function archiveName(target: Target, version: string): string {
  return `contree-mcp-${version}-${target.name}.${target.platform === "win32" ? "zip" : "tar.gz"}`;
}

/** The target this process runs on, or undefined on a platform we do not ship. */
export function hostTarget(): Target | undefined {
  // Bun on musl reports no glibc version in its report header, the same test Node's detect-libc uses.
  const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)
    ?.header;
  const libc = process.platform === "linux" ? (header?.glibcVersionRuntime ? "glibc" : "musl") : undefined;
  return TARGETS.find((t) => t.platform === process.platform && t.arch === process.arch && t.libc === libc);
}

export const VERSION: string = process.env.CONTREE_MCP_VERSION ?? pkg.version;

/** Every tool's JSON Schemas, converted now so the binary does not convert them at its first tools/list. */
async function builtToolSchemas(): Promise<Record<string, unknown>> {
  const { TOOLS } = await import("../src/tools/index.ts");
  const { toolJsonSchemas } = await import("../src/tools/tool.ts");
  return Object.fromEntries(TOOLS.map((tool) => [tool.name, toolJsonSchemas(tool)]));
}

/** One compile; `target` undefined means this machine's platform. */
export async function compile(outfile: string, target?: Target): Promise<void> {
  const result = await Bun.build({
    entrypoints: [join(import.meta.dir, "../src/main.ts")],
    compile: target ? { outfile, target: target.bun } : { outfile },
    // Bytecode needs ESM output when the code uses top-level await; it cuts startup roughly in half.
    bytecode: true,
    format: "esm",
    minify: true,
    sourcemap: "linked",
    define: {
      CONTREE_MCP_VERSION: JSON.stringify(VERSION),
      CONTREE_MCP_TOOL_JSON_SCHEMAS: JSON.stringify(await builtToolSchemas()),
    },
  });
  if (!result.success) {
    throw new AggregateError(result.logs, `compiling ${target?.name ?? "the host binary"} failed`);
  }
}

// Fixed timestamps and owners keep archives of the same binaries byte-identical.
function sourceDate(): Date {
  const epoch = Number(process.env.SOURCE_DATE_EPOCH);
  return Number.isFinite(epoch) && epoch > 0 ? new Date(epoch * 1000) : new Date("2026-01-01T00:00:00Z");
}

type GzipLevel = 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9;

interface ArchiveFile {
  name: string;
  data: Uint8Array;
  mode: number;
}

async function tarGz(files: ArchiveFile[], level: GzipLevel): Promise<Uint8Array> {
  const mtime = sourceDate();
  const tar = await packTar(
    files.map((f) => ({
      header: {
        name: f.name,
        size: f.data.length,
        mode: f.mode,
        mtime,
        uid: 0,
        gid: 0,
        uname: "",
        gname: "",
      },
      body: f.data,
    })),
  );
  return Bun.gzipSync(tar, { level });
}

/** A plain deflate zip: Windows Explorer and PowerShell's Expand-Archive open it; no zip64 (files < 4 GiB). */
function zip(files: ArchiveFile[], level: GzipLevel): Uint8Array {
  const date = sourceDate();
  const dosTime = (date.getUTCHours() << 11) | (date.getUTCMinutes() << 5) | (date.getUTCSeconds() >> 1);
  const dosDate = ((date.getUTCFullYear() - 1980) << 9) | ((date.getUTCMonth() + 1) << 5) | date.getUTCDate();
  const parts: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  let offset = 0;
  for (const file of files) {
    const name = Buffer.from(file.name);
    const packed = deflateRawSync(file.data, { level });
    const crc = crc32(file.data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4); // version needed: 2.0 (deflate)
    local.writeUInt16LE(0x0800, 6); // UTF-8 names
    local.writeUInt16LE(8, 8); // deflate
    local.writeUInt16LE(dosTime, 10);
    local.writeUInt16LE(dosDate, 12);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(packed.length, 18);
    local.writeUInt32LE(file.data.length, 22);
    local.writeUInt16LE(name.length, 26);
    const entry = Buffer.alloc(46);
    entry.writeUInt32LE(0x02014b50, 0);
    entry.writeUInt16LE((3 << 8) | 20, 4); // made by Unix, so the mode below is honoured by unzip
    local.copy(entry, 6, 4, 30); // version needed .. name length: same fields as the local header
    entry.writeUInt32LE(((file.mode | 0o100000) << 16) >>> 0, 38);
    entry.writeUInt32LE(offset, 42);
    parts.push(local, name, packed);
    central.push(entry, name);
    offset += local.length + name.length + packed.length;
  }
  const centralSize = central.reduce((n, b) => n + b.length, 0);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(files.length, 8);
  end.writeUInt16LE(files.length, 10);
  end.writeUInt32LE(centralSize, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...parts, ...central, end]);
}

function sha256(data: Uint8Array): string {
  return new Bun.CryptoHasher("sha256").update(data).digest("hex");
}

/**
 * Writes the archive of one compiled target; returns its file name. Level 9 saves ~2.5% over 6 for ~60% more time:
 * worth it for a release, not for a test.
 */
export async function writeArchive(
  outDir: string,
  target: Target,
  binary: string,
  level: GzipLevel = 9,
): Promise<string> {
  const root = join(import.meta.dir, "..");
  const files: ArchiveFile[] = [
    { name: binaryName(target), data: readFileSync(binary), mode: 0o755 },
    { name: "LICENSE", data: readFileSync(join(root, "LICENSE")), mode: 0o644 },
    { name: "README.md", data: readFileSync(join(root, "README.md")), mode: 0o644 },
  ];
  const name = archiveName(target, VERSION);
  await Bun.write(
    join(outDir, name),
    target.platform === "win32" ? zip(files, level) : await tarGz(files, level),
  );
  return name;
}

/** `sha256sum -c` format: `<hex>  <file>`, sorted by file name. */
export async function writeChecksums(outDir: string, names: string[]): Promise<void> {
  const lines: string[] = [];
  for (const name of names.toSorted()) {
    lines.push(`${sha256(await Bun.file(join(outDir, name)).bytes())}  ${name}`);
  }
  await Bun.write(join(outDir, "SHA256SUMS"), `${lines.join("\n")}\n`);
}

async function release(outDir: string, only: string[] | undefined): Promise<void> {
  const unknown = only?.filter((n) => !TARGETS.some((t) => t.name === n)) ?? [];
  if (unknown.length > 0) {
    throw new Error(
      `unknown target(s) ${unknown.join(", ")}; known: ${TARGETS.map((t) => t.name).join(", ")}`,
    );
  }
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  const names: string[] = [];
  for (const target of TARGETS.filter((t) => !only || only.includes(t.name))) {
    const started = performance.now();
    const binary = join(outDir, "bin", target.name, binaryName(target));
    await compile(binary, target);
    const name = await writeArchive(outDir, target, binary);
    names.push(name);
    const mb = (path: string) => (statSync(path).size / 1e6).toFixed(1);
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    console.log(`${name}: binary ${mb(binary)} MB, archive ${mb(join(outDir, name))} MB, ${seconds} s`);
  }
  await writeChecksums(outDir, names);
  console.log(`wrote ${names.length} archives and SHA256SUMS to ${outDir} (contree-mcp ${VERSION})`);
}

if (import.meta.main) {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      release: { type: "boolean" },
      all: { type: "boolean" },
      targets: { type: "string" },
      out: { type: "string" },
    },
  });
  try {
    if (values.release || values.all || values.targets) {
      await release(
        values.out ?? "dist/release",
        values.targets?.split(",").map((s) => s.trim()),
      );
    } else {
      const outfile = positionals[0] ?? "dist/contree-mcp";
      await compile(outfile);
      console.log(`built ${outfile} (contree-mcp ${VERSION})`);
    }
  } catch (error) {
    console.error(error instanceof AggregateError ? [error.message, ...error.errors].join("\n") : error);
    process.exit(1);
  }
}
