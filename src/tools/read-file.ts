import { posix } from "node:path";
import * as z from "zod";
import { BackendError, UserError } from "../errors.ts";
import { containerPath } from "../sync/paths.ts";
import DESCRIPTION from "./read-file.md" with { type: "text" };
import { imageRefSchema, resolveImage, resolveImageUuid } from "./_images.ts";
import { utf8OrNull } from "./_operation.ts";
import { defineTool, type ToolCall } from "./tool.ts";

export const DEFAULT_MAX_BYTES = 64 * 1024;
const MAX_MAX_BYTES = 1024 * 1024;

export interface ReadRequest {
  offset?: number | null;
  limit?: number | null;
  lineStart?: number | null;
  lineCount?: number | null;
  maxBytes: number;
}

export interface FilePart {
  image: string;
  path: string;
  content: string;
  encoding: "utf-8" | "base64";
  /** Byte offset of the part. */
  offset: number;
  /** Bytes in the part. */
  bytes: number;
  /** The file's size, when known. */
  size: number | null;
  /** Line mode: the first line shown (1-based) and how many lines. */
  line_start: number | null;
  lines: number | null;
  /** More of the file follows the part. */
  truncated: boolean;
  /** The call that reads the next part, when there is one. */
  next: string | null;
}

const MAGIC: Array<[number[], string]> = [
  [[0x7f, 0x45, 0x4c, 0x46], "ELF executable or library"],
  [[0x1f, 0x8b], "gzip archive"],
  [[0x50, 0x4b, 0x03, 0x04], "zip archive (or jar, wheel, docx)"],
  [[0x89, 0x50, 0x4e, 0x47], "PNG image"],
  [[0xff, 0xd8, 0xff], "JPEG image"],
  [[0x47, 0x49, 0x46, 0x38], "GIF image"],
  [[0x25, 0x50, 0x44, 0x46], "PDF document"],
  [[0x53, 0x51, 0x4c, 0x69, 0x74, 0x65], "SQLite database"],
  [[0x00, 0x61, 0x73, 0x6d], "WebAssembly module"],
  [[0xca, 0xfe, 0xba, 0xbe], "Java class or Mach-O fat binary"],
  [[0x28, 0xb5, 0x2f, 0xfd], "zstd archive"],
  [[0xfd, 0x37, 0x7a, 0x58, 0x5a], "xz archive"],
  [[0x42, 0x5a, 0x68], "bzip2 archive"],
];

export function binaryType(head: Uint8Array): string {
  for (const [magic, name] of MAGIC) if (magic.every((byte, i) => head[i] === byte)) return name;
  if (head.length >= 262 && String.fromCharCode(...head.subarray(257, 262)) === "ustar") return "tar archive";
  return "binary data";
}

/**
 * A not-found answer for a path does not say whether the image or the path is missing; this tells them apart, so
 * the error names the right one (a UUID given directly was never checked).
 */
export async function requireImage(call: Pick<ToolCall, "deps" | "tool">, image: string): Promise<void> {
  await resolveImage(call.deps.backend, image, call.tool);
}

/** The file's size from its directory listing; null when the listing cannot tell. */
async function fileSize(call: Pick<ToolCall, "deps">, image: string, path: string): Promise<number | null> {
  try {
    const listing = await call.deps.backend.listDirectory(image, posix.dirname(path));
    return listing.entries.find((e) => e.name === posix.basename(path))?.size ?? null;
  } catch {
    return null;
  }
}

interface Window {
  bytes: Uint8Array;
  offset: number;
  /** 1-based number of the first line in the window (line mode). */
  firstLine: number | null;
  lines: number | null;
  more: boolean;
  /** Where the file ended, when the stream reached the end. */
  end: number | null;
}

