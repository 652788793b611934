import * as z from "zod";
import type { Operation } from "../backend/types.ts";
import { isTerminal } from "../backend/types.ts";
import { waitForOperation } from "../backend/wait.ts";
import { UserError } from "../errors.ts";
import DESCRIPTION from "./wait-operations.md" with { type: "text" };
import { errorText } from "./tool.ts";
import {
  fetchOperation,
  operationSchema,
  operationSummary,
  operationView,
  recordFinished,
} from "./_operation.ts";
import { defineTool } from "./tool.ts";

export const waitOperations = defineTool({
  name: "wait_operations",
  title: "Wait for operations",
  description: DESCRIPTION,
  input: z.object({
    operation_ids: z
      .array(z.string().min(1))
      .min(1)
      .max(1000)
      .describe("Operation ids from {{p}}run or {{p}}import_image with wait=false"),
    timeout: z
      .number()
      .positive()
      .max(3600)
      .default(50)
      .describe(
        "Seconds to wait in total; what is not done by then is reported in still_running (nothing is cancelled)",
      ),
    mode: z
      .enum(["all", "any"])
      .default("all")
      .describe("all: wait for every operation; any: return when the first one is done"),
    truncate_output_at: z
      .number()
      .int()
      .min(100)
      .default(4000)
      .describe("Bytes of stdout/stderr shown per operation"),
  }),
  output: z.object({
    results: z.record(z.string(), operationSchema).describe("operation_id -> its state and result"),
    completed: z.array(z.string()).describe("Ids that are done, in the order they finished"),
    still_running: z.array(z.string()).describe("Ids still running when the wait ended; they keep running"),
    errors: z
      .record(z.string(), z.string())
      .describe("operation_id -> why it could not be read (e.g. unknown id)"),
    timed_out: z.boolean().describe("The timeout ended the wait before the mode was satisfied"),
  }),
  annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
  async run(args, call) {
    const ids = [...new Set(args.operation_ids.map((id) => id.trim()))];
    const controller = new AbortController();
    const stop = () => controller.abort();
    call.signal.addEventListener("abort", stop, { once: true });
    const latest = new Map<string, Operation>();
    const completed: string[] = [];
    const errors: Record<string, string> = {};
    const report = () => call.progress(`${completed.length} of ${ids.length} done`);
    try {
      await Promise.all(
        ids.map(async (id) => {
          try {
            const first = await fetchOperation(call, id);
            latest.set(id, first);
            if (!isTerminal(first.status)) {
              const waited = await waitForOperation(call.deps.backend, id, {
                timeoutMs: args.timeout * 1000,
                signal: controller.signal,
                minIntervalMs: call.deps.pollIntervalMs?.min,
                maxIntervalMs: call.deps.pollIntervalMs?.max,
                onUpdate: (op) => latest.set(id, op),
              });
              latest.set(id, waited.operation);
              recordFinished(call, waited.operation);
            }
            if (isTerminal(latest.get(id)!.status)) {
              completed.push(id);
              report();
              if (args.mode === "any") controller.abort();
            }
          } catch (error) {
            const text = errorText(error, call);
            if (text === null) throw error;
            errors[id] = text;
          }
        }),
      );
    } finally {
      call.signal.removeEventListener("abort", stop);
    }
    if (Object.keys(errors).length === ids.length) {
      throw new UserError(
        Object.entries(errors)
          .map(([id, text]) => `${id}: ${text}`)
          .join("\n"),
      );
    }
    const results: Record<string, z.output<typeof operationSchema>> = {};
    for (const [id, op] of latest) results[id] = operationView(op, args.truncate_output_at, call);
    const stillRunning = ids.filter((id) => latest.has(id) && !completed.includes(id));
    const satisfied = args.mode === "any" ? completed.length > 0 : stillRunning.length === 0;
    return {
      results,
      completed,
      still_running: stillRunning,
      errors,
      timed_out: !satisfied && !call.signal.aborted,
    };
  },
  summary(result) {
    const parts = [
      `${result.completed.length} done, ${result.still_running.length} still running${result.timed_out ? " (wait timed out; nothing was cancelled)" : ""}`,
    ];
    for (const id of [...result.completed, ...result.still_running]) {
      const view = result.results[id];
      if (view) parts.push(operationSummary(view));
    }
    for (const [id, text] of Object.entries(result.errors)) parts.push(`${id}: ${text}`);
    return parts.join("\n\n");
  },
});
