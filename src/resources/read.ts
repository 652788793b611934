import { ResourceTemplate, type McpServer } from "@modelcontextprotocol/server";
import { DEFAULT_MAX_BYTES, readImageFile } from "../tools/read-file.ts";
import type { ToolDeps } from "../tools/tool.ts";
import { completeImage, resourceCall, variable } from "./_shared.ts";

/** contree://image/{image}/read/{+path}: a file's text (or bytes, for binary) up to the read_file cap. */
export function registerReadResource(server: McpServer, deps: ToolDeps): void {
  server.registerResource(
    "image_file",
    new ResourceTemplate("contree://image/{image}/read/{+path}", {
      list: undefined,
      complete: { image: completeImage(deps) },
    }),
    {
      title: "File in an image",
      description:
        "A file inside an image, read without starting a sandbox. {image} is a UUID or tag:NAME (percent-encoded), {+path} the file path. Text up to 64 KB; beyond that use the read_file tool with offset or line_start.",
      mimeType: "text/plain",
    },
    async (uri, variables, ctx) => {
      const part = await readImageFile(
        resourceCall(deps, ctx.mcpReq.signal),
        variable(variables, "image"),
        variable(variables, "path"),
        {
          maxBytes: DEFAULT_MAX_BYTES,
        },
      );
      if (part.encoding === "base64") {
        return { contents: [{ uri: uri.href, mimeType: "application/octet-stream", blob: part.content }] };
      }
      const more = part.next ? `\n[… ${part.size ?? "more"} bytes in all; read on with ${part.next}]` : "";
      return { contents: [{ uri: uri.href, mimeType: "text/plain", text: part.content + more }] };
    },
  );
}
