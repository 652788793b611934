import { UserError } from "../errors.ts";
import * as z from "zod";
import DESCRIPTION from "./list-operations.md" with { type: "text" };
import { defineTool } from "./tool.ts";

const STATUSES = ["PENDING", "ASSIGNED", "EXECUTING", "SUCCESS", "FAILED", "CANCELLED"];

export const listOperations = defineTool({
  name: "list_operations",
  title: "List operations",
  description: DESCRIPTION,
  input: z.object({
    limit: z.number().int().min(1).max(1000).default(100).describe("How many to return (1-1000)"),
    offset: z
      .number()
      .int()
      .min(0)
      .default(0)
      .describe("Skip this many (pass next_offset for the next page)"),
    status: z
      .string()
      .nullish()
      .describe("Only this status: PENDING, ASSIGNED, EXECUTING, SUCCESS, FAILED or CANCELLED (any case)"),
    // Named `type`, not `kind`: OpenHands reserves `kind` in the classes it generates from tool schemas.
    type: z.enum(["instance", "image_import"]).nullish().describe("instance (runs) or image_import"),
    since: z.string().nullish().describe("Only operations created after this: ISO 8601 or relative like 2h"),
    until: z.string().nullish().describe("Only operations created before this"),
  }),
  output: z.object({
    operations: z.array(
      z.object({
        operation_id: z.string(),
        type: z.enum(["instance", "image_import"]),
        status: z.string(),
        error: z.string().nullable(),
        created_at: z.string(),
      }),
    ),
    count: z.number().int(),
    next_offset: z.number().int().nullable(),
  }),
  annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
  async run(args, call) {
    const status = args.status ? args.status.trim().toUpperCase() : undefined;
    if (status && !STATUSES.includes(status)) {
      throw new UserError(`Unknown status '${args.status}': use one of ${STATUSES.join(", ")} (any case).`);
    }
    const operations = await call.deps.backend.listOperations({
      limit: args.limit,
      offset: args.offset,
      status,
      kind: args.type ?? undefined,
      since: args.since || undefined,
      until: args.until || undefined,
    });
    return {
      operations: operations.map((op) => ({
        operation_id: op.id,
        type: op.kind,
        status: op.status,
        error: op.error,
        created_at: op.createdAt,
      })),
      count: operations.length,
      next_offset: operations.length >= args.limit ? args.offset + operations.length : null,
    };
  },
  summary(result) {
    if (!result.count) return "No operations match.";
    const rows = result.operations.map(
      (op) =>
        `${op.operation_id}  ${op.type}  ${op.status}  ${op.created_at}${op.error ? `  error: ${op.error}` : ""}`,
    );
    return `${result.count} operation(s):\n${rows.join("\n")}`;
  },
});
