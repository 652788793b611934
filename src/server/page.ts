// The page at / in HTTP mode: what this server is, how to connect each client to it, and a reference of everything
// it serves. The reference is read from a live server instance, so it always matches what clients see.
import {
  InMemoryTransport,
  type JSONRPCMessage,
  type McpServer,
  type Prompt,
  type Resource,
  type ResourceTemplateType,
  type Tool,
} from "@modelcontextprotocol/server";
import { VERSION } from "../version.ts";
// Typed as an HTML bundle by bun-types, but imported as text: the shell with the inline CSS and script.
import SHELL_HTML from "./page/shell.html" with { type: "text" };

const SHELL = SHELL_HTML as unknown as string;
/** Stands for this server's /mcp URL until a request tells which host it was reached by. */
const URL_MARK = "@@CONTREE_MCP_URL@@";

export interface ParamDoc {
  name: string;
  type: string;
  required: boolean;
  /** JSON of the default value, when there is one. */
  default?: string;
  description?: string;
}

export interface ToolDoc {
  name: string;
  title?: string;
  description: string;
  params: ParamDoc[];
  /** Hint name -> value, e.g. readOnlyHint -> true. */
  annotations: Record<string, boolean>;
}

export interface TemplateDoc {
  uriTemplate: string;
  name: string;
  title?: string;
  description?: string;
  mimeType?: string;
}

export interface ResourceDoc {
  uri: string;
  name: string;
  title?: string;
  description?: string;
  mimeType?: string;
  /** The resource's text, for guide sections. */
  text?: string;
}

export interface PromptDoc {
  name: string;
  title?: string;
  description?: string;
  arguments: { name: string; description?: string; required: boolean }[];
}

export interface PageData {
  serverName: string;
  serverTitle: string;
  version: string;
  instructions: string;
  tools: ToolDoc[];
  resourceTemplates: TemplateDoc[];
  /** Static resources other than guide sections. */
  resources: ResourceDoc[];
  prompts: PromptDoc[];
  guide: ResourceDoc[];
}

export interface PageOptions {
  /** What the stdio setup snippets start: this binary's path, or bun and this checkout's main.ts. */
  command: string[];
  /** /mcp needs `Authorization: Bearer`: the snippets show where the token goes (never the token). */
  tokenRequired: boolean;
  backend: string;
}

export interface PageTemplate {
  /** The page for clients that reach the server at `mcpUrl` (e.g. http://127.0.0.1:9452/mcp). */
  render(mcpUrl: string): string;
}

const GUIDE_PREFIX = "contree://guide/";

/**
 * The command that starts this very server: the compiled binary's path, or bun with this checkout's (or installed
 * package's) main.ts. Anything else (a test runner, a script) falls back to the command the package installs.
 */
export function serverCommand(): string[] {
  const compiled = Bun.main.includes("$bunfs") || import.meta.path.includes("$bunfs");
  if (compiled) return [process.execPath];
  if (/[\\/]src[\\/]main\.ts$/.test(Bun.main)) return [process.execPath, Bun.main];
  return ["contree-mcp"];
}

// ---------------------------------------------------------------------------------------------------------------
// Reading the registry through the protocol

type Call = (method: string, params?: Record<string, unknown>) => Promise<Record<string, unknown>>;

