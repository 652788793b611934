import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ImportSpec, Operation } from "../../../src/backend/types.ts";
import {
  buildLayer,
  hasDockerRegistry,
  pushImage,
  sha256Digest,
  startTestRegistry,
  type LayerSpec,
  type TestRegistry,
} from "../../support/registry.ts";
import {
  BUSYBOX,
  canRunLocal,
  localProblem,
  openFixture,
  runToEnd,
  stdoutOf,
  type LocalFixture,
} from "./helpers.ts";

const needs = `(needs root, bwrap, overlayfs: ${localProblem ?? "available"})`;
const APPLETS = ["sh", "cat", "ls", "echo", "stat", "readlink", "test", "wc", "id"];

function busyboxLayer(): LayerSpec {
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
const topLayer: LayerSpec = {
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

async function importToEnd(
  fx: LocalFixture,
  spec: Partial<ImportSpec> & { registryUrl: string },
): Promise<Operation> {
  const id = await fx.backend.importImage({ timeoutS: 60, ...spec });
  return fx.backend.settled(id);
}

async function checkImported(fx: LocalFixture, image: string): Promise<void> {
  const op = await runToEnd(
    fx.backend,
    image,
    "test -e /bin/ls && echo ls-present; cat /etc/old/*; stat -c '%n %a %u %g %h' /usr/bin/su /data/owned /data/hard; readlink /data/link; stat -c %a /tmp",
  );
  expect(stdoutOf(op)).toBe(
    "new\n/usr/bin/su 4755 0 0 1\n/data/owned 640 1000 1000 2\n/data/hard 640 1000 1000 2\nowned\n1777\n",
  );
  const bin = (await fx.backend.listDirectory(image, "/bin")).entries.map((e) => e.name);
  expect(bin).not.toContain("ls");
  expect(bin).toContain("cat");
  expect((await fx.backend.listDirectory(image, "/etc/old")).entries.map((e) => e.name)).toEqual(["new"]);
}

/** An OCI layout with a gzip base layer and a zstd top layer. */
async function writeLayout(root: string): Promise<void> {
  const base = await buildLayer(busyboxLayer());
  const top = await buildLayer(topLayer, { gzip: false });
  const zstd = Bun.zstdCompressSync(top.tar);
  const blobs = join(root, "blobs", "sha256");
  mkdirSync(blobs, { recursive: true });
  const put = (data: Uint8Array | string) => {
    const digest = sha256Digest(data);
    writeFileSync(join(blobs, digest.slice(7)), data);
    return digest;
  };
  const config = JSON.stringify({
    architecture: "amd64",
    os: "linux",
    rootfs: { type: "layers", diff_ids: [base.diffId, top.diffId] },
  });
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: {
      mediaType: "application/vnd.oci.image.config.v1+json",
      digest: put(config),
      size: config.length,
    },
    layers: [
      { mediaType: base.mediaType, digest: put(base.blob), size: base.blob.length },
      { mediaType: "application/vnd.oci.image.layer.v1.tar+zstd", digest: put(zstd), size: zstd.length },
    ],
  });
  const manifestDigest = put(manifest);
  writeFileSync(join(root, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  writeFileSync(
    join(root, "index.json"),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: "application/vnd.oci.image.manifest.v1+json",
          digest: manifestDigest,
          size: manifest.length,
          annotations: { "org.opencontainers.image.ref.name": "v1" },
        },
      ],
    }),
  );
}

