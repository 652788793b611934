import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  canRunLocal,
  localProblem,
  openFixture,
  runSpec,
  runToEnd,
  stderrOf,
  stdoutOf,
  type LocalFixture,
} from "./helpers.ts";
import { LocalBackend } from "../../../src/backend/local/backend.ts";
import { removeTree, ROOTLESS } from "../../../src/backend/local/fsx.ts";
import { NO_NETWORK_NOTE, runNotes } from "../../../src/backend/local/notes.ts";

const needs = `(needs bwrap, overlayfs: ${localProblem ?? (ROOTLESS ? "available, rootless" : "available")})`;

describe.skipIf(!canRunLocal)(`local runs ${needs}`, () => {
  let fx: LocalFixture;
  beforeAll(async () => {
    fx = await openFixture();
  });
  afterAll(async () => {
    await fx?.close();
  });

  test("echo runs and reports SUCCESS with exit code 0 and resources", async () => {
    const op = await runToEnd(fx.backend, fx.image, "echo hello; echo oops >&2");
    expect(op.status).toBe("SUCCESS");
    expect(op.kind).toBe("instance");
    expect(stdoutOf(op)).toBe("hello\n");
    expect(stderrOf(op)).toBe("oops\n");
    expect(op.result?.exit).toEqual({ exitCode: 0, signal: null, timedOut: false });
    expect(op.result?.resources.elapsed_time).toBeGreaterThan(0);
    expect(op.resultImage).toBeNull();
    expect(op.durationS).not.toBeNull();
  });

  test("a non-zero exit is still SUCCESS with its exit code", async () => {
    const op = await runToEnd(fx.backend, fx.image, "exit 42");
    expect(op.status).toBe("SUCCESS");
    expect(op.result?.exit.exitCode).toBe(42);
  });

  test("env, cwd, stdin and hostname reach the command; env starts clean", async () => {
    const op = await runToEnd(
      fx.backend,
      fx.image,
      'echo "$FOO|$PWD|$HOME|$PATH|$(cat)|$(hostname)|$SECRET_HOST_VAR"',
      {
        env: { FOO: "bar" },
        cwd: "/tmp",
        stdin: new TextEncoder().encode("from stdin"),
      },
    );
    expect(stdoutOf(op)).toBe(
      "bar|/tmp|/root|/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin|from stdin|linuxkit|\n",
    );
  });

  test("shell=false runs argv without a shell", async () => {
    const op = await runToEnd(fx.backend, fx.image, "/bin/echo", {
      shell: false,
      args: ["a b", "$HOME", ";"],
    });
    expect(stdoutOf(op)).toBe("a b $HOME ;\n");
  });

  test("shell=false with a missing program exits 127", async () => {
    const op = await runToEnd(fx.backend, fx.image, "/no/such/program", { shell: false });
    expect(op.status).toBe("SUCCESS");
    expect(op.result?.exit.exitCode).toBe(127);
  });

  test("a missing cwd is created", async () => {
    const op = await runToEnd(fx.backend, fx.image, "pwd", { cwd: "/work/app" });
    expect(stdoutOf(op)).toBe("/work/app\n");
  });

  test("timeout kills a process tree that ignores SIGTERM", async () => {
    const marker = 1000 + Math.floor(Math.random() * 8000);
    const op = await runToEnd(
      fx.backend,
      fx.image,
      `trap '' TERM; sleep ${marker} & sleep ${marker} & wait`,
      {
        timeoutS: 1,
      },
    );
    expect(op.status).toBe("SUCCESS");
    expect(op.result?.exit.timedOut).toBe(true);
    expect(op.result?.exit.signal).toBe(9);
    expect(op.result?.exit.exitCode).toBeNull();
    const left = Bun.spawnSync(["pgrep", "-f", `sleep ${marker}`])
      .stdout.toString()
      .trim();
    expect(left).toBe("");
  });

  test("the host's files, processes and network are invisible", async () => {
    const op = await runToEnd(
      fx.backend,
      fx.image,
      "ls /; echo ---; ls /proc | grep -c '^[0-9]'; echo ---; ip -o link | cut -d: -f2; echo ---; id -u",
    );
    const [rootList, procs, links, uid] = stdoutOf(op).split("---\n");
    expect(rootList).not.toContain("work");
    expect(existsSync("/work")).toBe(true);
    expect(Number(procs)).toBeLessThanOrEqual(4);
    expect(links?.trim()).toBe("lo");
    expect(uid?.trim()).toBe("0");
  });

  test("rm -rf / in a sandbox leaves the image intact", async () => {
    const op = await runToEnd(fx.backend, fx.image, "rm -rf / 2>/dev/null; ls /bin | wc -l", {
      disposable: false,
    });
    expect(op.status).toBe("SUCCESS");
    const again = await runToEnd(fx.backend, fx.image, "cat /etc/hello.txt");
    expect(stdoutOf(again)).toBe("hello from the image\n");
    if (op.resultImage && op.resultImage !== fx.image) {
      // The child image has no /bin/sh any more: the command cannot start.
      const child = await runToEnd(fx.backend, op.resultImage, "echo alive");
      expect(child.result?.exit.exitCode).not.toBe(0);
    }
  });

  test("output beyond keepOutputBytes is dropped and counted", async () => {
    const op = await runToEnd(fx.backend, fx.image, "yes x | head -c 100000", { keepOutputBytes: 1000 });
    expect(op.result?.stdout.bytes.length).toBe(1000);
    expect(op.result?.stdout.truncated).toBe(true);
    expect(op.result?.stdout.droppedBytes).toBe(99_000);
    expect(op.result?.stderr.truncated).toBe(false);
  });

  test("many runs from one image at once", async () => {
    const ops = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        runToEnd(fx.backend, fx.image, `echo ${i} > /root/f; cat /root/f`),
      ),
    );
    expect(ops.map(stdoutOf)).toEqual(Array.from({ length: 12 }, (_, i) => `${i}\n`));
  });

  test("injected files land with their mode and owner", async () => {
    const content = "#!/bin/sh\necho injected\n";
    const sha = new Bun.CryptoHasher("sha256").update(content).digest("hex");
    const stored = await fx.backend.uploadFile(new Blob([content]), sha);
    expect(await fx.backend.findFile(sha)).toEqual(stored);
    const op = await runToEnd(fx.backend, fx.image, "/opt/tool/run.sh; stat -c '%a %u %g' /opt/tool/run.sh", {
      files: { "/opt/tool/run.sh": { uuid: stored.uuid, mode: 0o755, uid: 65534, gid: 65534 } },
    });
    expect(stdoutOf(op)).toBe(ROOTLESS ? "injected\n755 0 0\n" : "injected\n755 65534 65534\n");
  });

  test("an upload whose content does not match its sha256 is refused", async () => {
    await expect(fx.backend.uploadFile(new Blob(["abc"]), "0".repeat(64))).rejects.toThrow(/sha256/);
  });

  test("a command that fails for lack of network gets a note saying how to enable it", async () => {
    const op = await runToEnd(fx.backend, fx.image, "wget -q -O- http://example.com/; echo done");
    expect(op.result?.notes).toEqual([NO_NETWORK_NOTE]);
    expect(NO_NETWORK_NOTE).toContain("--local-network host");
    const quiet = await runToEnd(fx.backend, fx.image, "echo fine; exit 3");
    expect(quiet.result?.notes).toBeUndefined();
    // The note is kept with the operation, like the rest of its result.
    expect((await fx.backend.getOperation(op.id)).result?.notes).toEqual([NO_NETWORK_NOTE]);
  });

  test("network errors of common tools are recognised; with network host nothing is said", () => {
    const said = (text: string) => runNotes("none", new Uint8Array(), new TextEncoder().encode(text));
    for (const line of [
      "curl: (6) Could not resolve host: example.com",
      "Err:1 http://deb.debian.org/debian bookworm InRelease\n  Temporary failure resolving 'deb.debian.org'",
      "WARNING: Retrying ... Failed to establish a new network connection: [Errno -3] Temporary failure in name resolution",
      "npm ERR! request to https://registry.npmjs.org/x failed, reason: getaddrinfo EAI_AGAIN registry.npmjs.org",
      "fatal: unable to access 'https://github.com/x/y/': Could not resolve host: github.com",
      "wget: bad address 'example.com'",
      "connect: Network is unreachable",
    ]) {
      expect(said(line)).toEqual([NO_NETWORK_NOTE]);
    }
    expect(said("No such file or directory")).toEqual([]);
    expect(runNotes("host", new Uint8Array(), new TextEncoder().encode("Could not resolve host: x"))).toEqual(
      [],
    );
  });

  test("an unknown image is not_found", async () => {
    await expect(fx.backend.run(runSpec(crypto.randomUUID(), "true"))).rejects.toMatchObject({
      code: "not_found",
    });
  });
});