async function connectInMemory(
  server: McpServer,
): Promise<{ call: Call; initialized: () => Promise<void>; close: () => Promise<void> }> {
  const [client, serverSide] = InMemoryTransport.createLinkedPair();
  const waiting = new Map<
    number,
    { resolve: (r: Record<string, unknown>) => void; reject: (e: Error) => void }
  >();
  // oxlint-disable-next-line unicorn/prefer-add-event-listener -- a Transport takes callbacks, it is no EventTarget
  client.onmessage = (message: JSONRPCMessage) => {
    if (!("id" in message) || typeof message.id !== "number") return;
    const pending = waiting.get(message.id);
    if (!pending) return;
    waiting.delete(message.id);
    if ("error" in message) pending.reject(new Error(`${message.error.code}: ${message.error.message}`));
    else if ("result" in message) pending.resolve(message.result as Record<string, unknown>);
  };
  await server.connect(serverSide);
  await client.start();
  let next = 0;
  const call: Call = (method, params = {}) => {
    const id = ++next;
    return new Promise((resolve, reject) => {
      waiting.set(id, { resolve, reject });
      client.send({ jsonrpc: "2.0", id, method, params }).catch(reject);
    });
  };
  return {
    call,
    initialized: () => client.send({ jsonrpc: "2.0", method: "notifications/initialized" }),
    close: () => server.close(),
  };
}

async function listAll<T>(call: Call, method: string, key: string): Promise<T[]> {
  const items: T[] = [];
  let cursor: string | undefined;
  do {
    const page = await call(method, cursor ? { cursor } : {}).catch(() => ({}) as Record<string, unknown>);
    items.push(...((page[key] as T[] | undefined) ?? []));
    cursor = typeof page.nextCursor === "string" ? page.nextCursor : undefined;
  } while (cursor);
  return items;
}

type JsonSchema = Record<string, unknown>;

/** zod gives every integer the safe-integer range as bounds; those say nothing to a reader. */
function bound(value: unknown): number | undefined {
  return typeof value === "number" && Math.abs(value) < Number.MAX_SAFE_INTEGER ? value : undefined;
}

/** A short type for a JSON Schema, e.g. `string`, `integer 1–1000`, `"all" | "any"`, `string[]`. */
export function schemaType(schema: JsonSchema | undefined): string {
  if (!schema) return "any";
  const variants = (schema.anyOf ?? schema.oneOf) as JsonSchema[] | undefined;
  if (variants) {
    const parts = variants.filter((v) => v.type !== "null").map(schemaType);
    const nullable = variants.some((v) => v.type === "null");
    return [...new Set(parts)].join(" | ") + (nullable ? " | null" : "");
  }
  if (Array.isArray(schema.enum)) return schema.enum.map((v) => JSON.stringify(v)).join(" | ");
  if ("const" in schema) return JSON.stringify(schema.const);
  const types = Array.isArray(schema.type) ? (schema.type as string[]) : [schema.type as string | undefined];
  const base = types
    .filter((t): t is string => typeof t === "string" && t !== "null")
    .map((t) => {
      if (t === "array") return `${schemaType(schema.items as JsonSchema | undefined)}[]`;
      if (t === "object" && schema.additionalProperties && typeof schema.additionalProperties === "object") {
        return `{ [key]: ${schemaType(schema.additionalProperties as JsonSchema)} }`;
      }
      return t;
    })
    .join(" | ");
  const min = bound(schema.minimum);
  const max = bound(schema.maximum);
  const above = bound(schema.exclusiveMinimum);
  const below = bound(schema.exclusiveMaximum);
  const lower = min !== undefined ? `≥ ${min}` : above !== undefined ? `> ${above}` : "";
  const upper = max !== undefined ? `≤ ${max}` : below !== undefined ? `< ${below}` : "";
  const range =
    min !== undefined && max !== undefined
      ? ` ${min}–${max}`
      : lower || upper
        ? ` ${[lower, upper].filter(Boolean).join(", ")}`
        : "";
  const nullable = types.includes("null") ? " | null" : "";
  return `${base || "any"}${range}${nullable}`;
}

export function paramsOf(inputSchema: JsonSchema | undefined): ParamDoc[] {
  const properties = (inputSchema?.properties ?? {}) as Record<string, JsonSchema>;
  const required = new Set((inputSchema?.required as string[] | undefined) ?? []);
  return Object.entries(properties).map(([name, schema]) => ({
    name,
    type: schemaType(schema),
    // zod marks parameters with a default as required on output; for a caller they are optional.
    required: required.has(name) && !("default" in schema),
    ...("default" in schema && { default: JSON.stringify(schema.default) }),
    ...(typeof schema.description === "string" && { description: schema.description }),
  }));
}

