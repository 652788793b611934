// Everything the model or a person reads about the tools must match the registry: tool names, parameters, result
// fields and resource URIs. The Python server's docs drifted from its code in a dozen places; these checks stop that.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { OPTIONS } from "../../src/config.ts";
import { schemaWords } from "../../src/guide/reference.ts";
import { GUIDE_SECTIONS } from "../../src/guide/sections.ts";
import { TOOLS } from "../../src/tools/index.ts";
import { startFakeContree, type FakeContree, cloudBackendFor } from "../support/fake-contree.ts";
import { connect, type TestSession } from "../support/mcp.ts";

const ROOT = join(import.meta.dir, "..", "..");
const TOOL_NAMES = new Set(TOOLS.map((tool) => tool.name));
const PARAMS = new Map(TOOLS.map((tool) => [tool.name, new Set(Object.keys(tool.input.shape))]));
const ALL_PARAMS = new Set(TOOLS.flatMap((tool) => Object.keys(tool.input.shape)));
/** Parameter and result field names at any depth, enum values, tool names and config keys. */
const KNOWN_WORDS = new Set<string>([
  ...TOOL_NAMES,
  ...TOOLS.flatMap((tool) => [...schemaWords(tool.input, "input"), ...schemaWords(tool.output, "output")]),
  ...Object.keys(OPTIONS),
  // Not ours, but written in backticks: Codex's config keys and a directory worth excluding from rsync.
  "mcp_servers",
  "tool_timeout_sec",
  "node_modules",
]);

interface Text {
  name: string;
  text: string;
}

function files(dir: string, ext: string): Text[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, encoding: "utf8" })
    .filter((file) => file.endsWith(ext))
    .map((file) => ({ name: relative(ROOT, join(dir, file)), text: readFileSync(join(dir, file), "utf8") }));
}

function rootFile(name: string): Text[] {
  const path = join(ROOT, name);
  return existsSync(path) ? [{ name, text: readFileSync(path, "utf8") }] : [];
}

/** What the model reads (with `{{p}}`) and what people read (with the default `contree_`). */
function writtenTexts(): Text[] {
  return [
    ...rootFile("src/server/instructions.md"),
    ...files(join(ROOT, "src", "guide"), ".md"),
    ...files(join(ROOT, "src", "prompts"), ".md"),
    ...files(join(ROOT, "src", "tools"), ".md"),
    ...files(join(ROOT, "docs"), ".md"),
    ...rootFile("README.md"),
    ...rootFile("SECURITY.md"),
    ...rootFile("llm.txt"),
  ];
}

const TOOL_REF = /(?:\{\{p\}\}|\bcontree_)([a-z][a-z0-9_]*)/g;

/** The keyword names of a call's arguments: identifiers before `=` outside strings, brackets and placeholders. */
function keywordArguments(text: string, open: number): string[] {
  const names: string[] = [];
  let depth = 0;
  let quote: string | null = null;
  let token = "";
  for (let i = open + 1; i < text.length; i++) {
    const c = text[i]!;
    if (quote) {
      if (c === "\\") i++;
      else if (c === quote) quote = null;
      continue;
    }
    if (c === '"' || c === "'") {
      quote = c;
    } else if ("([{<".includes(c)) {
      depth++;
    } else if (")]}>".includes(c)) {
      if (depth === 0) break;
      depth--;
    } else if (c === "=" && depth === 0 && text[i + 1] !== "=" && /^[a-z_][a-z0-9_]*$/.test(token)) {
      names.push(token);
    }
    token = /[a-z0-9_]/i.test(c) ? (/[a-z0-9_]/i.test(text[i - 1] ?? "") ? token + c : c) : "";
  }
  return names;
}

