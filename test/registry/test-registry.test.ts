// The registry helpers are shared with the OCI import tests, so their output is checked here against the registry.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { unpackTar } from "modern-tar";
import { RegistryClient } from "../../src/registry/auth.ts";
import { parseImageReference } from "../../src/registry/reference.ts";
import {
  buildLayer,
  hasDockerRegistry,
  MEDIA_TYPES,
  pushImage,
  sha256Digest,
  startTestRegistry,
  type TestRegistry,
} from "../support/registry.ts";

const ACCEPT = [
  MEDIA_TYPES.oci.index,
  MEDIA_TYPES.oci.manifest,
  MEDIA_TYPES.docker.index,
  MEDIA_TYPES.docker.manifest,
].join(", ");

describe("buildLayer", () => {
  test("writes files, directories, symlinks, hardlinks and special modes; equal specs give equal digests", async () => {
    const spec = {
      files: {
        "bin/": { type: "directory" as const },
        "bin/tool": { content: "#!/bin/sh\n", mode: 0o4755 },
        "bin/link": { type: "symlink" as const, linkname: "tool" },
        "bin/hard": { type: "link" as const, linkname: "bin/tool" },
        "etc/.wh..wh..opq": "",
        "etc/conf": new TextEncoder().encode("k=v\n"),
      },
    };
    const layer = await buildLayer(spec);
    expect((await buildLayer(spec)).digest).toBe(layer.digest);
    expect(layer.digest).toBe(sha256Digest(layer.blob));
    expect(layer.diffId).toBe(sha256Digest(layer.tar));
    expect(layer.mediaType).toBe(MEDIA_TYPES.oci.layerGzip);
    const entries = await unpackTar(Bun.gunzipSync(layer.blob));
    const byName = Object.fromEntries(entries.map((e) => [e.header.name, e]));
    expect(Object.keys(byName)).toEqual([
      "bin/",
      "bin/tool",
      "bin/link",
      "bin/hard",
      "etc/.wh..wh..opq",
      "etc/conf",
    ]);
    expect(byName["bin/tool"]!.header.mode).toBe(0o4755);
    expect(byName["bin/link"]!.header).toMatchObject({ type: "symlink", linkname: "tool" });
    expect(byName["bin/hard"]!.header).toMatchObject({ type: "link", linkname: "bin/tool" });
    expect(new TextDecoder().decode(byName["etc/conf"]!.data)).toBe("k=v\n");

    const plain = await buildLayer(spec, { format: "docker", gzip: false });
    expect(plain.blob).toEqual(plain.tar);
    expect(plain.mediaType).toBe(MEDIA_TYPES.docker.layerTar);
  });
});

describe.skipIf(!hasDockerRegistry)("pushImage (needs /usr/bin/docker-registry)", () => {
  let registry: TestRegistry;
  beforeAll(async () => {
    registry = await startTestRegistry();
  });
  afterAll(async () => {
    await registry?.close();
  });

  async function get(path: string): Promise<Response> {
    const client = new RegistryClient(parseImageReference(`${registry.host}/x`));
    const response = await client.fetch(path, { headers: { accept: ACCEPT } });
    expect(response.status).toBe(200);
    return response;
  }

  test("an OCI image: manifest, config and layers are where the manifest says", async () => {
    const image = await pushImage(
      registry,
      "probe/oci",
      "v1",
      [{ files: { a: "1" } }, { files: { b: "2" } }],
      {
        config: { Cmd: ["/bin/sh"], WorkingDir: "/app" },
      },
    );
    expect(image.reference).toBe(`${registry.host}/probe/oci:v1`);
    const response = await get("/v2/probe/oci/manifests/v1");
    expect(response.headers.get("content-type")).toBe(MEDIA_TYPES.oci.manifest);
    const manifest = (await response.json()) as {
      config: { digest: string; mediaType: string };
      layers: { digest: string; mediaType: string; size: number }[];
    };
    expect(manifest.config.mediaType).toBe(MEDIA_TYPES.oci.config);
    expect(manifest.layers.map((l) => l.digest)).toEqual(image.image.layers.map((l) => l.digest));
    const config = (await (await get(`/v2/probe/oci/blobs/${manifest.config.digest}`)).json()) as {
      architecture: string;
      os: string;
      config: { Cmd: string[]; WorkingDir: string; Env: string[] };
      rootfs: { diff_ids: string[] };
    };
    expect(config).toMatchObject({
      architecture: "amd64",
      os: "linux",
      config: { Cmd: ["/bin/sh"], WorkingDir: "/app" },
    });
    expect(config.config.Env[0]).toStartWith("PATH=");
    expect(config.rootfs.diff_ids).toEqual(image.image.layers.map((l) => l.diffId));
    for (const layer of manifest.layers) {
      const bytes = new Uint8Array(await (await get(`/v2/probe/oci/blobs/${layer.digest}`)).arrayBuffer());
      expect(sha256Digest(bytes)).toBe(layer.digest);
      expect(bytes.length).toBe(layer.size);
    }
  });

  test("an OCI index with two platforms, and a Docker manifest list", async () => {
    for (const format of ["oci", "docker"] as const) {
      const image = await pushImage(
        registry,
        `probe/multi-${format}`,
        "latest",
        [{ files: { arch: "amd64" } }],
        {
          format,
          otherPlatforms: [
            { platform: { architecture: "arm64", variant: "v8" }, layers: [{ files: { arch: "arm64" } }] },
          ],
        },
      );
      expect(image.mediaType).toBe(MEDIA_TYPES[format].index);
      const response = await get(`/v2/probe/multi-${format}/manifests/latest`);
      expect(response.headers.get("content-type")).toBe(MEDIA_TYPES[format].index);
      const body = await response.text();
      expect(sha256Digest(body)).toBe(image.digest);
      const index = JSON.parse(body) as {
        manifests: { digest: string; mediaType: string; size: number; platform: Record<string, string> }[];
      };
      expect(index.manifests.map((m) => m.platform)).toEqual([
        { os: "linux", architecture: "amd64" },
        { os: "linux", architecture: "arm64", variant: "v8" },
      ]);
      for (const [i, entry] of index.manifests.entries()) {
        expect(entry.mediaType).toBe(MEDIA_TYPES[format].manifest);
        const child = await (await get(`/v2/probe/multi-${format}/manifests/${entry.digest}`)).text();
        expect(sha256Digest(child)).toBe(entry.digest);
        expect(child.length).toBe(entry.size);
        expect(entry.digest).toBe(image.images[i]!.digest);
      }
    }
  });
});