async function readText(call: Call, uri: string): Promise<string> {
  const read = await call("resources/read", { uri }).catch(() => ({}) as Record<string, unknown>);
  const contents = (read.contents as { text?: string }[] | undefined) ?? [];
  return contents.map((c) => c.text ?? "").join("\n");
}

/**
 * Guide sections served only through a template (`contree://guide/{section}` without a list callback): the
 * template's completion names the sections.
 */
async function guideFromTemplates(call: Call, templates: ResourceTemplateType[]): Promise<ResourceDoc[]> {
  const docs: ResourceDoc[] = [];
  for (const template of templates) {
    const match = new RegExp(`^${GUIDE_PREFIX}\\{(\\w+)\\}$`).exec(template.uriTemplate);
    if (!match) continue;
    const completed = await call("completion/complete", {
      ref: { type: "ref/resource", uri: template.uriTemplate },
      argument: { name: match[1], value: "" },
    }).catch(() => ({}) as Record<string, unknown>);
    const values = ((completed.completion as { values?: string[] } | undefined)?.values ?? []).filter(
      (v) => typeof v === "string",
    );
    for (const value of values) {
      const uri = `${GUIDE_PREFIX}${value}`;
      const text = await readText(call, uri);
      docs.push({
        uri,
        name: value,
        ...(template.mimeType && { mimeType: template.mimeType }),
        ...(text && { text }),
      });
    }
  }
  return docs;
}

/** Asks a fresh server instance for its tools, resource templates, resources, prompts and guide sections. */
export async function collectPageData(factory: () => McpServer): Promise<PageData> {
  const server = factory();
  const { call, initialized, close } = await connectInMemory(server);
  try {
    const init = await call("initialize", {
      protocolVersion: "2025-11-25",
      capabilities: {},
      clientInfo: { name: "contree-mcp-page", version: VERSION },
    });
    await initialized();
    const info = (init.serverInfo ?? {}) as { name?: string; title?: string; version?: string };
    const tools = await listAll<Tool>(call, "tools/list", "tools");
    const templates = await listAll<ResourceTemplateType>(
      call,
      "resources/templates/list",
      "resourceTemplates",
    );
    const resources = await listAll<Resource>(call, "resources/list", "resources");
    const prompts = await listAll<Prompt>(call, "prompts/list", "prompts");
    const guide: ResourceDoc[] = [];
    const other: ResourceDoc[] = [];
    for (const resource of resources) {
      const doc: ResourceDoc = {
        uri: resource.uri,
        name: resource.name,
        ...(resource.title && { title: resource.title }),
        ...(resource.description && { description: resource.description }),
        ...(resource.mimeType && { mimeType: resource.mimeType }),
      };
      if (!resource.uri.startsWith(GUIDE_PREFIX)) {
        other.push(doc);
        continue;
      }
      const text = await readText(call, resource.uri);
      guide.push(text ? { ...doc, text } : doc);
    }
    if (guide.length === 0) guide.push(...(await guideFromTemplates(call, templates)));
    return {
      serverName: info.name ?? "contree-mcp",
      serverTitle: info.title ?? "ConTree sandboxes",
      version: info.version ?? VERSION,
      instructions: typeof init.instructions === "string" ? init.instructions : "",
      tools: tools.map((tool) => ({
        name: tool.name,
        ...(tool.title && { title: tool.title }),
        description: tool.description ?? "",
        params: paramsOf(tool.inputSchema as JsonSchema),
        annotations: Object.fromEntries(
          Object.entries(tool.annotations ?? {}).filter(
            (e): e is [string, boolean] => typeof e[1] === "boolean",
          ),
        ),
      })),
      resourceTemplates: templates.map((t) => ({
        uriTemplate: t.uriTemplate,
        name: t.name,
        ...(t.title && { title: t.title }),
        ...(t.description && { description: t.description }),
        ...(t.mimeType && { mimeType: t.mimeType }),
      })),
      resources: other,
      prompts: prompts.map((p) => ({
        name: p.name,
        ...(p.title && { title: p.title }),
        ...(p.description && { description: p.description }),
        arguments: (p.arguments ?? []).map((a) => ({
          name: a.name,
          ...(a.description && { description: a.description }),
          required: a.required ?? false,
        })),
      })),
      guide,
    };
  } finally {
    await close().catch(() => undefined);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// HTML

const ENTITIES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ENTITIES[c]!);
}

