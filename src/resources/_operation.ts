import { ResourceTemplate, type McpServer } from "@modelcontextprotocol/server";
import type { OperationKind } from "../backend/types.ts";
import { UserError } from "../errors.ts";
import { fetchOperation, operationView } from "../tools/_operation.ts";
import type { ToolDeps } from "../tools/tool.ts";
import { resourceCall, variable } from "./_shared.ts";

/** Output shown per stream in a resource; the get_operation tool pages through the rest. */
const SHOWN_BYTES = 8000;

export function registerOperationResource(
  server: McpServer,
  deps: ToolDeps,
  kind: OperationKind,
  path: "instance" | "import",
  title: string,
): void {
  server.registerResource(
    `${path}_operation`,
    new ResourceTemplate(`contree://operations/${path}/{operation_id}`, { list: undefined }),
    {
      title,
      description: `The state and result of ${kind === "instance" ? "a run" : "an image import"} (JSON, the same fields as the get_operation tool).`,
      mimeType: "application/json",
    },
    async (uri, variables, ctx) => {
      const call = resourceCall(deps, ctx.mcpReq.signal);
      const id = variable(variables, "operation_id");
      const operation = await fetchOperation(call, id);
      if (operation.kind !== kind) {
        const other = operation.kind === "instance" ? "instance" : "import";
        throw new UserError(
          `Operation ${id} is not ${kind === "instance" ? "an instance" : "an import"} operation (its kind is ${operation.kind}); read contree://operations/${other}/${id}.`,
        );
      }
      const view = operationView(operation, SHOWN_BYTES, call);
      return {
        contents: [{ uri: uri.href, mimeType: "application/json", text: JSON.stringify(view, null, 2) }],
      };
    },
  );
}
