// The few file system calls node:fs lacks and overlay layers need: extended attributes (opaque directories) and
// mknod (whiteouts are character devices 0,0). Called through libc with bun:ffi, which also works in a compiled binary.
//
// Also the two ways the store works. As root, layers keep every owner, and overlayfs's attributes are trusted.*.
// Without root (rootless), overlayfs is mounted in a user namespace that maps only our own uid to root. It keeps its
// attributes under user.* (mount option userxattr), and every file belongs to us, which the sandbox sees as root.
// Image owners other than root are not kept then, and without cgroups a run gets a process limit (RLIMIT_NPROC) but
// no memory limit. Whiteouts need no privilege (Linux 5.8+).
import { dlopen, FFIType, ptr, read } from "bun:ffi";
import { lchownSync, readFileSync, rmSync, type Stats } from "node:fs";
import { constants } from "node:os";

const S_IFCHR = 0o020000;

/** Not root: sandboxes and mounts run in a user namespace of our own (see above). */
export const ROOTLESS = process.getuid?.() !== 0;
export const OPAQUE_XATTR = ROOTLESS ? "user.overlay.opaque" : "trusted.overlay.opaque";
/** The xattr prefixes overlayfs reads in either mode; an image must not bring its own. */
export const OVERLAY_XATTR_PREFIXES = ["trusted.overlay.", "user.overlay."];

/** `unshare` arguments for a private mount namespace in which overlayfs can be mounted. */
export const MOUNT_NAMESPACE = ROOTLESS
  ? ["unshare", "--user", "--map-root-user", "--mount"]
  : ["unshare", "--mount", "--propagation", "private"];

/** Sets the owner of a file in a layer; rootless, every file stays ours (the sandbox's root). */
export function setOwner(path: string, uid: number, gid: number): void {
  if (!ROOTLESS) lchownSync(path, uid, gid);
}

/** Owner ids as the sandbox sees them: rootless, our own uid and gid are root. */
export function imageUid(uid: number): number {
  return ROOTLESS && uid === process.getuid?.() ? 0 : uid;
}

export function imageGid(gid: number): number {
  return ROOTLESS && gid === process.getgid?.() ? 0 : gid;
}

/**
 * Removes a work directory. A rootless sandbox may leave directories we cannot enter from outside (mode 000, or
 * no write bit); inside our user namespace we are their root, so the removal is retried there.
 */