function problemsIn(source: Text, templates: { uriTemplate: string; name: string }[]): string[] {
  const problems: string[] = [];
  const { name, text } = source;
  for (const match of text.matchAll(TOOL_REF)) {
    const tool = match[1]!;
    if (!TOOL_NAMES.has(tool)) {
      problems.push(`${name}: '${match[0]}' is not a tool`);
      continue;
    }
    const end = match.index + match[0].length;
    if (text[end] === "(") {
      for (const arg of keywordArguments(text, end)) {
        if (!PARAMS.get(tool)!.has(arg)) problems.push(`${name}: ${match[0]}(${arg}=...): no such parameter`);
      }
    }
  }
  // Inline code spans only: fenced blocks hold shell, JSON and TOML whose keys are not ours.
  const prose = text.replaceAll(/^\s*```[\s\S]*?^\s*```/gm, "");
  for (const span of prose.matchAll(/`([^`\n]+)`/g)) {
    const code = span[1]!.trim();
    // Prefixed tool names were checked above.
    const word = /^[a-z][a-z0-9]*(?:_[a-z0-9]+)+$/.test(code) && !code.startsWith("contree_");
    if (word && !KNOWN_WORDS.has(code)) {
      problems.push(`${name}: \`${code}\` is no tool, parameter, result field or setting`);
    }
    const unquoted = code.replaceAll(/"[^"]*"|'[^']*'/g, '""');
    for (const assignment of unquoted.matchAll(/(?<![\w=-])([a-z][a-z0-9_]*)=(?!=)/g)) {
      if (!ALL_PARAMS.has(assignment[1]!) && !/(?:\{\{p\}\}|contree_)\w+\(/.test(code)) {
        problems.push(`${name}: \`${code}\`: '${assignment[1]}' is not a parameter of any tool`);
      }
    }
  }
  const patterns = templates.map((t) => ({
    template: t.uriTemplate,
    regex: new RegExp(`^${t.uriTemplate.replaceAll(/\{\+\w+\}/g, ".+").replaceAll(/\{\w+\}/g, "[^/]+")}$`),
  }));
  for (const uri of text.matchAll(/contree:\/\/[^\s`"')\]<>,;]*/g)) {
    const mention = uri[0].replace(/[.:…]+$/, "");
    // `contree://guide/...` names a family: it must begin some template.
    if (mention.endsWith("/")) {
      if (!patterns.some((p) => p.template.startsWith(mention)))
        problems.push(`${name}: ${mention}... matches no resource`);
      continue;
    }
    if (mention.includes("{")) {
      if (!patterns.some((p) => p.template === mention))
        problems.push(`${name}: ${mention} is no resource template`);
      continue;
    }
    if (!patterns.some((p) => p.regex.test(mention)))
      problems.push(`${name}: ${mention} matches no resource`);
    const section = /^contree:\/\/guide\/(.+)$/.exec(mention)?.[1];
    if (section && !(GUIDE_SECTIONS as readonly string[]).includes(section)) {
      problems.push(`${name}: ${mention}: no such guide section`);
    }
  }
  return problems;
}

let fake: FakeContree;
let session: TestSession;
let templates: { uriTemplate: string; name: string }[];

beforeAll(async () => {
  fake = await startFakeContree();
  session = await connect(cloudBackendFor(fake));
  templates = (await session.client.listResourceTemplates()).resourceTemplates;
  for (const template of templates) KNOWN_WORDS.add(template.name);
});

afterAll(async () => {
  await session?.close();
  await fake?.close();
});

describe("docs and guides match the code", () => {
  test("the checker finds what it should", () => {
    const bad = problemsIn(
      {
        name: "sample",
        text: 'Call `{{p}}run_command`, then {{p}}run(image="x", timeout_s=5, command="a=b") and read `exit_status`; set `wait_for=true`; see contree://guide/intro and contree://image/{id}/ls, and contree://files/...',
      },
      templates,
    );
    expect(bad).toEqual([
      "sample: '{{p}}run_command' is not a tool",
      "sample: {{p}}run(timeout_s=...): no such parameter",
      "sample: `exit_status` is no tool, parameter, result field or setting",
      "sample: `wait_for=true`: 'wait_for' is not a parameter of any tool",
      "sample: contree://guide/intro: no such guide section",
      "sample: contree://image/{id}/ls is no resource template",
      "sample: contree://files/... matches no resource",
    ]);
    const good = problemsIn(
      {
        name: "sample",
        text: 'Use `contree_run` with `disposable=false`, `tag_prefix="common/"`; read `result_image`; contree_wait_operations(operation_ids=["a"], mode="any"); contree://guide/errors, `contree://operations/...` and `contree://image/{image}/lineage`.',
      },
      templates,
    );
    expect(good).toEqual([]);
  });

  test("every tool, parameter, result field and URI that the texts name exists", () => {
    const sources = writtenTexts();
    expect(sources.map((s) => s.name)).toEqual(
      expect.arrayContaining(["src/server/instructions.md", "src/guide/workflow.md", "docs/tools.md"]),
    );
    const problems = sources.flatMap((source) => problemsIn(source, templates));
    expect(problems).toEqual([]);
  });

  test("llm.txt maps every source directory", () => {
    const map = readFileSync(join(ROOT, "llm.txt"), "utf8");
    const dirs = readdirSync(join(ROOT, "src"), { withFileTypes: true }).filter((entry) =>
      entry.isDirectory(),
    );
    for (const dir of dirs)
      expect(map, `llm.txt should mention src/${dir.name}/`).toContain(`src/${dir.name}/`);
  });

  test("the server instructions and every guide section, as served, name real tools", async () => {
    const served: Text[] = [{ name: "instructions", text: session.client.getInstructions() ?? "" }];
    for (const section of GUIDE_SECTIONS) {
      const { contents } = await session.client.readResource({ uri: `contree://guide/${section}` });
      served.push({ name: `guide ${section}`, text: (contents[0] as { text: string }).text });
    }
    expect(served.flatMap((source) => problemsIn(source, templates))).toEqual([]);
  });

  test("every prompt renders with its arguments and names only real tools and parameters", async () => {
    const { prompts } = await session.client.listPrompts();
    expect(prompts).toHaveLength(10);
    for (const prompt of prompts) {
      const args: Record<string, string> = {};
      for (const arg of prompt.arguments ?? []) args[arg.name] = `value-of-${arg.name.replaceAll("_", "-")}`;
      const result = await session.client.getPrompt({ name: prompt.name, arguments: args });
      const text = result.messages.map((m) => (m.content.type === "text" ? m.content.text : "")).join("\n");
      expect(text, prompt.name).not.toMatch(/\{\{\w+\}\}/);
      for (const value of Object.values(args)) expect(text, `${prompt.name} shows ${value}`).toContain(value);
      expect(problemsIn({ name: `prompt ${prompt.name}`, text }, templates)).toEqual([]);
      // With only the required arguments, the defaults fill in.
      const required = Object.fromEntries(
        (prompt.arguments ?? []).filter((a) => a.required).map((a) => [a.name, args[a.name]!]),
      );
      const minimal = await session.client.getPrompt({ name: prompt.name, arguments: required });
      expect(minimal.messages).toHaveLength(1);
    }
  });
});