describe.skipIf(!canRunLocal)(`import from local OCI sources ${needs}`, () => {
  let fx: LocalFixture;
  let dir: string;
  beforeAll(async () => {
    fx = await openFixture();
    dir = mkdtempSync(join(tmpdir(), "contree-oci-"));
  });
  afterAll(async () => {
    await fx?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test("oci-layout:/dir:tag with gzip and zstd layers, whiteouts, opaque dirs, setuid, owners and links", async () => {
    const layout = join(dir, "layout");
    await writeLayout(layout);
    const op = await importToEnd(fx, { registryUrl: `oci-layout:${layout}:v1`, tag: "local/bb" });
    expect(op.error).toBeNull();
    expect(op.status).toBe("SUCCESS");
    expect(op.resultTag).toBe("local/bb");
    await checkImported(fx, op.resultImage!);
    // Importing the same image again finds it; the layers are stored once.
    const layers = fx.backend.store.db.query("SELECT count(*) AS n FROM layers").get() as { n: number };
    const again = await importToEnd(fx, { registryUrl: `oci-layout:${layout}` });
    expect(again.resultImage).toBe(op.resultImage);
    expect(fx.backend.store.db.query("SELECT count(*) AS n FROM layers").get()).toEqual(layers);
  });

  test("oci-archive:/file.tar and a missing tag", async () => {
    const layout = join(dir, "layout2");
    await writeLayout(layout);
    const archive = join(dir, "image.tar");
    expect(Bun.spawnSync(["tar", "-C", layout, "-cf", archive, "."]).exitCode).toBe(0);
    const op = await importToEnd(fx, { registryUrl: `oci-archive:${archive}` });
    expect(op.status).toBe("SUCCESS");
    await checkImported(fx, op.resultImage!);
    const missing = await importToEnd(fx, { registryUrl: `oci-archive:${archive}:nope` });
    expect(missing.status).toBe("FAILED");
    expect(missing.error).toContain("nope");
  });

  test("docker-archive:/file.tar in the legacy docker save format", async () => {
    const root = join(dir, "legacy");
    mkdirSync(join(root, "l1"), { recursive: true });
    mkdirSync(join(root, "l2"));
    writeFileSync(join(root, "l1/layer.tar"), (await buildLayer(busyboxLayer(), { gzip: false })).tar);
    writeFileSync(join(root, "l2/layer.tar"), (await buildLayer(topLayer, { gzip: false })).tar);
    writeFileSync(join(root, "config.json"), JSON.stringify({ os: "linux", architecture: "amd64" }));
    writeFileSync(
      join(root, "manifest.json"),
      JSON.stringify([
        { Config: "config.json", RepoTags: ["bb:legacy"], Layers: ["l1/layer.tar", "l2/layer.tar"] },
      ]),
    );
    const archive = join(dir, "legacy.tar");
    expect(Bun.spawnSync(["tar", "-C", root, "-cf", archive, "."]).exitCode).toBe(0);
    const op = await importToEnd(fx, { registryUrl: `docker-archive:${archive}:bb:legacy` });
    expect(op.error).toBeNull();
    await checkImported(fx, op.resultImage!);
  });
});

describe.skipIf(!canRunLocal || !hasDockerRegistry)(
  `import from a real docker-registry ${needs} (needs /usr/bin/docker-registry)`,
  () => {
    let fx: LocalFixture;
    const registries: TestRegistry[] = [];
    beforeAll(async () => {
      fx = await openFixture();
    });
    afterAll(async () => {
      await fx?.close();
      for (const registry of registries) await registry.close();
    });

    test("anonymous pull of an OCI index picks linux/amd64; re-import is the same image", async () => {
      const registry = await startTestRegistry({ auth: "none" });
      registries.push(registry);
      await pushImage(registry, "test/bb", "multi", [busyboxLayer(), topLayer], {
        otherPlatforms: [
          { platform: { architecture: "arm64", variant: "v8" }, layers: [{ files: { arm: "x" } }] },
        ],
      });
      const op = await importToEnd(fx, { registryUrl: `docker://${registry.host}/test/bb:multi`, tag: "bb" });
      expect(op.error).toBeNull();
      await checkImported(fx, op.resultImage!);
      const again = await importToEnd(fx, { registryUrl: `docker://${registry.host}/test/bb:multi` });
      expect(again.resultImage).toBe(op.resultImage);
    });

    test("Docker v2 manifests behind htpasswd (Basic) auth; wrong credentials fail clearly", async () => {
      const registry = await startTestRegistry({ auth: "htpasswd" });
      registries.push(registry);
      await pushImage(registry, "test/bb", "v2", [busyboxLayer(), topLayer], { format: "docker" });
      const url = `docker://${registry.host}/test/bb:v2`;
      const op = await importToEnd(fx, {
        registryUrl: url,
        credentials: { username: registry.username, password: registry.password },
      });
      expect(op.error).toBeNull();
      await checkImported(fx, op.resultImage!);
      const denied = await importToEnd(fx, { registryUrl: url });
      expect(denied.status).toBe("FAILED");
      expect(denied.error).toMatch(/access denied|credentials/);
    });

    test("Bearer token auth", async () => {
      const registry = await startTestRegistry({ auth: "token" });
      registries.push(registry);
      await pushImage(registry, "test/bb", "tok", [busyboxLayer(), topLayer]);
      const op = await importToEnd(fx, {
        registryUrl: `docker://${registry.host}/test/bb:tok`,
        credentials: { username: registry.username, password: registry.password },
      });
      expect(op.error).toBeNull();
      await checkImported(fx, op.resultImage!);
      const missing = await importToEnd(fx, {
        registryUrl: `docker://${registry.host}/test/nope:tok`,
        credentials: { username: registry.username, password: registry.password },
      });
      expect(missing.status).toBe("FAILED");
    });
  },
);
