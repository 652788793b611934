import * as z from "zod";
import DESCRIPTION from "./get-operation.md" with { type: "text" };
import {
  fetchOperation,
  operationSchema,
  operationSummary,
  operationView,
  showStream,
} from "./_operation.ts";
import { defineTool } from "./tool.ts";

const pageSchema = z.object({
  stream: z.enum(["stdout", "stderr"]),
  offset: z.number().int(),
  length: z.number().int().describe("Bytes in this page"),
  total_bytes: z.number().int().describe("Bytes of this stream the backend kept"),
  next_offset: z.number().int().nullable().describe("Offset of the next page; null at the end"),
  content: z.string(),
  encoding: z.enum(["utf-8", "base64"]),
});

export const getOperation = defineTool({
  name: "get_operation",
  title: "Get an operation",
  description: DESCRIPTION,
  input: z.object({
    operation_id: z.string().min(1).describe("Operation id from {{p}}run or {{p}}import_image"),
    stream: z.enum(["stdout", "stderr"]).nullish().describe("Read a page of this stream's kept output"),
    offset: z.number().int().min(0).default(0).describe("Byte offset of the page (with stream)"),
    limit: z.number().int().min(1).max(1_000_000).default(16_000).describe("Bytes per page (with stream)"),
    truncate_output_at: z
      .number()
      .int()
      .min(100)
      .default(8000)
      .describe("Bytes of stdout/stderr shown when not paging"),
  }),
  output: operationSchema.extend({ page: pageSchema.nullable() }),
  annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
  async run(args, call) {
    const operation = await fetchOperation(call, args.operation_id.trim());
    if (!args.stream) return { ...operationView(operation, args.truncate_output_at, call), page: null };
    const bytes = operation.result?.[args.stream].bytes ?? new Uint8Array();
    const slice = bytes.subarray(args.offset, args.offset + args.limit);
    const shown = showStream(slice, slice.length);
    const end = args.offset + slice.length;
    const view = operationView(operation, 0, call);
    return {
      ...view,
      stdout: "",
      stderr: "",
      output_hint: null,
      page: {
        stream: args.stream,
        offset: args.offset,
        length: slice.length,
        total_bytes: bytes.length,
        next_offset: end < bytes.length ? end : null,
        content: shown.text,
        encoding: shown.encoding,
      },
    };
  },
  summary(result) {
    if (!result.page) return operationSummary(result);
    const page = result.page;
    const next = page.next_offset === null ? "end of stream" : `next offset ${page.next_offset}`;
    return `${page.stream} of ${result.operation_id}, bytes ${page.offset}-${page.offset + page.length} of ${page.total_bytes} (${next})${page.encoding === "base64" ? ", base64" : ""}:\n${page.content}`;
  },
});
