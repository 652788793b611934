import { readdirSync, realpathSync, statSync, type Dirent, type Stats } from "node:fs";
import { basename, join } from "node:path";
import type { ExcludeTest } from "./exclude.ts";

/** A regular file found in the tree, with what change detection compares. */
export interface LocalFile {
  /** Relative to the synced root, with `/` separators: where it lands under the destination. */
  rel: string;
  /** The path as walked (through symlinks), used to read it and as its cache key. */
  abs: string;
  size: number;
  mtimeMs: number;
  ino: number;
  /** Permission bits (0o7777), taken through symlinks. */
  mode: number;
}

export interface Skipped {
  path: string;
  reason: string;
}

export interface WalkResult {
  files: LocalFile[];
  skipped: Skipped[];
}

export interface WalkOptions {
  exclude: ExcludeTest;
  /** Stops the walk with a clear error past this many files. */
  maxFiles: number;
  signal?: AbortSignal;
  onProgress?: (found: number) => void;
}

export class TooManyFiles extends Error {
  override readonly name = "TooManyFiles";
}

/** How many entries are visited between yields to the event loop, so progress and cancellation get through. */
const YIELD_EVERY = 2_000;

function isInside(root: string, real: string): boolean {
  return real === root || real.startsWith(root.endsWith("/") ? root : `${root}/`);
}

function errorReason(error: unknown): string {
  const code = (error as { code?: string }).code;
  if (code === "EACCES" || code === "EPERM") return "permission denied";
  if (code === "ENOENT") return "vanished during the walk";
  if (code === "ELOOP") return "symlink loop";
  return error instanceof Error ? error.message : String(error);
}

/**
 * Lists the regular files of a tree. Symlinks are followed when their target lies inside the tree and reported
 * otherwise; directories that cannot be read, special files and link loops are reported, never fatal.
 * A single file as `root` yields that file under its own name.
 */
export async function walkTree(root: string, options: WalkOptions): Promise<WalkResult> {
  const files: LocalFile[] = [];
  const skipped: Skipped[] = [];
  const rootReal = realpathSync(root);
  const rootStat = statSync(rootReal);
  if (!rootStat.isDirectory()) {
    if (rootStat.isFile()) files.push(toLocal(basename(root), root, rootStat));
    else skipped.push({ path: basename(root), reason: "not a regular file or directory" });
    return { files, skipped };
  }
  let visited = 0;
  const stack: Directory[] = [{ abs: root, rel: "", chain: { real: rootReal, up: null } }];
  while (stack.length > 0) {
    const dir = stack.pop()!;
    let entries: Dirent[];
    try {
      entries = readdirSync(dir.abs, { withFileTypes: true });
    } catch (error) {
      skipped.push({ path: dir.rel || ".", reason: `directory not readable: ${errorReason(error)}` });
      continue;
    }
    const base = dir.abs.endsWith("/") ? dir.abs : `${dir.abs}/`;
    for (const entry of entries) {
      visited += 1;
      if (visited % YIELD_EVERY === 0) {
        options.signal?.throwIfAborted();
        options.onProgress?.(files.length);
        await new Promise((resolve) => setImmediate(resolve));
      }
      const rel = dir.rel ? `${dir.rel}/${entry.name}` : entry.name;
      // Concatenation, not path.join: the directory is already normal and a name holds no slash.
      const abs = base + entry.name;
      if (entry.isDirectory()) {
        if (options.exclude(rel, true)) continue;
        stack.push({ abs, rel, chain: { real: join(dir.chain.real, entry.name), up: dir.chain } });
      } else if (entry.isFile()) {
        if (options.exclude(rel, false)) continue;
        try {
          files.push(toLocal(rel, abs, statSync(abs)));
        } catch (error) {
          skipped.push({ path: rel, reason: errorReason(error) });
        }
      } else if (entry.isSymbolicLink()) {
        let real: string;
        let target: Stats;
        try {
          real = realpathSync(abs);
          target = statSync(real);
        } catch (error) {
          if (!options.exclude(rel, false)) {
            skipped.push({ path: rel, reason: `broken symlink (${errorReason(error)})` });
          }
          continue;
        }
        const isDirectory = target.isDirectory();
        if (options.exclude(rel, isDirectory)) continue;
        if (!isInside(rootReal, real)) {
          skipped.push({ path: rel, reason: `symlink to ${real}, outside the synced tree` });
        } else if (isDirectory) {
          if (inChain(dir.chain, real)) {
            skipped.push({ path: rel, reason: "symlink loop (points to a directory that contains it)" });
          } else {
            stack.push({ abs, rel, chain: { real, up: dir.chain } });
          }
        } else if (target.isFile()) {
          files.push(toLocal(rel, abs, target));
        } else {
          skipped.push({ path: rel, reason: "symlink to a special file, not a regular file" });
        }
      } else if (!options.exclude(rel, false)) {
        skipped.push({ path: rel, reason: "special file (socket, fifo or device), not a regular file" });
      }
      if (files.length > options.maxFiles) throw new TooManyFiles(`more than ${options.maxFiles} files`);
    }
  }
  files.sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0));
  return { files, skipped };
}

/** The real paths of the directories above one being walked: a link to any of them would loop forever. */
interface Chain {
  real: string;
  up: Chain | null;
}

interface Directory {
  abs: string;
  rel: string;
  chain: Chain;
}

function inChain(chain: Chain | null, real: string): boolean {
  for (let link = chain; link; link = link.up) if (link.real === real) return true;
  return false;
}

function toLocal(rel: string, abs: string, stat: Stats): LocalFile {
  return { rel, abs, size: stat.size, mtimeMs: stat.mtimeMs, ino: stat.ino, mode: stat.mode & 0o7777 };
}
