import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import { McpServer, ResourceTemplate } from "@modelcontextprotocol/server";
import { chromium, type Browser } from "playwright-core";
import * as z from "zod";
import { openApp, type App } from "../../src/app.ts";
import { resolveConfig } from "../../src/config.ts";
import { createServerFactory } from "../../src/server/create.ts";
import { createHttpHandler } from "../../src/server/http.ts";
import {
  collectPageData,
  escapeHtml,
  markdown,
  paramsOf,
  renderPage,
  schemaType,
  shellQuote,
  type PageData,
} from "../../src/server/page.ts";
import { TOOLS } from "../../src/tools/index.ts";
import { startFakeContree, cloudBackendFor } from "../support/fake-contree.ts";

// Debian's package by default; CHROMIUM_PATH elsewhere (GitHub's Ubuntu runners ship Google Chrome instead).
const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
const ARTIFACTS = join(import.meta.dir, "../../.artifacts");

let fake: Awaited<ReturnType<typeof startFakeContree>>;
let dir: string;
let app: App;

beforeAll(async () => {
  fake = await startFakeContree();
  dir = mkdtempSync(join(tmpdir(), "contree-mcp-page-"));
  const config = resolveConfig({
    cache_general: join(dir, "cache.db"),
    cache_files: join(dir, "files.db"),
    local_root: join(dir, "local"),
  });
  app = await openApp(config, cloudBackendFor(fake));
});

afterAll(async () => {
  await app?.close();
  await fake?.close();
  rmSync(dir, { recursive: true, force: true });
});

const EMPTY: PageData = {
  serverName: "contree-mcp",
  serverTitle: "ConTree sandboxes",
  version: "1.0.0",
  instructions: "",
  tools: [],
  resourceTemplates: [],
  resources: [],
  prompts: [],
  guide: [],
};

