import { posix } from "node:path";
import type { KnownFile, StateFile, StateLook } from "./cache.ts";
import type { LocalFile } from "./walk.ts";

export interface CachePlan {
  /** Files that look exactly as when they were hashed: their hash is reused without reading them. */
  unchanged: Array<{ file: LocalFile; sha256: string }>;
  /** New or changed files, to hash. */
  changed: LocalFile[];
}

/** The same size, mtime, inode and permission bits: the same content, without reading it. */
export function sameLook(
  seen: { size: number; mtimeMs: number; ino: number; mode: number },
  file: LocalFile,
): boolean {
  return (
    seen.size === file.size &&
    seen.mtimeMs === file.mtimeMs &&
    seen.ino === file.ino &&
    (seen.mode & 0o7777) === (file.mode & 0o7777)
  );
}

/** Splits walked files by whether `known` (a cache lookup) already has the content of a file that looks the same. */
export function planHashing(
  files: readonly LocalFile[],
  known: (file: LocalFile) => KnownFile | StateFile | null | undefined,
): CachePlan {
  const unchanged: CachePlan["unchanged"] = [];
  const changed: LocalFile[] = [];
  for (const file of files) {
    const seen = known(file);
    if (seen && sameLook(seen, file)) unchanged.push({ file, sha256: seen.sha256 });
    else changed.push(file);
  }
  return { unchanged, changed };
}

/**
 * Whether the state's files, as [rel, size, mtime, inode, mode] sorted by rel, are the walked files looking the
 * same: then nothing is read, hashed or looked up.
 */
export function sameLooks(looks: readonly StateLook[], files: readonly LocalFile[]): boolean {
  if (looks.length !== files.length) return false;
  for (let i = 0; i < looks.length; i++) {
    const [rel, size, mtimeMs, ino, mode] = looks[i]!;
    const file = files[i]!;
    if (
      rel !== file.rel ||
      size !== file.size ||
      mtimeMs !== file.mtimeMs ||
      ino !== file.ino ||
      mode !== (file.mode & 0o777)
    ) {
      return false;
    }
  }
  return true;
}

export function sameStateFile(x: StateFile, y: StateFile): boolean {
  return (
    x.rel === y.rel &&
    x.sha256 === y.sha256 &&
    x.uuid === y.uuid &&
    x.mode === y.mode &&
    x.size === y.size &&
    x.mtimeMs === y.mtimeMs &&
    x.ino === y.ino
  );
}

/** Whether two file lists (each sorted by rel) describe the same state. */
export function sameStateFiles(a: readonly StateFile[], b: readonly StateFile[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (!sameStateFile(a[i]!, b[i]!)) return false;
  return true;
}

/** The identity of a directory state: the same backend, tree, destination and exclude set give the same state. */
export function stateKey(
  backend: string,
  source: string,
  destination: string,
  excludes: readonly string[],
): string {
  return JSON.stringify([backend, source, destination, excludes]);
}

/** An absolute container directory without a trailing slash ("/" stays "/"); null when it is not absolute. */
export function normaliseDestination(destination: string): string | null {
  const trimmed = destination.trim();
  if (!trimmed.startsWith("/")) return null;
  const normal = posix.normalize(trimmed);
  return normal.length > 1 ? normal.replace(/\/+$/, "") : "/";
}

/** Where a file of the tree lands in the container. */
export function targetPath(destination: string, rel: string): string {
  return destination === "/" ? `/${rel}` : `${destination}/${rel}`;
}
