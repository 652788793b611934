import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type Browser } from "playwright-core";
import { openApp, type App } from "../../src/app.ts";
import { CloudBackend } from "../../src/backend/cloud/backend.ts";
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
  type PageData,
} from "../../src/server/page.ts";
import { TOOLS } from "../../src/tools/index.ts";
import { startFakeContree } from "../support/fake-contree.ts";

const CHROMIUM = "/usr/bin/chromium";
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
  app = await openApp(config, new CloudBackend({ url: fake.url, token: fake.token, version: "test" }));
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
      binary: `/opt/${evil}`,
      backend: evil,
      tokenRequired: true,
    }).render(`http://h/${evil}`);
    expect(html).not.toContain("<img");
    expect(html).toContain("&lt;img src=x onerror=&quot;alert(1)&quot;&gt;");
  });

  test("shows where the bearer token goes, never a token", () => {
    const open = renderPage({ ...EMPTY, binary: "contree-mcp", backend: "cloud", tokenRequired: false });
    const locked = renderPage({ ...EMPTY, binary: "contree-mcp", backend: "cloud", tokenRequired: true });
    expect(open.render("http://127.0.0.1:1/mcp")).not.toContain("Authorization");
    const html = locked.render("http://127.0.0.1:1/mcp");
    expect(html).toContain("Authorization");
    expect(html).toContain("CONTREE_MCP_HTTP_TOKEN");
    expect(html).toContain("http://127.0.0.1:1/mcp");
    for (const client of ["Claude Code", "Codex", "Claude Desktop", "Cursor", "VS Code"])
      expect(html).toContain(client);
  });

  test("schema types read like signatures", () => {
    expect(schemaType({ type: "string" })).toBe("string");
    expect(schemaType({ anyOf: [{ type: "boolean" }, { type: "null" }] })).toBe("boolean | null");
    expect(schemaType({ type: "array", items: { type: "string" } })).toBe("string[]");
    expect(schemaType({ enum: ["all", "any"] })).toBe('"all" | "any"');
    expect(schemaType({ type: "integer", minimum: 1, maximum: 1000 })).toBe("integer 1–1000");
    expect(schemaType({ type: "object", additionalProperties: { type: "string" } })).toBe(
      "{ [key]: string }",
    );
    expect(
      paramsOf({ type: "object", properties: { a: { type: "string", default: "x" } }, required: ["a"] }),
    ).toEqual([{ name: "a", type: "string", required: false, default: '"x"' }]);
  });

  test("markdown covers what descriptions use", () => {
    expect(markdown("a `b` **c**")).toBe("<p>a <code>b</code> <strong>c</strong></p>");
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

  test("fits a phone screen in the dark theme", async () => {
    const page = await browser.newPage({ viewport: { width: 390, height: 844 }, colorScheme: "dark" });
    await page.goto(`http://127.0.0.1:${server.port}/`);
    const overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth");
    expect(overflow).toBeLessThanOrEqual(0);
    const background = await page.evaluate("getComputedStyle(document.body).backgroundColor");
    expect(background).not.toBe("rgb(251, 251, 253)");
    await page.screenshot({ path: join(ARTIFACTS, "page-phone-dark.png") });
    await page.close();
  }, 30_000);
});
