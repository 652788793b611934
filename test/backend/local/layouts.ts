// Test images as OCI layouts on disk: a busybox base layer (gzip) and a top layer (zstd) with a whiteout, an opaque
// directory, setuid, owners, a symlink and a hardlink.
import { readFileSync } from "node:fs";
import { buildLayer, writeOciLayout, type LayerSpec } from "../../support/registry.ts";
import { BUSYBOX } from "./helpers.ts";

export const APPLETS = ["sh", "cat", "ls", "echo", "stat", "readlink", "test", "wc", "id"];

export function busyboxLayer(): LayerSpec {
  const files: LayerSpec["files"] = {
    "bin/": { type: "directory" },
    "bin/busybox": { content: new Uint8Array(readFileSync(BUSYBOX)), mode: 0o755 },
    "etc/passwd": "root:x:0:0:root:/root:/bin/sh\n",
    "etc/old/x": "old\n",
    "root/": { type: "directory", mode: 0o700 },
    "tmp/": { type: "directory", mode: 0o1777 },
  };
  for (const applet of APPLETS) files[`bin/${applet}`] = { type: "symlink", linkname: "busybox" };
  return { files };
}

/** Whiteout, opaque directory, setuid, owners, symlink and hardlink on top of the busybox layer. */
export const topLayer: LayerSpec = {
  files: {
    "bin/.wh.ls": "",
    "etc/old/.wh..wh..opq": "",
    "etc/old/new": "new\n",
    "usr/bin/su": { content: "#!/bin/sh\n", mode: 0o4755 },
    "data/owned": { content: "mine\n", uid: 1000, gid: 1000, mode: 0o640 },
    "data/link": { type: "symlink", linkname: "owned" },
    "data/hard": { type: "link", linkname: "data/owned" },
  },
};

/** An OCI layout with a gzip base layer and a zstd top layer. */
export async function writeLayout(root: string): Promise<void> {
  const base = await buildLayer(busyboxLayer());
  const top = await buildLayer(topLayer, { gzip: false });
  const zstd = Bun.zstdCompressSync(top.tar);
  writeOciLayout(
    root,
    [base, { mediaType: "application/vnd.oci.image.layer.v1.tar+zstd", blob: zstd, diffId: top.diffId }],
    "v1",
  );
}
