import {
  ResourceTemplate,
  type McpServer,
  type ReadResourceResult,
  type Variables,
} from "@modelcontextprotocol/server";
import { listImageDirectory, listingText } from "../tools/list-files.ts";
import type { ToolDeps } from "../tools/tool.ts";
import { completeImage, resourceCall, variable } from "./_shared.ts";

/**
 * contree://image/{image}/ls/{+path}: an `ls -l`-like listing. Clients normalise `ls/.` to `ls/`, which `{+path}`
 * cannot match (it needs one character), so the root has a template of its own.
 */
export function registerLsResource(server: McpServer, deps: ToolDeps): void {
  const list = async (
    uri: URL,
    variables: Variables,
    path: string,
    signal: AbortSignal,
  ): Promise<ReadResourceResult> => {
    const listing = await listImageDirectory(resourceCall(deps, signal), variable(variables, "image"), path);
    return { contents: [{ uri: uri.href, mimeType: "text/plain", text: listingText(listing) }] };
  };
  const description =
    "A directory inside an image, listed like ls -l without starting a sandbox. {image} is a UUID or tag:NAME (percent-encoded).";
  server.registerResource(
    "image_ls",
    new ResourceTemplate("contree://image/{image}/ls/{+path}", {
      list: undefined,
      complete: { image: completeImage(deps) },
    }),
    {
      title: "Directory in an image",
      description: `${description} {+path} is the directory.`,
      mimeType: "text/plain",
    },
    (uri, variables, ctx) => list(uri, variables, variable(variables, "path"), ctx.mcpReq.signal),
  );
  server.registerResource(
    "image_ls_root",
    new ResourceTemplate("contree://image/{image}/ls/", {
      list: undefined,
      complete: { image: completeImage(deps) },
    }),
    { title: "Root directory of an image", description, mimeType: "text/plain" },
    (uri, variables, ctx) => list(uri, variables, "/", ctx.mcpReq.signal),
  );
}
