import type { McpServer } from "@modelcontextprotocol/server";
import type { ToolDeps } from "../tools/tool.ts";

/** Registers the guide sections as resources contree://guide/{section}. */
export function registerGuide(_server: McpServer, _deps: ToolDeps): void {}