/** Inline markdown: `code` (taken literally), **bold**, *emphasis* and [links](https://...). */
function inline(text: string): string {
  return text
    .split(/(`[^`]+`)/)
    .map((part, i) => {
      if (i % 2 === 1) return `<code>${escapeHtml(part.slice(1, -1))}</code>`;
      return escapeHtml(part)
        .replace(/\*\*([^*]+)\*\*/g, "<strong>$1</strong>")
        .replace(/(^|[\s(])\*([^*\s][^*]*)\*(?=[\s).,;:!?]|$)/g, "$1<em>$2</em>")
        .replace(
          /\[([^\]]+)\]\((https?:\/\/[^\s)]+|#[\w-]+|\/[^\s)]*)\)/g,
          (_, label: string, href: string) => `<a href="${href}">${label}</a>`,
        );
    })
    .join("");
}

const FENCE = /^\s*(```|~~~)/;
const HEADING = /^(#{1,6})\s+(.*?)\s*#*\s*$/;
const BULLET = /^\s*[-*+]\s+/;
const NUMBERED = /^\s*\d+[.)]\s+/;
const TABLE_ROW = /^\s*\|.*\|\s*$/;
const TABLE_RULE = /^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$/;

function tableCells(row: string): string[] {
  // Split on pipes outside `code` (a cell may show `a | b`).
  const cells: string[] = [];
  let current = "";
  let inCode = false;
  for (const ch of row.trim().replace(/^\|/, "").replace(/\|$/, "")) {
    if (ch === "`") inCode = !inCode;
    if (ch === "|" && !inCode) {
      cells.push(current.trim());
      current = "";
    } else current += ch;
  }
  cells.push(current.trim());
  return cells;
}

/**
 * The markdown our descriptions, instructions and guide sections use: paragraphs, # headings, - and 1. lists,
 * ``` fences, | tables |, > quotes, `code`, **bold**, *emphasis*, [links](https://...). Everything is escaped; the
 * headings start at h4 because the page's own structure takes h1 to h3.
 */
export function markdown(text: string): string {
  const lines = text.replace(/\r\n?/g, "\n").split("\n");
  const out: string[] = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i]!;
    if (!line.trim()) {
      i++;
      continue;
    }
    if (FENCE.test(line)) {
      const marker = FENCE.exec(line)![1]!;
      const body: string[] = [];
      i++;
      while (i < lines.length && !lines[i]!.trim().startsWith(marker)) body.push(lines[i++]!);
      i++; // the closing fence (or the end of an unclosed block)
      out.push(`<pre><code>${escapeHtml(body.join("\n"))}</code></pre>`);
      continue;
    }
    const heading = HEADING.exec(line);
    if (heading) {
      const level = Math.min(6, heading[1]!.length + 3);
      out.push(`<h${level}>${inline(heading[2]!)}</h${level}>`);
      i++;
      continue;
    }
    if (TABLE_ROW.test(line) && i + 1 < lines.length && TABLE_RULE.test(lines[i + 1]!)) {
      const head = tableCells(line);
      i += 2;
      const rows: string[][] = [];
      while (i < lines.length && TABLE_ROW.test(lines[i]!)) rows.push(tableCells(lines[i++]!));
      out.push(
        `<div class="table"><table><thead><tr>${head.map((c) => `<th>${inline(c)}</th>`).join("")}</tr></thead>` +
          `<tbody>${rows.map((r) => `<tr>${r.map((c) => `<td>${inline(c)}</td>`).join("")}</tr>`).join("")}</tbody></table></div>`,
      );
      continue;
    }
    if (/^\s*>/.test(line)) {
      const quoted: string[] = [];
      while (i < lines.length && /^\s*>/.test(lines[i]!)) quoted.push(lines[i++]!.replace(/^\s*>\s?/, ""));
      out.push(`<blockquote>${markdown(quoted.join("\n"))}</blockquote>`);
      continue;
    }
    const listKind = BULLET.test(line) ? BULLET : NUMBERED.test(line) ? NUMBERED : null;
    if (listKind) {
      // An item runs until the next item or a blank line; nested items are shown flat.
      const items: string[] = [];
      while (i < lines.length && lines[i]!.trim() && !FENCE.test(lines[i]!) && !HEADING.test(lines[i]!)) {
        const current = lines[i++]!;
        if (BULLET.test(current) || NUMBERED.test(current)) {
          items.push(current.replace(BULLET.test(current) ? BULLET : NUMBERED, ""));
        } else items[items.length - 1] += ` ${current.trim()}`;
      }
      const tag = listKind === BULLET ? "ul" : "ol";
      out.push(`<${tag}>${items.map((item) => `<li>${inline(item)}</li>`).join("")}</${tag}>`);
      continue;
    }
    const paragraph: string[] = [];
    while (
      i < lines.length &&
      lines[i]!.trim() &&
      !FENCE.test(lines[i]!) &&
      !HEADING.test(lines[i]!) &&
      !BULLET.test(lines[i]!) &&
      !NUMBERED.test(lines[i]!) &&
      !/^\s*>/.test(lines[i]!) &&
      !(TABLE_ROW.test(lines[i]!) && TABLE_RULE.test(lines[i + 1] ?? ""))
    ) {
      paragraph.push(lines[i++]!.trim());
    }
    out.push(`<p>${inline(paragraph.join(" "))}</p>`);
  }
  return out.join("\n");
}

