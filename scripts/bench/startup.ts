// Startup and round-trip figures for the compiled binary, beside a minimal MCP server built the same way.
//   bun scripts/bench/startup.ts [runs]
// Writes nothing; paste the printed table into BENCHMARKS.md with the command.
import { mkdirSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startFakeContree } from "../../test/support/fake-contree.ts";

const runs = Number(process.argv[2] ?? 21);
mkdirSync("dist/bench", { recursive: true });

async function compile(entry: string, outfile: string): Promise<void> {
  const result = await Bun.build({
    entrypoints: [entry],
    compile: { outfile },
    bytecode: true,
    format: "esm",
    minify: true,
  });
  if (!result.success) throw new Error(result.logs.join("\n"));
}

if (!(await Bun.file("dist/contree-mcp").exists())) {
  console.error("dist/contree-mcp missing: run `npm run build` first");
  process.exit(1);
}
await compile("scripts/bench/minimal-server.ts", "dist/bench/minimal-server");

const INIT = {
  jsonrpc: "2.0",
  id: 1,
  method: "initialize",
  params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "bench", version: "0" } },
};

/** Spawns the binary, performs initialize + tools/list (+ an optional call), and returns the times in ms. */
async function session(
  command: string[],
  env: Record<string, string>,
  call?: { name: string; arguments: Record<string, unknown> },
): Promise<{ list: number; call: number | null }> {
  const start = performance.now();
  const child = Bun.spawn(command, { stdin: "pipe", stdout: "pipe", stderr: "ignore", env });
  const reader = child.stdout.getReader();
  let buffer = "";
  const waitFor = async (id: number) => {
    for (;;) {
      const newline = buffer.indexOf("\n");
      if (newline >= 0) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + 1);
        const message = JSON.parse(line) as { id?: number };
        if (message.id === id) return message;
        continue;
      }
      const { value, done } = await reader.read();
      if (done) throw new Error("server exited");
      buffer += new TextDecoder().decode(value);
    }
  };
  const send = (message: unknown) => child.stdin.write(`${JSON.stringify(message)}\n`);
  send(INIT);
  await waitFor(1);
  send({ jsonrpc: "2.0", method: "notifications/initialized" });
  send({ jsonrpc: "2.0", id: 2, method: "tools/list" });
  await waitFor(2);
  const list = performance.now() - start;
  let callMs: number | null = null;
  if (call) {
    const before = performance.now();
    send({ jsonrpc: "2.0", id: 3, method: "tools/call", params: call });
    await waitFor(3);
    callMs = performance.now() - before;
  }
  child.stdin.end();
  child.kill();
  await child.exited;
  return { list, call: callMs };
}

const median = (values: number[]) => [...values].toSorted((a, b) => a - b)[Math.floor(values.length / 2)]!;

const fake = await startFakeContree();
const home = mkdtempSync(join(tmpdir(), "contree-mcp-bench-"));
const env = {
  PATH: process.env.PATH ?? "",
  HOME: home,
  CONTREE_MCP_TOKEN: fake.token,
  CONTREE_MCP_URL: fake.url,
  CONTREE_MCP_CACHE_GENERAL: join(home, "cache.db"),
  CONTREE_MCP_CACHE_FILES: join(home, "files.db"),
};
const ours: number[] = [];
const minimal: number[] = [];
const calls: number[] = [];
for (let i = 0; i < runs; i++) {
  // Interleave the two so machine noise hits both alike.
  const mine = await session(["dist/contree-mcp"], env, {
    name: "contree_list_images",
    arguments: { limit: 10 },
  });
  ours.push(mine.list);
  calls.push(mine.call!);
  minimal.push((await session(["dist/bench/minimal-server"], env)).list);
}
await fake.close();

const m = median(ours);
const r = median(minimal);
console.log(`runs: ${runs} (interleaved), Bun ${Bun.version}`);
console.log(`| measurement | median |`);
console.log(`|---|---|`);
console.log(`| minimal compiled MCP server: spawn → tools/list | ${r.toFixed(1)} ms |`);
console.log(`| dist/contree-mcp: spawn → tools/list | ${m.toFixed(1)} ms |`);
console.log(`| ratio (target ≤ 1.5) | ${(m / r).toFixed(2)}× |`);
console.log(`| contree_list_images round trip (fake ConTree on loopback) | ${median(calls).toFixed(2)} ms |`);
