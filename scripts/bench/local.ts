// Local backend figures (bwrap and overlayfs; as root, or rootless where the kernel allows it):
//   - `run echo` through MCP tools/call (in-memory transport) beside a bare `bwrap` call of the same command,
//     interleaved round by round so load from elsewhere hits both alike
//   - commit time of a 1 KB and a 100 MB change (disposable=false vs disposable runs, and the commit step alone)
//   - 32 runs at once from one image
//   - import of a 50 MB layer (from a real docker-registry when installed, else an OCI layout directory)
//   - a chain of successive disposable=false runs (default 1000; the stack is flattened every 32)
//   bun scripts/bench/local.ts [--runs 30] [--chain 1000]
// Writes nothing; paste the printed table into BENCHMARKS.md with the command.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { LocalBackend } from "../../src/backend/local/backend.ts";
import { commitUpper } from "../../src/backend/local/commit.ts";
import { ROOTLESS } from "../../src/backend/local/fsx.ts";
import { openFixture, runSpec, runToEnd, writeBusyboxRootfs } from "../../test/backend/local/helpers.ts";
import {
  buildLayer,
  hasDockerRegistry,
  pushImage,
  startTestRegistry,
  writeOciLayout,
} from "../../test/support/registry.ts";

const { values } = parseArgs({
  options: { runs: { type: "string", default: "30" }, chain: { type: "string", default: "1000" } },
});
const runs = Number(values.runs);
const chainLength = Number(values.chain);

const problem = await LocalBackend.check();
if (problem) {
  console.error(problem);
  process.exit(1);
}

