import type { McpServer } from "@modelcontextprotocol/server";
import { cancelOperation } from "./cancel-operation.ts";
import { download } from "./download.ts";
import { getGuide } from "./get-guide.ts";
import { getImage } from "./get-image.ts";
import { getLineage } from "./get-lineage.ts";
import { getOperation } from "./get-operation.ts";
import { importImage } from "./import-image.ts";
import { listFiles } from "./list-files.ts";
import { listImages } from "./list-images.ts";
import { listOperations } from "./list-operations.ts";
import { registryAuth } from "./registry-auth.ts";
import { registryTokenObtain } from "./registry-token-obtain.ts";
import { run } from "./run.ts";
import { setTag } from "./set-tag.ts";
import { readFile } from "./read-file.ts";
import { rsync } from "./rsync.ts";
import { registerTool, type ToolDefinition, type ToolDeps } from "./tool.ts";
import { upload } from "./upload.ts";
import { waitOperations } from "./wait-operations.ts";

/** Every tool, in the order clients list them. The only place tools are registered. */
export const TOOLS: ToolDefinition[] = [
  run,
  rsync,
  upload,
  download,
  listFiles,
  readFile,
  getLineage,
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
  getGuide,
] as unknown as ToolDefinition[];

export function registerTools(server: McpServer, deps: ToolDeps): void {
  for (const tool of TOOLS) registerTool(server, tool, deps);
}
