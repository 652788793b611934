import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { connect, textOf, type TestSession } from "../support/mcp.ts";
import { canRunLocal, localProblem, openFixture, type LocalFixture } from "../backend/local/helpers.ts";

// A run that fails for lack of network must say so in the result itself: the model sees only the result, and a
// resolver error otherwise reads like a typo in a host name.
describe.skipIf(!canRunLocal)(
  `run notes on the local backend (needs ${localProblem ?? "bwrap, overlayfs"})`,
  () => {
    let fx: LocalFixture;
    let session: TestSession;

    beforeAll(async () => {
      fx = await openFixture();
      session = await connect(fx.backend);
    });

    afterAll(async () => {
      await session?.close();
      await fx?.close();
    });

    test("a command that needed the network gets a note naming --local-network host", async () => {
      const result = await session.call("run", {
        command: "wget -q -O- http://registry.example.invalid/ 2>&1; exit 1",
        image: "tag:busybox",
      });
      const view = result.structuredContent as { exit_code: number; notes: string[] };
      expect(view.exit_code).toBe(1);
      expect(view.notes.join(" ")).toContain("--local-network host");
      expect(textOf(result)).toContain("note: The sandbox has no network");
    });

    test("a command that did not need it gets no note", async () => {
      const result = await session.call("run", { command: "echo fine", image: "tag:busybox" });
      expect((result.structuredContent as { notes: string[] }).notes).toEqual([]);
    });
  },
);
