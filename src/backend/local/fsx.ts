// The few file system calls node:fs lacks and overlay layers need: extended attributes (opaque directories) and
// mknod (whiteouts are character devices 0,0). Called through libc with bun:ffi, which also works in a compiled binary.
import { dlopen, FFIType, ptr } from "bun:ffi";
import type { Stats } from "node:fs";

const S_IFCHR = 0o020000;
export const OPAQUE_XATTR = "trusted.overlay.opaque";

let libc: ReturnType<typeof openLibc> | null = null;

function openLibc() {
  return dlopen("libc.so.6", {
    lsetxattr: {
      args: [FFIType.ptr, FFIType.ptr, FFIType.ptr, FFIType.u64, FFIType.i32],
      returns: FFIType.i32,
    },
    lgetxattr: { args: [FFIType.ptr, FFIType.ptr, FFIType.ptr, FFIType.u64], returns: FFIType.i64 },
    mknod: { args: [FFIType.ptr, FFIType.u32, FFIType.u64], returns: FFIType.i32 },
  }).symbols;
}

function lib(): ReturnType<typeof openLibc> {
  libc ??= openLibc();
  return libc;
}

function cString(value: string): Buffer {
  return Buffer.from(`${value}\0`);
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