function slug(text: string): string {
  return text.toLowerCase().replace(/[^a-z0-9]+/g, "-");
}

function searchText(...parts: (string | undefined)[]): string {
  return escapeHtml(parts.filter(Boolean).join(" ").toLowerCase());
}

const HINTS: [key: string, yes: string, no: string | null, tone: string][] = [
  ["readOnlyHint", "read-only", "changes state", "ok"],
  ["destructiveHint", "destructive", null, "warn"],
  ["idempotentHint", "idempotent", null, "ok"],
  ["openWorldHint", "open world", null, "info"],
];

function annotationBadges(annotations: Record<string, boolean>): string {
  const badges: string[] = [];
  for (const [key, yes, no, tone] of HINTS) {
    const value = annotations[key];
    if (value === true) badges.push(`<span class="badge ${tone}" title="${key}: true">${yes}</span>`);
    else if (value === false && no) badges.push(`<span class="badge" title="${key}: false">${no}</span>`);
  }
  return badges.join(" ");
}

function paramsTable(params: ParamDoc[]): string {
  if (params.length === 0) return `<p class="muted">No parameters.</p>`;
  const rows = params.map(
    (p) =>
      `<tr><td><code>${escapeHtml(p.name)}</code>${p.required ? ' <span class="badge warn">required</span>' : ""}</td>` +
      `<td><code>${escapeHtml(p.type)}</code></td>` +
      `<td>${p.default === undefined ? "" : `<code>${escapeHtml(p.default)}</code>`}</td>` +
      `<td>${p.description ? inline(p.description) : ""}</td></tr>`,
  );
  return (
    `<div class="table"><table class="params"><thead><tr><th>Parameter</th><th>Type</th><th>Default</th><th>Description</th></tr></thead>` +
    `<tbody>${rows.join("")}</tbody></table></div>`
  );
}

