import { homedir } from "node:os";
import { isAbsolute, posix, resolve } from "node:path";
import type { Backend } from "../backend/types.ts";
import type { Config } from "../config.ts";
import { UserError } from "../errors.ts";
import type { FileCache } from "./cache.ts";

/**
 * A path inside an image, absolute and normalised: a missing leading slash is added, `.` and `..` are resolved
 * (never above the root) and a trailing slash is dropped. Every tool and resource uses this one rule, so the same
 * file always has the same path.
 */
export function containerPath(path: string): string {
  const trimmed = path.trim();
  const normal = posix.normalize(`/${trimmed}`);
  return normal.length > 1 ? normal.replace(/\/+$/, "") : "/";
}

/** A path on this machine: `~` expanded, and it must be absolute (the server's working directory means nothing). */
export function localPath(path: string, what: string): string {
  const expanded = path.trim().replace(/^~(?=$|\/)/, homedir());
  if (!isAbsolute(expanded)) {
    throw new UserError(
      `${what} must be an absolute path on this machine (got '${path}'), e.g. /home/me/${path}.`,
    );
  }
  return resolve(expanded);
}

/**
 * Which backend uploaded uuids belong to: the same content has a different uuid on another service, project or
 * local store, so blobs and directory states are kept apart per backend.
 */
export function backendKey(backend: Backend, config: Config): string {
  return `${backend.kind}|${backend.description}|${config.project ?? ""}`;
}

export function requireFileCache(deps: { fileCache?: FileCache }): FileCache {
  if (!deps.fileCache) throw new Error("the file cache is not open (openApp opens it)");
  return deps.fileCache;
}
