import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { LocalBackend } from "../../../src/backend/local/backend.ts";
import { SERVER_STOPPED } from "../../../src/backend/local/operations.ts";
import { waitForOperation } from "../../../src/backend/wait.ts";
import {
  canRunLocal,
  localProblem,
  openFixture,
  runSpec,
  runToEnd,
  stderrOf,
  type LocalFixture,
} from "./helpers.ts";
import { ROOTLESS } from "../../../src/backend/local/fsx.ts";

const needs = `(needs bwrap, overlayfs: ${localProblem ?? (ROOTLESS ? "available, rootless" : "available")})`;
const hasCgroups =
  !ROOTLESS &&
  (existsSync("/sys/fs/cgroup/memory/memory.limit_in_bytes") ||
    existsSync("/sys/fs/cgroup/cgroup.controllers"));

/** Processes whose command line mentions `path` (a sandbox's bwrap names its mount point). */
function processesUnder(path: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync("/proc").filter((name) => /^\d+$/.test(name))) {
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ");
      if (cmdline.includes(path)) found.push(`${pid}: ${cmdline.slice(0, 200)}`);
    } catch {
      // exited meanwhile
    }
  }
  return found;
}

async function untilStatus(backend: LocalBackend, id: string, status: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if ((await backend.getOperation(id)).status === status) return;
    await Bun.sleep(10);
  }
  throw new Error(`operation ${id} never reached ${status}`);
}

describe.skipIf(!canRunLocal)(`local operations ${needs}`, () => {
  let fx: LocalFixture;
  beforeAll(async () => {
    fx = await openFixture({ maxConcurrent: 2, memoryLimitBytes: 64 * 1024 ** 2, pidsLimit: 32 });
  });
  afterAll(async () => {
    await fx?.close();
  });

  test("cancelling a running operation kills it: CANCELLED, no image", async () => {
    const id = await fx.backend.run(runSpec(fx.image, "echo started; sleep 100", { disposable: false }));
    await untilStatus(fx.backend, id, "EXECUTING");
    await fx.backend.cancelOperation(id);
    const op = await fx.backend.settled(id);
    expect(op.status).toBe("CANCELLED");
    expect(op.resultImage).toBeNull();
    // A terminal operation is left as it is.
    await fx.backend.cancelOperation(id);
    expect((await fx.backend.getOperation(id)).status).toBe("CANCELLED");
  });

  test("a cancel at any moment of the start leaves no process behind", async () => {
    for (let round = 0; round < 12; round++) {
      const ids = await Promise.all([1, 2].map(() => fx.backend.run(runSpec(fx.image, "sleep 100"))));
      await Bun.sleep(round % 6);
      for (const id of ids) await fx.backend.cancelOperation(id);
      for (const id of ids) expect((await fx.backend.settled(id)).status).toBe("CANCELLED");
    }
    expect(processesUnder(fx.root)).toEqual([]);
  }, 60_000);

  test("the concurrency limit queues runs as PENDING; a queued one can be cancelled", async () => {
    const long = await Promise.all([1, 2].map(() => fx.backend.run(runSpec(fx.image, "sleep 100"))));
    const queued = await fx.backend.run(runSpec(fx.image, "echo never"));
    await Promise.all(long.map((id) => untilStatus(fx.backend, id, "EXECUTING")));
    expect((await fx.backend.getOperation(queued)).status).toBe("PENDING");
    await fx.backend.cancelOperation(queued);
    expect((await fx.backend.getOperation(queued)).status).toBe("CANCELLED");
    for (const id of long) await fx.backend.cancelOperation(id);
    for (const id of long) expect((await fx.backend.settled(id)).status).toBe("CANCELLED");
  });

  test("operationChanged wakes a waiter as soon as the run ends", async () => {
    const id = await fx.backend.run(runSpec(fx.image, "sleep 0.3"));
    const started = Date.now();
    // Polling alone would sleep 20 s between looks; the push must end the wait long before that.
    const waited = await waitForOperation(fx.backend, id, { minIntervalMs: 20_000, maxIntervalMs: 20_000 });
    expect(waited.operation.status).toBe("SUCCESS");
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  test("operations are listed newest first and filtered by status and kind", async () => {
    const ok = await runToEnd(fx.backend, fx.image, "true");
    const listed = await fx.backend.listOperations({
      limit: 100,
      offset: 0,
      status: "SUCCESS",
      kind: "instance",
    });
    expect(listed[0]?.id).toBe(ok.id);
    expect(listed.every((op) => op.status === "SUCCESS" && op.kind === "instance")).toBe(true);
    await expect(fx.backend.getOperation(crypto.randomUUID())).rejects.toMatchObject({ code: "not_found" });
  });

  test("operations of a server that is gone are FAILED at the next start; a live server's are not", async () => {
    const live = await fx.backend.run(runSpec(fx.image, "sleep 100"));
    const dead = await fx.backend.run(runSpec(fx.image, "sleep 100"));
    await untilStatus(fx.backend, live, "EXECUTING");
    await untilStatus(fx.backend, dead, "EXECUTING");
    // As if `dead` had been started by a process that no longer exists.
    fx.backend.store.db.query("UPDATE operations SET owner = 'gone-1-1' WHERE id = ?").run(dead);
    const restarted = new LocalBackend({ root: fx.root, network: "none" });
    const op = await restarted.getOperation(dead);
    expect(op.status).toBe("FAILED");
    expect(op.error).toBe(SERVER_STOPPED);
    expect((await restarted.getOperation(live)).status).toBe("EXECUTING");
    await restarted.close();
    for (const id of [live, dead]) await fx.backend.cancelOperation(id);
    await fx.backend.settled(live);
    await fx.backend.settled(dead);
  });

  test.skipIf(!hasCgroups)("the memory limit kills an allocation over it (needs cgroups)", async () => {
    const op = await runToEnd(
      fx.backend,
      fx.image,
      "dd if=/dev/zero of=/dev/null bs=200M count=1; echo after",
    );
    expect(op.status).toBe("SUCCESS");
    expect(op.result?.resources.oom_kills).toBeGreaterThanOrEqual(1);
  });

  test.skipIf(!hasCgroups)("the process limit stops a fork bomb (needs cgroups)", async () => {
    const op = await runToEnd(
      fx.backend,
      fx.image,
      "for i in $(seq 100); do sleep 2 & done; wait; echo done",
      {
        timeoutS: 10,
      },
    );
    expect(op.status).toBe("SUCCESS");
    expect(stderrOf(op)).toMatch(/fork|resource/i);
    // The server is still serving.
    expect((await runToEnd(fx.backend, fx.image, "echo fine")).result?.exit.exitCode).toBe(0);
  });
});
