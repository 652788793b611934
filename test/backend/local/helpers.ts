// Shared setup for the local backend tests: a store in a temp dir holding a busybox image built from the host's
// busybox-static, put into the store directly (no registry needed).
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LocalBackend, type LocalBackendOptions } from "../../../src/backend/local/backend.ts";
import { removeTree } from "../../../src/backend/local/fsx.ts";
import { newLayerId } from "../../../src/backend/local/store.ts";
import type { Operation, RunSpec } from "../../../src/backend/types.ts";
import { runSpec } from "../../support/run-spec.ts";

export const BUSYBOX = "/bin/busybox";

/** Why the local backend cannot run here, or null. Tests that need it are skipped with this reason. */
export const localProblem: string | null = !existsSync(BUSYBOX)
  ? "busybox-static is not installed"
  : await LocalBackend.check();
export const canRunLocal = localProblem === null;

/** Writes a minimal busybox root file system into `dir`. */
export function writeBusyboxRootfs(dir: string): void {
  for (const sub of ["bin", "etc", "root", "tmp", "proc", "dev", "usr/bin"]) {
    mkdirSync(join(dir, sub), { recursive: true, mode: 0o755 });
  }
  copyFileSync(BUSYBOX, join(dir, "bin/busybox"));
  const applets = Bun.spawnSync([BUSYBOX, "--list"]).stdout.toString().split("\n").filter(Boolean);
  for (const applet of applets) {
    if (applet !== "busybox") symlinkSync("busybox", join(dir, "bin", applet));
  }
  writeFileSync(
    join(dir, "etc/passwd"),
    "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
  );
  writeFileSync(join(dir, "etc/group"), "root:x:0:\nnogroup:x:65534:\n");
  writeFileSync(join(dir, "etc/hello.txt"), "hello from the image\n");
}

export interface LocalFixture {
  root: string;
  backend: LocalBackend;
  /** The busybox image's UUID (also tagged "busybox"). */
  image: string;
  close(): Promise<void>;
}

export async function openFixture(options: Partial<LocalBackendOptions> = {}): Promise<LocalFixture> {
  const root = mkdtempSync(join(tmpdir(), "contree-local-"));
  const backend = new LocalBackend({ root, network: "none", maxConcurrent: 8, ...options });
  const layer = newLayerId();
  writeBusyboxRootfs(backend.store.layerPath(layer));
  backend.store.addLayer(layer, null);
  const image = crypto.randomUUID();
  backend.store.addImage(
    { uuid: image, parent: null, layers: [layer], operationId: null, command: null, digest: null },
    "busybox",
  );
  return {
    root,
    backend,
    image,
    async close() {
      await backend.close();
      // Rootless, layers may hold directories only our user namespace can enter.
      removeTree(root);
    },
  };
}

export { runSpec };

/** Starts a run and waits for it to finish. */
export async function runToEnd(
  backend: LocalBackend,
  image: string,
  command: string,
  overrides: Partial<RunSpec> = {},
): Promise<Operation> {
  const id = await backend.run(runSpec(image, command, overrides));
  return backend.settled(id);
}

export function stdoutOf(operation: Operation): string {
  return new TextDecoder().decode(operation.result?.stdout.bytes ?? new Uint8Array());
}

export function stderrOf(operation: Operation): string {
  return new TextDecoder().decode(operation.result?.stderr.bytes ?? new Uint8Array());
}

export async function streamText(stream: ReadableStream<Uint8Array>): Promise<string> {
  return new Response(stream).text();
}

/** Every process's command line, NULs as spaces (the process list anyone on the machine can read). */
function commandLines(): string[] {
  const lines: string[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      lines.push(readFileSync(`/proc/${entry}/cmdline`).toString().replaceAll("\0", " "));
    } catch {
      // gone meanwhile
    }
  }
  return lines;
}

/**
 * Runs `echo started; sleep 1; echo "$API_KEY <marker>"` with a random API_KEY and scans every command line on the
 * machine while it runs: the command lines that show either random value, what the command printed, and whether a
 * scan saw the `sleep 1` (so the scans did look while the sandbox ran).
 */
export async function watchProcessList(
  backend: LocalBackend,
  image: string,
): Promise<{ leaks: string[]; stdout: string; expected: string; sawSleep: boolean; status: string }> {
  const secret = `secret-${crypto.randomUUID()}`;
  const marker = `marker-${crypto.randomUUID()}`;
  const id = await backend.run(
    runSpec(image, `echo started; sleep 1; echo "$API_KEY ${marker}"`, { env: { API_KEY: secret } }),
  );
  const leaks = new Set<string>();
  let sawSleep = false;
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    const { status } = await backend.getOperation(id);
    if (status !== "PENDING" && status !== "EXECUTING") break;
    for (const line of commandLines()) {
      sawSleep ||= line.startsWith("sleep 1");
      if (line.includes(secret) || line.includes(marker)) leaks.add(line);
    }
    await Bun.sleep(20);
  }
  const op = await backend.settled(id);
  return {
    leaks: [...leaks],
    stdout: stdoutOf(op),
    expected: `started\n${secret} ${marker}\n`,
    sawSleep,
    status: op.status,
  };
}
