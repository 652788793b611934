// Per-run memory and process-count limits through cgroups: v1 (memory and pids hierarchies, as on this project's
// machines) or v2 when its root offers both controllers. Without either, runs go unlimited and we say so once.
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { log } from "../../log.ts";

const GROUP = "contree-mcp";

export interface Limits {
  /** 0 or less: no memory limit. */
  memoryBytes: number;
  /** 0 or less: no process limit. */
  pids: number;
}

function limitValue(value: number, unlimited: string): string {
  return value > 0 ? String(Math.floor(value)) : unlimited;
}

type Layout = { version: 1; memory: string; pids: string } | { version: 2; root: string };

let detected: Layout | null | undefined;

function readText(path: string): string | null {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return null;
  }
}

function detect(): Layout | null {
  if (process.getuid?.() !== 0) return null;
  const v2Controllers = readText("/sys/fs/cgroup/cgroup.controllers");
  if (v2Controllers !== null) {
    const names = v2Controllers.trim().split(/\s+/);
    if (names.includes("memory") && names.includes("pids")) return { version: 2, root: "/sys/fs/cgroup" };
    return null;
  }
  const memory = "/sys/fs/cgroup/memory";
  const pids = "/sys/fs/cgroup/pids";
  if (existsSync(join(memory, "memory.limit_in_bytes")) && existsSync(join(pids, "cgroup.procs"))) {
    return { version: 1, memory, pids };
  }
  return null;
}

function layout(): Layout | null {
  if (detected === undefined) {
    try {
      detected = detect();
    } catch {
      detected = null;
    }
    if (!detected)
      log.debug("no usable cgroups (v1 memory+pids or v2): runs have no memory or process limits");
  }
  return detected;
}

/** One run's cgroups: the launcher writes its own pid into `procsFiles` before it starts the sandbox. */
export class RunCgroup {
  readonly dirs: string[];
  readonly procsFiles: string[];
  private readonly version: 1 | 2;

  private constructor(version: 1 | 2, dirs: string[]) {
    this.version = version;
    this.dirs = dirs;
    this.procsFiles = dirs.map((dir) => join(dir, "cgroup.procs"));
  }

  /** null when the machine offers no cgroups we can use (not root, or neither v1 nor a v2 with both controllers). */
  static create(name: string, limits: Limits): RunCgroup | null {
    const found = layout();
    if (!found) return null;
    try {
      if (found.version === 1) {
        const memory = join(found.memory, GROUP, name);
        const pids = join(found.pids, GROUP, name);
        mkdirSync(memory, { recursive: true });
        mkdirSync(pids, { recursive: true });
        writeFileSync(join(memory, "memory.limit_in_bytes"), limitValue(limits.memoryBytes, "-1"));
        // Without this a run could swap past its limit on a machine that has swap.
        const memsw = join(memory, "memory.memsw.limit_in_bytes");
        if (existsSync(memsw)) writeFileSync(memsw, limitValue(limits.memoryBytes, "-1"));
        writeFileSync(join(pids, "pids.max"), limitValue(limits.pids, "max"));
        return new RunCgroup(1, [memory, pids]);
      }
      const parent = join(found.root, GROUP);
      if (!existsSync(parent)) {
        mkdirSync(parent);
        writeFileSync(join(found.root, "cgroup.subtree_control"), "+memory +pids");
        writeFileSync(join(parent, "cgroup.subtree_control"), "+memory +pids");
      }
      const dir = join(parent, name);
      mkdirSync(dir);
      writeFileSync(join(dir, "memory.max"), limitValue(limits.memoryBytes, "max"));
      if (existsSync(join(dir, "memory.swap.max"))) writeFileSync(join(dir, "memory.swap.max"), "0");
      writeFileSync(join(dir, "pids.max"), limitValue(limits.pids, "max"));
      return new RunCgroup(2, [dir]);
    } catch (error) {
      log.debug(`cgroup setup failed, running without limits: ${String(error)}`);
      return null;
    }
  }

  /** Peak memory and OOM kills, for the run's resource counters. */
  stats(): Record<string, number> {
    const out: Record<string, number> = {};
    const dir = this.dirs[0]!;
    if (this.version === 1) {
      const peak = Number(readText(join(dir, "memory.max_usage_in_bytes")));
      if (Number.isFinite(peak) && peak > 0) out.max_memory_bytes = peak;
      const oom = /oom_kill (\d+)/.exec(readText(join(dir, "memory.oom_control")) ?? "");
      if (oom) out.oom_kills = Number(oom[1]);
    } else {
      const peak = Number(readText(join(dir, "memory.peak")));
      if (Number.isFinite(peak) && peak > 0) out.max_memory_bytes = peak;
      const oom = /oom_kill (\d+)/.exec(readText(join(dir, "memory.events")) ?? "");
      if (oom) out.oom_kills = Number(oom[1]);
    }
    return out;
  }

  /** Removes the groups; the kernel refuses while a (dying) process is still in them, so retry briefly. */
  async remove(): Promise<void> {
    for (const dir of this.dirs) {
      for (let attempt = 0; ; attempt++) {
        try {
          rmdirSync(dir);
          break;
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code === "ENOENT") break;
          if (attempt >= 50) {
            log.debug(`could not remove cgroup ${dir}: ${String(error)}`);
            break;
          }
          await Bun.sleep(20);
        }
      }
    }
  }
}
