import { posix } from "node:path";
import type { KnownFile, StateFile } from "./cache.ts";
import type { LocalFile } from "./walk.ts";

export interface CachePlan {
  /** Files that look exactly as when they were hashed: their hash is reused without reading them. */
  unchanged: Array<{ file: LocalFile; sha256: string }>;
  /** New or changed files, to hash. */
  changed: LocalFile[];
}

/** Splits walked files by whether the cache already knows their content. */
export function planHashing(files: readonly LocalFile[], known: ReadonlyMap<string, KnownFile>): CachePlan {
  const unchanged: CachePlan["unchanged"] = [];
  const changed: LocalFile[] = [];
  for (const file of files) {
    const seen = known.get(file.abs);
    if (
      seen &&
      seen.size === file.size &&
      seen.mtimeMs === file.mtimeMs &&
      seen.ino === file.ino &&
      seen.mode === file.mode
    ) {
      unchanged.push({ file, sha256: seen.sha256 });
    } else {
      changed.push(file);
    }
  }
  return { unchanged, changed };
}

/** Whether two file lists (each sorted by rel) describe the same state. */
export function sameStateFiles(a: readonly StateFile[], b: readonly StateFile[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (
      x.rel !== y.rel ||
      x.sha256 !== y.sha256 ||
      x.uuid !== y.uuid ||
      x.mode !== y.mode ||
      x.size !== y.size
    ) {
      return false;
    }
  }
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