describe("page generator", () => {
  test("reads every registered tool, with prefixed names, parameters and annotations", async () => {
    const data = await collectPageData(createServerFactory(app.deps));
    expect(data.tools.map((t) => t.name)).toEqual(TOOLS.map((t) => `contree_${t.name}`));
    expect(data.instructions).toContain("contree_list_images");
    const run = data.tools.find((t) => t.name === "contree_run")!;
    expect(run.params.find((p) => p.name === "command")).toMatchObject({ type: "string", required: true });
    expect(run.params.find((p) => p.name === "timeout")).toMatchObject({ default: "30", required: false });
    expect(run.annotations.readOnlyHint).toBe(false);
  });

  test("escapes everything that comes from the registry", () => {
    const evil = `<img src=x onerror="alert(1)">`;
    const html = renderPage({
      ...EMPTY,
      serverTitle: evil,
      instructions: `**bold** ${evil} \`${evil}\``,
      tools: [
        {
          name: `t${evil}`,
          title: evil,
          description: `- ${evil}\n\n\`\`\`\n${evil}\n\`\`\``,
          params: [
            { name: evil, type: evil, required: true, default: JSON.stringify(evil), description: evil },
          ],
          annotations: { readOnlyHint: true },
        },
      ],
      prompts: [{ name: evil, description: evil, arguments: [{ name: evil, required: false }] }],
      resourceTemplates: [{ uriTemplate: `x://{${evil}}`, name: evil }],
      guide: [{ uri: "contree://guide/x", name: evil, text: evil }],
      command: [`/opt/${evil}`, "main.ts"],
      backend: evil,
      tokenRequired: true,
    }).render(`http://h/${evil}`);
    expect(html).not.toContain("<img");
    expect(html).toContain("&lt;img src=x onerror=&quot;alert(1)&quot;&gt;");
  });

  test("shows where the bearer token goes, never a token", () => {
    const open = renderPage({ ...EMPTY, command: ["contree-mcp"], backend: "cloud", tokenRequired: false });
    const locked = renderPage({ ...EMPTY, command: ["contree-mcp"], backend: "cloud", tokenRequired: true });
    expect(open.render("http://127.0.0.1:1/mcp")).not.toContain("Authorization");
    const html = locked.render("http://127.0.0.1:1/mcp");
    expect(html).toContain("Authorization");
    expect(html).toContain("CONTREE_MCP_HTTP_TOKEN");
    expect(html).toContain("http://127.0.0.1:1/mcp");
    for (const client of ["Claude Code", "Codex", "Claude Desktop", "Cursor", "VS Code"])
      expect(html).toContain(client);
  });

  test("stdio snippets start this server's real command, with the ConTree token as a placeholder", () => {
    const html = renderPage({
      ...EMPTY,
      command: ["/usr/local/bin/bun", "/opt/contree mcp/src/main.ts"],
      backend: "cloud",
      tokenRequired: false,
    }).render("http://127.0.0.1:1/mcp");
    expect(html).toContain(
      "claude mcp add contree --env CONTREE_MCP_TOKEN=&#39;&lt;your ConTree token&gt;&#39; -- /usr/local/bin/bun &#39;/opt/contree mcp/src/main.ts&#39;",
    );
    expect(html).toContain("&quot;command&quot;: &quot;/usr/local/bin/bun&quot;");
    expect(html).toContain("# args = [&quot;/opt/contree mcp/src/main.ts&quot;]");
    const local = renderPage({
      ...EMPTY,
      command: ["/opt/contree-mcp"],
      backend: "local",
      tokenRequired: false,
    });
    const localHtml = local.render("http://127.0.0.1:1/mcp");
    expect(localHtml).toContain("claude mcp add contree -- /opt/contree-mcp");
    expect(localHtml).not.toContain("CONTREE_MCP_TOKEN");
    expect(shellQuote("it's")).toBe(`'it'\\''s'`);
  });

  test("picks up prompts, resource templates and guide sections from whatever the server registers", async () => {
    const factory = () => {
      const server = new McpServer({ name: "probe", version: "0" });
      server.registerPrompt(
        "zz-probe-prompt",
        {
          title: "Probe prompt",
          description: "A prompt registered by the test",
          argsSchema: z.object({ target: z.string().describe("What to probe") }),
        },
        ({ target }) => ({ messages: [{ role: "user", content: { type: "text", text: target } }] }),
      );
      // A guide served only as a template, its sections named by completion (no list callback).
      server.registerResource(
        "zz-guide",
        new ResourceTemplate("contree://guide/{section}", {
          list: undefined,
          complete: { section: () => ["zz-alpha", "zz-beta"] },
        }),
        { title: "Probe guide", mimeType: "text/markdown" },
        (uri, { section }) => ({
          contents: [
            {
              uri: uri.href,
              mimeType: "text/markdown",
              text: `# Section ${String(section)}\n\n| a | b |\n|---|---|\n| 1 | 2 |`,
            },
          ],
        }),
      );
      return server;
    };
    const data = await collectPageData(factory);
    expect(data.prompts.find((p) => p.name === "zz-probe-prompt")).toEqual({
      name: "zz-probe-prompt",
      title: "Probe prompt",
      description: "A prompt registered by the test",
      arguments: [{ name: "target", description: "What to probe", required: true }],
    });
    expect(data.resourceTemplates.map((t) => t.uriTemplate)).toContain("contree://guide/{section}");
    expect(data.guide.map((g) => g.uri)).toEqual(["contree://guide/zz-alpha", "contree://guide/zz-beta"]);
    expect(data.guide[0]!.text).toContain("Section zz-alpha");
    const html = renderPage({
      ...data,
      command: ["contree-mcp"],
      backend: "cloud",
      tokenRequired: false,
    }).render("http://127.0.0.1:1/mcp");
    expect(html).toContain("zz-probe-prompt");
    expect(html).toContain("What to probe");
    expect(html).toContain('id="prompts"');
    expect(html).toContain('id="guide"');
    expect(html).toContain("<h4>Section zz-alpha</h4>");
  });

  test("schema types read like signatures", () => {
    expect(schemaType({ type: "string" })).toBe("string");
    expect(schemaType({ anyOf: [{ type: "boolean" }, { type: "null" }] })).toBe("boolean | null");
    expect(schemaType({ type: "array", items: { type: "string" } })).toBe("string[]");
    expect(schemaType({ enum: ["all", "any"] })).toBe('"all" | "any"');
    expect(schemaType({ type: "integer", minimum: 1, maximum: 1000 })).toBe("integer 1–1000");
    expect(schemaType({ type: "number", exclusiveMinimum: 0, maximum: 60 })).toBe("number > 0, ≤ 60");
    expect(schemaType({ type: "integer", minimum: 0, maximum: Number.MAX_SAFE_INTEGER })).toBe("integer ≥ 0");
    expect(
      schemaType({ type: "integer", minimum: -Number.MAX_SAFE_INTEGER, maximum: Number.MAX_SAFE_INTEGER }),
    ).toBe("integer");
    expect(schemaType({ type: "object", additionalProperties: { type: "string" } })).toBe(
      "{ [key]: string }",
    );
    expect(
      paramsOf({ type: "object", properties: { a: { type: "string", default: "x" } }, required: ["a"] }),
    ).toEqual([{ name: "a", type: "string", required: false, default: '"x"' }]);
  });

  test("markdown covers what descriptions and guides use", () => {
    expect(markdown("a `b` **c**")).toBe("<p>a <code>b</code> <strong>c</strong></p>");
    expect(markdown("`**x**` *y* [z](https://e.x/?a=1&b=2) [no](javascript:alert(1))")).toBe(
      '<p><code>**x**</code> <em>y</em> <a href="https://e.x/?a=1&amp;b=2">z</a> [no](javascript:alert(1))</p>',
    );
    expect(markdown("# T\ntext\nmore\n## U")).toBe("<h4>T</h4>\n<p>text more</p>\n<h5>U</h5>");
    expect(markdown("| a | `b|c` |\n|---|:--:|\n| 1 | 2 |")).toBe(
      '<div class="table"><table><thead><tr><th>a</th><th><code>b|c</code></th></tr></thead><tbody><tr><td>1</td><td>2</td></tr></tbody></table></div>',
    );
    expect(markdown("text\n```sh\nx\n```\n> quoted")).toBe(
      "<p>text</p>\n<pre><code>x</code></pre>\n<blockquote><p>quoted</p></blockquote>",
    );
    expect(markdown("- one\n  more\n- two")).toBe("<ul><li>one more</li><li>two</li></ul>");
    expect(markdown("1. x\n2. y")).toBe("<ol><li>x</li><li>y</li></ol>");
    expect(markdown("```\na\n\nb\n```")).toBe("<pre><code>a\n\nb</code></pre>");
    expect(escapeHtml(`<&>"'`)).toBe("&lt;&amp;&gt;&quot;&#39;");
  });
});