/** Reads just the requested bytes or lines of a stream, then stops it. */
async function readWindow(stream: ReadableStream<Uint8Array>, request: ReadRequest): Promise<Window> {
  const lineMode = request.lineStart != null || request.lineCount != null;
  const budget = Math.min(request.limit ?? request.maxBytes, request.maxBytes);
  const startOffset = lineMode ? 0 : (request.offset ?? 0);
  const firstLine = lineMode ? (request.lineStart ?? 1) : null;
  const wantLines = lineMode ? (request.lineCount ?? Number.POSITIVE_INFINITY) : 0;
  const parts: Uint8Array[] = [];
  let collected = 0;
  let position = 0;
  let line = 1;
  let windowStart = lineMode ? -1 : startOffset;
  let linesDone = 0;
  let more = false;
  const reader = stream.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return finish(null);
      let chunk = value;
      const chunkStart = position;
      position += chunk.length;
      if (!lineMode) {
        if (position <= startOffset) continue;
        if (chunkStart < startOffset) chunk = chunk.subarray(startOffset - chunkStart);
        const take = Math.min(chunk.length, budget - collected);
        parts.push(chunk.subarray(0, take));
        collected += take;
        if (collected >= budget && (take < chunk.length || (await peek(reader)))) {
          more = true;
          return finish(null);
        }
        continue;
      }
      let at = 0;
      while (at < chunk.length) {
        if (windowStart < 0) {
          if (line >= firstLine!) {
            windowStart = chunkStart + at;
            continue;
          }
          const newline = chunk.indexOf(0x0a, at);
          if (newline < 0) break;
          line += 1;
          at = newline + 1;
          continue;
        }
        if (linesDone >= wantLines || collected >= budget) {
          more = true;
          return finish(null);
        }
        const newline = chunk.indexOf(0x0a, at);
        const lineEnd = newline < 0 ? chunk.length : newline + 1;
        const take = Math.min(lineEnd - at, budget - collected);
        parts.push(chunk.subarray(at, at + take));
        collected += take;
        at += take;
        if (newline >= 0 && at === lineEnd) linesDone += 1;
      }
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }

  function finish(end: number | null): Window {
    const bytes = new Uint8Array(collected);
    let at = 0;
    for (const part of parts) {
      bytes.set(part, at);
      at += part.length;
    }
    const offset = windowStart < 0 ? position : windowStart;
    return {
      bytes,
      offset,
      firstLine,
      lines: lineMode ? linesDone + (collected > 0 && bytes[bytes.length - 1] !== 0x0a ? 1 : 0) : null,
      more,
      end: more ? end : position,
    };
  }
}

async function peek(reader: { read(): Promise<{ done: boolean; value?: Uint8Array }> }): Promise<boolean> {
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return false;
    if (value && value.length > 0) return true;
  }
}

/** Reads part of a file in an image: text when it is text, base64 for binary parts, refusal for big binaries. */
export async function readImageFile(
  call: Pick<ToolCall, "deps" | "tool">,
  imageRef: string,
  rawPath: string,
  request: ReadRequest,
): Promise<FilePart> {
  const image = await resolveImageUuid(call.deps.backend, imageRef, call.tool);
  const path = containerPath(rawPath);
  let stream: ReadableStream<Uint8Array>;
  try {
    stream = await call.deps.backend.readFile(image, path);
  } catch (error) {
    if (error instanceof BackendError && error.code === "not_found") {
      await requireImage(call, image);
      throw new UserError(
        `No file ${path} in image ${image}. Call ${call.tool("list_files")}(image="${image}", path="${posix.dirname(path)}") to see what is there.`,
      );
    }
    if (error instanceof BackendError && error.code === "invalid") {
      throw new UserError(
        `${path} in image ${image} is a directory (or not readable): list it with ${call.tool("list_files")}.`,
      );
    }
    throw error;
  }
  const window = await readWindow(stream, request);
  const size = window.end ?? (await fileSize(call, image, path));
  const call_ = (extra: string) => `${call.tool("read_file")}(image="${image}", path="${path}", ${extra})`;
  const decoded = utf8OrNull(window.bytes);
  // DEL and a known binary signature mean binary even when the bytes happen to decode.
  const text =
    decoded === null ||
    decoded.includes("\x7f") ||
    (window.offset === 0 && binaryType(window.bytes) !== "binary data")
      ? null
      : decoded;
  const ranged = request.offset != null || request.limit != null || window.firstLine !== null;
  if (text === null && window.more && !ranged) {
    throw new UserError(
      `${path} is ${binaryType(window.bytes)} (${size ?? "more than " + window.bytes.length} bytes), too big to show as base64 (max_bytes=${request.maxBytes}). Save it with ${call.tool("download")}, or read a part as base64 with ${call_(`offset=0, limit=${request.maxBytes}`)}.`,
    );
  }
  let bytes = window.bytes.length;
  let content: string;
  let encoding: FilePart["encoding"];
  if (text === null) {
    content = Buffer.from(window.bytes).toString("base64");
    encoding = "base64";
  } else {
    content = text;
    encoding = "utf-8";
    // A character split at the cut is left for the next part.
    bytes = Buffer.byteLength(text);
  }
  const truncated = window.more || bytes < window.bytes.length;
  let next: string | null = null;
  if (truncated) {
    const nextOffset = window.offset + bytes;
    const endsLine = bytes > 0 && window.bytes[bytes - 1] === 0x0a;
    next =
      window.firstLine !== null && endsLine
        ? call_(
            `line_start=${window.firstLine + (window.lines ?? 0)}${request.lineCount != null ? `, line_count=${request.lineCount}` : ""}`,
          )
        : call_(`offset=${nextOffset}${request.limit != null ? `, limit=${request.limit}` : ""}`);
  }
  return {
    image,
    path,
    content,
    encoding,
    offset: window.offset,
    bytes,
    size,
    line_start: window.firstLine,
    lines: window.firstLine !== null ? window.lines : null,
    truncated,
    next,
  };
}