function stats(samples: number[]): string {
  const sorted = samples.toSorted((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  return `median ${at(0.5).toFixed(1)} ms, p90 ${at(0.9).toFixed(1)} ms (n=${samples.length})`;
}

function median(xs: number[]): number {
  return xs.toSorted((a, b) => a - b)[Math.floor(xs.length / 2)]!;
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await fn();
  return performance.now() - start;
}

const rows: [string, string][] = [];
const fx = await openFixture({ maxConcurrent: 32 });

// 1. Bare bwrap on a plain busybox root vs run through MCP.
const bare = mkdtempSync(join(tmpdir(), "contree-bench-bare-"));
writeBusyboxRootfs(bare);
const bareArgs = ["bwrap", "--ro-bind", bare, "/", "--proc", "/proc", "--dev", "/dev", "--unshare-all"];
bareArgs.push("--die-with-parent", "--", "/bin/sh", "-c", "echo hi");

// The same command through the sandbox steps by hand (private mount namespace, overlay of the image's layer with a
// fresh upper, bwrap on it): the floor of what a run costs before any bookkeeping.
const layerDir = fx.backend.store.layerPath(fx.backend.store.getImageRow(fx.image)!.layers[0]!);
const overlayScript = `d=$(mktemp -d); mkdir $d/u $d/w $d/m
${ROOTLESS ? "unshare -U -r -m" : "unshare -m"} sh -c 'mount -t overlay overlay -o lowerdir=${layerDir}:${bare},upperdir=$1/u,workdir=$1/w${ROOTLESS ? ",userxattr" : ""} $1/m && exec bwrap --bind $1/m / --proc /proc --dev /dev --unshare-all --die-with-parent -- /bin/sh -c "echo hi"' sh $d
rm -rf $d`;

async function spawnText(argv: string[]): Promise<void> {
  const proc = Bun.spawn(argv, { stdout: "pipe", stderr: "ignore" });
  await new Response(proc.stdout).text();
  await proc.exited;
}

// The MCP session needs the whole server (src/app.ts); report the backend alone if it cannot load.
const mcp = await import("../../test/support/mcp.ts").catch((error: unknown) => {
  console.error(`MCP round trip skipped: ${String(error)}`);
  return null;
});
const session = mcp ? await mcp.connect(fx.backend) : null;
// Interleaved, one sample of each per round, so load from elsewhere hits them alike.
const bareTimes: number[] = [];
const overlayTimes: number[] = [];
const backendTimes: number[] = [];
const mcpTimes: number[] = [];
for (let i = 0; i < runs + 3; i++) {
  const round = [
    await timed(() => spawnText(bareArgs)),
    await timed(() => spawnText(["/bin/sh", "-c", overlayScript])),
    await timed(() => runToEnd(fx.backend, fx.image, "echo hi")),
    session
      ? await timed(async () => {
          const result = await session.call("run", { command: "echo hi", image: fx.image });
          if (result.isError) throw new Error(JSON.stringify(result.content));
        })
      : 0,
  ];
  if (i < 3) continue;
  bareTimes.push(round[0]!);
  overlayTimes.push(round[1]!);
  backendTimes.push(round[2]!);
  mcpTimes.push(round[3]!);
}
rows.push(["bare bwrap `sh -c 'echo hi'` (read-only bind of a busybox root)", stats(bareTimes)]);
rows.push(["by hand: unshare + overlay mount + bwrap + cleanup (sh script)", stats(overlayTimes)]);
rows.push(["backend.run `echo hi`, disposable (no MCP)", stats(backendTimes)]);
if (session) {
  rows.push(["MCP tools/call run `echo hi` (disposable), in-memory transport", stats(mcpTimes)]);
  rows.push([
    "ratio MCP run / bare bwrap (medians)",
    `${(median(mcpTimes) / median(bareTimes)).toFixed(2)}x`,
  ]);
}
rows.push([
  "ratio backend.run / bare bwrap (medians)",
  `${(median(backendTimes) / median(bareTimes)).toFixed(2)}x`,
]);
// Closing the session closes the backend too, so it is closed at the very end.
const closeSession = session ? () => session.close() : () => fx.close();

// 2. Commit cost: the same write as a disposable run and as a disposable=false run (interleaved), and the commit
// step alone (the finished run's upper directory renamed into the store as a layer, plus the image row).
for (const [label, command, bytes] of [
  ["1 KB", "head -c 1024 /dev/urandom > /root/f", 1024],
  ["100 MB", "head -c 104857600 /dev/zero > /root/f", 104_857_600],
] as const) {
  const kept: number[] = [];
  const thrown: number[] = [];
  const step: number[] = [];
  for (let i = 0; i < 7; i++) {
    thrown.push(await timed(() => runToEnd(fx.backend, fx.image, command)));
    kept.push(await timed(() => runToEnd(fx.backend, fx.image, command, { disposable: false })));
    const upper = join(fx.backend.store.tmpDir, `bench-upper-${i}`);
    mkdirSync(join(upper, "root"), { recursive: true });
    writeFileSync(join(upper, "root/f"), new Uint8Array(bytes));
    step.push(
      await timed(async () => {
        const layer = commitUpper(fx.backend.store, upper);
        fx.backend.store.addImage({
          uuid: crypto.randomUUID(),
          parent: fx.image,
          layers: [...fx.backend.store.getImageRow(fx.image)!.layers, layer],
          operationId: null,
          command: null,
          digest: null,
        });
      }),
    );
  }
  rows.push([
    `write ${label}: disposable=false vs disposable run (n=7)`,
    `${median(kept).toFixed(1)} ms vs ${median(thrown).toFixed(1)} ms (difference ${(median(kept) - median(thrown)).toFixed(1)} ms)`,
  ]);
  rows.push([`commit step alone, ${label} change (rename + row)`, stats(step)]);
}
await fx.backend.removalsDone();

// 3. 32 at once, against one of them alone.
const alone: number[] = [];
for (let i = 0; i < 5; i++)
  alone.push(await timed(() => runToEnd(fx.backend, fx.image, "echo hi; sleep 0.1")));
const each: number[] = [];
const wall = await timed(() =>
  Promise.all(
    Array.from({ length: 32 }, () =>
      timed(() => runToEnd(fx.backend, fx.image, "echo hi; sleep 0.1")).then((t) => each.push(t)),
    ),
  ),
);
rows.push([
  "32 runs at once from one image (`echo hi; sleep 0.1`)",
  `${wall.toFixed(0)} ms wall; each run ${stats(each)}; one run alone ${median(alone).toFixed(1)} ms`,
]);

// 4. Import of a 50 MB layer.
const random = new Uint8Array(50 * 1024 * 1024);
for (let offset = 0; offset < random.length; offset += 65_536) {
  crypto.getRandomValues(random.subarray(offset, offset + 65_536));
}
const bigLayer = { files: { "data/blob": random } };
if (hasDockerRegistry) {
  const registry = await startTestRegistry({ auth: "none" });
  await pushImage(registry, "bench/big", "v1", [bigLayer]);
  const t = await timed(async () => {
    const id = await fx.backend.importImage({
      registryUrl: `docker://${registry.host}/bench/big:v1`,
      timeoutS: 300,
    });
    const op = await fx.backend.settled(id);
    if (op.status !== "SUCCESS") throw new Error(op.error ?? op.status);
  });
  rows.push(["import a 50 MB gzip layer from docker-registry on loopback", `${t.toFixed(0)} ms`]);
  await registry.close();
} else {
  const layout = mkdtempSync(join(tmpdir(), "contree-bench-layout-"));
  const layer = await buildLayer(bigLayer);
  writeOciLayout(layout, [layer]);
  const t = await timed(async () => {
    const op = await fx.backend.settled(
      await fx.backend.importImage({ registryUrl: `oci-layout:${layout}`, timeoutS: 300 }),
    );
    if (op.status !== "SUCCESS") throw new Error(op.error ?? op.status);
  });
  rows.push(["import a 50 MB gzip layer from an OCI layout", `${t.toFixed(0)} ms`]);
  rmSync(layout, { recursive: true, force: true });
}

// 5. A long chain.
if (chainLength > 0) {
  let image = fx.image;
  const times: number[] = [];
  for (let i = 0; i < chainLength; i++) {
    const start = performance.now();
    const op = await fx.backend.settled(
      await fx.backend.run(runSpec(image, `echo ${i} >> /root/log`, { disposable: false })),
    );
    times.push(performance.now() - start);
    if (op.status !== "SUCCESS" || !op.resultImage)
      throw new Error(`chain step ${i}: ${op.error ?? op.status}`);
    image = op.resultImage;
  }
  const last = await runToEnd(fx.backend, image, "wc -l < /root/log");
  const lines = new TextDecoder().decode(last.result?.stdout.bytes).trim();
  if (Number(lines) !== chainLength) throw new Error(`chain lost writes: ${lines} lines`);
  rows.push([`chain of ${chainLength} disposable=false runs (each on the previous)`, stats(times)]);
}

await closeSession();
rmSync(fx.root, { recursive: true, force: true });
rmSync(bare, { recursive: true, force: true });

console.log("| what | result |\n|---|---|");
for (const [what, result] of rows) console.log(`| ${what} | ${result} |`);
