// A fake ConTree v1 service for tests: a real HTTP server on 127.0.0.1 that follows the wire contract in
// /work/shared/reference/contree-cloud-api.md (§3 endpoints, §4 error bodies and gzip) and the shapes of
// original-contree-mcp.md §1.5. State lives in memory; operations advance on timers; instance execution is
// pluggable so tests decide what a command prints, changes and how long it takes.
import { createHash, randomUUID } from "node:crypto";
import { packTar, type TarEntry } from "modern-tar";
import { CloudBackend } from "../../src/backend/cloud/backend.ts";

export interface FakeFile {
  content: Uint8Array;
  /** Permission bits (0o644). */
  mode: number;
  /** Set for a symlink; content is then ignored. */
  symlinkTo?: string;
  /** An explicit (possibly empty) directory. */
  dir?: boolean;
}

export type FileSeed =
  | string
  | Uint8Array
  | { content: string | Uint8Array; mode?: number; symlinkTo?: string };

export interface FakeImage {
  uuid: string;
  tag: string | null;
  createdAt: string;
  parent: string | null;
  operationUuid: string | null;
  /** Absolute path -> file. Directories above a file exist implicitly. */
  files: Map<string, FakeFile>;
}

export interface StoredBlob {
  uuid: string;
  sha256: string;
  content: Uint8Array;
  createdAt: string;
}

export interface FakeOperation {
  uuid: string;
  kind: "instance" | "image_import";
  status: string;
  error: string | null;
  createdAt: string;
  startedAt: number;
  duration: number;
  /** The wire `metadata` (request echo plus `result` for finished instances). */
  metadata: Record<string, unknown>;
  resultImage: string | null;
  resultTag: string | null;
  /** Input image uuid (instances). */
  imageUuid: string | null;
  abort: AbortController;
}

/** What an instance sees: the POST /instances body with files and stdin resolved to bytes. */
export interface ExecuteMeta {
  command: string;
  args: string[];
  shell: boolean;
  image: FakeImage;
  env: Record<string, string>;
  cwd: string;
  timeout: number;
  disposable: boolean;
  hostname: string;
  stdin: Uint8Array;
  files: Record<string, FakeFile>;
  /** Aborted when the operation is cancelled or times out. */
  signal: AbortSignal;
}

export interface ExecuteResult {
  exitCode: number;
  stdout?: string | Uint8Array;
  stderr?: string | Uint8Array;
  /** Files the command wrote (absolute path -> content). */
  changed?: Record<string, FileSeed>;
  timedOut?: boolean;
  signal?: number;
}

export interface FakeContreeOptions {
  token?: string;
  /** gzip every response body (the real service does). */
  gzip?: boolean;
  /** true (default): `{"operations":[...]}`; false: a bare array, like the client repo's stub. */
  listEnvelope?: boolean;
  /** Delay of each operation step (PENDING -> EXECUTING -> terminal). Default 30 ms. */
  stepMs?: number;
  /** "json" (default): 201 `{uuid}` + Location; "location": 202 with an empty body and only Location. */
  spawnReply?: "json" | "location";
  /** Returning undefined falls back to the default behaviour (see defaultExecute). */
  execute?: (meta: ExecuteMeta) => ExecuteResult | undefined | Promise<ExecuteResult | undefined>;
}

export interface FaultSpec {
  method?: string;
  /** A string matches the full path ("/v1/operations/abc") or the path below /v1 ("/operations/abc") exactly; a RegExp is tested on the full path. */
  path: string | RegExp;
  status: number;
  /** How many matching requests get this reply. Default 1. */
  times?: number;
  headers?: Record<string, string>;
  /** Reply body; objects are sent as JSON. Default `{"error": "injected", "status": N}`. */
  body?: unknown;
  /** Close the connection without a valid reply instead of answering. */
  drop?: boolean;
}

