// Layers that try to write outside their directory: through a symlink made earlier in the same layer (or already in
// the extraction root), with `..`, with whiteouts and opaque markers under a link, with hard links to host files.
// Each one is refused with an error naming the entry, and a "host" directory beside the extraction root is left
// exactly as it was. A normal layer with links, whiteouts and opaque directories still extracts right.
import { afterEach, describe, expect, test } from "bun:test";
import {
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { packTar, type TarHeader } from "modern-tar";
import { isOpaque, isWhiteout } from "../../../src/backend/local/fsx.ts";
import { extractLayer } from "../../../src/backend/local/oci.ts";
import { sha256Digest, writeOciLayout } from "../../support/registry.ts";
import { canRunLocal, localProblem, openFixture } from "./helpers.ts";

const needs = `(needs the local backend: ${localProblem ?? "available"})`;
const MTIME = new Date("2024-01-01T00:00:00Z");

type Entry = { name: string; type?: TarHeader["type"]; linkname?: string; body?: string; mode?: number };

async function layerTar(entries: Entry[]): Promise<Uint8Array<ArrayBuffer>> {
  return packTar(
    entries.map(({ name, type = "file", linkname, body, mode }) => {
      const bytes = body === undefined ? undefined : new TextEncoder().encode(body);
      const header: TarHeader = {
        name,
        type,
        size: bytes?.length ?? 0,
        mode: mode ?? (type === "directory" ? 0o755 : 0o644),
        mtime: MTIME,
        uid: 0,
        gid: 0,
      };
      if (linkname !== undefined) header.linkname = linkname;
      return { header, body: bytes };
    }),
  );
}

/** Everything under `dir` but `skip`, as lines that change when anything is created, changed or deleted. */
function snapshot(dir: string, skip: string): string[] {
  const lines: string[] = [];
  const visit = (path: string, rel: string) => {
    const stat = lstatSync(path);
    let what = `${rel} mode=${stat.mode.toString(8)} nlink=${stat.nlink} ctime=${stat.ctimeMs} mtime=${stat.mtimeMs}`;
    if (stat.isFile()) what += ` content=${readFileSync(path, "utf8")}`;
    if (stat.isSymbolicLink()) what += ` -> ${readlinkSync(path)}`;
    if (stat.isDirectory()) what += ` opaque=${isOpaque(path)}`;
    lines.push(what);
    if (!stat.isDirectory()) return;
    for (const name of readdirSync(path).toSorted()) {
      if (join(path, name) !== skip) visit(join(path, name), `${rel}/${name}`);
    }
  };
  visit(dir, ".");
  return lines;
}

const made: string[] = [];
afterEach(() => {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/**
 * A fresh "host" (`victim/` with a secret file and a subdirectory) beside an empty extraction root; extracts the
 * layer and checks that nothing but the root changed. Returns the error, if the extraction failed.
 */
async function extract(entries: Entry[], prepare?: (root: string) => void) {
  const base = mkdtempSync(join(tmpdir(), "contree-oci-escape-"));
  made.push(base);
  const victim = join(base, "victim");
  const root = join(base, "root");
  mkdirSync(join(victim, "sub"), { recursive: true, mode: 0o755 });
  writeFileSync(join(victim, "secret"), "keep me\n", { mode: 0o600 });
  mkdirSync(root);
  const layer = join(base, "layer.tar");
  writeFileSync(
    layer,
    await layerTar(entries.map((e) => ({ ...e, linkname: e.linkname?.replace("VICTIM", victim) }))),
  );
  prepare?.(root);
  const before = snapshot(base, root);
  const error = await extractLayer(layer, root, new AbortController().signal).then(
    () => null,
    (e: unknown) => e as Error,
  );
  expect(snapshot(base, root)).toEqual(before);
  return { error, root, victim };
}

const toVictim = (name: string): Entry => ({ name, type: "symlink", linkname: "VICTIM" });

describe.skipIf(!canRunLocal)(`layer extraction stays inside the layer ${needs}`, () => {
  test("a file written through a symlink from the same layer", async () => {
    const { error } = await extract([toVictim("evil"), { name: "evil/pwned", body: "owned" }]);
    expect(error?.message).toMatch(/layer entry 'evil\/pwned' goes through the symlink 'evil'.*refused/);
  });

  test("directories made through a symlink, deep or as an entry", async () => {
    let { error } = await extract([toVictim("a/evil"), { name: "a/evil/sub/deeper/x", body: "owned" }]);
    expect(error?.message).toMatch(/'a\/evil\/sub\/deeper\/x' goes through the symlink 'a\/evil'/);
    ({ error } = await extract([toVictim("evil"), { name: "evil/newdir/", type: "directory", mode: 0o777 }]));
    expect(error?.message).toMatch(/'evil\/newdir\/' goes through the symlink 'evil'/);
    ({ error } = await extract([toVictim("evil"), { name: "evil/fifo", type: "fifo" }]));
    expect(error?.message).toMatch(/'evil\/fifo' goes through the symlink/);
  });

  test("a symlink that replaces a directory of the same layer, then an entry under it", async () => {
    const { error } = await extract([
      { name: "d/", type: "directory" },
      { name: "d/sub/", type: "directory" },
      { name: "d/sub/file", body: "fine" },
      toVictim("d"),
      { name: "d/sub/x", body: "owned" },
    ]);
    expect(error?.message).toMatch(/'d\/sub\/x' goes through the symlink 'd'/);
  });

  test("directory modes applied at the end do not land on a link that replaced the directory", async () => {
    // Legal, so it imports; the victim's modes and times stay (the snapshot checks them).
    const { error, root } = await extract([
      { name: "d/", type: "directory", mode: 0o700 },
      { name: "d/sub/", type: "directory", mode: 0o700 },
      toVictim("d"),
    ]);
    expect(error).toBeNull();
    expect(lstatSync(join(root, "d")).isSymbolicLink()).toBe(true);
  });

  test("a symlink already in the extraction root is not followed", async () => {
    const { error } = await extract([{ name: "pre/x", body: "owned" }], (root) =>
      symlinkSync(join(root, "..", "victim"), join(root, "pre")),
    );
    expect(error?.message).toMatch(/'pre\/x' goes through the symlink 'pre'/);
  });

  test("a whiteout under a symlink does not delete the host file", async () => {
    const { error } = await extract([toVictim("evil"), { name: "evil/.wh.secret", body: "" }]);
    expect(error?.message).toMatch(/'evil\/.wh.secret' goes through the symlink 'evil'/);
  });

  test("an opaque marker under a symlink does not mark the host directory", async () => {
    const { error } = await extract([toVictim("evil"), { name: "evil/sub/.wh..wh..opq", body: "" }]);
    expect(error?.message).toMatch(/'evil\/sub\/.wh..wh..opq' goes through the symlink 'evil'/);
  });

  test("whiteouts of `.`, `..` or nothing", async () => {
    for (const name of [".wh..", ".wh...", "d/.wh..", "d/.wh...", ".wh."]) {
      const { error } = await extract([
        { name: "d/x", body: "x" },
        { name, body: "" },
      ]);
      expect(error?.message).toContain(`layer entry '${name}' whites out its own directory or a parent`);
    }
  });

  test("hard links to a host path, through a symlink, with `..`, or to nothing extracted", async () => {
    let { error, victim } = await extract([{ name: "stolen", type: "link", linkname: "VICTIM/secret" }]);
    // An absolute link name is the layer's root, as for entry names: there is no such file in this layer.
    expect(error?.message).toMatch(
      /'stolen' is a hard link to '\/.*\/victim\/secret', not to a file extracted/,
    );
    expect(lstatSync(join(victim, "secret")).nlink).toBe(1);
    ({ error } = await extract([
      toVictim("evil"),
      { name: "stolen", type: "link", linkname: "evil/secret" },
    ]));
    expect(error?.message).toMatch(/'stolen' goes through the symlink 'evil'/);
    ({ error } = await extract([{ name: "stolen", type: "link", linkname: "../victim/secret" }]));
    expect(error?.message).toMatch(/'stolen' has '\.\.' in '\.\.\/victim\/secret'/);
    ({ error } = await extract([{ name: "stolen", type: "link", linkname: "d/missing" }]));
    expect(error?.message).toMatch(
      /'stolen' is a hard link to 'd\/missing', not to a file extracted before it/,
    );
    ({ error } = await extract([
      { name: "d/", type: "directory" },
      { name: "stolen", type: "link", linkname: "d" },
    ]));
    expect(error?.message).toMatch(/'stolen' is a hard link to 'd', not to a file/);
  });

  test("`..` in entry names is refused; an absolute name stays inside the layer", async () => {
    for (const name of ["../escaped", "a/../../escaped", "./../victim/secret", "a/.."]) {
      const { error } = await extract([{ name, body: "owned" }]);
      expect(error?.message).toContain(`layer entry '${name}' has '..'`);
    }
    const { error, root } = await extract([{ name: "/abs/file", body: "inside" }]);
    expect(error).toBeNull();
    expect(readFileSync(join(root, "abs", "file"), "utf8")).toBe("inside");
  });

  test("a normal layer: links, hard links, whiteouts, opaque directories, replaced entries, modes", async () => {
    const { error, root } = await extract([
      { name: "./usr/", type: "directory" },
      { name: "./usr/lib/", type: "directory" },
      { name: "./usr/lib/libc.so", body: "elf", mode: 0o755 },
      { name: "./lib", type: "symlink", linkname: "usr/lib" },
      { name: "./abs", type: "symlink", linkname: "/etc/passwd" },
      { name: "./dangling", type: "symlink", linkname: "../../nowhere" },
      { name: "./usr/lib/hard", type: "link", linkname: "usr/lib/libc.so" },
      { name: "./usr/lib/hard-to-link", type: "link", linkname: "./abs" },
      { name: "./usr/lib/hard-abs", type: "link", linkname: "/usr/lib/libc.so" },
      { name: "./gone/", type: "directory" },
      { name: "./gone/x", body: "x" },
      { name: "./gone", body: "now a file" },
      { name: "./was-file", body: "file" },
      { name: "./was-file/", type: "directory", mode: 0o700 },
      { name: "./was-file/inner", body: "in" },
      { name: "./etc/.wh.shadow", body: "" },
      { name: "./etc/old/.wh..wh..opq", body: "" },
      { name: "./etc/old/new", body: "new" },
      { name: "./ro/", type: "directory", mode: 0o555 },
      { name: "./ro/file", body: "written before the mode" },
    ]);
    expect(error).toBeNull();
    const at = (rel: string) => join(root, rel);
    expect(readlinkSync(at("lib"))).toBe("usr/lib");
    expect(readlinkSync(at("abs"))).toBe("/etc/passwd");
    expect(readlinkSync(at("dangling"))).toBe("../../nowhere");
    expect(lstatSync(at("usr/lib/hard")).ino).toBe(lstatSync(at("usr/lib/libc.so")).ino);
    expect(lstatSync(at("usr/lib/libc.so")).nlink).toBe(3);
    expect(readlinkSync(at("usr/lib/hard-to-link"))).toBe("/etc/passwd");
    expect(readFileSync(at("gone"), "utf8")).toBe("now a file");
    expect(lstatSync(at("was-file")).mode & 0o7777).toBe(0o700);
    expect(readFileSync(at("was-file/inner"), "utf8")).toBe("in");
    expect(isWhiteout(lstatSync(at("etc/shadow")))).toBe(true);
    expect(isOpaque(at("etc/old"))).toBe(true);
    expect(lstatSync(at("ro")).mode & 0o7777).toBe(0o555);
    expect(readFileSync(at("ro/file"), "utf8")).toBe("written before the mode");
  });
});

describe.skipIf(!canRunLocal)(`importing an escaping layer ${needs}`, () => {
  test("the import fails naming the entry, and stores no layer", async () => {
    const fx = await openFixture();
    try {
      const layout = mkdtempSync(join(tmpdir(), "contree-oci-escape-layout-"));
      made.push(layout);
      const victim = join(layout, "victim");
      mkdirSync(victim);
      const tar = await layerTar(
        [toVictim("evil"), { name: "evil/pwned", body: "owned" }].map((e) => ({
          ...e,
          linkname: e.linkname?.replace("VICTIM", victim),
        })),
      );
      writeOciLayout(layout, [
        { mediaType: "application/vnd.oci.image.layer.v1.tar", blob: tar, diffId: sha256Digest(tar) },
      ]);
      const layersBefore = fx.backend.store.db.query("SELECT count(*) AS n FROM layers").get();
      const op = await fx.backend.settled(
        await fx.backend.importImage({ registryUrl: `oci-layout:${layout}`, timeoutS: 60 }),
      );
      expect(op.status).toBe("FAILED");
      expect(op.error).toContain("layer entry 'evil/pwned' goes through the symlink 'evil'");
      expect(readdirSync(victim)).toEqual([]);
      expect(fx.backend.store.db.query("SELECT count(*) AS n FROM layers").get()).toEqual(layersBefore);
      expect(readdirSync(fx.backend.store.tmpDir).filter((name) => name.startsWith("layer-"))).toEqual([]);
    } finally {
      await fx.close();
    }
  });
});