export function removeTree(path: string): void {
  // A run's overlay that a crash left mounted: removing through it would only write whiteouts, and the mount point
  // itself could not be removed.
  if (!ROOTLESS) {
    for (const point of mountsUnder(path)) {
      try {
        unmount(point);
      } catch {
        // already gone
      }
    }
  }
  try {
    rmSync(path, { recursive: true, force: true });
    return;
  } catch (error) {
    if (!ROOTLESS) throw error;
  }
  const proc = Bun.spawnSync(["unshare", "--user", "--map-root-user", "rm", "-rf", "--", path], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  if (proc.exitCode !== 0) throw new Error(`could not remove ${path}: ${proc.stderr.toString().trim()}`);
}

let libc: ReturnType<typeof openLibc> | null = null;

function openLibc() {
  return dlopen("libc.so.6", {
    lsetxattr: {
      args: [FFIType.ptr, FFIType.ptr, FFIType.ptr, FFIType.u64, FFIType.i32],
      returns: FFIType.i32,
    },
    lgetxattr: { args: [FFIType.ptr, FFIType.ptr, FFIType.ptr, FFIType.u64], returns: FFIType.i64 },
    mknod: { args: [FFIType.ptr, FFIType.u32, FFIType.u64], returns: FFIType.i32 },
    mount: {
      args: [FFIType.ptr, FFIType.ptr, FFIType.ptr, FFIType.u64, FFIType.ptr],
      returns: FFIType.i32,
    },
    umount2: { args: [FFIType.ptr, FFIType.i32], returns: FFIType.i32 },
    __errno_location: { args: [], returns: FFIType.ptr },
  }).symbols;
}

function lib(): ReturnType<typeof openLibc> {
  libc ??= openLibc();
  return libc;
}

function cString(value: string): Buffer {
  return Buffer.from(`${value}\0`);
}

/** The name of the last libc error (ENOENT, EPERM, ...), read right after a failed call. */
function lastError(): string {
  const errno = read.i32(lib().__errno_location()!, 0);
  const name = Object.entries(constants.errno).find(([, value]) => value === errno)?.[0];
  return name ?? `errno ${errno}`;
}

const MNT_DETACH = 2;

/**
 * Mounts an overlay at `target` in our own mount namespace (root only). A run's mount costs one system call this
 * way instead of three processes (unshare, sh, mount); it must be unmounted when the run ends, and mounts a crash
 * left behind are unmounted by removeTree.
 */
export function mountOverlay(target: string, options: string): void {
  const rc = lib().mount(
    ptr(cString("overlay")),
    ptr(cString(target)),
    ptr(cString("overlay")),
    0,
    ptr(cString(options)),
  );
  if (rc !== 0) throw new Error(`mounting the image's layers failed (${lastError()})`);
}

/** Detaches a mount (it goes away once nothing uses it). */
export function unmount(target: string): void {
  if (lib().umount2(ptr(cString(target)), MNT_DETACH) !== 0) {
    throw new Error(`unmounting ${target} failed (${lastError()})`);
  }
}

/** Mount points at or below `dir` in our mount namespace, deepest first. */
function mountsUnder(dir: string): string[] {
  let table = "";
  try {
    table = readFileSync("/proc/self/mountinfo", "utf8");
  } catch {
    return [];
  }
  const found: string[] = [];
  for (const line of table.split("\n")) {
    // Field 5 is the mount point, with space, tab, newline and backslash escaped as octal.
    const field = line.split(" ")[4];
    if (!field) continue;
    const point = field.replace(/\\([0-7]{3})/g, (_, octal: string) =>
      String.fromCharCode(Number.parseInt(octal, 8)),
    );
    if (point === dir || point.startsWith(`${dir}/`)) found.push(point);
  }
  return found.toSorted((a, b) => b.length - a.length);
}

/** Sets an extended attribute on `path` itself (not a symlink's target). */
export function setXattr(path: string, name: string, value: Uint8Array): void {
  const rc = lib().lsetxattr(ptr(cString(path)), ptr(cString(name)), ptr(value), value.length, 0);
  if (rc !== 0) throw new Error(`setxattr ${name} on ${path} failed`);
}

/** mknod(2): `mode` carries the file type bits (S_IFCHR, S_IFBLK, S_IFIFO). */
export function makeNode(path: string, mode: number, major: number, minor: number): void {
  const dev = (BigInt(major & 0xfff) << 8n) | BigInt(minor & 0xff) | (BigInt(minor & ~0xff) << 12n);
  const rc = lib().mknod(ptr(cString(path)), mode, dev);
  if (rc !== 0) throw new Error(`mknod ${path} failed`);
}

/** Marks a directory of a layer as opaque: lower layers' entries below it are hidden. */
export function setOpaque(dir: string): void {
  setXattr(dir, OPAQUE_XATTR, Buffer.from("y"));
}

export function isOpaque(dir: string): boolean {
  const out = Buffer.alloc(8);
  const n = Number(lib().lgetxattr(ptr(cString(dir)), ptr(cString(OPAQUE_XATTR)), ptr(out), out.length));
  return n === 1 && out[0] === 0x79; // "y"
}

/** Creates an overlay whiteout: a character device 0,0 that hides `path` in the layers below. */
export function makeWhiteout(path: string): void {
  const rc = lib().mknod(ptr(cString(path)), S_IFCHR, 0);
  if (rc !== 0) throw new Error(`mknod whiteout ${path} failed`);
}

export function isWhiteout(stat: Stats): boolean {
  return stat.isCharacterDevice() && stat.rdev === 0;
}
