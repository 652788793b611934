import type { McpServer } from "@modelcontextprotocol/server";
import type { ToolDeps } from "../tools/tool.ts";
import { registerImportOperationResource } from "./import-operation.ts";
import { registerInstanceOperationResource } from "./instance-operation.ts";
import { registerLineageResource } from "./lineage.ts";
import { registerLsResource } from "./ls.ts";
import { registerReadResource } from "./read.ts";

/** Registers every resource template (one file each in this directory). The only place they are registered. */
export function registerResources(server: McpServer, deps: ToolDeps): void {
  registerReadResource(server, deps);
  registerLsResource(server, deps);
  registerLineageResource(server, deps);
  registerInstanceOperationResource(server, deps);
  registerImportOperationResource(server, deps);
}