function toolCard(tool: ToolDoc): string {
  return (
    `<article class="item" id="tool-${slug(tool.name)}" data-search="${searchText(tool.name, tool.title, tool.description, ...tool.params.map((p) => p.name))}">` +
    `<header><h3><a href="#tool-${slug(tool.name)}"><code>${escapeHtml(tool.name)}</code></a></h3>` +
    `${tool.title ? `<span class="title">${escapeHtml(tool.title)}</span>` : ""}` +
    `<span class="badges">${annotationBadges(tool.annotations)}</span></header>` +
    `<div class="md">${markdown(tool.description)}</div>` +
    paramsTable(tool.params) +
    `</article>`
  );
}

function templateCard(t: TemplateDoc): string {
  return (
    `<article class="item" data-search="${searchText(t.name, t.title, t.uriTemplate, t.description)}">` +
    `<header><h3><code>${escapeHtml(t.uriTemplate)}</code></h3><span class="title">${escapeHtml(t.title ?? t.name)}</span>` +
    `${t.mimeType ? `<span class="badges"><span class="badge">${escapeHtml(t.mimeType)}</span></span>` : ""}</header>` +
    `${t.description ? `<div class="md">${markdown(t.description)}</div>` : ""}</article>`
  );
}

function resourceCard(r: ResourceDoc): string {
  return (
    `<article class="item" data-search="${searchText(r.name, r.title, r.uri, r.description)}">` +
    `<header><h3><code>${escapeHtml(r.uri)}</code></h3><span class="title">${escapeHtml(r.title ?? r.name)}</span></header>` +
    `${r.description ? `<div class="md">${markdown(r.description)}</div>` : ""}</article>`
  );
}

function guideCard(g: ResourceDoc): string {
  return (
    `<article class="item" data-search="${searchText(g.name, g.title, g.uri, g.description, g.text)}">` +
    `<details><summary><strong>${escapeHtml(g.title ?? g.name)}</strong> <code>${escapeHtml(g.uri)}</code>` +
    `${g.description ? ` <span class="muted">${inline(g.description)}</span>` : ""}</summary>` +
    `${g.text ? `<div class="md">${markdown(g.text)}</div>` : ""}</details></article>`
  );
}

function promptCard(p: PromptDoc): string {
  const args = p.arguments.length
    ? `<ul>${p.arguments
        .map(
          (a) =>
            `<li><code>${escapeHtml(a.name)}</code>${a.required ? ' <span class="badge warn">required</span>' : ""}${a.description ? ` — ${inline(a.description)}` : ""}</li>`,
        )
        .join("")}</ul>`
    : `<p class="muted">No arguments.</p>`;
  return (
    `<article class="item" data-search="${searchText(p.name, p.title, p.description, ...p.arguments.map((a) => a.name))}">` +
    `<header><h3><code>${escapeHtml(p.name)}</code></h3>${p.title ? `<span class="title">${escapeHtml(p.title)}</span>` : ""}</header>` +
    `${p.description ? `<div class="md">${markdown(p.description)}</div>` : ""}${args}</article>`
  );
}

/** A TOML basic string or array of them (JSON's escaping is valid TOML for these). */
const toml = (value: unknown) => JSON.stringify(value);

