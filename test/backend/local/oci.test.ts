import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ImportProgress, ImportSpec, Operation } from "../../../src/backend/types.ts";
import {
  buildLayer,
  hasDockerRegistry,
  pushImage,
  startTestRegistry,
  type TestRegistry,
} from "../../support/registry.ts";
import { canRunLocal, localProblem, openFixture, runToEnd, stdoutOf, type LocalFixture } from "./helpers.ts";
import { MAX_STACK_DEPTH } from "../../../src/backend/local/commit.ts";
import { ROOTLESS } from "../../../src/backend/local/fsx.ts";
import { busyboxLayer, topLayer, writeLayout } from "./layouts.ts";

const needs = `(needs bwrap, overlayfs: ${localProblem ?? (ROOTLESS ? "available, rootless" : "available")})`;

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
    // Rootless, every file belongs to the sandbox's root (see fsx.ts).
    ROOTLESS
      ? "new\n/usr/bin/su 4755 0 0 1\n/data/owned 640 0 0 2\n/data/hard 640 0 0 2\nowned\n1777\n"
      : "new\n/usr/bin/su 4755 0 0 1\n/data/owned 640 1000 1000 2\n/data/hard 640 1000 1000 2\nowned\n1777\n",
  );
  const bin = (await fx.backend.listDirectory(image, "/bin")).entries.map((e) => e.name);
  expect(bin).not.toContain("ls");
  expect(bin).toContain("cat");
  expect((await fx.backend.listDirectory(image, "/etc/old")).entries.map((e) => e.name)).toEqual(["new"]);
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
    const progress: ImportProgress[] = [];
    const op = await importToEnd(fx, {
      registryUrl: `oci-layout:${layout}:v1`,
      tag: "local/bb",
      onProgress: (p) => progress.push(p),
    });
    expect(op.error).toBeNull();
    // Progress: the layer count once the manifest is read, bytes read, and every layer stored at the end.
    expect(progress.length).toBeGreaterThan(2);
    const last = progress.at(-1)!;
    expect(last).toMatchObject({ layersDone: 2, layersTotal: 2, message: "layer 2/2: stored" });
    expect(last.bytesDone).toBe(last.bytesTotal!);
    expect(last.bytesDone).toBeGreaterThan(1000);
    expect(progress.map((p) => p.message)).toContain("layer 1/2: extracting");
    expect(op.progress).toBeUndefined();
    expect(op.status).toBe("SUCCESS");
    expect(op.resultTag).toBe("local/bb");
    await checkImported(fx, op.resultImage!);
    // Importing the same image again finds it; the layers are stored once.
    const layers = fx.backend.store.db.query("SELECT count(*) AS n FROM layers").get() as { n: number };
    const again = await importToEnd(fx, { registryUrl: `oci-layout:${layout}` });
    expect(again.resultImage).toBe(op.resultImage);
    expect(fx.backend.store.db.query("SELECT count(*) AS n FROM layers").get()).toEqual(layers);
  });

  test("busybox-oci.sh (the README's offline image) imports as oci-layout and oci-archive and runs", async () => {
    const layout = join(dir, "busybox");
    const made = Bun.spawnSync(["sh", join(import.meta.dir, "../../../scripts/busybox-oci.sh"), layout], {
      stderr: "pipe",
    });
    expect(made.stderr.toString()).toBe("");
    expect(made.exitCode).toBe(0);
    const op = await importToEnd(fx, { registryUrl: `oci-layout:${layout}:latest`, tag: "busybox:offline" });
    expect(op.error).toBeNull();
    const ran = await runToEnd(
      fx.backend,
      op.resultImage!,
      "echo hi from $(hostname); ls -ld /tmp | cut -c1-10",
    );
    expect(stdoutOf(ran)).toBe("hi from linuxkit\ndrwxrwxrwt\n");
    const archive = join(dir, "busybox.tar");
    expect(Bun.spawnSync(["tar", "-C", layout, "-cf", archive, "."]).exitCode).toBe(0);
    const again = await importToEnd(fx, { registryUrl: `oci-archive:${archive}` });
    // The same manifest: the same image, found again rather than stored twice.
    expect(again.resultImage).toBe(op.resultImage);
  }, 60_000);

  test("a long chain on an imported image keeps deletions and type changes; the import stays shared", async () => {
    const layout = join(dir, "chain");
    await writeLayout(layout);
    const base = await importToEnd(fx, { registryUrl: `oci-layout:${layout}` });
    const baseLayers = fx.backend.store.getImageRow(base.resultImage!)!.layers;
    const steps = [
      "busybox rm /bin/cat",
      "busybox rm -rf /etc/old && busybox mkdir /etc/old && echo again > /etc/old/again",
      "busybox rm /data/link && busybox mkdir /data/link && echo d > /data/link/f",
    ];
    const length = MAX_STACK_DEPTH + 8;
    let image = base.resultImage!;
    for (let i = 0; i < length; i++) {
      const op = await runToEnd(fx.backend, image, `${steps[i] ?? "true"}; echo ${i} >> /root/log`, {
        disposable: false,
      });
      expect(op.status).toBe("SUCCESS");
      image = op.resultImage!;
    }
    const layers = fx.backend.store.getImageRow(image)!.layers;
    expect(layers.length).toBeLessThanOrEqual(MAX_STACK_DEPTH);
    // As root only the commits are merged; rootless the whole stack is copied (see flattenStack).
    if (!ROOTLESS) expect(layers.slice(0, baseLayers.length)).toEqual(baseLayers);
    const op = await runToEnd(
      fx.backend,
      image,
      "test -e /bin/cat || echo no-cat; ls /etc/old; busybox cat /data/link/f /etc/passwd; wc -l < /root/log",
    );
    expect(stdoutOf(op)).toBe(`no-cat\nagain\nd\nroot:x:0:0:root:/root:/bin/sh\n${length}\n`);
    expect((await fx.backend.listDirectory(image, "/etc/old")).entries.map((e) => e.name)).toEqual(["again"]);
    expect((await fx.backend.listDirectory(image, "/bin")).entries.map((e) => e.name)).not.toContain("cat");
  }, 120_000);

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