describe.skipIf(!existsSync(CHROMIUM))(`the page in headless Chromium (needs ${CHROMIUM})`, () => {
  let browser: Browser;
  let server: ReturnType<typeof Bun.serve>;

  beforeAll(async () => {
    const handler = createHttpHandler(app, { listen: "127.0.0.1", port: 0 });
    server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: (req, s) => handler.fetch(req, s) });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
      ],
    });
  }, 30_000);

  afterAll(async () => {
    await browser?.close();
    await server?.stop(true);
  });

  test("renders every tool, the filter hides the others, no console errors", async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const problems: string[] = [];
    page.on("console", (message) => {
      if (message.type() === "error" || message.type() === "warning") problems.push(message.text());
    });
    page.on("pageerror", (error) => problems.push(error.message));
    await page.goto(`http://127.0.0.1:${server.port}/`);

    const names = await page.locator("#tools .item h3 code").allTextContents();
    expect(names).toEqual(TOOLS.map((t) => `contree_${t.name}`));
    expect(await page.locator("code.url").first().textContent()).toBe(`http://127.0.0.1:${server.port}/mcp`);

    await page.fill("#filter", "list_images");
    const visible = await page.locator("#tools .item:visible h3 code").allTextContents();
    expect(visible).toContain("contree_list_images");
    expect(visible.length).toBeLessThan(TOOLS.length);
    // Descriptions count too (run's mentions list_images); a hidden tool mentions it nowhere.
    const hidden = await page
      .locator("#tools .item[hidden]")
      .evaluateAll((items) => items.map((item) => item.getAttribute("data-search") ?? ""));
    expect(hidden.length).toBe(TOOLS.length - visible.length);
    for (const text of hidden) expect(text).not.toContain("list_images");
    await page.fill("#filter", "no-such-thing-anywhere");
    expect(await page.locator("#tools").isVisible()).toBe(false);
    await page.fill("#filter", "");
    expect(await page.locator("#tools .item:visible").count()).toBe(TOOLS.length);

    await page.click("#tab-cursor");
    expect(await page.locator("#panel-cursor").isVisible()).toBe(true);
    expect(await page.locator("#panel-claude-code").isVisible()).toBe(false);
    expect(await page.locator("#panel-cursor pre").textContent()).toContain(
      `"url": "http://127.0.0.1:${server.port}/mcp"`,
    );

    await page.click("#tab-claude-code");
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, "page.png"), fullPage: true });
    expect(problems).toEqual([]);
    await page.close();
  }, 30_000);

  test("lists what an MCP client gets: every tool, resource template, prompt and guide section", async () => {
    const client = new Client({ name: "page-test", version: "0" });
    await client.connect(new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${server.port}/mcp`)));
    const caps = client.getServerCapabilities() ?? {};
    const tools = (await client.listTools()).tools.map((t) => t.name);
    const templates = caps.resources
      ? (await client.listResourceTemplates()).resourceTemplates.map((t) => t.uriTemplate)
      : [];
    const guide = caps.resources
      ? (await client.listResources()).resources
          .map((r) => r.uri)
          .filter((u) => u.startsWith("contree://guide/"))
      : [];
    const prompts = caps.prompts ? (await client.listPrompts()).prompts.map((p) => p.name) : [];
    await client.close();

    const page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
    await page.goto(`http://127.0.0.1:${server.port}/`);
    expect(await page.locator("#tools .item h3 code").allTextContents()).toEqual(tools);
    expect(await page.locator("#resource-templates .item h3 code").allTextContents()).toEqual(templates);
    expect(await page.locator("#prompts .item h3 code").allTextContents()).toEqual(prompts);
    expect(await page.locator("#guide .item summary code").allTextContents()).toEqual(guide);
    const instructions = await page.locator("#instructions .md").textContent();
    expect(instructions).toContain("contree_list_images");
    // Light theme by default; nothing sticks out sideways on a wide screen either.
    expect(await page.evaluate("getComputedStyle(document.body).backgroundColor")).toBe("rgb(251, 251, 253)");
    expect(
      await page.evaluate("document.documentElement.scrollWidth - window.innerWidth"),
    ).toBeLessThanOrEqual(0);
    await page.close();
  }, 30_000);

  test("a copy button puts the snippet on the clipboard", async () => {
    const context = await browser.newContext({ permissions: ["clipboard-read", "clipboard-write"] });
    const page = await context.newPage();
    const problems: string[] = [];
    page.on("pageerror", (error) => problems.push(error.message));
    await page.goto(`http://127.0.0.1:${server.port}/`);
    await page.click("#tab-vscode");
    const button = page.locator("#panel-vscode .copy").first();
    await button.click();
    await page.waitForFunction(`document.querySelector("#panel-vscode .copy").textContent === "Copied"`);
    const copied = (await page.evaluate("navigator.clipboard.readText()")) as string;
    expect(copied).toBe((await page.locator("#panel-vscode pre").first().innerText()) as string);
    expect(JSON.parse(copied)).toEqual({
      servers: { contree: { type: "http", url: `http://127.0.0.1:${server.port}/mcp` } },
    });
    expect(problems).toEqual([]);
    await context.close();
  }, 30_000);

  test("fits a phone screen in the dark theme", async () => {
    const page = await browser.newPage({ viewport: { width: 390, height: 844 }, colorScheme: "dark" });
    await page.goto(`http://127.0.0.1:${server.port}/`);
    const overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth");
    expect(overflow).toBeLessThanOrEqual(0);
    const background = await page.evaluate("getComputedStyle(document.body).backgroundColor");
    expect(background).not.toBe("rgb(251, 251, 253)");
    await page.screenshot({ path: join(ARTIFACTS, "page-phone-dark.png") });
    // Scrolled into the reference, the sticky filter box stays on screen and nothing covers it.
    await page.locator("#tools .item").nth(2).scrollIntoViewIfNeeded();
    const onTop = await page.evaluate(`(() => {
      const box = document.getElementById("filter").getBoundingClientRect();
      return box.top >= 0 && document.elementFromPoint(box.left + box.width / 2, box.top + box.height / 2)?.id;
    })()`);
    expect(onTop).toBe("filter");
    await page.close();
  }, 30_000);
});
