// The local backend without root: rootless-scenario.ts run as an unprivileged user (uid 65534 through setpriv when
// the tests run as root, or as the test user itself). Where the kernel refuses what rootless needs, the scenario
// reports LocalBackend.check()'s message instead, and that message must say what is missing.
import { beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, chownSync, existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { NO_NETWORK_NOTE } from "../../../src/backend/local/notes.ts";
import { removeTree } from "../../../src/backend/local/fsx.ts";
import { BUSYBOX } from "./helpers.ts";

const SCENARIO = join(import.meta.dir, "rootless-scenario.ts");
const NOBODY = 65534;
const asRoot = process.getuid?.() === 0;

/** Every directory down to the checkout must be searchable by others for uid 65534 to run the scenario. */
function othersCanReach(path: string): boolean {
  for (let dir = dirname(path); dir !== "/"; dir = dirname(dir)) {
    const mode = Bun.spawnSync(["stat", "-c", "%a", dir]).stdout.toString().trim();
    if ((Number.parseInt(mode, 8) & 0o001) === 0) return false;
  }
  return true;
}

const skipReason = !existsSync(BUSYBOX)
  ? "busybox-static is not installed"
  : !Bun.which("bwrap")
    ? "bubblewrap is not installed"
    : asRoot && !Bun.which("setpriv")
      ? "setpriv (util-linux) is not installed"
      : asRoot && !othersCanReach(SCENARIO)
        ? `uid ${NOBODY} cannot reach ${SCENARIO}`
        : null;

describe.skipIf(skipReason !== null)(
  `the local backend without root (${skipReason ?? (asRoot ? `as uid ${NOBODY}` : "as this user")})`,
  () => {
    let seen: Record<string, unknown>;
    beforeAll(async () => {
      const home = mkdtempSync(join(tmpdir(), "contree-rootless-home-"));
      if (asRoot) {
        chownSync(home, NOBODY, NOBODY);
        chmodSync(home, 0o700);
      }
      const prefix = asRoot
        ? ["setpriv", `--reuid=${NOBODY}`, `--regid=${NOBODY}`, "--clear-groups", "--"]
        : [];
      const proc = Bun.spawn([...prefix, process.execPath, SCENARIO], {
        cwd: dirname(SCENARIO),
        env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: home, TMPDIR: home },
        stdio: ["ignore", "pipe", "pipe"],
      });
      const [stdout, stderr, code] = await Promise.all([
        new Response(proc.stdout).text(),
        new Response(proc.stderr).text(),
        proc.exited,
      ]);
      try {
        removeTree(home);
      } catch {
        // left for the OS to clean
      }
      const line = stdout.trim().split("\n").at(-1) ?? "";
      if (code !== 0 || !line.startsWith("{")) {
        throw new Error(`the scenario failed (exit ${code}): ${stderr.slice(-2000)}${stdout.slice(-2000)}`);
      }
      seen = JSON.parse(line) as Record<string, unknown>;
    }, 120_000);

    test("it runs, or check() says exactly what is missing and that a token uses the cloud", () => {
      if (seen.check !== null) {
        expect(String(seen.check)).toMatch(/^The local backend cannot run here: without root it needs /);
        expect(String(seen.check)).toContain("ConTree token");
        return;
      }
      expect(seen.error).toBeUndefined();
      expect(seen.description).toContain("rootless");
      expect(seen.basic).toMatchObject({ status: "SUCCESS" });
      // uid and gid 0 inside, our hostname, and only the sandbox's own few processes in /proc: how many depends on
      // whether grep has started when ls reads /proc, so it is a bound, not a count.
      const [uid, gid, hostname, pids] = String((seen.basic as { stdout: string }).stdout).split("\n");
      expect([uid, gid, hostname]).toEqual(["0", "0", "linuxkit"]);
      expect(Number(pids)).toBeGreaterThanOrEqual(2);
      expect(Number(pids)).toBeLessThanOrEqual(4);
    });

    test("imports keep whiteouts, opaque directories, setuid and links; owners all become root", () => {
      if (seen.check !== null) return;
      expect(seen.import).toEqual({ status: "SUCCESS", error: null });
      expect(seen.imported).toMatchObject({
        stdout: "new\n/usr/bin/su 4755 0 0 1\n/data/owned 640 0 0 2\n/data/hard 640 0 0 2\nowned\n",
      });
      expect(seen.importedBin).not.toContain("ls");
      expect(seen.importedOld).toEqual(["new"]);
    });

    test("commits keep deletions, opaque and read-only directories; the parent is unchanged", () => {
      if (seen.check !== null) return;
      expect(seen.commit).toEqual({ status: "SUCCESS", error: null, child: true });
      expect(seen.child).toMatchObject({ stdout: "no-cat\nonly\nro\ns\n555\n0\n" });
      expect(seen.childOld).toEqual(["only"]);
      expect(seen.childData).toContain("ro 555 root");
      expect(seen.parentCat).toMatchObject({ stdout: "cat-present\n" });
      expect(seen.archive).toBe(true);
      expect(seen.readFile).toBe("fresh\n");
    });

    test("injected files, the network note, flattening, process limit, timeouts, no work directory left, nothing secret in ps", () => {
      if (seen.check !== null) return;
      expect(seen.injected).toMatchObject({ stdout: "tool ran as 0\n" });
      expect(seen.offline).toEqual({ exitCode: 1, notes: [NO_NETWORK_NOTE] });
      expect(seen.chain).toMatchObject({ lines: "36" });
      expect((seen.chain as { depth: number }).depth).toBeLessThanOrEqual(32);
      expect(seen.timeout).toEqual({ timedOut: true, status: "SUCCESS" });
      expect(seen.forkBomb).toEqual({ status: "SUCCESS", limited: true });
      expect(seen.leftovers).toEqual([]);
      const watched = seen.processList as {
        leaks: string[];
        stdout: string;
        expected: string;
        sawSleep: boolean;
      };
      expect(watched.leaks).toEqual([]);
      expect(watched.stdout).toBe(watched.expected);
      expect(watched.sawSleep).toBe(true);
      expect(seen.closeError).toBeUndefined();
    });
  },
);