/** Quotes a word for a POSIX shell when it needs it. */
export function shellQuote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", "'\\''")}'`;
}

function snippet(label: string, code: string): string {
  return (
    `<div class="snippet"><div class="snippet-head"><span>${escapeHtml(label)}</span>` +
    `<button type="button" class="copy" aria-label="Copy ${escapeHtml(label)}">Copy</button></div>` +
    `<pre><code>${code}</code></pre></div>`
  );
}

/** Snippet text is HTML-escaped here; the URL mark survives escaping and is replaced per request. */
function setupSection(options: PageOptions): string {
  const url = URL_MARK;
  const e = escapeHtml;
  const [command, ...args] = options.command as [string, ...string[]];
  const auth = options.tokenRequired;
  const headerFlag = auth ? ` \\\n  --header "Authorization: Bearer $CONTREE_MCP_HTTP_TOKEN"` : "";
  // A stdio server started by the client is a second server with its own settings: the cloud backend needs the
  // ConTree token there (a placeholder: the page never holds it); the local backend is what it picks without one.
  const stdioEnv: Record<string, string> =
    options.backend === "cloud" ? { CONTREE_MCP_TOKEN: "<your ConTree token>" } : {};
  const envFlags = Object.entries(stdioEnv)
    .map(([k, v]) => `--env ${k}=${shellQuote(v)} `)
    .join("");
  const json = (value: unknown) => e(JSON.stringify(value, null, 2));
  const stdioJson = {
    command,
    ...(args.length > 0 && { args }),
    ...(options.backend === "cloud" && { env: stdioEnv }),
  };
  const codexStdio = [
    `# or over stdio (Codex starts its own server):`,
    `# [mcp_servers.contree]`,
    `# command = ${toml(command)}`,
    ...(args.length > 0 ? [`# args = [${args.map(toml).join(", ")}]`] : []),
    ...Object.entries(stdioEnv).map(([k, v]) => `# env = { ${k} = ${toml(v)} }`),
  ].join("\n");
  const clients: { id: string; name: string; body: string }[] = [
    {
      id: "claude-code",
      name: "Claude Code",
      body:
        snippet(
          "Over HTTP (this server)",
          e(`claude mcp add --transport http contree ${url}`) + e(headerFlag),
        ) +
        snippet(
          "Or over stdio (Claude Code starts its own server)",
          e(`claude mcp add contree ${envFlags}-- ${options.command.map(shellQuote).join(" ")}`),
        ),
    },
    {
      id: "codex",
      name: "Codex",
      body: snippet(
        "~/.codex/config.toml",
        e(
          `[mcp_servers.contree]\nurl = "${url}"${auth ? `\nbearer_token_env_var = "CONTREE_MCP_HTTP_TOKEN"` : ""}\n\n` +
            codexStdio,
        ),
      ),
    },
    {
      id: "claude-desktop",
      name: "Claude Desktop",
      body:
        snippet("claude_desktop_config.json (stdio)", json({ mcpServers: { contree: stdioJson } })) +
        `<p class="muted">Claude Desktop starts local servers from this file. To use this HTTP server instead, add it under Settings → Connectors (it must be reachable over HTTPS), or bridge it:</p>` +
        snippet(
          "claude_desktop_config.json (bridge to this server)",
          json({
            mcpServers: {
              contree: {
                command: "npx",
                args: [
                  "-y",
                  "mcp-remote",
                  URL_MARK,
                  ...(auth ? ["--header", "Authorization:Bearer ${CONTREE_MCP_HTTP_TOKEN}"] : []),
                ],
                ...(auth && { env: { CONTREE_MCP_HTTP_TOKEN: "<the --http-token>" } }),
              },
            },
          }),
        ),
    },
    {
      id: "cursor",
      name: "Cursor",
      body: snippet(
        ".cursor/mcp.json",
        json({
          mcpServers: {
            contree: {
              url: URL_MARK,
              ...(auth && { headers: { Authorization: "Bearer ${env:CONTREE_MCP_HTTP_TOKEN}" } }),
            },
          },
        }),
      ),
    },
    {
      id: "vscode",
      name: "VS Code",
      body: snippet(
        ".vscode/mcp.json",
        json({
          ...(auth && {
            inputs: [
              {
                type: "promptString",
                id: "contree-http-token",
                description: "contree-mcp HTTP token",
                password: true,
              },
            ],
          }),
          servers: {
            contree: {
              type: "http",
              url: URL_MARK,
              ...(auth && { headers: { Authorization: "Bearer ${input:contree-http-token}" } }),
            },
          },
        }),
      ),
    },
  ];
  const tabs = clients
    .map(
      (c, i) =>
        `<button type="button" role="tab" id="tab-${c.id}" aria-controls="panel-${c.id}" aria-selected="${i === 0}">${e(c.name)}</button>`,
    )
    .join("");
  const panels = clients
    .map(
      (c, i) =>
        `<div role="tabpanel" id="panel-${c.id}" aria-labelledby="tab-${c.id}"${i === 0 ? "" : " hidden"}>${c.body}</div>`,
    )
    .join("");
  const tokenNote = auth
    ? `<p class="note">This server requires <code>Authorization: Bearer &lt;token&gt;</code> on <code>/mcp</code>. The snippets read the token from <code>CONTREE_MCP_HTTP_TOKEN</code> (or prompt for it); put the value given to <code>--http-token</code> there.</p>`
    : "";
  return `<div class="tabs" role="tablist">${tabs}</div>${panels}${tokenNote}`;
}

