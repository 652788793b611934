// rsync figures: hashing throughput beside sha256sum on the same files, first sync, no-change and one-change
// resync of a generated tree, and one big file hashed beside sha256sum. The backend is the cloud client against
// the fake ConTree server on loopback, so uploads are real HTTP requests (the fake runs in this process, so the
// upload phase is slower than against a real service; it is reported, not aimed at).
//   bun scripts/bench/rsync.ts [files=10000] [total_mb=500] [--keep]
// Writes the test tree and a 1 GiB file under $TMPDIR and deletes them at the end unless --keep is given (a kept
// tree is reused by the next run). Prints a table with medians; the machine's load moves every figure, so compare
// the ratios, which are taken from runs interleaved with each other.
import { availableParallelism } from "node:os";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CloudBackend } from "../../src/backend/cloud/backend.ts";
import { FileCache } from "../../src/sync/cache.ts";
import { hashFile } from "../../src/sync/hash.ts";
import { hashMany, hashOne } from "../../src/sync/hash-pool.ts";
import { syncDirectory, type SyncResult } from "../../src/sync/sync.ts";
import { walkTree } from "../../src/sync/walk.ts";
import { startFakeContree } from "../../test/support/fake-contree.ts";

const positional = process.argv.slice(2).filter((a) => !a.startsWith("--"));
const keep = process.argv.includes("--keep");
const fileCount = Number(positional[0] ?? 10_000);
const totalMb = Number(positional[1] ?? 500);
const tree = join(tmpdir(), `contree-bench-tree-${fileCount}-${totalMb}`);
const bigFile = join(tmpdir(), "contree-bench-1g.bin");
const TRIALS = 5;

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

/** Wall time and CPU time (all threads and child processes) in ms: on a loaded machine the CPU time is the steadier. */
interface Timing {
  wall: number;
  cpu: number;
}

function timeCommand(command: string): Timing {
  const started = performance.now();
  const done = Bun.spawnSync(["sh", "-c", command], { stdout: "ignore", stderr: "inherit" });
  if (done.exitCode !== 0) throw new Error(`${command} failed`);
  return { wall: performance.now() - started, cpu: Number(done.resourceUsage.cpuTime.total) / 1000 };
}

async function timed(work: () => Promise<unknown>): Promise<Timing> {
  const started = performance.now();
  const cpu = process.cpuUsage();
  await work();
  const used = process.cpuUsage(cpu);
  return { wall: performance.now() - started, cpu: (used.user + used.system) / 1000 };
}

const median = (values: number[]) => values.toSorted((a, b) => a - b)[Math.floor(values.length / 2)]!;
const mbps = (bytes: number, ms: number) => `${(bytes / 1_048_576 / (ms / 1000)).toFixed(0)} MB/s`;
const ms = (value: number) => `${value.toFixed(0)} ms`;
const ratio = (slow: number, fast: number) => `${(slow / fast).toFixed(2)}x`;

generateTree();
generateBigFile();
const walked = await walkTree(tree, { exclude: () => false, maxFiles: 1_000_000 });
const files = walked.files.filter((f) => f.rel !== ".complete");
const treeBytes = files.reduce((sum, f) => sum + f.size, 0);
const cpus = availableParallelism();
console.error(
  `tree: ${files.length} files, ${(treeBytes / 1_048_576).toFixed(0)} MB at ${tree}; ${cpus} CPUs`,
);

// sha256sum as one process at a time (xargs hands it thousands of files per call), and as many processes as CPUs.
const listFiles = `cd '${tree}' && find . -type f -name '*.bin' -print0`;
const sha256sumOne = `${listFiles} | xargs -0 sha256sum > /dev/null`;
const sha256sumParallel = `${listFiles} | xargs -0 -P ${cpus} -n 500 sha256sum > /dev/null`;

// Warm the page cache, then interleave the contenders so that load on the machine hits them alike.
timeCommand(sha256sumOne);
await hashMany(files);
const runs = { one: [] as Timing[], parallel: [] as Timing[], pool: [] as Timing[], here: [] as Timing[] };
for (let i = 0; i < TRIALS; i++) {
  runs.one.push(timeCommand(sha256sumOne));
  runs.pool.push(await timed(() => hashMany(files)));
  runs.parallel.push(timeCommand(sha256sumParallel));
  runs.here.push(await timed(() => hashMany(files, { workers: 0 })));
}

const fake = await startFakeContree();
const backend = new CloudBackend({ url: fake.url, token: fake.token, version: "bench" });
const dirs: string[] = [];
const freshCache = () => {
  const dir = mkdtempSync(join(tmpdir(), "contree-bench-cache-"));
  dirs.push(dir);
  return new FileCache(join(dir, "files.db"));
};
const sync = (cache: FileCache, backendKey = "bench"): Promise<SyncResult> =>
  syncDirectory({
    backend,
    cache,
    backendKey,
    source: tree,
    destination: "/app",
    excludes: [".complete"],
  });