describe.skipIf(!canRunLocal)(`local runs with network host ${needs}`, () => {
  test("network host shares the host's interfaces; the image stays unchanged", async () => {
    const fx = await openFixture({ network: "host" });
    try {
      const op = await runToEnd(
        fx.backend,
        fx.image,
        "ip -o link | wc -l; test -e /etc/resolv.conf && echo resolv",
        {
          disposable: false,
        },
      );
      const hostLinks = Bun.spawnSync(["ip", "-o", "link"]).stdout.toString().trim().split("\n").length;
      const [links] = stdoutOf(op).split("\n");
      expect(Number(links)).toBe(hostLinks);
      // The resolv.conf mount point bwrap needed is not a change of the image.
      expect(op.resultImage).toBe(fx.image);
    } finally {
      await fx.close();
    }
  });
});

test("LocalBackend.check() names what is missing, or null when this machine can run it", async () => {
  const problem = await LocalBackend.check();
  if (problem === null) expect(process.platform).toBe("linux");
  else expect(problem).toContain("ConTree token");
});

test.skipIf(!canRunLocal)(
  `sandboxes die with the server process; the next start cleans up ${needs}`,
  async () => {
    const marker = 10_000 + Math.floor(Math.random() * 50_000);
    const dir = mkdtempSync(join(tmpdir(), "contree-orphan-"));
    const script = join(dir, "server.ts");
    let root = "";
    writeFileSync(
      script,
      `import { openFixture, runSpec } from ${JSON.stringify(join(import.meta.dir, "helpers.ts"))};
const fx = await openFixture();
console.log(fx.root);
await fx.backend.run(runSpec(fx.image, "sleep ${marker}"));
for (let i = 0; i < 500 && (await fx.backend.listOperations({ limit: 1, offset: 0, status: "EXECUTING" })).length === 0; i++) await Bun.sleep(10);
await Bun.sleep(200);
process.exit(0);
`,
    );
    try {
      const child = Bun.spawn([process.execPath, script], { stdout: "pipe", stderr: "inherit" });
      const [printed, code] = await Promise.all([new Response(child.stdout).text(), child.exited]);
      expect(code).toBe(0);
      root = printed.trim();
      let left = "";
      for (let i = 0; i < 50; i++) {
        left = Bun.spawnSync(["pgrep", "-f", `sleep ${marker}`])
          .stdout.toString()
          .trim();
        if (!left) break;
        await Bun.sleep(20);
      }
      expect(left).toBe("");
      // The next server on that root finds the dead server's work: its run is FAILED, its mount and files are gone.
      const mountedUnder = () =>
        readFileSync("/proc/self/mountinfo", "utf8")
          .split("\n")
          .filter((line) => line.split(" ")[4]?.startsWith(`${root}/`));
      const next = new LocalBackend({ root, network: "none" });
      const [op] = await next.listOperations({ limit: 1, offset: 0 });
      expect(op?.status).toBe("FAILED");
      expect(mountedUnder()).toEqual([]);
      expect(readdirSync(join(root, "tmp"))).toHaveLength(1);
      await next.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
      if (root) removeTree(root);
    }
  },
);
