// Turns a finished run's upper directory into a layer, and flattens deep stacks.
//
// The upper directory is already in the format the layers use (overlayfs wrote its whiteouts and opaque markers),
// so a commit is one rename into layers/: atomic, and as fast for 100 MB as for 1 KB. The row is written after the
// rename; a directory without a row is an interrupted commit and is removed at the next start.
import { lstatSync, mkdirSync, readdirSync, renameSync, rmSync, type Stats } from "node:fs";
import { join, relative } from "node:path";
import { BackendError } from "../../errors.ts";
import { isOpaque, isWhiteout, MOUNT_NAMESPACE, removeTree, ROOTLESS } from "./fsx.ts";
import { overlayOptions } from "./sandbox.ts";
import { newLayerId, type Store } from "./store.ts";

/** A stack deeper than this is flattened when a run commits on top of it. */
export const MAX_STACK_DEPTH = 32;

export function isEmptyDir(dir: string): boolean {
  return readdirSync(dir).length === 0;
}

/** Moves a finished run's upper directory into the store as a new layer; returns its id. */
export function commitUpper(store: Store, upperDir: string): string {
  const id = newLayerId();
  renameSync(upperDir, store.layerPath(id));
  store.addLayer(id, null);
  return id;
}

/**
 * Starts `script` with the read-only merge of `layersTopFirst` mounted at $M, in a private mount namespace (the
 * mount goes away with the process). The mount point directory is removed when the process exits.
 */
export function spawnInMergedView(
  store: Store,
  layersTopFirst: string[],
  script: string,
  args: string[],
  stdout: "pipe" | "ignore",
): Bun.Subprocess<"ignore", "pipe" | "ignore", "pipe"> {
  const mount = join(store.tmpDir, `view-${crypto.randomUUID()}`);
  mkdirSync(mount);
  // overlayfs needs two lower layers when there is no upper one.
  const lowers = layersTopFirst.length === 1 ? [...layersTopFirst, relativeEmpty(store)] : layersTopFirst;
  const proc = Bun.spawn(
    [
      ...MOUNT_NAMESPACE,
      "--",
      "setpriv",
      "--pdeathsig",
      "KILL",
      "--",
      "/bin/sh",
      "-c",
      `mount -t overlay overlay -o "$1" "$2" || exit 125; M=$2; shift 2; ${script}`,
      "sh",
      overlayOptions(store.layersDir, lowers),
      mount,
      ...args,
    ],
    { cwd: store.layersDir, stdio: ["ignore", stdout, "pipe"] },
  );
  void proc.exited.then(() => rmSync(mount, { recursive: true, force: true }));
  return proc;
}

/** Runs `script` in the merged view (see spawnInMergedView) and waits for it. */
export async function withMergedView(
  store: Store,
  layersTopFirst: string[],
  script: string,
  args: string[],
): Promise<{ exitCode: number; stderr: string }> {
  const proc = spawnInMergedView(store, layersTopFirst, script, args, "ignore");
  const [stderr, exitCode] = await Promise.all([new Response(proc.stderr).text(), proc.exited]);
  return { exitCode, stderr };
}

function relativeEmpty(store: Store): string {
  const empty = join(store.tmpDir, "empty");
  mkdirSync(empty, { recursive: true });
  return relative(store.layersDir, empty);
}

/** A new layer filled in a temp directory by `fill`, then stored whole (renamed into place) or not at all. */
async function newLayer(
  store: Store,
  purpose: string,
  fill: (building: string) => Promise<void>,
): Promise<string> {
  const id = newLayerId();
  const building = join(store.tmpDir, `${purpose}-${id}`);
  mkdirSync(building);
  try {
    await fill(building);
    renameSync(building, store.layerPath(id));
    store.addLayer(id, null);
    return id;
  } finally {
    removeTree(building);
  }
}

function flattenFailed(stderr: string): BackendError {
  return new BackendError({ code: "unavailable", detail: `flattening the image failed: ${stderr.trim()}` });
}

/** Copies the merged content of a layer stack into one new layer (no whiteouts needed: nothing lies below it). */
export function squashLayers(store: Store, layersTopFirst: string[]): Promise<string> {
  return newLayer(store, "squash", async (building) => {
    // cp -a keeps modes, owners, hardlinks, symlinks, times and extended attributes (file capabilities).
    const { exitCode, stderr } = await withMergedView(store, layersTopFirst, `exec cp -a "$M/." "$1"`, [
      building,
    ]);
    if (exitCode !== 0) throw flattenFailed(stderr);
  });
}

function lstatOrNull(path: string): Stats | null {
  try {
    return lstatSync(path);
  } catch {
    return null;
  }
}

/**
 * Before a layer is copied over the merge so far: removes what it replaces rather than adds to (anything under a
 * whiteout, an opaque directory or an entry of another type), so that `cp` only ever writes new names or into
 * directories on both sides. It also keeps `cp` from writing through a symlink the merge already holds.
 */
function clearWay(layer: string, merged: string, comps: string[]): void {
  for (const name of readdirSync(join(layer, ...comps))) {
    const target = join(merged, ...comps, name);
    const existing = lstatOrNull(target);
    if (!existing) continue;
    const source = join(layer, ...comps, name);
    const stat = lstatSync(source);
    if (isWhiteout(stat) || !stat.isDirectory() || !existing.isDirectory() || isOpaque(source)) {
      rmSync(target, { recursive: true, force: true });
    } else {
      clearWay(layer, merged, [...comps, name]);
    }
  }
}

/**
 * Merges layers (bottom first) into one that keeps their whiteouts and opaque directories, so it can sit on the
 * same layers below as they did: a chain of commits shrinks to one layer while the image it started from stays
 * shared. Root only (rootless, a layer may hold directories we cannot read from outside: see flattenStack).
 */
export function mergeLayers(store: Store, layersBottomFirst: string[]): Promise<string> {
  return newLayer(store, "merge", async (building) => {
    for (const layer of layersBottomFirst) {
      const source = store.layerPath(layer);
      clearWay(source, building, []);
      // -a keeps modes, owners, times, hardlinks within the layer, device nodes (whiteouts) and xattrs (opaque
      // markers, file capabilities).
      const proc = Bun.spawn(["cp", "-a", "--remove-destination", "--", `${source}/.`, `${building}/`], {
        stdio: ["ignore", "ignore", "pipe"],
      });
      const [stderr, code] = await Promise.all([new Response(proc.stderr).text(), proc.exited]);
      if (code !== 0) throw flattenFailed(stderr);
    }
  });
}

/**
 * A stack (bottom first) grown past MAX_STACK_DEPTH, made short again. The layers an import brought (they have a
 * digest, and other images share them) stay; the commits above them merge into one. When that is not enough (an
 * import with that many layers) or possible (rootless), the whole stack is copied into one layer.
 */
export async function flattenStack(store: Store, layersBottomFirst: string[]): Promise<string[]> {
  let base = 0;
  while (base < layersBottomFirst.length && store.layerDigest(layersBottomFirst[base]!) !== null) base++;
  if (!ROOTLESS && base + 1 <= MAX_STACK_DEPTH / 2 && layersBottomFirst.length - base >= 2) {
    return [...layersBottomFirst.slice(0, base), await mergeLayers(store, layersBottomFirst.slice(base))];
  }
  return [await squashLayers(store, layersBottomFirst.toReversed())];
}