export interface RecordedRequest {
  method: string;
  /** Full path, e.g. "/v1/inspect/abc/list". */
  path: string;
  query: Record<string, string>;
  /** Lower-case header names. */
  headers: Record<string, string>;
  bodySize: number;
  /** Parsed JSON body, when there was one. */
  body?: unknown;
}

export interface FakeContreeState {
  images: Map<string, FakeImage>;
  /** Uploaded files by sha256. */
  files: Map<string, StoredBlob>;
  operations: Map<string, FakeOperation>;
}

export interface FakeContree {
  /** Service root without /v1. */
  url: string;
  token: string;
  state: FakeContreeState;
  requests: RecordedRequest[];
  fail(spec: FaultSpec): void;
  addImage(seed?: { tag?: string; files?: Record<string, FileSeed>; parent?: string }): FakeImage;
  close(): Promise<void>;
}

const encoder = new TextEncoder();
const TERMINAL = new Set(["SUCCESS", "FAILED", "CANCELLED"]);
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function bytesOf(value: string | Uint8Array | undefined): Uint8Array {
  if (value === undefined) return new Uint8Array();
  return typeof value === "string" ? encoder.encode(value) : value;
}

function fileFromSeed(seed: FileSeed): FakeFile {
  if (typeof seed === "string" || seed instanceof Uint8Array) return { content: bytesOf(seed), mode: 0o644 };
  return { content: bytesOf(seed.content), mode: seed.mode ?? 0o644, symlinkTo: seed.symlinkTo };
}

function normalisePath(path: string): string {
  const parts: string[] = [];
  for (const part of path.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") parts.pop();
    else parts.push(part);
  }
  return `/${parts.join("/")}`;
}

/** §4: error bodies are `{"error": <message>, "status": N}`. */
function errorReply(status: number, error: string, headers?: Record<string, string>): Response {
  return Response.json({ error, status }, { status, headers });
}

/** The wire form of captured output (original-contree-mcp.md §1.5 Stream). */
function wireStream(
  bytes: Uint8Array,
  limit: number,
): { value: string; encoding: string; truncated: boolean } {
  const truncated = limit > 0 && bytes.length > limit;
  const kept = truncated ? bytes.subarray(0, limit) : bytes;
  const ascii = kept.every((b) => b < 0x80);
  return ascii
    ? { value: new TextDecoder().decode(kept), encoding: "ascii", truncated }
    : { value: Buffer.from(kept).toString("base64"), encoding: "base64", truncated };
}

function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      "abort",
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });
}

/** Default instance behaviour: `exit N` exits N, `sleep N` takes N seconds, anything else prints `ran: <command>`. */
async function defaultExecute(meta: ExecuteMeta): Promise<ExecuteResult> {
  const command = [meta.command, ...(meta.shell ? [] : meta.args)].join(" ").trim();
  const exit = /^exit (\d+)$/.exec(command);
  if (exit) return { exitCode: Number(exit[1]) };
  const sleep = /^sleep (\d+(?:\.\d+)?)$/.exec(command);
  if (sleep) await abortableSleep(Number(sleep[1]) * 1000, meta.signal);
  return { exitCode: 0, stdout: `ran: ${command}\n` };
}

/** Relative time (15m, 2h, 3d) or ISO 8601 as epoch ms. */
function parseWhen(value: string | null): number | null {
  if (!value) return null;
  const relative = /^(\d+)([smhd])$/.exec(value);
  if (relative) {
    const unit = { s: 1e3, m: 60e3, h: 3600e3, d: 86400e3 }[relative[2] as "s" | "m" | "h" | "d"];
    return Date.now() - Number(relative[1]) * unit;
  }
  const parsed = Date.parse(value);
  return Number.isNaN(parsed) ? null : parsed;
}

function inWindow(createdAt: string, query: URLSearchParams): boolean {
  const at = Date.parse(createdAt);
  const since = parseWhen(query.get("since"));
  const until = parseWhen(query.get("until"));
  return (since === null || at >= since) && (until === null || at <= until);
}

