// The local backend without root, end to end: run by rootless.test.ts as an unprivileged user (or directly when the
// tests already run as one). Prints one JSON object of what it saw; the test asserts on it, so a failure shows the
// observed values rather than a stack trace from another process.
//   bun test/backend/local/rootless-scenario.ts
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LocalBackend } from "../../../src/backend/local/backend.ts";
import { MAX_STACK_DEPTH } from "../../../src/backend/local/commit.ts";
import type { Operation } from "../../../src/backend/types.ts";
import { openFixture, runToEnd, stderrOf, stdoutOf, streamText, watchProcessList } from "./helpers.ts";
import { writeLayout } from "./layouts.ts";

const seen: Record<string, unknown> = { uid: process.getuid?.() };
seen.check = await LocalBackend.check();
if (seen.check !== null) {
  console.log(JSON.stringify(seen));
  process.exit(0);
}

const fx = await openFixture({ pidsLimit: 32 });
const layout = mkdtempSync(join(tmpdir(), "contree-rootless-layout-"));
const out = (op: Operation) => ({
  status: op.status,
  error: op.error,
  stdout: stdoutOf(op),
  stderr: stderrOf(op),
});
try {
  seen.description = fx.backend.description;
  seen.basic = out(
    await runToEnd(fx.backend, fx.image, "id -u; id -g; hostname; ls /proc | grep -c '^[0-9]'"),
  );

  // Import: gzip + zstd layers, a whiteout (bin/ls), an opaque directory (etc/old), setuid, a uid 1000 file, links.
  await writeLayout(layout);
  const imported = await fx.backend.settled(
    await fx.backend.importImage({ registryUrl: `oci-layout:${layout}:v1`, timeoutS: 60 }),
  );
  seen.import = { status: imported.status, error: imported.error };
  const image = imported.resultImage!;
  seen.imported = out(
    await runToEnd(
      fx.backend,
      image,
      "test -e /bin/ls && echo ls-present; cat /etc/old/*; stat -c '%n %a %u %g %h' /usr/bin/su /data/owned /data/hard; readlink /data/link",
    ),
  );
  seen.importedBin = (await fx.backend.listDirectory(image, "/bin")).entries.map((e) => e.name);
  seen.importedOld = (await fx.backend.listDirectory(image, "/etc/old")).entries.map((e) => e.name);

  // A commit with a whiteout, an opaque directory, a read-only directory and one nobody may enter from outside.
  const changed = await runToEnd(
    fx.backend,
    image,
    "rm /bin/cat; rm -rf /etc/old; mkdir /etc/old; echo fresh > /etc/old/only; mkdir -p /data/ro; echo ro > /data/ro/f; chmod 555 /data/ro; mkdir /root/locked; echo s > /root/locked/s; chmod 000 /root/locked",
    { disposable: false },
  );
  seen.commit = { status: changed.status, error: changed.error, child: changed.resultImage !== image };
  const child = changed.resultImage!;
  seen.child = out(
    await runToEnd(
      fx.backend,
      child,
      "test -e /bin/cat || echo no-cat; ls /etc/old; busybox cat /data/ro/f /root/locked/s; stat -c %a /data/ro /root/locked",
    ),
  );
  seen.childOld = (await fx.backend.listDirectory(child, "/etc/old")).entries.map((e) => e.name);
  seen.childData = (await fx.backend.listDirectory(child, "/data")).entries.map(
    (e) => `${e.name} ${e.mode.toString(8)} ${e.owner}`,
  );
  seen.parentCat = out(await runToEnd(fx.backend, image, "test -e /bin/cat && echo cat-present"));
  seen.archive = (await streamText(await fx.backend.archive(child, "/data"))).includes("ro/f");
  seen.readFile = await streamText(await fx.backend.readFile(child, "/etc/old/only"));

  // An injected file where no directory exists yet.
  const script = "#!/bin/sh\necho tool ran as $(id -u)\n";
  const sha = new Bun.CryptoHasher("sha256").update(script).digest("hex");
  const stored = await fx.backend.uploadFile(new Blob([script]), sha);
  seen.injected = out(
    await runToEnd(fx.backend, fx.image, "/opt/new/tool", {
      files: { "/opt/new/tool": { uuid: stored.uuid, mode: 0o755 } },
    }),
  );

  // No network: the result says why the command failed.
  const offline = await runToEnd(fx.backend, fx.image, "wget -q -O- http://example.com/");
  seen.offline = { exitCode: offline.result?.exit.exitCode, notes: offline.result?.notes ?? [] };

  // A chain deep enough to be flattened.
  let link = fx.image;
  for (let i = 0; i < MAX_STACK_DEPTH + 4; i++) {
    const op = await runToEnd(fx.backend, link, `echo ${i} >> /root/log`, { disposable: false });
    if (op.status !== "SUCCESS") throw new Error(`chain step ${i}: ${op.error}`);
    link = op.resultImage!;
  }
  seen.chain = {
    lines: stdoutOf(await runToEnd(fx.backend, link, "wc -l < /root/log")).trim(),
    depth: fx.backend.store.getImageRow(link)!.layers.length,
  };

  // A fork bomb meets the process limit (RLIMIT_NPROC in the sandbox's user namespace), and the backend carries on.
  const bomb = await runToEnd(
    fx.backend,
    fx.image,
    "for i in $(seq 100); do sleep 2 & done; wait; echo done",
    {
      timeoutS: 20,
    },
  );
  seen.forkBomb = { status: bomb.status, limited: /fork|resource/i.test(stderrOf(bomb)) };

  // Timeouts kill everything the command started.
  const slow = await runToEnd(fx.backend, fx.image, "sleep 100 & sleep 100", { timeoutS: 1 });
  seen.timeout = { timedOut: slow.result?.exit.timedOut, status: slow.status };

  // Neither an env value nor the shell command shows on the launcher's (or anyone's) command line.
  seen.processList = await watchProcessList(fx.backend, fx.image);

  // Every run's work directory is gone, even the ones holding directories we cannot enter from outside.
  await fx.backend.removalsDone();
  seen.leftovers = readdirSync(fx.backend.store.tmpDir).filter((name) => name.startsWith("run-"));
} catch (error) {
  seen.error = String(error instanceof Error ? error.stack : error);
} finally {
  await fx.close().catch((error: unknown) => {
    seen.closeError = String(error);
  });
  rmSync(layout, { recursive: true, force: true });
}
console.log(JSON.stringify(seen));
