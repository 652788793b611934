import { ResourceTemplate, type McpServer } from "@modelcontextprotocol/server";
import { lineageOf } from "../tools/get-lineage.ts";
import type { ToolDeps } from "../tools/tool.ts";
import { completeImage, resourceCall, variable } from "./_shared.ts";

/** contree://image/{image}/lineage: the same JSON as the get_lineage tool. */
export function registerLineageResource(server: McpServer, deps: ToolDeps): void {
  server.registerResource(
    "image_lineage",
    new ResourceTemplate("contree://image/{image}/lineage", {
      list: undefined,
      complete: { image: completeImage(deps) },
    }),
    {
      title: "Lineage of an image",
      description:
        "Parent, ancestors to the root, direct children, and the command and operation that made each image (JSON). {image} is a UUID or tag:NAME (percent-encoded).",
      mimeType: "application/json",
    },
    async (uri, variables, ctx) => {
      const lineage = await lineageOf(resourceCall(deps, ctx.mcpReq.signal), variable(variables, "image"));
      return {
        contents: [{ uri: uri.href, mimeType: "application/json", text: JSON.stringify(lineage, null, 2) }],
      };
    },
  );
}
