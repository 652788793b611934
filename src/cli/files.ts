// File changes that cannot leave a client's config half-written: a backup first, then a temp file renamed over.
import {
  constants,
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { dirname } from "node:path";

/** 20261130T125301Z: sorts by time and is safe in file names on every OS. */
export function stamp(date = new Date()): string {
  return date
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d+Z$/, "Z");
}

/** The file a path points to: a symlinked config (dotfile managers) is edited where it lives, not replaced. */
export function realTarget(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

/** Owner read/write at most: what a file that holds a secret may allow. */
export const PRIVATE = 0o600;

/**
 * Copies `path` to `<path>.bak-<stamp>` with its mode, or at most 0600 when `secret` (the backup sits next to a
 * file that is about to hold a token); returns the backup's path.
 */
export function backup(path: string, secret = false): string {
  let target = `${path}.bak-${stamp()}`;
  for (let n = 1; existsSync(target); n++) target = `${path}.bak-${stamp()}-${n}`;
  if (secret) {
    // Created 0600 from the first byte, not copied and then narrowed.
    writeFileSync(target, readFileSync(path), { mode: statSync(path).mode & PRIVATE, flag: "wx" });
  } else {
    copyFileSync(path, target, constants.COPYFILE_EXCL);
  }
  return target;
}

/**
 * Writes through a temp file in the same directory, keeping the old file's mode (new files: `mode`). With
 * `secret`, an existing file's mode is narrowed to at most 0600: a config readable by others must not gain a token.
 */
export function writeAtomic(path: string, text: string, mode = 0o644, secret = false): void {
  mkdirSync(dirname(path), { recursive: true });
  const old = existsSync(path) ? statSync(path).mode & 0o777 : undefined;
  const keep = old === undefined ? mode : secret ? old & PRIVATE : old;
  const temp = `${path}.tmp-${process.pid}-${Date.now()}`;
  try {
    writeFileSync(temp, text, { mode: keep, flag: "wx" });
    renameSync(temp, path);
  } catch (error) {
    rmSync(temp, { force: true });
    throw error;
  }
}

function lines(text: string): string[] {
  return text === "" ? [] : text.replace(/\n$/, "").split("\n");
}

/**
 * A unified diff of one changed region (our edits touch one place), with `context` lines around it. Empty when
 * the texts are equal.
 */
export function diff(path: string, before: string, after: string, context = 3): string {
  if (before === after) return "";
  const a = lines(before);
  const b = lines(after);
  let head = 0;
  while (head < a.length && head < b.length && a[head] === b[head]) head++;
  let tail = 0;
  while (
    tail < a.length - head &&
    tail < b.length - head &&
    a[a.length - 1 - tail] === b[b.length - 1 - tail]
  ) {
    tail++;
  }
  const from = Math.max(0, head - context);
  const aEnd = a.length - tail;
  const bEnd = b.length - tail;
  const upto = Math.min(a.length, aEnd + context);
  const oldCount = upto - from;
  const newCount = oldCount + (bEnd - aEnd);
  // Unified diff numbers an empty range by the line before it.
  const range = (count: number) => `${count === 0 ? from : from + 1},${count}`;
  const out = [
    `--- ${before ? path : "/dev/null"}`,
    `+++ ${path}`,
    `@@ -${range(oldCount)} +${range(newCount)} @@`,
    ...a.slice(from, head).map((line) => ` ${line}`),
    ...a.slice(head, aEnd).map((line) => `-${line}`),
    ...b.slice(head, bEnd).map((line) => `+${line}`),
    ...a.slice(aEnd, upto).map((line) => ` ${line}`),
  ];
  return `${out.join("\n")}\n`;
}