/** §2: `limit` must be 1..1000 (default 100). Returns [limit, offset] or an error reply. */
function page(query: URLSearchParams): [number, number] | Response {
  const limit = query.has("limit") ? Number(query.get("limit")) : 100;
  const offset = query.has("offset") ? Number(query.get("offset")) : 0;
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
    return errorReply(400, "limit must be between 1 and 1000");
  }
  if (!Number.isInteger(offset) || offset < 0)
    return errorReply(400, "offset must be a non-negative integer");
  return [limit, offset];
}

export async function startFakeContree(options: FakeContreeOptions = {}): Promise<FakeContree> {
  const token = options.token ?? "test-token";
  const stepMs = options.stepMs ?? 30;
  const execute = async (meta: ExecuteMeta): Promise<ExecuteResult> =>
    (await options.execute?.(meta)) ?? defaultExecute(meta);
  const state: FakeContreeState = { images: new Map(), files: new Map(), operations: new Map() };
  const requests: RecordedRequest[] = [];
  const faults: Array<FaultSpec & { left: number }> = [];
  const timers = new Set<ReturnType<typeof setTimeout>>();
  let clock = Date.now();

  // Strictly increasing timestamps keep newest-first ordering stable within one millisecond.
  function now(): string {
    clock = Math.max(clock + 1, Date.now());
    return new Date(clock).toISOString();
  }

  function later(ms: number, fn: () => void): void {
    const timer = setTimeout(() => {
      timers.delete(timer);
      fn();
    }, ms);
    timers.add(timer);
  }

  function wireImage(image: FakeImage) {
    return {
      uuid: image.uuid,
      tag: image.tag,
      created_at: image.createdAt,
      operation_uuid: image.operationUuid,
    };
  }

  /** Tags are unique: giving one to an image takes it from any other (§2). */
  function moveTag(image: FakeImage, tag: string | null): void {
    if (tag) {
      for (const other of state.images.values()) if (other.tag === tag) other.tag = null;
    }
    image.tag = tag;
  }

  function addImage(
    seed: { tag?: string; files?: Record<string, FileSeed>; parent?: string } = {},
  ): FakeImage {
    const parent = seed.parent ? state.images.get(seed.parent) : undefined;
    const image: FakeImage = {
      uuid: randomUUID(),
      tag: null,
      createdAt: now(),
      parent: parent?.uuid ?? null,
      operationUuid: null,
      files: new Map(parent?.files ?? []),
    };
    for (const [path, file] of Object.entries(seed.files ?? {}))
      image.files.set(normalisePath(path), fileFromSeed(file));
    state.images.set(image.uuid, image);
    moveTag(image, seed.tag ?? null);
    return image;
  }

  function resolveImage(ref: string): FakeImage | undefined {
    if (ref.startsWith("tag:")) {
      const tag = ref.slice(4);
      return [...state.images.values()].find((image) => image.tag === tag);
    }
    return state.images.get(ref.toLowerCase());
  }

  /** What sits at `path` in an image: a file, a directory (explicit or implied), or nothing. */
  function lookup(image: FakeImage, path: string): FakeFile | "dir" | undefined {
    const file = image.files.get(path);
    if (file) return file.dir ? "dir" : file;
    if (path === "/") return "dir";
    const prefix = `${path}/`;
    for (const key of image.files.keys()) if (key.startsWith(prefix)) return "dir";
    return undefined;
  }

  /** Direct children of a directory: name -> file, or "dir" for a directory. */
  function children(image: FakeImage, dir: string): Map<string, FakeFile | "dir"> {
    const prefix = dir === "/" ? "/" : `${dir}/`;
    const out = new Map<string, FakeFile | "dir">();
    for (const [path, file] of image.files) {
      if (!path.startsWith(prefix) || path === dir) continue;
      const rest = path.slice(prefix.length);
      const slash = rest.indexOf("/");
      if (slash === -1) out.set(rest, file.dir ? "dir" : file);
      else out.set(rest.slice(0, slash), "dir");
    }
    return out;
  }

  function wireOperation(op: FakeOperation, detail: boolean) {
    const summary = {
      uuid: op.uuid,
      kind: op.kind,
      status: op.status,
      error: op.error,
      created_at: op.createdAt,
      duration: op.duration,
      image_uuid: op.imageUuid,
      result_image_uuid: op.resultImage,
    };
    if (!detail) return summary;
    return {
      ...summary,
      metadata: op.metadata,
      result: op.resultImage ? { image: op.resultImage, tag: op.resultTag } : null,
    };
  }

  function newOperation(
    kind: FakeOperation["kind"],
    metadata: Record<string, unknown>,
    imageUuid: string | null,
  ) {
    const op: FakeOperation = {
      uuid: randomUUID(),
      kind,
      status: "PENDING",
      error: null,
      createdAt: now(),
      startedAt: Date.now(),
      duration: 0,
      metadata,
      resultImage: null,
      resultTag: null,
      imageUuid,
      abort: new AbortController(),
    };
    state.operations.set(op.uuid, op);
    return op;
  }

  function finish(op: FakeOperation, status: string, error: string | null = null): void {
    if (TERMINAL.has(op.status)) return;
    op.status = status;
    op.error = error;
    op.duration = (Date.now() - op.startedAt) / 1000;
  }

  async function runInstance(op: FakeOperation, image: FakeImage, meta: ExecuteMeta): Promise<void> {
    const limit = Number(op.metadata.truncate_output_at ?? 1048576);
    const started = Date.now();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      op.abort.abort();
    }, meta.timeout * 1000);
    let result: ExecuteResult;
    try {
      result = await execute(meta);
    } catch (error) {
      clearTimeout(timer);
      finish(op, "FAILED", error instanceof Error ? error.message : String(error));
      return;
    }
    clearTimeout(timer);
    if (TERMINAL.has(op.status)) return;
    timedOut ||= result.timedOut === true;
    const elapsed = (Date.now() - started) / 1000;
    op.metadata.result = {
      state: {
        exit_code: timedOut ? -1 : result.exitCode,
        pid: 2,
        signal: timedOut ? 9 : (result.signal ?? -1),
        timed_out: timedOut,
        core_dump: false,
        stopped: false,
        continued: false,
      },
      stdout: wireStream(bytesOf(result.stdout), limit),
      stderr: wireStream(bytesOf(result.stderr), limit),
      resources: {
        elapsed_time: elapsed,
        user_cpu_time: elapsed / 2,
        system_cpu_time: 0.001,
        max_rss: -1,
        swaps: -1,
      },
    };
    const changed = new Map<string, FakeFile>(Object.entries(meta.files));
    for (const [path, seed] of Object.entries(result.changed ?? {}))
      changed.set(normalisePath(path), fileFromSeed(seed));
    if (!meta.disposable && changed.size > 0) {
      const child = addImage({ parent: image.uuid });
      child.operationUuid = op.uuid;
      for (const [path, file] of changed) child.files.set(path, file);
      op.resultImage = child.uuid;
    } else if (!meta.disposable) {
      // §5: a run that changes nothing yields its input image.
      op.resultImage = image.uuid;
    }
    later(stepMs, () => finish(op, "SUCCESS"));
  }

  function startInstance(body: Record<string, unknown>): Response {
    if (typeof body.command !== "string" || typeof body.image !== "string") {
      return errorReply(400, "command and image are required");
    }
    const image = resolveImage(body.image);
    if (!image) return errorReply(404, `image not found: ${body.image}`);
    const files: Record<string, FakeFile> = {};
    for (const [path, spec] of Object.entries(
      (body.files as Record<string, Record<string, unknown>>) ?? {},
    )) {
      if (!path.startsWith("/")) return errorReply(400, `file path must be absolute: ${path}`);
      const mode = spec.mode ?? "0644";
      if (typeof mode !== "string" || !/^[0-7]{3,4}$/.test(mode))
        return errorReply(400, `bad mode for ${path}`);
      const blob = [...state.files.values()].find((file) => file.uuid === spec.uuid);
      if (!blob) return errorReply(404, `file not found: ${String(spec.uuid)}`);
      files[normalisePath(path)] = { content: blob.content, mode: Number.parseInt(mode, 8) };
    }
    const stdinSpec = (body.stdin ?? {}) as { value?: string; encoding?: string };
    const stdin =
      stdinSpec.encoding === "base64"
        ? new Uint8Array(Buffer.from(stdinSpec.value ?? "", "base64"))
        : encoder.encode(stdinSpec.value ?? "");
    const metadata: Record<string, unknown> = {
      hostname: "linuxkit",
      args: [],
      shell: false,
      env: {},
      cwd: "/root",
      disposable: false,
      timeout: 60,
      truncate_output_at: 65536,
      files: {},
      ...body,
      image: image.uuid,
      result: null,
    };
    const op = newOperation("instance", metadata, image.uuid);
    const meta: ExecuteMeta = {
      command: body.command,
      args: (metadata.args as string[]) ?? [],
      shell: metadata.shell === true,
      image,
      env: (metadata.env as Record<string, string>) ?? {},
      cwd: String(metadata.cwd),
      timeout: Number(metadata.timeout),
      disposable: metadata.disposable === true,
      hostname: String(metadata.hostname),
      stdin,
      files,
      signal: op.abort.signal,
    };
    later(stepMs, () => {
      if (op.status !== "PENDING") return;
      op.status = "EXECUTING";
      void runInstance(op, image, meta);
    });
    return spawned(op);
  }

  function startImport(body: Record<string, unknown>): Response {
    const registry = body.registry as { url?: unknown } | undefined;
    if (!registry || typeof registry.url !== "string") return errorReply(400, "registry.url is required");
    const tag = typeof body.tag === "string" ? body.tag : null;
    // Credentials are never echoed back.
    const op = newOperation(
      "image_import",
      { registry: { url: registry.url }, tag, timeout: body.timeout ?? 300 },
      null,
    );
    later(stepMs, () => {
      if (op.status !== "PENDING") return;
      op.status = "EXECUTING";
      later(stepMs, () => {
        if (op.status !== "EXECUTING") return;
        if ((registry.url as string).includes("does-not-exist")) {
          finish(op, "FAILED", "manifest unknown");
          return;
        }
        const image = addImage({ tag: tag ?? undefined, files: { "/etc/os-release": 'NAME="Fake"\n' } });
        image.operationUuid = op.uuid;
        op.resultImage = image.uuid;
        op.resultTag = tag;
        finish(op, "SUCCESS");
      });
    });
    return spawned(op);
  }

  /** §3: 201 `{uuid}` + Location: /v1/operations/<uuid> (old servers: 202). */
  function spawned(op: FakeOperation): Response {
    const headers = { Location: `/v1/operations/${op.uuid}` };
    if (options.spawnReply === "location") return new Response(null, { status: 202, headers });
    return Response.json({ uuid: op.uuid }, { status: 201, headers });
  }

  function listDir(image: FakeImage, path: string): Response {
    const found = lookup(image, path);
    if (!found) return errorReply(404, `path not found: ${path}`);
    if (found !== "dir") return errorReply(400, `not a directory: ${path}`);
    const mtime = Math.floor(Date.parse(image.createdAt) / 1000);
    const files = [...children(image, path)].map(([name, file]) => {
      const isDir = file === "dir";
      const isLink = !isDir && file.symlinkTo !== undefined;
      // st_mode with file-type bits, as the service reports it.
      const typeBits = isDir ? 0o040000 : isLink ? 0o120000 : 0o100000;
      const perms = isDir ? 0o755 : isLink ? 0o777 : file.mode;
      return {
        path: name,
        size: isDir ? 4096 : isLink ? (file.symlinkTo?.length ?? 0) : file.content.length,
        owner: "root",
        group: "root",
        uid: 0,
        gid: 0,
        mode: typeBits | perms,
        mtime,
        nlink: 1,
        is_dir: isDir,
        is_regular: !isDir && !isLink,
        is_symlink: isLink,
        is_socket: false,
        is_fifo: false,
        symlink_to: isLink ? file.symlinkTo : "",
      };
    });
    return Response.json({ path, files });
  }

  async function archive(image: FakeImage, path: string): Promise<Response> {
    const found = lookup(image, path);
    if (!found) return errorReply(404, `path not found: ${path}`);
    if (found !== "dir") return errorReply(400, `not a directory: ${path}`);
    const entries: TarEntry[] = [];
    const prefix = path === "/" ? "/" : `${path}/`;
    const dirs = new Set<string>();
    for (const [file, entry] of [...image.files].toSorted(([a], [b]) => a.localeCompare(b))) {
      if (!file.startsWith(prefix)) continue;
      const rel = file.slice(prefix.length);
      const parts = rel.split("/");
      for (let i = 1; i < parts.length; i++) {
        const dir = `${parts.slice(0, i).join("/")}/`;
        if (!dirs.has(dir)) {
          dirs.add(dir);
          entries.push({ header: { name: dir, size: 0, type: "directory", mode: 0o755 } });
        }
      }
      if (entry.dir)
        entries.push({ header: { name: `${rel}/`, size: 0, type: "directory", mode: entry.mode } });
      else if (entry.symlinkTo !== undefined) {
        entries.push({ header: { name: rel, size: 0, type: "symlink", linkname: entry.symlinkTo } });
      } else {
        entries.push({
          header: { name: rel, size: entry.content.length, mode: entry.mode },
          body: entry.content,
        });
      }
    }
    const tar = await packTar(entries);
    return new Response(tar, { headers: { "Content-Type": "application/x-tar" } });
  }

  async function route(
    request: Request,
    path: string,
    query: URLSearchParams,
    body: Uint8Array,
  ): Promise<Response> {
    const method = request.method;
    const json = (): Record<string, unknown> => {
      const parsed: unknown = JSON.parse(new TextDecoder().decode(body) || "{}");
      if (!parsed || typeof parsed !== "object" || Array.isArray(parsed))
        throw new Error("body must be an object");
      return parsed as Record<string, unknown>;
    };
    let match: RegExpExecArray | null;

    if (path === "/whoami" && method === "GET") {
      return Response.json({
        token_uuid: "00000000-0000-0000-0000-000000000001",
        token_expiration: null,
        permissions: {
          import: true,
          spawn: true,
          spawn_disposable: true,
          list: true,
          cancel: true,
          set_image_tag: true,
        },
        limits: { instance_max_timeout: 3600, instance_max_concurrency: 10 },
        operations_stat: {},
      });
    }

    if (path === "/images" && method === "GET") {
      const paging = page(query);
      if (paging instanceof Response) return paging;
      const tagged = query.get("tagged");
      const prefix = query.get("tag");
      const images = [...state.images.values()]
        .filter((image) => tagged === null || (tagged === "1") === (image.tag !== null))
        .filter((image) => !prefix || (image.tag ?? "").startsWith(prefix))
        .filter((image) => inWindow(image.createdAt, query))
        .toSorted((a, b) => b.createdAt.localeCompare(a.createdAt))
        .slice(paging[1], paging[1] + paging[0]);
      return Response.json({ images: images.map(wireImage) });
    }

    if (path === "/images/import" && method === "POST") return startImport(json());

    if ((match = /^\/images\/([^/]+)\/tag$/.exec(path))) {
      const image = state.images.get(match[1]!);
      if (!image) return errorReply(404, "image not found");
      if (method === "PATCH") {
        const tag = json().tag;
        if (typeof tag !== "string" || !/^[a-z0-9_\-:/.]{1,256}$/.test(tag))
          return errorReply(400, "invalid tag");
        moveTag(image, tag);
        return Response.json(wireImage(image));
      }
      if (method === "DELETE") {
        image.tag = null;
        return new Response(null, { status: 204 });
      }
      return errorReply(405, "method not allowed");
    }

    if (path === "/files" && method === "POST") {
      const sha256 = createHash("sha256").update(body).digest("hex");
      let stored = state.files.get(sha256);
      if (!stored) {
        stored = { uuid: randomUUID(), sha256, content: body, createdAt: now() };
        state.files.set(sha256, stored);
      }
      return Response.json({ uuid: stored.uuid, sha256, size: stored.content.length }, { status: 201 });
    }

    if (path === "/files" && method === "GET") {
      const paging = page(query);
      if (paging instanceof Response) return paging;
      const files = [...state.files.values()].slice(paging[1], paging[1] + paging[0]).map((file) => ({
        uuid: file.uuid,
        sha256: file.sha256,
        size: file.content.length,
        created_at: file.createdAt,
        updated_at: file.createdAt,
      }));
      return Response.json({ files });
    }

    if ((match = /^\/files\/([0-9a-fA-F]{64})$/.exec(path)) && (method === "GET" || method === "HEAD")) {
      const stored = state.files.get(match[1]!.toLowerCase());
      if (!stored) return errorReply(404, "file not found");
      return Response.json({ uuid: stored.uuid, sha256: stored.sha256, size: stored.content.length });
    }

    if (path === "/instances" && method === "POST") return startInstance(json());

    if (path === "/operations" && method === "GET") {
      const paging = page(query);
      if (paging instanceof Response) return paging;
      const status = query.get("status")?.toUpperCase();
      const kind = query.get("kind");
      const operations = [...state.operations.values()]
        .filter((op) => !status || op.status === status)
        .filter((op) => !kind || op.kind === kind)
        .filter((op) => inWindow(op.createdAt, query))
        .toSorted((a, b) => b.createdAt.localeCompare(a.createdAt))
        .slice(paging[1], paging[1] + paging[0])
        .map((op) => wireOperation(op, false));
      return Response.json(options.listEnvelope === false ? operations : { operations });
    }

    if ((match = /^\/operations\/([^/]+)$/.exec(path))) {
      const op = state.operations.get(match[1]!);
      if (!op) return errorReply(404, "operation not found");
      if (method === "GET") return Response.json(wireOperation(op, true));
      if (method === "DELETE") {
        if (TERMINAL.has(op.status)) return errorReply(409, "operation is not cancellable");
        finish(op, "CANCELLED");
        op.abort.abort();
        return Response.json({ uuid: op.uuid, status: "CANCELLED" }, { status: 202 });
      }
      return errorReply(405, "method not allowed");
    }

    if (path === "/inspect/" && method === "GET") {
      const tag = query.get("tag");
      if (!tag) return errorReply(400, "tag is required");
      const image = resolveImage(`tag:${tag}`);
      if (!image) return errorReply(404, `no image tagged ${tag}`);
      // §3: 302 with a Location relative to /v1/inspect/.
      return new Response(null, { status: 302, headers: { Location: `${image.uuid}/` } });
    }

    if ((match = /^\/inspect\/([^/]+)\/(list|download|archive)?$/.exec(path))) {
      if (method !== "GET" && method !== "HEAD") return errorReply(405, "method not allowed");
      const image = UUID_RE.test(match[1]!) ? state.images.get(match[1]!.toLowerCase()) : undefined;
      if (!image) return errorReply(404, "image not found");
      const action = match[2];
      if (!action) return Response.json(wireImage(image));
      const raw = query.get("path");
      if (!raw) return errorReply(400, "path is required");
      const target = normalisePath(raw);
      if (action === "list") return listDir(image, target);
      if (action === "archive") return archive(image, target);
      const found = lookup(image, target);
      if (!found) return errorReply(404, `path not found: ${target}`);
      if (found === "dir") return errorReply(400, `is a directory: ${target}`);
      return new Response(found.content, { headers: { "Content-Type": "application/octet-stream" } });
    }

    return errorReply(404, `no route for ${method} ${path}`);
  }

  function takeFault(method: string, full: string, path: string): (FaultSpec & { left: number }) | undefined {
    const fault = faults.find(
      (f) =>
        f.left > 0 &&
        (!f.method || f.method.toUpperCase() === method) &&
        (typeof f.path === "string" ? f.path === full || f.path === path : f.path.test(full)),
    );
    if (fault) fault.left--;
    return fault;
  }

  async function compress(response: Response): Promise<Response> {
    if (!options.gzip || response.body === null) return response;
    const data = new Uint8Array(await response.arrayBuffer());
    const headers = new Headers(response.headers);
    headers.set("Content-Encoding", "gzip");
    headers.delete("Content-Length");
    return new Response(Bun.gzipSync(data), { status: response.status, headers });
  }

  const server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    async fetch(request) {
      const url = new URL(request.url);
      const body = new Uint8Array(await request.arrayBuffer());
      const path = url.pathname.startsWith("/v1/") ? url.pathname.slice(3) : url.pathname;
      const recorded: RecordedRequest = {
        method: request.method,
        path: url.pathname,
        query: Object.fromEntries(url.searchParams),
        headers: Object.fromEntries(request.headers),
        bodySize: body.length,
      };
      if ((request.headers.get("content-type") ?? "").includes("json") && body.length > 0) {
        try {
          recorded.body = JSON.parse(new TextDecoder().decode(body));
        } catch {
          // recorded as is; the route will answer 400
        }
      }
      requests.push(recorded);

      if (!url.pathname.startsWith("/v1/")) return compress(errorReply(404, "not found"));
      if (request.headers.get("authorization") !== `Bearer ${token}`) {
        return compress(errorReply(401, "invalid or missing token"));
      }
      const fault = takeFault(request.method, url.pathname, path);
      if (fault?.drop) {
        // The body stream fails, so Bun resets the connection after the headers: the client sees the reply
        // break off. Bun prints this error to stderr; that line is expected in test output.
        return new Response(
          new ReadableStream({
            start(controller) {
              controller.error(new Error("fake-contree: connection dropped on purpose (fault injection)"));
            },
          }),
        );
      }
      if (fault) {
        const faultBody =
          fault.body === undefined
            ? JSON.stringify({ error: "injected", status: fault.status })
            : typeof fault.body === "string" || fault.body instanceof Uint8Array
              ? fault.body
              : JSON.stringify(fault.body);
        const headers = new Headers(fault.headers);
        if (!headers.has("content-type") && typeof faultBody === "string")
          headers.set("Content-Type", "application/json");
        return compress(new Response(faultBody, { status: fault.status, headers }));
      }
      try {
        return compress(await route(request, path, url.searchParams, body));
      } catch (error) {
        if (
          error instanceof SyntaxError ||
          (error instanceof Error && error.message === "body must be an object")
        ) {
          return compress(errorReply(400, `invalid JSON body: ${error.message}`));
        }
        return compress(errorReply(500, error instanceof Error ? error.message : String(error)));
      }
    },
  });

  return {
    url: `http://127.0.0.1:${server.port}`,
    token,
    state,
    requests,
    fail(spec) {
      faults.push({ ...spec, left: spec.times ?? 1 });
    },
    addImage,
    async close() {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      for (const op of state.operations.values()) op.abort.abort();
      await server.stop(true);
    },
  };
}

/** The cloud client pointed at a fake server, with retries that do not wait. */
export function cloudBackendFor(
  fake: Pick<FakeContree, "url" | "token">,
  options: Partial<ConstructorParameters<typeof CloudBackend>[0]> = {},
): CloudBackend {
  return new CloudBackend({
    url: fake.url,
    token: fake.token,
    version: "test",
    retry: { baseDelayMs: 1 },
    ...options,
  });
}
