import type { McpServer } from "@modelcontextprotocol/server";
import type { ToolDeps } from "../tools/tool.ts";
import { registerOperationResource } from "./_operation.ts";

/** contree://operations/instance/{operation_id}: a run. */
export function registerInstanceOperationResource(server: McpServer, deps: ToolDeps): void {
  registerOperationResource(server, deps, "instance", "instance", "Run operation");
}
