// The local backend over HTTP as the ConTree v1 REST API (paths, shapes and status codes as the cloud's, see
// shared/reference/contree-cloud-api.md §3-4), on loopback with a bearer token, so the cloud client can be tested
// end to end against real sandboxes and other ConTree clients can use this machine.
import { createHash, timingSafeEqual } from "node:crypto";
import { imageGid, imageUid } from "./fsx.ts";
import { BackendError, UserError } from "../../errors.ts";
import { log } from "../../log.ts";
import type { FileSpec, Image, Operation, RunSpec } from "../types.ts";
import { isTerminal } from "../types.ts";
import type { LocalBackend } from "./backend.ts";
import { splitPath } from "./inspect.ts";

export interface RestOptions {
  port: number;
  hostname?: string;
  token: string;
}

const MAX_TIMEOUT_S = 86_400;
const DEFAULT_TRUNCATE = 1 << 20;
const MAX_TRUNCATE = 10 << 20;

function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return Response.json(body, { status, headers });
}

function failure(status: number, error: string): Response {
  return json({ error, status }, status);
}

function statusFor(error: BackendError, inspecting: boolean): number {
  switch (error.code) {
    case "not_found":
      return 404;
    case "invalid":
      return inspecting ? 422 : 400;
    case "conflict":
      return 409;
    case "unauthorized":
      return 401;
    case "forbidden":
      return 403;
    case "rate_limited":
      return 429;
    default:
      return 500;
  }
}

function imageJson(image: Image & { operationId?: string | null }): Record<string, unknown> {
  return {
    uuid: image.uuid,
    tag: image.tag,
    created_at: image.createdAt,
    operation_uuid: image.operationId ?? null,
  };
}

function streamJson(bytes: Uint8Array, truncated: boolean): Record<string, unknown> {
  try {
    return { value: new TextDecoder("utf-8", { fatal: true }).decode(bytes), encoding: "ascii", truncated };
  } catch {
    return { value: Buffer.from(bytes).toString("base64"), encoding: "base64", truncated };
  }
}

function operationJson(op: Operation, spec: Record<string, unknown>): Record<string, unknown> {
  const metadata: Record<string, unknown> = { ...spec };
  if (op.kind === "instance") {
    const result = op.result;
    metadata.result = {
      resources: result?.resources ?? {},
      state: {
        exit_code: result?.exit.exitCode ?? -1,
        pid: -1,
        signal: result?.exit.signal ?? -1,
        timed_out: result?.exit.timedOut ?? false,
        core_dump: false,
        stopped: false,
        continued: false,
      },
      stdout: result ? streamJson(result.stdout.bytes, result.stdout.truncated) : null,
      stderr: result ? streamJson(result.stderr.bytes, result.stderr.truncated) : null,
    };
  }
  return {
    uuid: op.id,
    kind: op.kind,
    status: op.status,
    error: op.error,
    created_at: op.createdAt,
    duration: op.durationS,
    metadata,
    result_image_uuid: op.resultImage,
    result: op.resultImage ? { image: op.resultImage, tag: op.resultTag } : null,
  };
}

async function jsonBody(request: Request): Promise<Record<string, unknown>> {
  try {
    const parsed = (await request.json()) as unknown;
    if (typeof parsed === "object" && parsed !== null && !Array.isArray(parsed)) {
      return parsed as Record<string, unknown>;
    }
  } catch {
    // reported below
  }
  throw new UserError("the request body must be a JSON object");
}

function text(value: unknown, name: string): string {
  if (typeof value !== "string" || !value) throw new UserError(`${name} must be a non-empty string`);
  return value;
}

function pagination(url: URL): { limit: number; offset: number } {
  const limit = Number(url.searchParams.get("limit") ?? 100);
  const offset = Number(url.searchParams.get("offset") ?? 0);
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000)
    throw new UserError("limit must be between 1 and 1000");
  if (!Number.isInteger(offset) || offset < 0) throw new UserError("offset must be a non-negative integer");
  return { limit, offset };
}

/** "tag:NAME" or a UUID → UUID. */
async function resolveImage(backend: LocalBackend, reference: string): Promise<string> {
  if (reference.startsWith("tag:")) return (await backend.getImageByTag(reference.slice(4))).uuid;
  return (await backend.getImage(reference)).uuid;
}

