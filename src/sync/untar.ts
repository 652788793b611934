import { chmodSync, linkSync, lstatSync, mkdirSync, rmSync, symlinkSync, utimesSync } from "node:fs";
import { join, posix } from "node:path";
import { createTarDecoder } from "modern-tar";
import type { Skipped } from "./walk.ts";

export interface Extracted {
  files: number;
  directories: number;
  symlinks: number;
  bytes: number;
  skipped: Skipped[];
}

/** An archive entry name as a safe relative path, or null for the root itself; "" means it escapes. */
function entryPath(name: string): string | null {
  const normal = posix.normalize(name.replace(/^\/+/, ""));
  if (normal === "." || normal === "./" || normal === "") return null;
  const clean = normal.replace(/\/+$/, "");
  if (clean === ".." || clean.startsWith("../")) return "";
  return clean;
}

/**
 * Unpacks a tar stream into `dir` (a fresh, empty directory). Symlinks are recreated as they are, whatever they point
 * to, but nothing is ever written through one: an entry whose parent is a link or a file made earlier is skipped. So
 * an archive cannot place anything outside `dir`. Set-id bits are dropped; device files and fifos are skipped.
 */
export async function extractTar(
  archive: ReadableStream<Uint8Array>,
  dir: string,
  signal?: AbortSignal,
): Promise<Extracted> {
  const result: Extracted = { files: 0, directories: 0, symlinks: 0, bytes: 0, skipped: [] };
  const kinds = new Map<string, "directory" | "file" | "symlink">();
  // Directory modes are applied last: a read-only directory would refuse the files that go into it.
  const directoryModes: Array<[string, number, Date | undefined]> = [];

  const parentIsSafe = (rel: string): boolean => {
    let at = rel.lastIndexOf("/");
    while (at > 0) {
      const kind = kinds.get(rel.slice(0, at));
      if (kind === "symlink" || kind === "file") return false;
      if (kind === "directory") return true;
      at = rel.lastIndexOf("/", at - 1);
    }
    return true;
  };
  const makeParents = (rel: string) => {
    const parts = rel.split("/").slice(0, -1);
    let path = "";
    for (const part of parts) {
      path = path ? `${path}/${part}` : part;
      if (!kinds.has(path)) {
        mkdirSync(join(dir, path), { recursive: true });
        kinds.set(path, "directory");
      }
    }
  };
  const clear = (rel: string, target: string): boolean => {
    const kind = kinds.get(rel);
    if (kind === undefined) return true;
    if (kind === "directory") return false;
    rmSync(target, { force: true });
    return true;
  };

  for await (const entry of archive.pipeThrough(createTarDecoder())) {
    signal?.throwIfAborted();
    const { header } = entry;
    const rel = entryPath(header.name);
    const type = header.type ?? "file";
    const skip = async (reason: string) => {
      result.skipped.push({ path: header.name, reason });
      await entry.body.cancel();
    };
    if (rel === null) {
      await entry.body.cancel();
      continue;
    }
    if (rel === "") {
      await skip("entry name points outside the directory");
      continue;
    }
    if (!parentIsSafe(rel)) {
      await skip("inside a symlink or file of the same archive");
      continue;
    }
    makeParents(rel);
    const target = join(dir, rel);
    const mode = (header.mode ?? (type === "directory" ? 0o755 : 0o644)) & 0o777;
    switch (type) {
      case "directory": {
        if (kinds.get(rel) !== "directory") {
          if (!clear(rel, target)) break;
          mkdirSync(target, { recursive: true });
          kinds.set(rel, "directory");
          result.directories += 1;
        }
        directoryModes.push([target, mode, header.mtime]);
        await entry.body.cancel();
        break;
      }
      case "file": {
        if (!clear(rel, target)) {
          await skip("a directory of the same name came first");
          break;
        }
        const writer = Bun.file(target).writer();
        let written = 0;
        try {
          for await (const chunk of entry.body) {
            signal?.throwIfAborted();
            writer.write(chunk);
            written += chunk.length;
            if (written % (8 << 20) < chunk.length) await writer.flush();
          }
        } finally {
          await writer.end();
        }
        chmodSync(target, mode);
        if (header.mtime) utimesSync(target, header.mtime, header.mtime);
        kinds.set(rel, "file");
        result.files += 1;
        result.bytes += written;
        break;
      }
      case "symlink": {
        await entry.body.cancel();
        if (!header.linkname || !clear(rel, target)) {
          result.skipped.push({ path: header.name, reason: "symlink without a target, or over a directory" });
          break;
        }
        symlinkSync(header.linkname, target);
        kinds.set(rel, "symlink");
        result.symlinks += 1;
        break;
      }
      case "link": {
        await entry.body.cancel();
        const source = header.linkname ? entryPath(header.linkname) : "";
        if (!source || kinds.get(source) !== "file" || !clear(rel, target)) {
          result.skipped.push({
            path: header.name,
            reason: `hard link to ${header.linkname ?? "nothing"} (not extracted)`,
          });
          break;
        }
        linkSync(join(dir, source), target);
        kinds.set(rel, "file");
        result.files += 1;
        break;
      }
      default:
        await skip(`${type} entries are not extracted`);
    }
  }
  for (const [path, mode, mtime] of directoryModes.toReversed()) {
    if (!lstatSync(path).isDirectory()) continue;
    chmodSync(path, mode | 0o700);
    if (mtime) utimesSync(path, mtime, mtime);
  }
  return result;
}