// The first sync, uploads included, once; then first syncs with a fresh file cache against a backend that already
// holds the blobs (a new machine, say): the hash phase is the same work, without 10,000 uploads to wait for.
const cache = freshCache();
const first = await sync(cache);
const firstHash: number[] = [first.timings.hash];
const sha256sumBeside: number[] = [];
for (let i = 0; i < 2; i++) {
  sha256sumBeside.push(timeCommand(sha256sumOne).wall);
  const other = freshCache();
  firstHash.push((await sync(other, `bench-${i}`)).timings.hash);
  other.close();
}

const resyncs: SyncResult[] = [];
const resyncCpu: number[] = [];
for (let i = 0; i < 9; i++) {
  let result: SyncResult | undefined;
  resyncCpu.push(
    (
      await timed(async () => {
        result = await sync(cache);
      })
    ).cpu,
  );
  resyncs.push(result!);
}
if (resyncs.some((r) => r.hashed !== 0 || r.uploaded !== 0)) throw new Error("a no-change resync did work");
const changedFile = files[Math.floor(files.length / 2)]!;
const oneChange: number[] = [];
for (let i = 0; i < 5; i++) {
  writeFileSync(changedFile.abs, `changed ${i} ${Date.now()}`);
  const result = await sync(cache);
  if (result.hashed !== 1 || result.uploaded !== 1)
    throw new Error(`expected one changed file, got ${JSON.stringify(result)}`);
  oneChange.push(result.timings.total);
}

timeCommand(`cat '${bigFile}' > /dev/null`);
const bigRuns = { sha256sum: [] as Timing[], hashFile: [] as Timing[], hashOne: [] as Timing[] };
for (let i = 0; i < 3; i++) {
  bigRuns.sha256sum.push(timeCommand(`sha256sum '${bigFile}'`));
  bigRuns.hashFile.push(await timed(() => hashFile(bigFile)));
  bigRuns.hashOne.push(await timed(() => hashOne(bigFile, 1 << 30)));
}

cache.close();
await backend.close();
await fake.close();
for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
if (!keep) {
  rmSync(tree, { recursive: true, force: true });
  rmSync(bigFile, { force: true });
}

const wall = (list: Timing[]) => median(list.map((t) => t.wall));
const cpu = (list: Timing[]) => median(list.map((t) => t.cpu));
const one = wall(runs.one);
const oneCpu = cpu(runs.one);
const resyncTotals = resyncs.map((r) => r.timings.total);
const phase = (name: "walk" | "hash" | "upload") => ms(median(resyncs.map((r) => r.timings[name])));
const hashRow = (what: string, list: Timing[]): [string, string, string] => [
  what,
  ms(wall(list)),
  `${mbps(treeBytes, wall(list))}, ${ratio(one, wall(list))} of sha256sum; CPU ${ms(cpu(list))}, ${mbps(treeBytes, cpu(list))} per CPU, ${ratio(oneCpu, cpu(list))}`,
];
const rows: Array<[string, string, string]> = [
  [
    `sha256sum, one process (xargs -0 sha256sum), ${files.length} files, ${(treeBytes / 1_048_576).toFixed(0)} MB, warm`,
    ms(one),
    `${mbps(treeBytes, one)}; CPU ${ms(oneCpu)}`,
  ],
  hashRow(`sha256sum, ${cpus} processes (xargs -0 -P ${cpus} -n 500)`, runs.parallel),
  hashRow(`rsync hashing of the same files (hashMany, ${Math.min(4, cpus)} threads)`, runs.pool),
  hashRow("rsync hashing on the main thread only (workers: 0)", runs.here),
  [
    "rsync first sync, uploads included (walk + hash + find/upload over HTTP)",
    ms(first.timings.total),
    `walk ${ms(first.timings.walk)}, hash ${ms(first.timings.hash)}, upload ${ms(first.timings.upload)} (${first.uploaded} files)`,
  ],
  [
    `rsync first sync, hash phase (median of ${firstHash.length})`,
    ms(median(firstHash)),
    `${mbps(treeBytes, median(firstHash))}, ${ratio(median([one, ...sha256sumBeside]), median(firstHash))} of sha256sum`,
  ],
  [
    `rsync resync, no change (median of ${resyncTotals.length})`,
    ms(median(resyncTotals)),
    `min ${ms(Math.min(...resyncTotals))}, max ${ms(Math.max(...resyncTotals))}; CPU ${ms(median(resyncCpu))}; walk ${phase("walk")}, cache ${phase("hash")}, state ${phase("upload")}`,
  ],
  [
    `rsync resync, one file changed (median of ${oneChange.length})`,
    ms(median(oneChange)),
    `min ${ms(Math.min(...oneChange))}`,
  ],
  ["sha256sum, one 1 GiB file, warm", ms(wall(bigRuns.sha256sum)), mbps(1 << 30, wall(bigRuns.sha256sum))],
  [
    "hashFile (async 1 MiB reads on the main thread), the same 1 GiB file",
    ms(wall(bigRuns.hashFile)),
    mbps(1 << 30, wall(bigRuns.hashFile)),
  ],
  [
    "hashOne (blocking reads on a worker thread; upload and rsync), the same file",
    ms(wall(bigRuns.hashOne)),
    mbps(1 << 30, wall(bigRuns.hashOne)),
  ],
];
console.log(`| measurement | time | notes |\n|---|---|---|`);
for (const [what, time, note] of rows) console.log(`| ${what} | ${time} | ${note} |`);
