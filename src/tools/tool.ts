import type { McpServer, ServerContext, CallToolResult } from "@modelcontextprotocol/server";
import type * as z from "zod";
import type { Backend } from "../backend/types.ts";
import type { GeneralCache } from "../cache/general.ts";
import type { Config } from "../config.ts";
import { BackendError, UserError } from "../errors.ts";
import { log, redact } from "../log.ts";
import type { CredentialStore } from "../registry/credentials.ts";
import type { FileCache } from "../sync/cache.ts";

/** What tools get to work with. Nothing here knows HTTP or namespaces. */
export interface ToolDeps {
  backend: Backend;
  cache: GeneralCache;
  credentials: CredentialStore;
  config: Config;
  /** File hashes, uploaded blobs and directory states of rsync; opened by openApp. */
  fileCache?: FileCache;
  /** Used by tests to shorten waits; production leaves it unset. */
  pollIntervalMs?: { min: number; max: number };
  /** Used by tests: how long run blocks for a client that takes no progress (production: 50 s). */
  silentWaitMs?: number;
}

export interface ToolCall {
  deps: ToolDeps;
  /** Aborts when the client cancels the call or goes away. */
  signal: AbortSignal;
  /** Reports progress to the client, when it asked for it (throttled; a heartbeat repeats the last message). */
  progress(message: string): void;
  /**
   * The client asked for progress, so heartbeats keep it waiting (clients reset their idle timeout on progress).
   * Without it, a long blocking wait risks the client's own timeout (Codex: 60 s), whose cancel would stop the work.
   */
  hearsProgress: boolean;
  /** The registered (prefixed) name of a tool, for messages that tell the model what to call next. */
  tool(name: string): string;
}

export interface Annotations {
  readOnlyHint: boolean;
  destructiveHint: boolean;
  idempotentHint: boolean;
  /**
   * True when the tool reaches past the backend's images and operations: commands that may use a network (run),
   * registries (import_image, registry_auth), or this machine's files (upload, rsync, download).
   */
  openWorldHint: boolean;
}

export interface ToolDefinition<I extends z.ZodObject = z.ZodObject, O extends z.ZodObject = z.ZodObject> {
  /** Without the prefix. */
  name: string;
  title: string;
  /** Markdown; `{{p}}` stands for the tool prefix. */
  description: string;
  input: I;
  output: O;
  annotations: Annotations;
  run(args: z.output<I>, call: ToolCall): Promise<z.output<O>>;
  /** The concise text that mirrors the structured result (some clients show only this). */
  summary(result: z.output<O>, call: ToolCall): string;
}

export function defineTool<I extends z.ZodObject, O extends z.ZodObject>(
  definition: ToolDefinition<I, O>,
): ToolDefinition<I, O> {
  return definition;
}

export function withPrefix(text: string, prefix: string): string {
  return text.replaceAll("{{p}}", prefix);
}

const HEARTBEAT_MS = 5_000;

/** Turns what the model can act on into the text of an isError result. */
export function errorText(error: unknown, call: Pick<ToolCall, "tool">): string | null {
  if (error instanceof UserError) return error.message;
  if (!(error instanceof BackendError)) return null;
  const where =
    error.method && error.url
      ? ` (${error.method} ${error.url}${error.status ? ` → ${error.status}` : ""})`
      : "";
  switch (error.code) {
    case "unauthorized":
      return `The backend rejected the credentials${where}: ${error.detail}. Check the ConTree token (--token, CONTREE_MCP_TOKEN or token in mcp.ini); it may have expired.`;
    case "forbidden":
      return `The backend refused this${where}: ${error.detail}. The token lacks the permission for it.`;
    case "not_found":
      return `Not found${where}: ${error.detail}. Check the id; ${call.tool("list_images")} and ${call.tool("list_operations")} list what exists.`;
    case "invalid":
      return `The backend rejected the request${where}: ${error.detail}. Change the arguments and call again.`;
    case "conflict":
      return `Conflict${where}: ${error.detail}.`;
    case "rate_limited":
      return `The backend is busy or rate limited${where}: ${error.detail}. It was retried; wait a little and call again.`;
    case "unavailable":
      return `The backend failed${where}: ${error.detail}. It was retried; try again later.`;
    case "unreachable":
      return `Cannot reach the backend${where}: ${error.detail}. Check the URL (--url) and the network.`;
    case "protocol":
      return `The backend sent a reply this server does not understand${where}: ${error.detail}.`;
  }
}

interface JsonSchemaConverter {
  input(options: { target: string }): Record<string, unknown>;
  output(options: { target: string }): Record<string, unknown>;
}

/** The JSON Schema target the MCP SDK asks for; scripts/build.ts converts to it at build time. */
export const JSON_SCHEMA_TARGET = "draft-2020-12";

/** Every tool's schemas as JSON Schema, converted by scripts/build.ts; undefined when run from source. */
declare const CONTREE_MCP_TOOL_JSON_SCHEMAS:
  | Record<string, { input: Record<string, unknown>; output: Record<string, unknown> }>
  | undefined;
const BUILT_JSON_SCHEMAS =
  typeof CONTREE_MCP_TOOL_JSON_SCHEMAS === "object" ? CONTREE_MCP_TOOL_JSON_SCHEMAS : {};

