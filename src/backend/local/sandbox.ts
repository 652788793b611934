// One run: an overlayfs mount of the image's layers with a fresh upper directory, and the command in bubblewrap.
//
// As root, the overlay is mounted by us (one system call) on the run's own mount point and bwrap starts right away;
// bwrap holds the command (--block-fd) until its first process is in the run's cgroups, so everything it starts is
// inside the limits, and the mount is detached when the run ends (removeTree detaches what a crash left).
//
// Otherwise (rootless, or a layer stack whose absolute paths overflow the mount options) the launcher is
// `unshare -m` + sh: it joins the cgroups, mounts the overlay in a private mount namespace that goes away with it,
// and execs bwrap. Rootless, that namespace is also a user namespace mapping us to root (see fsx.ts), bwrap adds one
// of its own, and there are no cgroups (only a process limit, see rootlessProcessLimit).
//
// Either way the upper directory (what the run changed) stays on disk for the commit. bwrap gets new PID, IPC, UTS,
// network and cgroup namespaces; --die-with-parent ties the sandbox to us, and a timeout or cancel kills bwrap and
// the sandbox's pid 1, which ends everything the command started.
//
// The process list is world-readable, so nothing secret goes on a command line: bwrap reads its options (the
// environment among them) from a file descriptor (--args), and a shell command reaches the shell through the
// environment, not its argv. Only a shell=false argv stays visible, as it would be on the command's own process.
import {
  chmodSync,
  closeSync,
  constants,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  rmSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { copyFile } from "node:fs/promises";
import { dirname, join, relative } from "node:path";
import { BackendError } from "../../errors.ts";
import { log } from "../../log.ts";
import type { CapturedStream, ExitState } from "../types.ts";
import { RunCgroup, type Limits } from "./cgroups.ts";
import { MOUNT_NAMESPACE, mountOverlay, ROOTLESS, setOwner, unmount } from "./fsx.ts";
import { LayerView, splitPath } from "./inspect.ts";

export const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/** overlayfs takes all its options in one page. */
const MAX_MOUNT_OPTIONS = 4000;
/** Docker's default capability set minus MKNOD (there is no device cgroup here to make device nodes harmless). */
const ROOT_CAPABILITIES = [
  "CHOWN",
  "DAC_OVERRIDE",
  "FOWNER",
  "FSETID",
  "KILL",
  "SETGID",
  "SETUID",
  "SETPCAP",
  "NET_BIND_SERVICE",
  "NET_RAW",
  "SYS_CHROOT",
  "AUDIT_WRITE",
  "SETFCAP",
];
// In a user namespace overlayfs keeps its attributes under user.* (userxattr), which refuses redirect_dir=off (it
// means "follow"); nofollow is the same for us since we never rename directories across layers.
const OVERLAY_FEATURES = ROOTLESS
  ? "userxattr,redirect_dir=nofollow,index=off,metacopy=off"
  : "redirect_dir=off,index=off,metacopy=off";

export interface FileInjection {
  /** Absolute path inside the sandbox. */
  path: string;
  /** Host file to copy there. */
  source: string;
  mode: number;
  uid: number;
  gid: number;
}

export interface SandboxSpec {
  /** Directory holding the layer directories; the mount resolves lower layers relative to it (short options). */
  layersDir: string;
  /** Layer ids, top first. */
  lowerIds: string[];
  /** A fresh directory for this run (upper, work and mount point go inside). */
  workDir: string;
  /** A shell script (run by /bin/sh) or an argv to exec. */
  command: { script: string } | { argv: string[] };
  env: Record<string, string>;
  cwd: string;
  stdin: Uint8Array | null;
  files: FileInjection[];
  keepOutputBytes: number;
  timeoutS: number;
  hostname: string;
  network: "none" | "host";
  limits: Limits;
  /** Aborting stops the run (cancel). */
  signal: AbortSignal;
}

export interface SandboxOutcome {
  exit: ExitState;
  stdout: CapturedStream;
  stderr: CapturedStream;
  resources: Record<string, number>;
  /** What the run changed, in overlayfs's format. */
  upperDir: string;
  cancelled: boolean;
  /** The sandbox could not be set up (the command never started): why. */
  setupError: string | null;
}

/** Overlay options with absolute paths (for a mount by this process), or null when they do not fit a page. */
function absoluteOverlayOptions(
  layersDir: string,
  lowerIds: string[],
  upper: string,
  work: string,
): string | null {
  const lowers = lowerIds.map((id) => join(layersDir, id)).join(":");
  const options = `lowerdir=${lowers},upperdir=${upper},workdir=${work},${OVERLAY_FEATURES}`;
  return options.length > MAX_MOUNT_OPTIONS || /[,:\\]/.test(`${layersDir}${upper}`) ? null : options;
}

export function overlayOptions(layersDir: string, lowerIds: string[], upper?: string, work?: string): string {
  let options = `lowerdir=${lowerIds.join(":")}`;
  if (upper && work) {
    options += `,upperdir=${relative(layersDir, upper)},workdir=${relative(layersDir, work)}`;
  }
  options += `,${OVERLAY_FEATURES}`;
  if (options.length > MAX_MOUNT_OPTIONS) {
    throw new BackendError({
      code: "invalid",
      detail: `the image has too many layers (${lowerIds.length}) to mount`,
    });
  }
  return options;
}

/**
 * Rootless there are no cgroups to count a run's processes, but RLIMIT_NPROC does: since Linux 5.14 it is counted
 * per user namespace, and bwrap gives the sandbox a fresh one, so the limit holds for the sandbox's processes alone.
 */
function rootlessProcessLimit(pids: number): string[] {
  if (!ROOTLESS || pids <= 0 || !Bun.which("prlimit")) return [];
  return ["prlimit", `--nproc=${Math.floor(pids)}`, "--"];
}

/** Keeps the first `keep` bytes of a stream and counts the rest. */
async function capture(stream: ReadableStream<Uint8Array>, keep: number): Promise<CapturedStream> {
  const chunks: Uint8Array[] = [];
  let kept = 0;
  let dropped = 0;
  for await (const chunk of stream) {
    const room = keep - kept;
    if (room >= chunk.length) {
      chunks.push(chunk);
      kept += chunk.length;
    } else {
      if (room > 0) chunks.push(chunk.subarray(0, room));
      kept += Math.max(room, 0);
      dropped += chunk.length - Math.max(room, 0);
    }
  }
  return { bytes: Buffer.concat(chunks), truncated: dropped > 0, droppedBytes: dropped };
}

/**
 * Makes `comps` a directory in the upper dir, copying each missing parent's owner and mode from the image. Modes go
 * into `modes` to be set once the files are in (rootless, a read-only directory would refuse them).
 */
function ensureUpperDir(view: LayerView, upper: string, comps: string[], modes: Map<string, number>): void {
  for (let i = 1; i <= comps.length; i++) {
    const path = join(upper, ...comps.slice(0, i));
    try {
      if (lstatSync(path).isDirectory()) continue;
      rmSync(path, { force: true });
    } catch {
      // missing: create it below
    }
    const below = view.lookup(comps.slice(0, i));
    const stat = below?.stat.isDirectory() ? below.stat : null;
    mkdirSync(path, { mode: 0o755 });
    setOwner(path, stat?.uid ?? 0, stat?.gid ?? 0);
    modes.set(path, stat ? stat.mode & 0o7777 : 0o755);
  }
}

/**
 * Puts the injected files and a missing working directory into the upper dir before the mount, and returns the
 * mount points bwrap will have to create (they must not end up in a commit).
 */
async function prepareUpper(view: LayerView, upper: string, spec: SandboxSpec): Promise<string[][]> {
  const modes = new Map<string, number>();
  for (const file of spec.files) {
    const parts = splitPath(file.path);
    if (parts.length === 0 || parts.includes("..")) {
      throw new BackendError({ code: "invalid", detail: `files: '${file.path}' is not a usable file path` });
    }
    const parent = view.resolve(`/${parts.slice(0, -1).join("/")}`).comps;
    ensureUpperDir(view, upper, parent, modes);
    const target = join(upper, ...parent, parts.at(-1)!);
    rmSync(target, { recursive: true, force: true });
    await copyFile(file.source, target, constants.COPYFILE_FICLONE);
    setOwner(target, file.uid, file.gid);
    chmodSync(target, file.mode & 0o7777);
  }
  const cwd = view.resolve(spec.cwd);
  if (!cwd.hit) ensureUpperDir(view, upper, cwd.comps, modes);
  for (const [path, mode] of [...modes].toReversed()) chmodSync(path, mode);
  const mountPoints = [["proc"], ["dev"]];
  if (spec.network === "host") mountPoints.push(["etc", "resolv.conf"]);
  return mountPoints.filter((comps) => !view.lookup(comps));
}

/** Removes mount points bwrap created (empty dirs and files that the image did not have). */
function dropMountPoints(upper: string, created: string[][]): void {
  for (const comps of created) {
    const path = join(upper, ...comps);
    try {
      const stat = lstatSync(path);
      if (stat.isDirectory() ? readdirSync(path).length === 0 : stat.isFile() && stat.size === 0) {
        rmSync(path, { recursive: true });
      }
      const parent = dirname(path);
      if (parent !== upper && readdirSync(parent).length === 0 && comps.length > 1)
        rmSync(parent, { recursive: true });
    } catch {
      // not created: nothing to drop
    }
  }
}

/** The variable that carries a shell script past the process list; the shell drops it before running the script. */
const SCRIPT_VARIABLE = "__CONTREE_SCRIPT";
// `eval` runs the text as `sh -c` would (same $0, exit, traps); the prefix shares its line, so LINENO is unchanged.
const SCRIPT_RUNNER = ["/bin/sh", "-c", `eval "unset ${SCRIPT_VARIABLE}; $${SCRIPT_VARIABLE}"`];
/** The fd bwrap reads its options from (--args). */
const ARGS_FD = 5;

/** bwrap's options, for its --args fd; the command itself follows `--` on the command line. */
function bwrapArgs(spec: SandboxSpec, mountPoint: string, asRoot: boolean, blockFd: boolean): string[] {
  const args = ["--bind", mountPoint, "/", "--proc", "/proc", "--dev", "/dev"];
  args.push("--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try");
  if (spec.network === "none") args.push("--unshare-net");
  else args.push("--ro-bind-try", "/etc/resolv.conf", "/etc/resolv.conf");
  if (asRoot) {
    args.push("--cap-drop", "ALL");
    for (const cap of ROOT_CAPABILITIES) args.push("--cap-add", `CAP_${cap}`);
  } else {
    args.push("--unshare-user", "--uid", "0", "--gid", "0");
  }
  args.push("--die-with-parent", "--new-session", "--hostname", spec.hostname, "--clearenv");
  const env: Record<string, string> = { PATH: DEFAULT_PATH, HOME: "/root", ...spec.env };
  if ("script" in spec.command) env[SCRIPT_VARIABLE] = spec.command.script;
  for (const [name, value] of Object.entries(env)) args.push("--setenv", name, value);
  args.push("--chdir", spec.cwd, "--json-status-fd", "3");
  if (blockFd) args.push("--block-fd", "4");
  return args;
}

/** What follows bwrap's `--`. */
function commandLine(spec: SandboxSpec): string[] {
  return "script" in spec.command ? SCRIPT_RUNNER : spec.command.argv;
}

/**
 * Writes bwrap's options, NUL-separated, to a file that is gone from the directory before anything runs, and returns
 * an fd open on it. A NUL inside a value would split it into options of its own, so that is refused.
 */
function argsFile(dir: string, args: string[], argv: string[]): number {
  for (const arg of [...args, ...argv]) {
    if (arg.includes("\0")) {
      throw new BackendError({
        code: "invalid",
        detail: "the command, its arguments and env values must not contain NUL bytes",
      });
    }
  }
  const path = join(dir, "bwrap-args");
  writeFileSync(path, args.map((arg) => `${arg}\0`).join(""), { mode: 0o600 });
  try {
    return openSync(path, "r");
  } finally {
    unlinkSync(path);
  }
}

// $1: overlay options, $2: mount point, then bwrap's arguments. CONTREE_CGROUPS: cgroup.procs files to join first,
// so every process of the run is born inside the limits.
const LAUNCHER = `for f in $CONTREE_CGROUPS; do echo $$ > "$f" || exit 125; done
mount -t overlay overlay -o "$1" "$2" || { echo "contree-mcp: could not mount the image's layers" >&2; exit 125; }
shift 2
exec bwrap "$@"`;

/** Runs one command in a sandbox; never throws for what the command does, only for a broken setup. */
export async function runSandbox(
  view: LayerView,
  spec: SandboxSpec,
  cgroupName: string,
): Promise<SandboxOutcome> {
  const upperDir = join(spec.workDir, "upper");
  const work = join(spec.workDir, "work");
  const mountPoint = join(spec.workDir, "mnt");
  for (const dir of [upperDir, work, mountPoint]) mkdirSync(dir, { recursive: true, mode: 0o755 });
  const created = await prepareUpper(view, upperDir, spec);
  const asRoot = !ROOTLESS;
  const direct = asRoot ? absoluteOverlayOptions(spec.layersDir, spec.lowerIds, upperDir, work) : null;
  const options = direct ? "" : overlayOptions(spec.layersDir, spec.lowerIds, upperDir, work);
  const cgroup = RunCgroup.create(cgroupName, spec.limits);
  const started = performance.now();
  let timedOut = false;
  let cancelled = false;
  let mounted = false;
  let setupFailure: string | null = null;
  let argsFd: number | null = null;
  try {
    const stdin = spec.stdin ? new Blob([spec.stdin]) : "ignore";
    // bwrap's --die-with-parent covers the sandbox, not bwrap itself: setpriv makes bwrap die with us too.
    const deathSignal = ["setpriv", "--pdeathsig", "KILL", "--"];
    let proc: Bun.Subprocess<typeof stdin, "pipe", "pipe">;
    const blocked = direct !== null && cgroup !== null;
    const argv = commandLine(spec);
    argsFd = argsFile(spec.workDir, bwrapArgs(spec, mountPoint, asRoot, blocked), argv);
    const bwrap = ["bwrap", "--args", String(ARGS_FD), "--", ...argv];
    if (direct) {
      try {
        mountOverlay(mountPoint, direct);
        mounted = true;
      } catch (error) {
        throw new BackendError({ code: "unavailable", detail: (error as Error).message });
      }
      proc = Bun.spawn([...deathSignal, ...bwrap], {
        cwd: "/",
        env: { PATH: process.env.PATH ?? DEFAULT_PATH },
        stdio: [stdin, "pipe", "pipe", "pipe", blocked ? "pipe" : "ignore", argsFd],
      });
    } else {
      proc = Bun.spawn(
        [
          ...MOUNT_NAMESPACE,
          "--",
          ...rootlessProcessLimit(spec.limits.pids),
          ...deathSignal,
          "/bin/sh",
          "-c",
          LAUNCHER,
          "sh",
          options,
          mountPoint,
          ...bwrap.slice(1),
        ],
        {
          cwd: spec.layersDir,
          env: {
            PATH: process.env.PATH ?? DEFAULT_PATH,
            CONTREE_CGROUPS: cgroup?.procsFiles.join(" ") ?? "",
          },
          stdio: [stdin, "pipe", "pipe", "pipe", "ignore", argsFd],
        },
      );
    }
    closeSync(argsFd);
    argsFd = null;
    const statusFd = proc.stdio[3] as unknown as number;
    // Killing bwrap alone is not enough: its child (the sandbox's pid 1) binds itself to bwrap's life only once its
    // setup is done (and, with --block-fd, once released), so a kill before that would leave it running. So the
    // child is killed too, which ends its whole PID namespace, and a kill that comes before bwrap has named its
    // child waits for the name (bwrap writes it right after the clone; the fallback covers a bwrap that never does).
    let childPid: number | null = null;
    let stopping = false;
    const killAll = () => {
      stopping = true;
      if (childPid === null && blocked) {
        setTimeout(() => {
          if (childPid === null) proc.kill("SIGKILL");
        }, 2000).unref();
        return;
      }
      proc.kill("SIGKILL");
      if (childPid !== null) {
        try {
          process.kill(childPid, "SIGKILL");
        } catch {
          // already gone
        }
      }
    };
    const onChildPid = (pid: number) => {
      childPid = pid;
      if (stopping) {
        killAll();
        return;
      }
      if (!blocked || !cgroup) return;
      try {
        for (const file of cgroup.procsFiles) writeFileSync(file, String(pid));
        writeSync(proc.stdio[4] as unknown as number, "go");
      } catch (error) {
        setupFailure = `could not put the run into its cgroup: ${String(error)}`;
        killAll();
      }
    };
    const status = readStatus(statusFd, onChildPid);
    const stop = () => {
      cancelled = true;
      killAll();
    };
    spec.signal.addEventListener("abort", stop, { once: true });
    if (spec.signal.aborted) stop();
    const timer = setTimeout(() => {
      timedOut = true;
      killAll();
    }, spec.timeoutS * 1000);
    const [stdout, stderr] = await Promise.all([
      capture(proc.stdout, spec.keepOutputBytes),
      capture(proc.stderr, spec.keepOutputBytes),
      proc.exited,
    ]);
    clearTimeout(timer);
    spec.signal.removeEventListener("abort", stop);
    const statusText = await status;
    const elapsed = (performance.now() - started) / 1000;
    const resources: Record<string, number> = { elapsed_time: elapsed };
    const usage = proc.resourceUsage();
    if (usage) {
      resources.user_cpu_time = Number(usage.cpuTime.user) / 1e6;
      resources.system_cpu_time = Number(usage.cpuTime.system) / 1e6;
      resources.max_rss = usage.maxRSS;
    }
    if (cgroup) Object.assign(resources, cgroup.stats());
    dropMountPoints(upperDir, created);

    const killedBySignal = proc.signalCode !== null;
    if (setupFailure) {
      return {
        exit: { exitCode: null, signal: 9, timedOut: false },
        stdout,
        stderr,
        resources,
        upperDir,
        cancelled,
        setupError: setupFailure,
      };
    }
    if (!statusText.includes("child-pid") && !killedBySignal) {
      const text = new TextDecoder().decode(stderr.bytes).trim();
      return {
        exit: { exitCode: proc.exitCode, signal: null, timedOut: false },
        stdout,
        stderr,
        resources,
        upperDir,
        cancelled,
        setupError: text || `the sandbox could not start (exit ${proc.exitCode})`,
      };
    }
    let exit: ExitState;
    if (killedBySignal) {
      exit = { exitCode: null, signal: 9, timedOut };
    } else {
      let code = proc.exitCode ?? -1;
      // bwrap answers 1 when it cannot exec the program; the shell's "not found" is 127, so say that.
      if (!statusText.includes("exit-code") && code === 1) code = 127;
      const oomKilled = (resources.oom_kills ?? 0) > 0 && code === 128 + 9;
      exit = oomKilled
        ? { exitCode: null, signal: 9, timedOut: false }
        : { exitCode: code, signal: null, timedOut };
    }
    return { exit, stdout, stderr, resources, upperDir, cancelled, setupError: null };
  } finally {
    if (argsFd !== null) closeSync(argsFd);
    if (mounted) {
      try {
        unmount(mountPoint);
      } catch (error) {
        // removeTree detaches it when the work directory goes
        log.debug(String(error));
      }
    }
    await cgroup?.remove();
  }
}

/**
 * Reads bwrap's JSON status lines to the end. `onChildPid` gets the sandbox's first pid as soon as bwrap reports it
 * (bwrap writes that record with one write, so one read sees the whole number).
 */
async function readStatus(fd: number, onChildPid: (pid: number) => void): Promise<string> {
  const decoder = new TextDecoder();
  let text = "";
  let told = false;
  try {
    for await (const chunk of Bun.file(fd).stream()) {
      text += decoder.decode(chunk, { stream: true });
      const pid = told ? null : /"child-pid":\s*(\d+)/.exec(text);
      if (pid) {
        told = true;
        onChildPid(Number(pid[1]));
      }
    }
  } catch {
    // bwrap went away: what was read is all there is
  }
  return text;
}
