import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import * as z from "zod";
import { unavailableBackend } from "../../src/backend/unavailable.ts";
import { TOOLS } from "../../src/tools/index.ts";
import { connect, type TestSession } from "../support/mcp.ts";

// What the model sees of each tool. A change here changes every agent's behaviour: review the snapshot diff.
describe("tool schemas", () => {
  for (const tool of TOOLS) {
    test(`${tool.name} input and output schema`, () => {
      expect({
        input: z.toJSONSchema(tool.input, { io: "input" }),
        output: z.toJSONSchema(tool.output, { io: "output" }),
        annotations: tool.annotations,
      }).toMatchSnapshot();
    });
  }
});

describe("tools/list as a client sees it", () => {
  let session: TestSession;
  beforeAll(async () => {
    session = await connect(unavailableBackend("local", "not needed for listing"));
  });
  afterAll(() => session.close());

  test("every tool has a prefixed name, title, annotations, an output schema and a short description", async () => {
    const { tools } = await session.client.listTools();
    expect(tools.map((t) => t.name).toSorted()).toEqual(TOOLS.map((t) => `contree_${t.name}`).toSorted());
    for (const tool of tools) {
      expect(tool.name).toMatch(/^[a-z0-9_]{1,40}$/);
      expect(tool.title).toBeTruthy();
      expect(tool.annotations).toBeDefined();
      expect(tool.outputSchema?.type).toBe("object");
      expect(tool.description).not.toContain("{{p}}");
      expect(new TextEncoder().encode(tool.description).length).toBeLessThan(2048);
      for (const [name, schema] of Object.entries(tool.inputSchema.properties ?? {})) {
        expect(
          (schema as { description?: string }).description,
          `${tool.name}.${name} needs a description`,
        ).toBeTruthy();
      }
    }
  });

  test("schemas name other tools with the configured prefix", async () => {
    const listed = JSON.stringify((await session.client.listTools()).tools);
    expect(listed).not.toContain("{{p}}");
    expect(listed).toContain("File UUID from contree_upload");
    const other = await connect(unavailableBackend("local", "not needed"), { tool_prefix: "sbx_" });
    try {
      const { tools } = await other.client.listTools();
      const run = tools.find((tool) => tool.name === "sbx_run")!;
      expect(JSON.stringify(run.inputSchema)).toContain("collect with sbx_wait_operations");
      expect(JSON.stringify(tools)).not.toContain("contree_");
    } finally {
      await other.close();
    }
  });

  test("instructions name tools with the configured prefix and stay under 2 KB", () => {
    const instructions = session.client.getInstructions() ?? "";
    expect(instructions).toContain("contree_run");
    expect(instructions).not.toContain("{{p}}");
    expect(new TextEncoder().encode(instructions).length).toBeLessThan(2048);
  });

  test("a backend that cannot work answers every call with its reason, and the server keeps serving", async () => {
    const result = await session.call("list_images", {});
    expect(result.isError).toBe(true);
    expect(JSON.stringify(result.content)).toContain("not needed for listing");
    const again = await session.client.listTools();
    expect(again.tools.length).toBe(TOOLS.length);
  });

  test("bad arguments come back as isError results", async () => {
    const result = await session.call("run", { command: "true", image: "tag:x", timeout: 0 });
    expect(result.isError).toBe(true);
    expect(JSON.stringify(result.content)).toMatch(/timeout/);
  });
});

test("a different prefix renames every tool", async () => {
  const session = await connect(unavailableBackend("local", "x"), { tool_prefix: "sbx_" });
  const { tools } = await session.client.listTools();
  expect(tools.every((t) => t.name.startsWith("sbx_"))).toBe(true);
  expect(session.client.getInstructions()).toContain("sbx_run");
  await session.close();
});
