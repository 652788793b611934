import type { McpServer } from "@modelcontextprotocol/server";
import type { ToolDeps } from "../tools/tool.ts";
import { registerOperationResource } from "./_operation.ts";

/** contree://operations/import/{operation_id}: an image import. */
export function registerImportOperationResource(server: McpServer, deps: ToolDeps): void {
  registerOperationResource(server, deps, "image_import", "import", "Import operation");
}
