// Turns a finished run's upper directory into a layer, and flattens deep stacks.
//
// The upper directory is already in the format the layers use (overlayfs wrote its whiteouts and opaque markers),
// so a commit is one rename into layers/: atomic, and as fast for 100 MB as for 1 KB. The row is written after the
// rename; a directory without a row is an interrupted commit and is removed at the next start.
import { mkdirSync, readdirSync, renameSync, rmSync } from "node:fs";
import { join, relative } from "node:path";
import { BackendError } from "../../errors.ts";
import { MOUNT_NAMESPACE, removeTree } from "./fsx.ts";
import { overlayOptions } from "./sandbox.ts";
import { newLayerId, type Store } from "./store.ts";

/** A stack deeper than this is flattened into one layer when a run commits on top of it. */
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

/** Copies the merged content of a layer stack into one new layer (no whiteouts needed: nothing lies below it). */
export async function squashLayers(store: Store, layersTopFirst: string[]): Promise<string> {
  const id = newLayerId();
  const building = join(store.tmpDir, `squash-${id}`);
  mkdirSync(building);
  try {
    // cp -a keeps modes, owners, hardlinks, symlinks, times and extended attributes (file capabilities).
    const { exitCode, stderr } = await withMergedView(store, layersTopFirst, `exec cp -a "$M/." "$1"`, [
      building,
    ]);
    if (exitCode !== 0) {
      throw new BackendError({
        code: "unavailable",
        detail: `flattening the image failed: ${stderr.trim()}`,
      });
    }
    renameSync(building, store.layerPath(id));
    store.addLayer(id, null);
    return id;
  } finally {
    removeTree(building);
  }
}