function section(id: string, title: string, count: number, body: string): string {
  return `<section id="${id}" class="ref"><h2>${escapeHtml(title)} <span class="count" data-total="${count}">${count}</span></h2>${body}</section>`;
}

/** Builds the page once; `render` only puts in the URL the client used. */
export function renderPage(data: PageData & PageOptions): PageTemplate {
  const nav: string[] = [`<a href="#setup">Setup</a>`, `<a href="#instructions">Instructions</a>`];
  const refs: string[] = [];
  const add = (id: string, title: string, items: string[]) => {
    if (items.length === 0) return;
    nav.push(`<a href="#${id}">${escapeHtml(title)}</a>`);
    refs.push(section(id, title, items.length, items.join("\n")));
  };
  add("tools", "Tools", data.tools.map(toolCard));
  add("resource-templates", "Resource templates", data.resourceTemplates.map(templateCard));
  add("resources", "Resources", data.resources.map(resourceCard));
  add("prompts", "Prompts", data.prompts.map(promptCard));
  add("guide", "Guide", data.guide.map(guideCard));

  const main =
    `<header class="top"><div><h1>${escapeHtml(data.serverTitle)} <span class="muted">${escapeHtml(data.serverName)} ${escapeHtml(data.version)}</span></h1>` +
    `<p class="lead">An MCP server that runs commands in sandboxes started from immutable, branchable images. ` +
    `Backend: <strong>${escapeHtml(data.backend)}</strong>. MCP endpoint: <code class="url">${URL_MARK}</code> (Streamable HTTP).</p></div></header>` +
    `<nav class="toc">${nav.join("")}</nav>` +
    `<section id="setup"><h2>Setup</h2><p>Connect your client to this server (HTTP), or let it start its own server over stdio.</p>${setupSection(data)}</section>` +
    `<section id="instructions"><h2>Instructions</h2><p class="muted">What the server tells the model when it connects.</p><div class="md box">${markdown(data.instructions)}</div></section>` +
    `<div class="filter"><label for="filter">Filter</label><input id="filter" type="search" placeholder="Filter tools, templates, prompts, guide…" autocomplete="off"><span id="filter-count" class="muted" aria-live="polite"></span></div>` +
    refs.join("\n") +
    `<footer class="muted">Generated from the live registry of ${escapeHtml(data.serverName)} ${escapeHtml(data.version)}. Health: <a href="/healthz">/healthz</a>.</footer>`;

  const html = SHELL.replace("<!--title-->", escapeHtml(`${data.serverTitle} · ${data.serverName}`)).replace(
    "<!--main-->",
    () => main,
  );
  return {
    render(mcpUrl: string): string {
      return html.replaceAll(URL_MARK, escapeHtml(mcpUrl));
    },
  };
}
