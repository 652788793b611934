import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { inputFields } from "../../src/guide/reference.ts";
import { GUIDE_SECTIONS } from "../../src/guide/sections.ts";
import { TOOLS } from "../../src/tools/index.ts";
import { startFakeContree, type FakeContree, cloudBackendFor } from "../support/fake-contree.ts";
import { connect, textOf, type TestSession } from "../support/mcp.ts";

let fake: FakeContree;
let session: TestSession;

beforeAll(async () => {
  fake = await startFakeContree();
  session = await connect(cloudBackendFor(fake));
});

afterAll(async () => {
  await session?.close();
  await fake?.close();
});

describe("guide resources", () => {
  test("every section is listed and reads as markdown with the prefix filled in", async () => {
    const { resources } = await session.client.listResources();
    const uris = resources.map((r) => r.uri);
    for (const section of GUIDE_SECTIONS) {
      expect(uris).toContain(`contree://guide/${section}`);
      const { contents } = await session.client.readResource({ uri: `contree://guide/${section}` });
      const content = contents[0] as { text: string; mimeType: string };
      expect(content.mimeType).toBe("text/markdown");
      expect(content.text.length).toBeGreaterThan(500);
      expect(content.text).toMatch(/^# /);
      expect(content.text).not.toContain("{{");
      expect(content.text).toContain("contree_");
    }
  });

  test("the template completes section names", async () => {
    const { resourceTemplates } = await session.client.listResourceTemplates();
    expect(resourceTemplates.map((t) => t.uriTemplate)).toContain("contree://guide/{section}");
    const { completion } = await session.client.complete({
      ref: { type: "ref/resource", uri: "contree://guide/{section}" },
      argument: { name: "section", value: "t" },
    });
    expect(completion.values).toEqual(["tagging"]);
  });

  test("an unknown section is an error naming the valid ones", async () => {
    const error = await session.client.readResource({ uri: "contree://guide/nope" }).catch((e: Error) => e);
    expect(error).toBeInstanceOf(Error);
    expect(String(error)).toContain("Available sections: workflow");
  });
});

describe("get_guide", () => {
  test("returns each section, the same text as the resource", async () => {
    for (const section of GUIDE_SECTIONS) {
      const result = await session.call("get_guide", { section });
      expect(result.isError).toBeFalsy();
      const structured = result.structuredContent as {
        section: string;
        content: string;
        available_sections: string[];
      };
      expect(structured.section).toBe(section);
      expect(structured.available_sections).toEqual([...GUIDE_SECTIONS]);
      const { contents } = await session.client.readResource({ uri: `contree://guide/${section}` });
      expect(structured.content).toBe((contents[0] as { text: string }).text);
      expect(textOf(result)).toBe(structured.content);
    }
  });

  test("an unknown section is an isError result listing the valid ones", async () => {
    const result = await session.call("get_guide", { section: "tutorial" });
    expect(result.isError).toBe(true);
    const text = textOf(result);
    expect(text).toContain("Unknown guide section 'tutorial'");
    for (const section of GUIDE_SECTIONS) expect(text).toContain(section);
  });

  test("the reference section names every tool and every parameter with its default", async () => {
    const { structuredContent } = await session.call("get_guide", { section: "reference" });
    const content = (structuredContent as { content: string }).content;
    for (const tool of TOOLS) {
      expect(content).toContain(`## contree_${tool.name}`);
      for (const field of inputFields(tool)) {
        expect(content).toContain(`| \`${field.name}\` |`);
        if (field.default !== null) expect(content).toContain(`\`${field.default}\``);
      }
    }
    expect(content).toContain("`30`");
  });

  test("a different prefix reaches the guide text", async () => {
    const other = await connect(cloudBackendFor(fake), { tool_prefix: "sbx_" });
    try {
      const result = await other.call("get_guide", { section: "workflow" });
      const content = (result.structuredContent as { content: string }).content;
      expect(content).toContain("sbx_list_images");
      expect(content).not.toContain("contree_list_images");
    } finally {
      await other.close();
    }
  });
});