function parseRun(raw: Record<string, unknown>, image: string): RunSpec {
  const command = text(raw.command, "command");
  const timeout = raw.timeout === undefined ? 60 : Number(raw.timeout);
  if (!Number.isFinite(timeout) || timeout <= 0 || timeout > MAX_TIMEOUT_S) {
    throw new UserError(`timeout must be between 0 and ${MAX_TIMEOUT_S} seconds`);
  }
  const truncate = raw.truncate_output_at === undefined ? DEFAULT_TRUNCATE : Number(raw.truncate_output_at);
  if (!Number.isInteger(truncate) || truncate < 0 || truncate > MAX_TRUNCATE) {
    throw new UserError(`truncate_output_at must be between 0 and ${MAX_TRUNCATE}`);
  }
  let stdin: Uint8Array | null = null;
  if (typeof raw.stdin === "string") stdin = new TextEncoder().encode(raw.stdin);
  else if (raw.stdin && typeof raw.stdin === "object") {
    const { value, encoding } = raw.stdin as { value?: string; encoding?: string };
    if (typeof value === "string") {
      stdin =
        encoding === "base64"
          ? new Uint8Array(Buffer.from(value, "base64"))
          : new TextEncoder().encode(value);
    }
  }
  const files: Record<string, FileSpec> = {};
  for (const [path, spec] of Object.entries((raw.files ?? {}) as Record<string, unknown>)) {
    const entry = (typeof spec === "string" ? { uuid: spec } : spec) as {
      uuid?: string;
      mode?: string | number;
      uid?: number;
      gid?: number;
    };
    const mode = typeof entry.mode === "number" ? entry.mode : Number.parseInt(entry.mode ?? "0644", 8);
    files[path] = { uuid: text(entry.uuid, `files[${path}].uuid`), mode, uid: entry.uid, gid: entry.gid };
  }
  return {
    image,
    command,
    args: Array.isArray(raw.args) ? raw.args.map(String) : [],
    shell: raw.shell === undefined ? true : Boolean(raw.shell),
    env: (raw.env ?? {}) as Record<string, string>,
    cwd: typeof raw.cwd === "string" ? raw.cwd : "/root",
    timeoutS: timeout,
    disposable: raw.disposable === undefined ? true : Boolean(raw.disposable),
    stdin,
    files,
    keepOutputBytes: truncate,
    hostname: typeof raw.hostname === "string" ? raw.hostname : undefined,
  };
}

/** Digests are of equal length, so neither the token's length nor a matching prefix shows in comparison timing. */
function tokenDigest(value: string): Buffer {
  return createHash("sha256").update(value).digest();
}

