import type { McpServer } from "@modelcontextprotocol/server";
import { cancelOperation } from "./cancel-operation.ts";
import { getImage } from "./get-image.ts";
import { getOperation } from "./get-operation.ts";
import { importImage } from "./import-image.ts";
import { listImages } from "./list-images.ts";
import { listOperations } from "./list-operations.ts";
import { registryAuth } from "./registry-auth.ts";
import { registryTokenObtain } from "./registry-token-obtain.ts";
import { run } from "./run.ts";
import { setTag } from "./set-tag.ts";
import { registerTool, type ToolDefinition, type ToolDeps } from "./tool.ts";
import { waitOperations } from "./wait-operations.ts";

/** Every tool, in the order clients list them. The only place tools are registered. */
export const TOOLS: ToolDefinition[] = [
  run,
  listImages,
  getImage,
  setTag,
  importImage,
  getOperation,
  listOperations,
  waitOperations,
  cancelOperation,
  registryTokenObtain,
  registryAuth,
] as unknown as ToolDefinition[];

export function registerTools(server: McpServer, deps: ToolDeps): void {
  for (const tool of TOOLS) registerTool(server, tool, deps);
}
