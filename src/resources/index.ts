import type { McpServer } from "@modelcontextprotocol/server";
import type { ToolDeps } from "../tools/tool.ts";

/** Registers every resource template (one file each in this directory). The only place they are registered. */
export function registerResources(_server: McpServer, _deps: ToolDeps): void {}
