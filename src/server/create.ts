import { McpServer } from "@modelcontextprotocol/server";
import { registerGuide } from "../guide/index.ts";
import { registerPrompts } from "../prompts/index.ts";
import { registerResources } from "../resources/index.ts";
import { registerTools } from "../tools/index.ts";
import { withPrefix, type ToolDeps } from "../tools/tool.ts";
import { VERSION } from "../version.ts";
import INSTRUCTIONS from "./instructions.md" with { type: "text" };

export function serverInstructions(prefix: string): string {
  return withPrefix(INSTRUCTIONS, prefix).trim();
}

/**
 * Builds one MCP server instance over shared dependencies. The SDK asks for a factory: stdio pins one instance per
 * connection, HTTP may build one per request, and all of them share the backend and caches in `deps`.
 */
export function createServerFactory(deps: ToolDeps): () => McpServer {
  const instructions = serverInstructions(deps.config.toolPrefix);
  return () => {
    const server = new McpServer(
      { name: "contree-mcp", title: "ConTree sandboxes", version: VERSION },
      { capabilities: { tools: {}, resources: {}, prompts: {}, completions: {} }, instructions },
    );
    registerTools(server, deps);
    registerResources(server, deps);
    registerGuide(server, deps);
    registerPrompts(server, deps);
    return server;
  };
}
