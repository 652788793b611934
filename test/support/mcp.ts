import { Client, InMemoryTransport } from "@modelcontextprotocol/client";
import type { CallToolResult } from "@modelcontextprotocol/client";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openApp, type App } from "../../src/app.ts";
import type { Backend } from "../../src/backend/types.ts";
import { resolveConfig, type OptionName } from "../../src/config.ts";
import { createServerFactory } from "../../src/server/create.ts";

export interface TestSession {
  client: Client;
  app: App;
  dir: string;
  /** Calls a tool by its unprefixed name. */
  call(
    name: string,
    args?: Record<string, unknown>,
    options?: { onprogress?: (p: unknown) => void; signal?: AbortSignal },
  ): Promise<CallToolResult>;
  close(): Promise<void>;
}

/**
 * A real MCP client connected to a real server over an in-memory pair, with a fresh cache directory.
 * `backend` is a real backend (the cloud client against a fake ConTree server, or the local backend).
 */
export async function connect(
  backend: Backend,
  flags: Partial<Record<OptionName, string>> = {},
): Promise<TestSession> {
  const dir = mkdtempSync(join(tmpdir(), "contree-mcp-session-"));
  const config = resolveConfig({
    cache_general: join(dir, "cache.db"),
    cache_files: join(dir, "files.db"),
    local_root: join(dir, "local"),
    ...flags,
  });
  const app = await openApp(config, backend);
  app.deps.pollIntervalMs = { min: 5, max: 50 };
  const server = createServerFactory(app.deps)();
  const [clientTransport, serverTransport] = InMemoryTransport.createLinkedPair();
  await server.connect(serverTransport);
  const client = new Client({ name: "contree-mcp-tests", version: "0" });
  await client.connect(clientTransport);
  const prefix = config.toolPrefix;
  return {
    client,
    app,
    dir,
    call: (name, args = {}, options = {}) =>
      client.callTool({ name: `${prefix}${name}`, arguments: args }, options) as Promise<CallToolResult>,
    async close() {
      await client.close();
      await server.close();
      await app.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The text of a result's first content block. */
export function textOf(result: CallToolResult): string {
  const first = result.content[0];
  return first && first.type === "text" ? first.text : "";
}
