// HTTP mode under load: C concurrent MCP clients, each making N list_images calls against the fake ConTree server.
//   bun scripts/bench/http.ts [--clients 50] [--calls 100] [--era legacy|modern]
// The server runs as its own process (`bun src/main.ts --mode http`), as in production; the clients and the fake
// ConTree server share this one. Writes nothing; paste the printed figures into BENCHMARKS.md with the command.
// BENCH_SERVER_FLAGS="--cpu-prof-md --cpu-prof-dir=/tmp/prof" passes bun flags to the server process, to profile it.
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { startFakeContree } from "../../test/support/fake-contree.ts";

const { values } = parseArgs({
  options: {
    clients: { type: "string", default: "50" },
    calls: { type: "string", default: "100" },
    era: { type: "string", default: "legacy" },
  },
});
const clients = Number(values.clients);
const calls = Number(values.calls);
const era = values.era === "modern" ? "modern" : "legacy";

const fake = await startFakeContree();
for (let i = 0; i < 20; i++) fake.addImage({ tag: `bench/image-${i}:1` });
const dir = mkdtempSync(join(tmpdir(), "contree-mcp-bench-http-"));

const server = Bun.spawn(
  [
    process.execPath,
    ...(process.env.BENCH_SERVER_FLAGS?.split(" ").filter(Boolean) ?? []),
    join(import.meta.dir, "../../src/main.ts"),
  ],
  {
    env: {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      HOME: dir,
      CONTREE_MCP_CONFIG: join(dir, "none.ini"),
      CONTREE_MCP_MODE: "http",
      CONTREE_MCP_HTTP_PORT: "0",
      CONTREE_MCP_TOKEN: fake.token,
      CONTREE_MCP_URL: fake.url,
      CONTREE_MCP_CACHE_GENERAL: join(dir, "cache.db"),
      CONTREE_MCP_CACHE_FILES: join(dir, "files.db"),
    },
    stdout: "ignore",
    stderr: "pipe",
  },
);

/** User + system CPU seconds of a process so far (Linux), to tell the server's share from the clients'. */
function cpuSeconds(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return NaN;
  }
}

async function listeningUrl(): Promise<string> {
  const reader = server.stderr.getReader();
  let text = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) throw new Error(`server exited before listening:\n${text}`);
    text += new TextDecoder().decode(value);
    const match = /serving MCP at (\S+\/mcp)/.exec(text);
    if (match) {
      reader.releaseLock();
      return match[1]!;
    }
  }
}

const url = new URL(await listeningUrl());
const latencies: number[] = [];
let errors = 0;
const firstErrors: string[] = [];

async function worker(): Promise<void> {
  const client = new Client(
    { name: "bench", version: "0" },
    era === "modern" ? { versionNegotiation: { mode: { pin: "2026-07-28" } } } : {},
  );
  await client.connect(new StreamableHTTPClientTransport(url));
  for (let i = 0; i < calls; i++) {
    const start = performance.now();
    try {
      const result = await client.callTool({ name: "contree_list_images", arguments: { limit: 10 } });
      if (result.isError) throw new Error(JSON.stringify(result.content).slice(0, 200));
      latencies.push(performance.now() - start);
    } catch (error) {
      errors += 1;
      if (firstErrors.length < 3) firstErrors.push(String(error));
    }
  }
  await client.close();
}

const started = performance.now();
await Promise.all(Array.from({ length: clients }, worker));
const wall = (performance.now() - started) / 1000;
const serverCpu = cpuSeconds(server.pid);
const benchCpu = cpuSeconds(process.pid);

server.kill("SIGTERM");
await server.exited;
await fake.close();
rmSync(dir, { recursive: true, force: true });

latencies.sort((a, b) => a - b);
const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? NaN;
const total = clients * calls;
console.log(`contree-mcp HTTP (${era} era): ${clients} clients x ${calls} list_images calls = ${total}`);
console.log(`  wall        ${wall.toFixed(2)} s`);
console.log(`  throughput  ${(latencies.length / wall).toFixed(0)} calls/s`);
console.log(
  `  latency     p50 ${at(0.5).toFixed(1)} ms, p99 ${at(0.99).toFixed(1)} ms, max ${at(1).toFixed(1)} ms`,
);
console.log(
  `  cpu         server ${serverCpu.toFixed(2)} s (${((serverCpu * 1e6) / total).toFixed(0)} µs/call), clients + fake ConTree ${benchCpu.toFixed(2)} s`,
);
console.log(`  errors      ${errors}`);
for (const line of firstErrors) console.log(`    ${line}`);
process.exit(errors === 0 ? 0 : 1);
