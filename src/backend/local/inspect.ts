// Reads an image without running anything: paths are resolved through the layer stack the way overlayfs would
// (top layer first; a whiteout hides the name below, an opaque directory hides everything below it), and symlinks
// are followed inside the image, never out of it.
import { lstatSync, readdirSync, readFileSync, readlinkSync, type Stats } from "node:fs";
import { join } from "node:path";
import { BackendError } from "../../errors.ts";
import type { DirEntry, DirListing, EntryType } from "../types.ts";
import { imageGid, imageUid, isOpaque, isWhiteout } from "./fsx.ts";

const MAX_SYMLINKS = 40;

export interface Hit {
  /** Where the entry lives on disk (inside one layer). */
  hostPath: string;
  stat: Stats;
  /** Index into the view's layers (0 = top). */
  layer: number;
}

type LayerState =
  | { kind: "present"; stat: Stats; cut: boolean }
  | { kind: "absent"; cut: boolean }
  | { kind: "blocked" };

function lstatOrNull(path: string): Stats | null {
  try {
    return lstatSync(path);
  } catch {
    return null;
  }
}

export function splitPath(path: string): string[] {
  return path.split("/").filter((part) => part !== "" && part !== ".");
}

export class LayerView {
  /** Layer directories, top first. */
  readonly layers: string[];

  constructor(layersTopFirst: string[]) {
    this.layers = layersTopFirst;
  }

  /** What one layer says about a symlink-free path: present, absent, or hiding it from the layers below. */
  private state(layer: string, comps: string[]): LayerState {
    let cut = false;
    let path = layer;
    for (let i = 0; i < comps.length; i++) {
      path = join(path, comps[i]!);
      const stat = lstatOrNull(path);
      if (!stat) return { kind: "absent", cut };
      if (isWhiteout(stat)) return { kind: "blocked" };
      const last = i === comps.length - 1;
      if (!stat.isDirectory()) return last ? { kind: "present", stat, cut } : { kind: "blocked" };
      if (!last && isOpaque(path)) cut = true;
      if (last) return { kind: "present", stat, cut };
    }
    return { kind: "present", stat: lstatSync(layer), cut: false };
  }

  /** The visible entry at a symlink-free path, or null. */
  lookup(comps: string[]): Hit | null {
    for (let index = 0; index < this.layers.length; index++) {
      const layer = this.layers[index]!;
      const state = this.state(layer, comps);
      if (state.kind === "blocked") return null;
      if (state.kind === "present")
        return { hostPath: join(layer, ...comps), stat: state.stat, layer: index };
      if (state.cut) return null;
    }
    return null;
  }

  /**
   * Resolves `path` to a symlink-free path inside the image, following symlinks in every component (and in the
   * last one when `followLast`). Absolute targets are relative to the image root; `..` stops at the root.
   */
  resolve(path: string, followLast = true): { comps: string[]; hit: Hit | null } {
    let pending = splitPath(path);
    const done: string[] = [];
    let links = 0;
    while (pending.length > 0) {
      const name = pending.shift()!;
      if (name === "..") {
        done.pop();
        continue;
      }
      const comps = [...done, name];
      const hit = this.lookup(comps);
      const isLast = pending.length === 0;
      if (hit?.stat.isSymbolicLink() && (!isLast || followLast)) {
        if (++links > MAX_SYMLINKS) {
          throw new BackendError({ code: "invalid", detail: `too many symlinks resolving ${path}` });
        }
        const target = readlinkSync(hit.hostPath);
        if (target.startsWith("/")) done.length = 0;
        pending = [...splitPath(target), ...pending];
        continue;
      }
      if (!hit && !isLast) return { comps: [...comps, ...pending], hit: null };
      done.push(name);
    }
    return { comps: done, hit: done.length === 0 ? this.lookup([]) : this.lookup(done) };
  }

  /** Merged entries of a symlink-free directory path: name → hit. */
  entries(comps: string[]): Map<string, Hit> {
    const seen = new Map<string, Hit>();
    const hidden = new Set<string>();
    for (let index = 0; index < this.layers.length; index++) {
      const layer = this.layers[index]!;
      const state = this.state(layer, comps);
      if (state.kind === "blocked") break;
      if (state.kind === "absent") {
        if (state.cut) break;
        continue;
      }
      if (!state.stat.isDirectory()) break;
      const dir = join(layer, ...comps);
      for (const name of readdirSync(dir)) {
        if (seen.has(name) || hidden.has(name)) continue;
        const path = join(dir, name);
        const stat = lstatOrNull(path);
        if (!stat) continue;
        if (isWhiteout(stat)) {
          hidden.add(name);
          continue;
        }
        seen.set(name, { hostPath: path, stat, layer: index });
      }
      if (state.cut || (comps.length > 0 && isOpaque(dir))) break;
    }
    return seen;
  }

  readText(path: string): string | null {
    try {
      const { hit } = this.resolve(path);
      if (!hit?.stat.isFile()) return null;
      return readFileSync(hit.hostPath, "utf8");
    } catch {
      return null;
    }
  }
}

export function entryType(stat: Stats): EntryType {
  if (stat.isFile()) return "file";
  if (stat.isDirectory()) return "directory";
  if (stat.isSymbolicLink()) return "symlink";
  if (stat.isSocket()) return "socket";
  if (stat.isFIFO()) return "fifo";
  return "other";
}

/** uid → name from the image's own /etc/passwd (or /etc/group), so listings read like `ls -l` inside it. */
function idNames(view: LayerView, file: string): Map<number, string> {
  const names = new Map<number, string>();
  for (const line of (view.readText(file) ?? "").split("\n")) {
    const fields = line.split(":");
    const id = Number(fields[2]);
    if (fields[0] && Number.isInteger(id) && !names.has(id)) names.set(id, fields[0]);
  }
  return names;
}

export function listDirectory(view: LayerView, path: string): DirListing {
  const { comps, hit } = view.resolve(path);
  if (!hit) throw new BackendError({ code: "not_found", detail: `${path}: no such file or directory` });
  if (!hit.stat.isDirectory())
    throw new BackendError({ code: "invalid", detail: `${path} is not a directory` });
  const users = idNames(view, "/etc/passwd");
  const groups = idNames(view, "/etc/group");
  const entries: DirEntry[] = [];
  for (const [name, entry] of view.entries(comps)) {
    const stat = entry.stat;
    entries.push({
      name,
      type: entryType(stat),
      size: stat.isDirectory() ? 0 : stat.size,
      mode: stat.mode & 0o7777,
      mtime: Math.floor(stat.mtimeMs / 1000),
      owner: users.get(imageUid(stat.uid)) ?? imageUid(stat.uid),
      group: groups.get(imageGid(stat.gid)) ?? imageGid(stat.gid),
      target: stat.isSymbolicLink() ? readlinkSync(entry.hostPath) : null,
    });
  }
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return { path: `/${comps.join("/")}`, entries };
}

/** The host path of a regular file in the image. */
export function fileHostPath(view: LayerView, path: string): string {
  const { hit } = view.resolve(path);
  if (!hit) throw new BackendError({ code: "not_found", detail: `${path}: no such file` });
  if (hit.stat.isDirectory()) {
    throw new BackendError({
      code: "invalid",
      detail: `${path} is a directory; list it or download it as an archive`,
    });
  }
  if (!hit.stat.isFile())
    throw new BackendError({ code: "invalid", detail: `${path} is not a regular file` });
  return hit.hostPath;
}
