import * as z from "zod";
import { isTerminal } from "../backend/types.ts";
import { waitForOperation } from "../backend/wait.ts";
import DESCRIPTION from "./cancel-operation.md" with { type: "text" };
import { fetchOperation, recordFinished } from "./_operation.ts";
import { defineTool } from "./tool.ts";

export const cancelOperation = defineTool({
  name: "cancel_operation",
  title: "Cancel an operation",
  description: DESCRIPTION,
  input: z.object({
    operation_id: z.string().min(1).describe("Operation id from {{p}}run or {{p}}import_image"),
  }),
  output: z.object({
    operation_id: z.string(),
    cancelled: z.boolean().describe("true when the operation is now CANCELLED"),
    status: z.string(),
    message: z.string(),
  }),
  annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: false },
  async run(args, call) {
    const id = args.operation_id.trim();
    const before = await fetchOperation(call, id);
    if (isTerminal(before.status)) {
      return {
        operation_id: id,
        cancelled: before.status === "CANCELLED",
        status: before.status,
        message: `Operation already finished with ${before.status}; nothing to cancel.`,
      };
    }
    await call.deps.backend.cancelOperation(id);
    // Cancelling takes effect asynchronously; a short wait usually sees the final status.
    const { operation } = await waitForOperation(call.deps.backend, id, {
      timeoutMs: 3000,
      signal: call.signal,
    });
    recordFinished(call, operation);
    const cancelled = operation.status === "CANCELLED";
    return {
      operation_id: id,
      cancelled,
      status: operation.status,
      message: cancelled
        ? "Cancelled."
        : isTerminal(operation.status)
          ? `It finished with ${operation.status} before the cancel took effect.`
          : `Cancel requested; status is still ${operation.status}. Check again with ${call.tool("get_operation")}.`,
    };
  },
  summary: (result) => `operation ${result.operation_id}: ${result.status}. ${result.message}`,
});
