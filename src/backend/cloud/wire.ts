// Lenient readers for ConTree v1 JSON (contree-cloud-api.md §3, original-contree-mcp.md §1.5): unknown fields
// are ignored, kind/status are normalised, lists may come bare or in an envelope. Only a reply without the
// fields we cannot do without (uuid, status) is a protocol error.
import { BackendError } from "../../errors.ts";
import { isTerminal } from "../types.ts";
import type {
  CapturedStream,
  DirEntry,
  DirListing,
  EntryType,
  Image,
  InstanceResult,
  Operation,
  OperationKind,
  OperationSummary,
  StoredFile,
} from "../types.ts";

type Json = Record<string, unknown>;

function record(value: unknown): Json | null {
  return value !== null && typeof value === "object" && !Array.isArray(value) ? (value as Json) : null;
}

function text(value: unknown): string | null {
  return typeof value === "string" ? value : null;
}

function num(value: unknown): number | null {
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

function bool(value: unknown): boolean | null {
  return typeof value === "boolean" ? value : null;
}

function protocol(what: string, value: unknown): BackendError {
  const shown = JSON.stringify(value) ?? String(value);
  return new BackendError({
    code: "protocol",
    detail: `unexpected reply from ConTree (${what}): ${shown.length > 300 ? `${shown.slice(0, 300)}…` : shown}`,
  });
}

function requiredString(body: Json, field: string, what: string): string {
  const value = text(body[field]);
  if (!value) throw protocol(`${what} without ${field}`, body);
  return value;
}

/** `[...]` or `{"<key>": [...]}`. */
export function listOf(value: unknown, key: string): unknown[] {
  if (Array.isArray(value)) return value;
  const list = record(value)?.[key];
  if (Array.isArray(list)) return list;
  throw protocol(`expected a list of ${key}`, value);
}

/** Message text from an `error` field, which the service may send as any JSON value. */
function errorText(value: unknown): string | null {
  if (value === null || value === undefined || value === "") return null;
  return typeof value === "string" ? value : JSON.stringify(value);
}

export function parseImage(value: unknown): Image {
  const body = record(value);
  if (!body) throw protocol("image is not an object", value);
  return {
    uuid: requiredString(body, "uuid", "image"),
    tag: text(body.tag) || null,
    createdAt: text(body.created_at) ?? "",
  };
}

export function parseImages(value: unknown): Image[] {
  return listOf(value, "images").map(parseImage);
}

export function parseKind(value: unknown, metadata: Json | null): OperationKind {
  const kind = text(value)?.toLowerCase() ?? "";
  if (kind === "instance" || kind === "image_import") return kind;
  if (kind.includes("import") || (metadata && "registry" in metadata)) return "image_import";
  return "instance";
}

function parseStatus(body: Json): string {
  const status = text(body.status);
  if (!status) throw protocol("operation without status", body);
  return status.toUpperCase();
}

export function parseOperationSummary(value: unknown): OperationSummary {
  const body = record(value);
  if (!body) throw protocol("operation is not an object", value);
  return {
    id: requiredString(body, "uuid", "operation"),
    kind: parseKind(body.kind, record(body.metadata)),
    status: parseStatus(body),
    error: errorText(body.error),
    createdAt: text(body.created_at) ?? "",
  };
}

export function parseOperationSummaries(value: unknown): OperationSummary[] {
  return listOf(value, "operations").map(parseOperationSummary);
}

/** `{value, encoding: ascii|utf8|base64, truncated}` as bytes. */
export function parseStream(value: unknown): CapturedStream {
  const body = record(value);
  if (!body) {
    // Some replies carry plain strings.
    const plain = text(value) ?? "";
    return { bytes: new TextEncoder().encode(plain), truncated: false, droppedBytes: null };
  }
  const raw = text(body.value) ?? "";
  const encoding = (text(body.encoding) ?? "ascii").toLowerCase();
  const bytes =
    encoding === "base64" ? new Uint8Array(Buffer.from(raw, "base64")) : new TextEncoder().encode(raw);
  const dropped = num(body.bytes_dropped) ?? num(body.dropped_bytes);
  return {
    bytes,
    truncated: bool(body.truncated) ?? (dropped !== null && dropped > 0),
    droppedBytes: dropped !== null && dropped >= 0 ? dropped : null,
  };
}

/** Counters that are present; the service uses -1 for "not measured". */
export function parseResources(value: unknown): Record<string, number> {
  const resources: Record<string, number> = {};
  for (const [key, field] of Object.entries(record(value) ?? {})) {
    const n = num(field);
    if (n !== null && n !== -1) resources[key] = n;
  }
  return resources;
}

function parseInstanceResult(value: Json, terminal: boolean): InstanceResult {
  const state = record(value.state);
  const code = num(state?.exit_code);
  const signal = num(state?.signal);
  // -1 means "no code" (still running, or killed by a signal); a finished state without the field means 0.
  const exitCode = code === null ? (terminal && state ? 0 : null) : code === -1 ? null : code;
  return {
    exit: {
      exitCode,
      signal: signal === null || signal === -1 ? null : signal,
      timedOut: bool(state?.timed_out) ?? false,
    },
    stdout: parseStream(value.stdout),
    stderr: parseStream(value.stderr),
    resources: parseResources(value.resources),
  };
}

export function parseOperation(value: unknown): Operation {
  const body = record(value);
  if (!body) throw protocol("operation is not an object", value);
  const id = requiredString(body, "uuid", "operation");
  const status = parseStatus(body);
  const metadata = record(body.metadata);
  const kind = parseKind(body.kind, metadata);
  const result = record(body.result);
  const registry = metadata?.registry;
  const instanceResult = kind === "instance" ? record(metadata?.result) : null;
  return {
    id,
    kind,
    status,
    error: errorText(body.error),
    createdAt: text(body.created_at) ?? "",
    durationS: num(body.duration),
    resultImage: text(result?.image) || text(body.result_image_uuid) || null,
    resultTag: text(result?.tag) || null,
    inputImage: kind === "instance" ? text(metadata?.image) || text(body.image_uuid) || null : null,
    command: kind === "instance" ? text(metadata?.command) : null,
    disposable: kind === "instance" ? bool(metadata?.disposable) : null,
    // Old servers sent registry as a plain string.
    registryUrl: kind === "image_import" ? (text(record(registry)?.url) ?? text(registry)) : null,
    result: instanceResult ? parseInstanceResult(instanceResult, isTerminal(status)) : null,
  };
}

export function parseStoredFile(value: unknown): StoredFile {
  const body = record(value);
  if (!body) throw protocol("file is not an object", value);
  return {
    uuid: requiredString(body, "uuid", "file"),
    sha256: text(body.sha256) ?? "",
    size: num(body.size),
  };
}

/** `GET /files/{sha256}` answer: the file itself, or a `{"files":[...]}` envelope to search. */
export function pickStoredFile(value: unknown, sha256: string): StoredFile | null {
  const body = record(value);
  if (body && Array.isArray(body.files)) {
    const match = body.files
      .map(record)
      .find((file) => text(file?.sha256)?.toLowerCase() === sha256.toLowerCase());
    return match ? parseStoredFile(match) : null;
  }
  if (Array.isArray(value)) return pickStoredFile({ files: value }, sha256);
  return parseStoredFile(value);
}

function entryType(file: Json): EntryType {
  if (file.is_symlink === true) return "symlink";
  if (file.is_dir === true) return "directory";
  if (file.is_regular === true) return "file";
  if (file.is_socket === true) return "socket";
  if (file.is_fifo === true) return "fifo";
  return "other";
}

function lastComponent(path: string): string {
  const parts = path.split("/").filter((part) => part !== "");
  return parts[parts.length - 1] ?? path;
}

function parseDirEntry(value: unknown): DirEntry {
  const file = record(value);
  if (!file) throw protocol("directory entry is not an object", value);
  const path = requiredString(file, "path", "directory entry");
  const owner = text(file.owner) ?? num(file.owner) ?? num(file.uid) ?? 0;
  const group = text(file.group) ?? num(file.group) ?? num(file.gid) ?? 0;
  return {
    name: lastComponent(path),
    type: entryType(file),
    size: num(file.size) ?? 0,
    mode: (num(file.mode) ?? 0) & 0o7777,
    mtime: num(file.mtime) ?? 0,
    owner,
    group,
    target: text(file.symlink_to) || null,
  };
}

export function parseDirListing(value: unknown, requestedPath: string): DirListing {
  const body = record(value);
  if (!body) throw protocol("directory listing is not an object", value);
  return {
    path: text(body.path) || requestedPath,
    entries: listOf(body, "files").map(parseDirEntry),
  };
}

/** The operation id of a spawn or import reply: JSON `uuid`, else the last segment of Location. */
export function operationIdFrom(body: unknown, location: string | null): string | null {
  const uuid = text(record(body)?.uuid);
  if (uuid) return uuid;
  if (!location) return null;
  const path = location.split(/[?#]/)[0] ?? "";
  const last = path
    .split("/")
    .filter((part) => part !== "")
    .pop();
  return last ?? null;
}

/** stdin on the wire: ascii when every byte is printable ASCII (or tab/newline/CR), base64 otherwise. */
export function encodeStdin(bytes: Uint8Array): { value: string; encoding: "ascii" | "base64" } {
  const printable = bytes.every((b) => (b >= 0x20 && b < 0x7f) || b === 0x09 || b === 0x0a || b === 0x0d);
  if (printable) return { value: new TextDecoder().decode(bytes), encoding: "ascii" };
  return { value: Buffer.from(bytes).toString("base64"), encoding: "base64" };
}

/** Permission bits as the 4-digit octal string the service expects ("0644"). */
export function octalMode(mode: number): string {
  return (mode & 0o7777).toString(8).padStart(4, "0");
}
