import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startFakeContree, cloudBackendFor } from "../support/fake-contree.ts";
import { connect, textOf, type TestSession } from "../support/mcp.ts";
import { canRunLocal, localProblem, openFixture, type LocalFixture } from "../backend/local/helpers.ts";

const script = join(import.meta.dir, "../../scripts/busybox-oci.sh");
const dir = mkdtempSync(join(tmpdir(), "contree-import-local-"));
const layout = join(dir, "busybox");

afterAll(() => rmSync(dir, { recursive: true, force: true }));

// The README's offline path: an OCI layout made by scripts/busybox-oci.sh, imported through the MCP tool.
describe.skipIf(!canRunLocal)(
  `import_image of a local source (needs ${localProblem ?? "bwrap, overlayfs"})`,
  () => {
    let fx: LocalFixture;
    let session: TestSession;

    beforeAll(async () => {
      const made = Bun.spawnSync(["sh", script, layout], { stderr: "pipe" });
      if (made.exitCode !== 0) throw new Error(made.stderr.toString());
      fx = await openFixture();
      session = await connect(fx.backend);
    });

    afterAll(async () => {
      await session?.close();
      await fx?.close();
    });

    test("oci-layout: needs no credentials or consent, and the image runs", async () => {
      const imported = await session.call("import_image", {
        registry_url: `oci-layout:${layout}`,
        tag: "offline",
      });
      expect(imported.isError).toBeFalsy();
      expect(imported.structuredContent).toMatchObject({ status: "SUCCESS", result_tag: "offline" });
      const ran = await session.call("run", { image: "tag:offline", command: "echo offline works" });
      expect(ran.structuredContent).toMatchObject({ exit_code: 0, stdout: "offline works\n" });
    });

    test("a missing layout is a clear error", async () => {
      const result = await session.call("import_image", { registry_url: `oci-layout:${dir}/nothing-here` });
      expect(textOf(result)).toContain("nothing-here");
    });
  },
);

describe("import_image of a local source on the cloud backend", () => {
  test("is refused with what to do instead", async () => {
    const fake = await startFakeContree();
    const session = await connect(cloudBackendFor(fake));
    try {
      const result = await session.call("import_image", { registry_url: "oci-archive:/tmp/image.tar" });
      expect(result.isError).toBe(true);
      expect(textOf(result)).toContain("only the local backend");
      expect(fake.requests.filter((r) => r.path.includes("/images/import"))).toEqual([]);
    } finally {
      await session.close();
      await fake.close();
    }
  });
});