export const readFile = defineTool({
  name: "read_file",
  title: "Read a file in an image",
  description: DESCRIPTION,
  input: z.object({
    image: imageRefSchema,
    path: z.string().min(1).describe("File in the image, e.g. /etc/os-release"),
    offset: z.number().int().min(0).nullish().describe("Byte offset to start at (byte mode)"),
    limit: z.number().int().min(1).nullish().describe("Bytes to read (byte mode; at most max_bytes)"),
    line_start: z.number().int().min(1).nullish().describe("First line to read, 1-based (line mode)"),
    line_count: z.number().int().min(1).nullish().describe("Lines to read (line mode)"),
    max_bytes: z
      .number()
      .int()
      .min(1)
      .max(MAX_MAX_BYTES)
      .default(DEFAULT_MAX_BYTES)
      .describe("Cap on the bytes returned; `next` says how to read on"),
  }),
  output: z.object({
    image: z.string(),
    path: z.string(),
    content: z.string(),
    encoding: z.enum(["utf-8", "base64"]),
    offset: z.number().int().describe("Byte offset of this part"),
    bytes: z.number().int().describe("Bytes in this part"),
    size: z.number().int().nullable().describe("The file's size in bytes, when known"),
    line_start: z.number().int().nullable(),
    lines: z.number().int().nullable(),
    truncated: z.boolean().describe("More of the file follows"),
    next: z.string().nullable().describe("The call that reads the next part"),
  }),
  annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
  async run(args, call) {
    const lineMode = args.line_start != null || args.line_count != null;
    if (lineMode && (args.offset != null || args.limit != null)) {
      throw new UserError("Use either offset/limit (bytes) or line_start/line_count (lines), not both.");
    }
    return readImageFile(call, args.image, args.path, {
      offset: args.offset,
      limit: args.limit,
      lineStart: args.line_start,
      lineCount: args.line_count,
      maxBytes: args.max_bytes,
    });
  },
  summary(part) {
    const range =
      part.line_start !== null
        ? `lines ${part.line_start}-${part.line_start + Math.max(0, (part.lines ?? 0) - 1)}`
        : `bytes ${part.offset}-${part.offset + part.bytes}`;
    const head = `${part.path} (${range}${part.size !== null ? ` of ${part.size}` : ""}${part.encoding === "base64" ? ", base64" : ""})`;
    const lines = [head, part.content];
    if (part.next) lines.push(`[… more follows; next: ${part.next}]`);
    return lines.join("\n");
  },
});