function toJsonSchema(schema: z.ZodType, io: "input" | "output"): Record<string, unknown> {
  return (schema["~standard"] as unknown as { jsonSchema: JsonSchemaConverter }).jsonSchema[io]({
    target: JSON_SCHEMA_TARGET,
  });
}

/** A tool's input and output schemas as JSON Schema, for scripts/build.ts to bake into the binary. */
export function toolJsonSchemas(tool: ToolDefinition): {
  input: Record<string, unknown>;
  output: Record<string, unknown>;
} {
  return { input: toJsonSchema(tool.input, "input"), output: toJsonSchema(tool.output, "output") };
}

const memoised = new WeakMap<object, Map<string, unknown>>();

/**
 * The same schema, whose JSON Schema is converted once per process and prefix, or not at all in the compiled binary
 * (where the build converted it). The SDK converts every tool's schemas on each tools/list, and HTTP mode builds a
 * server per request: conversion was most of a tools/list, and a third of the binary's time to its first one.
 * Descriptions may name other tools as `{{p}}name`; the prefix is filled in here.
 */
export function withMemoisedJsonSchema<S extends z.ZodType>(
  schema: S,
  prefix: string,
  built?: Record<string, unknown>,
): S {
  let byPrefix = memoised.get(schema);
  if (!byPrefix) memoised.set(schema, (byPrefix = new Map()));
  const known = byPrefix.get(prefix);
  if (known) return known as S;
  const standard = schema["~standard"] as S["~standard"] & { jsonSchema: JsonSchemaConverter };
  const results = new Map<string, string>();
  const once = (io: "input" | "output", options: { target: string }): Record<string, unknown> => {
    const key = `${io}:${options.target}`;
    let text = results.get(key);
    if (text === undefined) {
      const converted =
        (options.target === JSON_SCHEMA_TARGET ? built : undefined) ?? standard.jsonSchema[io](options);
      text = withPrefix(JSON.stringify(converted), prefix);
      results.set(key, text);
    }
    return JSON.parse(text) as Record<string, unknown>;
  };
  const wrapped = {
    "~standard": {
      version: standard.version,
      vendor: standard.vendor,
      validate: standard.validate,
      jsonSchema: {
        input: (options: { target: string }) => once("input", options),
        output: (options: { target: string }) => once("output", options),
      },
    },
  } as unknown as S;
  byPrefix.set(prefix, wrapped);
  return wrapped;
}

export function registerTool(server: McpServer, definition: ToolDefinition, deps: ToolDeps): void {
  const prefix = deps.config.toolPrefix;
  const tool = (name: string) => `${prefix}${name}`;
  server.registerTool(
    tool(definition.name),
    {
      title: definition.title,
      description: withPrefix(definition.description, prefix).trim(),
      inputSchema: withMemoisedJsonSchema(
        definition.input,
        prefix,
        BUILT_JSON_SCHEMAS[definition.name]?.input,
      ),
      outputSchema: withMemoisedJsonSchema(
        definition.output,
        prefix,
        BUILT_JSON_SCHEMAS[definition.name]?.output,
      ),
      annotations: { title: definition.title, ...definition.annotations },
    },
    async (args: unknown, ctx: ServerContext): Promise<CallToolResult> => {
      const reporter = progressReporter(ctx);
      const call: ToolCall = {
        deps,
        signal: ctx.mcpReq.signal,
        progress: reporter.report,
        hearsProgress: ctx.mcpReq._meta?.progressToken !== undefined,
        tool,
      };
      try {
        const result = await definition.run(args as never, call);
        return {
          content: [{ type: "text", text: definition.summary(result as never, call) }],
          structuredContent: result as Record<string, unknown>,
        };
      } catch (error) {
        const found = errorText(error, call);
        // Whatever a backend or a user error quotes, registered secrets stay out of what the model reads.
        const text = found === null ? null : redact(found);
        if (text === null) {
          log.error(`tool ${tool(definition.name)} failed:`, error);
          throw error;
        }
        log.debug(`tool ${tool(definition.name)}: ${text}`);
        return { content: [{ type: "text", text }], isError: true };
      } finally {
        reporter.stop();
      }
    },
  );
}

function progressReporter(ctx: ServerContext): { report: (message: string) => void; stop: () => void } {
  const token = ctx.mcpReq._meta?.progressToken;
  if (token === undefined) return { report: () => {}, stop: () => {} };
  let count = 0;
  let last = "";
  let sentAt = 0;
  const send = (message: string) => {
    count += 1;
    sentAt = Date.now();
    ctx.mcpReq
      .notify({
        method: "notifications/progress",
        params: { progressToken: token, progress: count, message },
      })
      .catch((error: unknown) => log.debug("progress notification failed:", error));
  };
  // Clients reset their idle timeout on progress; a quiet wait still says it is alive at least every 5 s.
  const heartbeat = setInterval(() => {
    if (last && Date.now() - sentAt >= HEARTBEAT_MS - 50) send(last);
  }, HEARTBEAT_MS);
  return {
    report(message: string) {
      if (message === last && Date.now() - sentAt < 1_000) return;
      last = message;
      send(message);
    },
    stop() {
      clearInterval(heartbeat);
    },
  };
}
