import * as z from "zod";
import type { CapturedStream, Operation } from "../backend/types.ts";
import { isTerminal } from "../backend/types.ts";
import { BackendError, UserError } from "../errors.ts";
import type { ToolCall } from "./tool.ts";

export const operationSchema = z.object({
  operation_id: z.string(),
  kind: z.enum(["instance", "image_import"]),
  status: z
    .string()
    .describe("PENDING, ASSIGNED or EXECUTING (still running); SUCCESS, FAILED or CANCELLED (done)"),
  done: z.boolean().describe("true once the status is SUCCESS, FAILED or CANCELLED"),
  error: z
    .string()
    .nullable()
    .describe("Why the backend failed the operation (not the command's own failure)"),
  exit_code: z
    .number()
    .int()
    .nullable()
    .describe("The command's exit code; null while running or when killed"),
  signal: z.number().int().nullable().describe("Signal that killed the command, if any"),
  timed_out: z.boolean().describe("The command hit its timeout and was killed"),
  stdout: z.string().describe("Output text (base64 when stdout_encoding is base64)"),
  stderr: z.string(),
  stdout_encoding: z.enum(["utf-8", "base64"]),
  stderr_encoding: z.enum(["utf-8", "base64"]),
  stdout_truncated: z.boolean().describe("Part of stdout is not shown here; see output_hint"),
  stderr_truncated: z.boolean(),
  stdout_bytes: z.number().int().describe("Bytes of stdout kept by the backend (readable in pages)"),
  stderr_bytes: z.number().int(),
  output_hint: z.string().nullable().describe("How to read the output that is not shown"),
  input_image: z.string().nullable().describe("The image the command ran in"),
  result_image: z
    .string()
    .nullable()
    .describe(
      "The image this operation produced (disposable=false runs and imports); use it as `image` later",
    ),
  result_tag: z.string().nullable(),
  filesystem_changed: z
    .boolean()
    .nullable()
    .describe(
      "disposable=false runs: whether the command changed files (false means result_image = input_image)",
    ),
  command: z.string().nullable(),
  registry_url: z.string().nullable().describe("Imports: what was imported"),
  duration_s: z.number().nullable(),
  resources: z.record(z.string(), z.number()).describe("Resource counters the backend reported"),
  notes: z
    .array(z.string())
    .describe("What the output alone does not tell, e.g. that the sandbox had no network; read these first"),
  progress: z
    .string()
    .nullable()
    .describe("Imports still running: how far they are (layers and bytes), when the backend tracks it"),
});

export type OperationView = z.output<typeof operationSchema>;

export interface ShownStream {
  text: string;
  encoding: "utf-8" | "base64";
  /** Shown bytes are fewer than the kept ones. */
  cut: boolean;
  /** Byte range left out of the middle, when cut. */
  omitted: { offset: number; length: number } | null;
}

const decoder = new TextDecoder("utf-8", { fatal: true });

/** Decodes bytes as UTF-8, or null for binary. A sequence cut at the end (truncation) still counts as text. */
export function utf8OrNull(bytes: Uint8Array): string | null {
  for (let trim = 0; trim <= Math.min(3, bytes.length); trim++) {
    try {
      const text = decoder.decode(bytes.subarray(0, bytes.length - trim));
      if (hasBinaryControls(text)) return null;
      return text;
    } catch {
      // try one byte shorter: the end may have split a character
    }
  }
  return null;
}

/** Control characters other than tab, newline, form feed, carriage return and escape mean binary. */
function hasBinaryControls(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (
      code < 0x20 &&
      code !== 0x09 &&
      code !== 0x0a &&
      code !== 0x0b &&
      code !== 0x0c &&
      code !== 0x0d &&
      code !== 0x1b
    ) {
      return true;
    }
  }
  return false;
}

/** Moves `index` back to the start of a UTF-8 character. */
function charStart(bytes: Uint8Array, index: number): number {
  let i = Math.max(0, Math.min(index, bytes.length));
  while (i > 0 && i < bytes.length && (bytes[i]! & 0xc0) === 0x80) i--;
  return i;
}

/**
 * What the model sees of a stream: all of it when it fits in `limit` bytes, otherwise the head and the tail (the
 * tail usually holds the error) with the middle left out, readable later through get_operation pages.
 */
export function showStream(bytes: Uint8Array, limit: number): ShownStream {
  const asText = utf8OrNull(bytes);
  if (bytes.length <= limit) {
    return asText === null
      ? { text: Buffer.from(bytes).toString("base64"), encoding: "base64", cut: false, omitted: null }
      : { text: asText, encoding: "utf-8", cut: false, omitted: null };
  }
  const headEnd = charStart(bytes, Math.floor(limit / 4));
  const tailStart = charStart(bytes, bytes.length - (limit - headEnd));
  const omitted = { offset: headEnd, length: tailStart - headEnd };
  if (asText === null) {
    return {
      text: Buffer.from(bytes.subarray(0, limit)).toString("base64"),
      encoding: "base64",
      cut: true,
      omitted: { offset: limit, length: bytes.length - limit },
    };
  }
  const head = new TextDecoder().decode(bytes.subarray(0, headEnd));
  const tail = new TextDecoder().decode(bytes.subarray(tailStart));
  return {
    text: `${head}\n[… ${omitted.length} bytes not shown …]\n${tail}`,
    encoding: "utf-8",
    cut: true,
    omitted,
  };
}

const EMPTY: CapturedStream = { bytes: new Uint8Array(), truncated: false, droppedBytes: null };

