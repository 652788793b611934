import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { startFakeContree, cloudBackendFor } from "../support/fake-contree.ts";
import { connect, type TestSession } from "../support/mcp.ts";

type Fake = Awaited<ReturnType<typeof startFakeContree>>;

let fake: Fake;
let session: TestSession;
let image: string;

beforeAll(async () => {
  fake = await startFakeContree({
    execute: () => ({ exitCode: 0, stdout: "done\n", stderr: "", changed: { "/root/made.txt": "x" } }),
  });
  session = await connect(cloudBackendFor(fake));
  image = fake.addImage({
    tag: "common/python/python:3.11-slim",
    files: {
      "/app/my file.py": "print('spaces')\n",
      "/app/sub/x.txt": "x\n",
      "/bin/blob": new Uint8Array([0, 1, 2]),
    },
  }).uuid;
  fake.addImage({ tag: "common/base/alpine:3" });
});

afterAll(async () => {
  await session?.close();
  await fake?.close();
});

async function read(uri: string): Promise<{ text?: string; blob?: string; mimeType?: string }> {
  const result = await session.client.readResource({ uri });
  return result.contents[0] as { text?: string; blob?: string; mimeType?: string };
}

const TAG = encodeURIComponent("tag:common/python/python:3.11-slim");

describe("resource templates", () => {
  test("all five are listed", async () => {
    const { resourceTemplates } = await session.client.listResourceTemplates();
    expect(resourceTemplates.map((t) => t.uriTemplate)).toEqual(
      expect.arrayContaining([
        "contree://image/{image}/read/{+path}",
        "contree://image/{image}/ls/{+path}",
        "contree://image/{image}/lineage",
        "contree://operations/instance/{operation_id}",
        "contree://operations/import/{operation_id}",
      ]),
    );
  });

  test("read: percent-decoded image tag and path", async () => {
    const content = await read(`contree://image/${TAG}/read/app/my%20file.py`);
    expect(content).toMatchObject({ mimeType: "text/plain", text: "print('spaces')\n" });
    const binary = await read(`contree://image/${image}/read/bin/blob`);
    expect(binary).toMatchObject({
      mimeType: "application/octet-stream",
      blob: Buffer.from([0, 1, 2]).toString("base64"),
    });
  });

  test("ls: a directory, and the root through ls/ and ls/.", async () => {
    expect((await read(`contree://image/${image}/ls/app`)).text).toMatch(/my file\.py/);
    for (const uri of [
      `contree://image/${image}/ls/`,
      `contree://image/${image}/ls/.`,
      `contree://image/${TAG}/ls/%2F`,
    ]) {
      const text = (await read(uri)).text ?? "";
      expect(text).toContain("/: ");
      expect(text).toMatch(/app\/$/m);
    }
  });

  test("lineage is JSON, and matches the tool", async () => {
    const run = await session.call("run", { command: "make", image, disposable: false });
    const child = (run.structuredContent as { result_image: string }).result_image;
    const content = await read(`contree://image/${child}/lineage`);
    expect(content.mimeType).toBe("application/json");
    const data = JSON.parse(content.text ?? "{}");
    expect(data).toMatchObject({ image: child, parent: image, command: "make", depth: 1, root: image });
    const tool = await session.call("get_lineage", { image: child });
    expect(tool.structuredContent).toEqual(data);
  });

  test("operations: instance JSON; the wrong kind says which template to use", async () => {
    const run = await session.call("run", { command: "echo", image });
    const id = (run.structuredContent as { operation_id: string }).operation_id;
    const content = await read(`contree://operations/instance/${id}`);
    expect(JSON.parse(content.text ?? "{}")).toMatchObject({
      operation_id: id,
      kind: "instance",
      status: "SUCCESS",
    });
    await expect(read(`contree://operations/import/${id}`)).rejects.toThrow("contree://operations/instance/");
  });

  test("errors come back as protocol errors that say what is wrong", async () => {
    await expect(read(`contree://image/${image}/read/app/none.txt`)).rejects.toThrow("No file /app/none.txt");
    await expect(read(`contree://image/tag%3Ano%2Fsuch/ls/`)).rejects.toThrow("No image is tagged");
  });

  test("{image} completes from tags", async () => {
    const result = await session.client.complete({
      ref: { type: "ref/resource", uri: "contree://image/{image}/ls/{+path}" },
      argument: { name: "image", value: "tag:common/py" },
    });
    expect(result.completion.values).toContain("tag:common/python/python:3.11-slim");
    expect(result.completion.values).not.toContain("tag:common/base/alpine:3");
  });
});
