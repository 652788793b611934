// The process list is world-readable: a run's env values and shell command must not show up in any command line.
// (rootless-scenario.ts does the same check on the rootless launcher.)
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import {
  canRunLocal,
  localProblem,
  openFixture,
  stdoutOf,
  watchProcessList,
  type LocalFixture,
} from "./helpers.ts";
import { runSpec } from "../../support/run-spec.ts";

describe.skipIf(!canRunLocal)(`process list (needs bwrap, overlayfs: ${localProblem ?? "available"})`, () => {
  let fx: LocalFixture;
  beforeAll(async () => {
    fx = await openFixture();
  });
  afterAll(async () => {
    await fx?.close();
  });

  test("env values and the shell command stay out of every command line, yet reach the command", async () => {
    const watched = await watchProcessList(fx.backend, fx.image);
    expect(watched.leaks).toEqual([]);
    expect(watched.status).toBe("SUCCESS");
    expect(watched.stdout).toBe(watched.expected);
    expect(watched.sawSleep).toBe(true);
  });

  test("the shell runs the command as `sh -c` would, and passes no trace of it on", async () => {
    const script = 'echo "$0 $LINENO $#"\necho "$LINENO"; env | grep -c CONTREE\nexit 3';
    const [viaEnv, direct] = await Promise.all(
      [runSpec(fx.image, script), runSpec(fx.image, "/bin/sh", { shell: false, args: ["-c", script] })].map(
        async (spec) => fx.backend.settled(await fx.backend.run(spec)),
      ),
    );
    expect(viaEnv!.result?.exit.exitCode).toBe(3);
    expect(stdoutOf(viaEnv!)).toBe(stdoutOf(direct!));
    expect(stdoutOf(viaEnv!)).toEndWith("\n0\n");
  });

  test("a NUL in an env value is refused (it would split into bwrap options)", async () => {
    const id = await fx.backend.run(runSpec(fx.image, "true", { env: { X: "a\0--bind\0/\0/host" } }));
    const op = await fx.backend.settled(id);
    expect(op.status).toBe("FAILED");
    expect(op.error).toContain("NUL");
  });
});
