import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { CloudBackend } from "../../../src/backend/cloud/backend.ts";
import { serveContreeApi } from "../../../src/backend/local/rest.ts";
import { connect, textOf, type TestSession } from "../../support/mcp.ts";
import { canRunLocal, localProblem, openFixture, type LocalFixture } from "./helpers.ts";
import { ROOTLESS } from "../../../src/backend/local/fsx.ts";

const needs = `(needs bwrap, overlayfs: ${localProblem ?? (ROOTLESS ? "available, rootless" : "available")})`;

interface RunView {
  status: string;
  exit_code: number | null;
  stdout: string;
  result_image: string | null;
  filesystem_changed: boolean | null;
  timed_out: boolean;
}

// The same MCP tool calls, once straight on the local backend and once through the cloud client talking to the
// local backend's ConTree v1 REST API: both must behave alike.
describe.skipIf(!canRunLocal)(`MCP tools end to end on real sandboxes ${needs}`, () => {
  let fx: LocalFixture;
  let server: ReturnType<typeof serveContreeApi>;
  const sessions: Record<string, TestSession> = {};

  beforeAll(async () => {
    fx = await openFixture();
    server = serveContreeApi(fx.backend, { port: 0, token: "e2e-token" });
    sessions.local = await connect(fx.backend);
    sessions.cloud = await connect(
      new CloudBackend({ url: `http://127.0.0.1:${server.port}`, token: "e2e-token", version: "test" }),
    );
  });

  afterAll(async () => {
    // The local session's app closes the shared backend; close the cloud one first.
    await sessions.cloud?.close();
    await server?.stop(true);
    await sessions.local?.close();
    await fx?.close();
  });

  for (const via of ["local", "cloud"] as const) {
    test(`${via}: run, branch with disposable=false, and inspect the child`, async () => {
      const session = sessions[via]!;
      const first = (await session.call("run", { command: "echo hi; hostname", image: "tag:busybox" }))
        .structuredContent as RunView;
      expect(first).toMatchObject({ status: "SUCCESS", exit_code: 0, stdout: "hi\nlinuxkit\n" });

      const made = (
        await session.call("run", {
          command: `echo ${via} > /root/made.txt`,
          image: "tag:busybox",
          disposable: false,
        })
      ).structuredContent as RunView;
      expect(made.filesystem_changed).toBe(true);
      expect(made.result_image).not.toBe(fx.image);

      const child = (await session.call("run", { command: "cat /root/made.txt", image: made.result_image! }))
        .structuredContent as RunView;
      expect(child.stdout).toBe(`${via}\n`);
      const parent = (await session.call("run", { command: "cat /root/made.txt", image: fx.image }))
        .structuredContent as RunView;
      expect(parent.exit_code).not.toBe(0);

      const same = (
        await session.call("run", { command: "true", image: made.result_image!, disposable: false })
      ).structuredContent as RunView;
      expect(same.result_image).toBe(made.result_image);
      expect(same.filesystem_changed).toBe(false);
    });

    test(`${via}: a timeout is reported, and the server keeps serving`, async () => {
      const session = sessions[via]!;
      const result = await session.call("run", { command: "sleep 60", image: "tag:busybox", timeout: 0.5 });
      const run = result.structuredContent as RunView;
      expect(run.timed_out).toBe(true);
      expect(textOf(result)).toContain("TIMED OUT");
      const after = await session.call("list_images", { tag_prefix: "busybox" });
      expect(after.isError).toBeFalsy();
    });
  }
});
