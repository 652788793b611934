import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Lineage } from "../../src/tools/get-lineage.ts";
import { startFakeContree, cloudBackendFor } from "../support/fake-contree.ts";
import { connect, textOf, type TestSession } from "../support/mcp.ts";

type Fake = Awaited<ReturnType<typeof startFakeContree>>;

let fake: Fake;
let session: TestSession;
let base: string;

beforeAll(async () => {
  fake = await startFakeContree({
    execute: (meta) => ({
      exitCode: 0,
      stdout: "",
      stderr: "",
      changed: { "/root/step.txt": String(meta.command) },
    }),
  });
  session = await connect(cloudBackendFor(fake));
  base = fake.addImage({ tag: "common/base/alpine:3" }).uuid;
});

afterAll(async () => {
  await session?.close();
  await fake?.close();
});

async function step(image: string, command: string): Promise<string> {
  const result = await session.call("run", { command, image, disposable: false });
  expect(result.isError, textOf(result)).toBeFalsy();
  const made = (result.structuredContent as { result_image: string | null }).result_image;
  expect(made).toBeTruthy();
  return made!;
}

const lineage = (result: { structuredContent?: unknown }) => result.structuredContent as Lineage;

describe("get_lineage", () => {
  test("parent, ancestors to the root, depth, direct children and what made each", async () => {
    const first = await step(base, "apk add python3");
    const second = await step(first, "pip install requests");
    const sibling = await step(base, "apk add curl");
    await session.call("set_tag", { image_uuid: second, tag: "work/app:1" });

    const deep = lineage(await session.call("get_lineage", { image: "tag:work/app:1" }));
    expect(deep).toMatchObject({
      image: second,
      known: true,
      parent: first,
      command: "pip install requests",
      depth: 2,
      root: base,
      children: [],
    });
    expect(deep.ancestors.map((a) => [a.uuid, a.command, a.known])).toEqual([
      [first, "apk add python3", true],
      [base, null, false],
    ]);
    expect(deep.operation_id).toBeTruthy();

    const top = await session.call("get_lineage", { image: base });
    expect(lineage(top)).toMatchObject({ image: base, known: false, parent: null, depth: 0, root: base });
    expect(
      lineage(top)
        .children.map((c) => c.uuid)
        .toSorted(),
    ).toEqual([first, sibling].toSorted());
    expect(textOf(top)).toContain("apk add curl");
  });

  test("an operation started elsewhere is recorded from what the backend reports once it is seen", async () => {
    const started = await fetch(`${fake.url}/v1/instances`, {
      method: "POST",
      headers: { Authorization: `Bearer ${fake.token}`, "Content-Type": "application/json" },
      body: JSON.stringify({ image: base, command: "make elsewhere", disposable: false }),
    });
    const { uuid: id } = (await started.json()) as { uuid: string };
    const waited = await session.call("wait_operations", { operation_ids: [id] });
    expect(waited.isError, textOf(waited)).toBeFalsy();
    const made = fake.state.operations.get(id)?.resultImage;
    expect(made).toBeTruthy();
    expect(lineage(await session.call("get_lineage", { image: made! }))).toMatchObject({
      image: made,
      known: true,
      parent: base,
      command: "make elsewhere",
      operation_id: id,
      depth: 1,
    });
  });

  test("an unknown image is a clear isError", async () => {
    const result = await session.call("get_lineage", { image: "00000000-0000-0000-0000-000000000000" });
    expect(result.isError).toBe(true);
    expect(textOf(result)).toContain("No image");
  });
});