/** Serves the ConTree v1 REST API for `backend`; returns the Bun server (call .stop() to end it). */
export function serveContreeApi(backend: LocalBackend, options: RestOptions): Bun.Server<undefined> {
  const specs = new Map<string, Record<string, unknown>>();
  const expected = tokenDigest(`Bearer ${options.token}`);
  const server = Bun.serve({
    port: options.port,
    hostname: options.hostname ?? "127.0.0.1",
    async fetch(request) {
      const url = new URL(request.url);
      if (!timingSafeEqual(tokenDigest(request.headers.get("authorization") ?? ""), expected)) {
        return failure(401, "missing or wrong bearer token");
      }
      const inspecting = url.pathname.startsWith("/v1/inspect/");
      try {
        return await route(request, url);
      } catch (error) {
        if (error instanceof UserError) return failure(400, error.message);
        if (error instanceof BackendError) return failure(statusFor(error, inspecting), error.detail);
        log.error(`local REST API ${request.method} ${url.pathname}:`, error);
        return failure(500, "internal error");
      }
    },
  });

  async function operationSpec(op: Operation): Promise<Record<string, unknown>> {
    const cached = specs.get(op.id);
    if (cached) return cached;
    const row = backend.store.db
      .query<{ spec: string }, [string]>("SELECT spec FROM operations WHERE id = ?")
      .get(op.id);
    const spec = row ? (JSON.parse(row.spec) as Record<string, unknown>) : {};
    if (op.kind === "instance") spec.image = op.inputImage;
    if (isTerminal(op.status)) specs.set(op.id, spec);
    return spec;
  }

  async function route(request: Request, url: URL): Promise<Response> {
    const method = request.method;
    const parts = url.pathname.replace(/\/+$/, "").split("/").slice(1);
    if (parts[0] !== "v1") return failure(404, "not found");
    const [, resource, id, action] = parts;

    if (resource === "whoami" && method === "GET") {
      return json({
        token_uuid: "local",
        token_expiration: null,
        permissions: {
          import: true,
          spawn: true,
          spawn_disposable: true,
          list: true,
          cancel: true,
          set_image_tag: true,
        },
        limits: { instance_max_timeout: MAX_TIMEOUT_S },
        operations_stat: {},
      });
    }

    if (resource === "images") {
      if (!id && method === "GET") {
        const { limit, offset } = pagination(url);
        const tagged = url.searchParams.get("tagged");
        const images = await backend.listImages({
          limit,
          offset,
          tagged: tagged === null ? undefined : tagged === "1" || tagged === "true",
          tagPrefix: url.searchParams.get("tag") ?? undefined,
          since: url.searchParams.get("since") ?? undefined,
          until: url.searchParams.get("until") ?? undefined,
        });
        return json({
          images: images.map((image) =>
            imageJson({ ...image, operationId: backend.store.getImageRow(image.uuid)?.operationId }),
          ),
        });
      }
      if (id === "import" && method === "POST") {
        const raw = await jsonBody(request);
        const registry = (typeof raw.registry === "string" ? { url: raw.registry } : raw.registry) as
          | { url?: string; credentials?: { username: string; password: string } }
          | undefined;
        const operation = await backend.importImage({
          registryUrl: text(registry?.url, "registry.url"),
          tag: typeof raw.tag === "string" ? raw.tag : undefined,
          credentials: registry?.credentials,
          timeoutS: Number(raw.timeout ?? 600),
        });
        return json({ uuid: operation }, 201, { location: `/v1/operations/${operation}` });
      }
      if (id && action === "tag" && method === "PATCH") {
        const raw = await jsonBody(request);
        return json(imageJson(await backend.setTag(id, text(raw.tag, "tag"))));
      }
      if (id && action === "tag" && method === "DELETE") return json(imageJson(await backend.removeTag(id)));
    }

    if (resource === "files") {
      if (!id && method === "POST") {
        const bytes = new Uint8Array(await request.arrayBuffer());
        const sha256 = new Bun.CryptoHasher("sha256").update(bytes).digest("hex");
        const stored = await backend.uploadFile(new Blob([bytes]), sha256);
        return json(stored, 201);
      }
      if (id && (method === "GET" || method === "HEAD")) {
        const found = await backend.findFile(id);
        if (!found)
          return method === "HEAD" ? new Response(null, { status: 404 }) : failure(404, "file not found");
        return method === "HEAD" ? new Response(null, { status: 200 }) : json(found);
      }
    }

    if (resource === "instances" && !id && method === "POST") {
      const raw = await jsonBody(request);
      const image = await resolveImage(backend, text(raw.image, "image"));
      const operation = await backend.run(parseRun(raw, image));
      return json({ uuid: operation }, 201, { location: `/v1/operations/${operation}` });
    }

    if (resource === "operations") {
      if (!id && method === "GET") {
        const { limit, offset } = pagination(url);
        const kind = url.searchParams.get("kind");
        const listed = await backend.listOperations({
          limit,
          offset,
          status: url.searchParams.get("status") ?? undefined,
          kind: kind === "instance" || kind === "image_import" ? kind : undefined,
          since: url.searchParams.get("since") ?? undefined,
          until: url.searchParams.get("until") ?? undefined,
        });
        const rows = await Promise.all(listed.map((summary) => backend.getOperation(summary.id)));
        return json(
          rows.map((op) => ({
            uuid: op.id,
            kind: op.kind,
            status: op.status,
            error: op.error,
            created_at: op.createdAt,
            duration: op.durationS,
            image_uuid: op.inputImage,
            result_image_uuid: op.resultImage,
          })),
        );
      }
      if (id && !action && method === "GET") {
        const op = await backend.getOperation(id);
        return json(operationJson(op, await operationSpec(op)));
      }
      if (id && !action && method === "DELETE") {
        const op = await backend.getOperation(id);
        if (isTerminal(op.status)) return failure(409, "operation is not cancellable");
        await backend.cancelOperation(id);
        return json({ uuid: id }, 202);
      }
    }

    if (resource === "inspect") {
      if (!id) {
        const tag = url.searchParams.get("tag");
        if (!tag) throw new UserError("tag is required");
        const image = await backend.getImageByTag(tag);
        return new Response(null, { status: 302, headers: { location: `${image.uuid}/` } });
      }
      const path = url.searchParams.get("path") ?? "/";
      if (!action && method === "GET") return json(imageJson(await backend.getImage(id)));
      if (action === "list" && method === "GET") return json(await listing(backend, id, path));
      if (action === "download" && (method === "GET" || method === "HEAD")) {
        const stream = await backend.readFile(id, path);
        if (method === "HEAD") {
          await stream.cancel();
          return new Response(null, { status: 200 });
        }
        return new Response(stream, { headers: { "content-type": "application/octet-stream" } });
      }
      if (action === "archive" && (method === "GET" || method === "HEAD")) {
        if (method === "HEAD") {
          await backend.listDirectory(id, path);
          return new Response(null, { status: 200 });
        }
        return new Response(await backend.archive(id, path), {
          headers: { "content-type": "application/x-tar" },
        });
      }
    }
    return failure(
      method === "GET" || method === "POST" ? 404 : 405,
      `no route for ${method} ${url.pathname}`,
    );
  }

  return server;
}

/** The cloud's listing shape: numeric owners beside names, and the kind as flags. */
async function listing(backend: LocalBackend, image: string, path: string): Promise<Record<string, unknown>> {
  const listed = await backend.listDirectory(image, path);
  const view = backend.layerView(image);
  const hits = view.entries(splitPath(listed.path));
  return {
    path: listed.path,
    files: listed.entries.map((entry) => {
      const stat = hits.get(entry.name)!.stat;
      return {
        path: `${listed.path === "/" ? "" : listed.path}/${entry.name}`,
        size: entry.size,
        owner: entry.owner,
        group: entry.group,
        uid: imageUid(stat.uid),
        gid: imageGid(stat.gid),
        mode: entry.mode,
        mtime: entry.mtime,
        nlink: stat.nlink,
        is_dir: entry.type === "directory",
        is_regular: entry.type === "file",
        is_symlink: entry.type === "symlink",
        is_socket: entry.type === "socket",
        is_fifo: entry.type === "fifo",
        symlink_to: entry.target,
      };
    }),
  };
}