export function operationView(
  operation: Operation,
  showBytes: number,
  call: Pick<ToolCall, "tool">,
): OperationView {
  const result = operation.result;
  const stdout = result?.stdout ?? EMPTY;
  const stderr = result?.stderr ?? EMPTY;
  const out = showStream(stdout.bytes, showBytes);
  const err = showStream(stderr.bytes, showBytes);
  const hints: string[] = [];
  for (const [name, shown] of [
    ["stdout", out],
    ["stderr", err],
  ] as const) {
    if (shown.omitted) {
      hints.push(
        `${name}: bytes ${shown.omitted.offset}-${shown.omitted.offset + shown.omitted.length} are not shown; read them with ${call.tool("get_operation")}(operation_id="${operation.id}", stream="${name}", offset=${shown.omitted.offset})`,
      );
    }
  }
  for (const [name, stream] of [
    ["stdout", stdout],
    ["stderr", stderr],
  ] as const) {
    if (stream.truncated) {
      const dropped = stream.droppedBytes ? `${stream.droppedBytes} bytes` : "the rest";
      hints.push(
        `${name}: the backend kept only the first ${stream.bytes.length} bytes and dropped ${dropped}; next time write big output to a file (with disposable=false) and read it with ${call.tool("read_file")}`,
      );
    }
  }
  const changed =
    operation.kind === "instance" &&
    operation.disposable === false &&
    operation.status === "SUCCESS" &&
    operation.resultImage
      ? operation.resultImage !== operation.inputImage
      : null;
  return {
    operation_id: operation.id,
    kind: operation.kind,
    status: operation.status,
    done: isTerminal(operation.status),
    error: operation.error,
    exit_code: result?.exit.exitCode ?? null,
    signal: result?.exit.signal ?? null,
    timed_out: result?.exit.timedOut ?? false,
    stdout: out.text,
    stderr: err.text,
    stdout_encoding: out.encoding,
    stderr_encoding: err.encoding,
    stdout_truncated: out.cut || stdout.truncated,
    stderr_truncated: err.cut || stderr.truncated,
    stdout_bytes: stdout.bytes.length,
    stderr_bytes: stderr.bytes.length,
    output_hint: hints.length ? hints.join("\n") : null,
    input_image: operation.inputImage,
    result_image:
      operation.kind === "instance" && operation.disposable !== false ? null : operation.resultImage,
    result_tag: operation.resultTag,
    filesystem_changed: changed,
    command: operation.command,
    registry_url: operation.registryUrl,
    duration_s: operation.durationS,
    resources: result?.resources ?? {},
    notes: result?.notes ?? [],
    progress: isTerminal(operation.status) ? null : (operation.progress?.message ?? null),
  };
}

/** Text that mirrors an operation view for clients that show only text. */
export function operationSummary(view: OperationView): string {
  const lines: string[] = [];
  const head = [
    `operation ${view.operation_id}`,
    view.kind === "image_import" ? "import" : "run",
    view.status,
  ];
  if (view.exit_code !== null) head.push(`exit_code=${view.exit_code}`);
  if (view.signal !== null) head.push(`signal=${view.signal}`);
  if (view.timed_out) head.push("TIMED OUT");
  if (view.duration_s !== null) head.push(`${view.duration_s.toFixed(2)}s`);
  lines.push(head.join(" · "));
  if (view.error) lines.push(`error: ${view.error}`);
  if (view.result_image) {
    const changed = view.filesystem_changed === false ? " (no files changed: same image)" : "";
    lines.push(
      `result_image: ${view.result_image}${view.result_tag ? ` (tag ${view.result_tag})` : ""}${changed}`,
    );
  }
  if (view.registry_url) lines.push(`registry_url: ${view.registry_url}`);
  for (const name of ["stdout", "stderr"] as const) {
    const text = view[name];
    if (!text) continue;
    const encoding = view[`${name}_encoding`] === "base64" ? " (base64)" : "";
    lines.push(`--- ${name}${encoding} ---`, text.endsWith("\n") ? text.slice(0, -1) : text);
  }
  if (view.progress) lines.push(`progress: ${view.progress}`);
  for (const note of view.notes) lines.push(`note: ${note}`);
  if (view.output_hint) lines.push(`--- note ---`, view.output_hint);
  return lines.join("\n");
}

/** Wraps an unknown operation id into an error the model can act on. */
export async function fetchOperation(call: ToolCall, id: string): Promise<Operation> {
  const cached = call.deps.cache.getOperation(id);
  if (cached) return cached;
  try {
    const operation = await call.deps.backend.getOperation(id);
    recordFinished(call, operation);
    return operation;
  } catch (error) {
    if (error instanceof BackendError && error.code === "not_found") {
      throw new UserError(
        `No operation with id '${id}'. Call ${call.tool("list_operations")} to see recent operations.`,
      );
    }
    throw error;
  }
}

/**
 * Caches a terminal operation and records the lineage of the image it made. What this server started is known in
 * full (input image, command); an operation started elsewhere still records what the backend reports.
 */
export function recordFinished(call: Pick<ToolCall, "deps">, operation: Operation): void {
  if (!isTerminal(operation.status)) return;
  const { cache } = call.deps;
  cache.putOperation(operation);
  if (operation.status !== "SUCCESS" || !operation.resultImage) return;
  const started = cache.started(operation.id);
  if (operation.kind === "image_import") {
    cache.recordImage({
      uuid: operation.resultImage,
      parent: null,
      operationId: operation.id,
      command: null,
      registryUrl: operation.registryUrl ?? started?.registryUrl ?? null,
      tag: operation.resultTag,
    });
    return;
  }
  const input = operation.inputImage ?? started?.inputImage ?? null;
  if (input && input !== operation.resultImage) {
    cache.recordImage({
      uuid: operation.resultImage,
      parent: input,
      operationId: operation.id,
      command: operation.command ?? started?.command ?? null,
      registryUrl: null,
      tag: operation.resultTag,
    });
  }
}
