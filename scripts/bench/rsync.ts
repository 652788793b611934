// rsync figures: hashing throughput beside sha256sum on the same files, first sync, no-change and one-change
// resync of a generated tree, and one big file hashed beside sha256sum. The backend is the cloud client against
// the fake ConTree server on loopback, so uploads are real HTTP requests.
//   bun scripts/bench/rsync.ts [files=10000] [total_mb=500]
// Writes test trees under $TMPDIR (kept between runs, so regenerate by deleting them); prints a table for BENCHMARKS.md.
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CloudBackend } from "../../src/backend/cloud/backend.ts";
import { FileCache } from "../../src/sync/cache.ts";
import { hashFile, mapLimit } from "../../src/sync/hash.ts";
import { syncDirectory, type SyncResult } from "../../src/sync/sync.ts";
import { walkTree } from "../../src/sync/walk.ts";
import { startFakeContree } from "../../test/support/fake-contree.ts";

const fileCount = Number(process.argv[2] ?? 10_000);
const totalMb = Number(process.argv[3] ?? 500);
const tree = join(tmpdir(), `contree-bench-tree-${fileCount}-${totalMb}`);
const bigFile = join(tmpdir(), "contree-bench-1g.bin");

/** A deterministic tree: files spread over 100 x 7 directories, sizes uniform in [0, 2 * mean), random content. */
function generateTree(): void {
  if (existsSync(join(tree, ".complete"))) return;
  rmSync(tree, { recursive: true, force: true });
  const mean = (totalMb * 1_048_576) / fileCount;
  let seed = 42;
  const random = () => (seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648) / 2_147_483_648;
  const noise = new Uint8Array(Math.ceil(mean * 2) + 65_536);
  for (let at = 0; at < noise.length; at += 65_536) crypto.getRandomValues(noise.subarray(at, at + 65_536));
  for (let i = 0; i < fileCount; i++) {
    const dir = join(tree, `pkg${i % 100}`, `mod${i % 7}`);
    mkdirSync(dir, { recursive: true });
    const size = Math.floor(random() * mean * 2);
    const start = Math.floor(random() * 65_536);
    const data = noise.slice(start, start + size);
    data[0] = i & 0xff; // every file differs, so dedup does not hide hashing or upload work
    data[1] = (i >> 8) & 0xff;
    writeFileSync(join(dir, `file${i}.bin`), data);
  }
  writeFileSync(join(tree, ".complete"), "");
}

function generateBigFile(): void {
  if (existsSync(bigFile) && Bun.file(bigFile).size === 1 << 30) return;
  Bun.spawnSync(["sh", "-c", `head -c 1073741824 /dev/urandom > '${bigFile}'`]);
}

function timeCommand(command: string): number {
  const started = performance.now();
  const done = Bun.spawnSync(["sh", "-c", command], { stdout: "ignore", stderr: "inherit" });
  if (done.exitCode !== 0) throw new Error(`${command} failed`);
  return performance.now() - started;
}

const best = (values: number[]) => Math.min(...values);
const median = (values: number[]) => values.toSorted((a, b) => a - b)[Math.floor(values.length / 2)]!;
const mbps = (bytes: number, ms: number) => `${(bytes / 1_048_576 / (ms / 1000)).toFixed(0)} MB/s`;
const ms = (value: number) => `${value.toFixed(0)} ms`;

generateTree();
generateBigFile();
const walked = await walkTree(tree, { exclude: () => false, maxFiles: 1_000_000 });
const files = walked.files.filter((f) => f.rel !== ".complete");
const treeBytes = files.reduce((sum, f) => sum + f.size, 0);
console.error(`tree: ${files.length} files, ${(treeBytes / 1_048_576).toFixed(0)} MB at ${tree}`);

// Warm the page cache for both contenders, then take the best of three.
const sha256sumCommand = `cd '${tree}' && find . -type f -name '*.bin' -print0 | xargs -0 sha256sum > /dev/null`;
timeCommand(sha256sumCommand);
const sha256sumTree = best([0, 1, 2].map(() => timeCommand(sha256sumCommand)));
const hashTreeRuns: number[] = [];
for (let i = 0; i < 3; i++) {
  const started = performance.now();
  await mapLimit(files, 4, (f) => hashFile(f.abs, f.size));
  hashTreeRuns.push(performance.now() - started);
}
const hashTree = best(hashTreeRuns);

const fake = await startFakeContree();
const backend = new CloudBackend({ url: fake.url, token: fake.token, version: "bench" });
const dir = mkdtempSync(join(tmpdir(), "contree-bench-cache-"));
const cache = new FileCache(join(dir, "files.db"));
const sync = (): Promise<SyncResult> =>
  syncDirectory({
    backend,
    cache,
    backendKey: "bench",
    source: tree,
    destination: "/app",
    excludes: [".complete"],
  });

const first = await sync();
const resyncs: number[] = [];
for (let i = 0; i < 7; i++) resyncs.push((await sync()).timings.total);
const changedFile = files[Math.floor(files.length / 2)]!;
const oneChange: number[] = [];
for (let i = 0; i < 5; i++) {
  writeFileSync(changedFile.abs, `changed ${i} ${Date.now()}`);
  const result = await sync();
  if (result.hashed !== 1 || result.uploaded !== 1)
    throw new Error(`expected one changed file, got ${JSON.stringify(result)}`);
  oneChange.push(result.timings.total);
}

timeCommand(`cat '${bigFile}' > /dev/null`);
const sha256sumBig = best([0, 1].map(() => timeCommand(`sha256sum '${bigFile}'`)));
const hashBigRuns: number[] = [];
for (let i = 0; i < 2; i++) {
  const started = performance.now();
  await hashFile(bigFile);
  hashBigRuns.push(performance.now() - started);
}
const hashBig = best(hashBigRuns);

cache.close();
await backend.close();
await fake.close();
rmSync(dir, { recursive: true, force: true });

const rows: Array<[string, string, string]> = [
  [
    `sha256sum, ${files.length} files (${(treeBytes / 1_048_576).toFixed(0)} MB), warm cache`,
    ms(sha256sumTree),
    mbps(treeBytes, sha256sumTree),
  ],
  ["rsync hashing of the same files (Bun.CryptoHasher, 4 at once)", ms(hashTree), mbps(treeBytes, hashTree)],
  [
    "rsync first sync (walk + hash + find/upload over HTTP)",
    ms(first.timings.total),
    `walk ${ms(first.timings.walk)}, hash ${ms(first.timings.hash)} (${mbps(treeBytes, first.timings.hash)}), upload ${ms(first.timings.upload)}`,
  ],
  ["rsync resync, no change (median of 7)", ms(median(resyncs)), `best ${ms(best(resyncs))}`],
  ["rsync resync, one file changed (median of 5)", ms(median(oneChange)), `best ${ms(best(oneChange))}`],
  ["sha256sum, one 1 GiB file, warm cache", ms(sha256sumBig), mbps(1 << 30, sha256sumBig)],
  ["hashFile (streamed), the same 1 GiB file", ms(hashBig), mbps(1 << 30, hashBig)],
];
console.log(`| measurement | time | notes |\n|---|---|---|`);
for (const [what, time, note] of rows) console.log(`| ${what} | ${time} | ${note} |`);
console.log(`\nfirst sync hashing vs sha256sum: ${(sha256sumTree / first.timings.hash).toFixed(1)}x`);
