// The Backend interface over ConTree REST API v1 (contree-cloud-api.md §3). Paths are relative to <url>/v1.
import { release, type } from "node:os";
import { BackendError } from "../../errors.ts";
import type {
  Backend,
  DirListing,
  Image,
  ImageQuery,
  ImportSpec,
  Operation,
  OperationQuery,
  OperationSummary,
  RunSpec,
  StoredFile,
} from "../types.ts";
import { ContreeHttp, type RetryOptions } from "./http.ts";
import {
  encodeStdin,
  octalMode,
  operationIdFrom,
  parseDirListing,
  parseImage,
  parseImages,
  parseOperation,
  parseOperationSummaries,
  pickStoredFile,
  parseStoredFile,
} from "./wire.ts";

export interface CloudBackendOptions {
  /** Service root without /v1, e.g. https://contree.dev */
  url: string;
  token: string;
  project?: string;
  /** Our version, for the User-Agent. */
  version: string;
  retry?: RetryOptions;
  maxConcurrent?: number;
  timeoutMs?: number;
}

/** One path segment. `.` and `..` would be resolved by the URL parser into another route: no id is spelled so. */
function segment(value: string): string {
  if (value === "" || value === "." || value === "..") {
    throw new BackendError({
      code: "not_found",
      detail: `'${value}' is not an id the service could have issued`,
    });
  }
  return encodeURIComponent(value);
}

export class CloudBackend implements Backend {
  readonly kind = "cloud" as const;
  readonly description: string;
  private readonly http: ContreeHttp;

  constructor(options: CloudBackendOptions) {
    const url = options.url.replace(/\/+$/, "");
    this.description = `ConTree cloud at ${url}`;
    this.http = new ContreeHttp({
      url,
      token: options.token,
      project: options.project,
      userAgent: `contree-mcp/${options.version} bun/${Bun.version} ${type()}/${release()}`,
      retry: options.retry,
      maxConcurrent: options.maxConcurrent,
      timeoutMs: options.timeoutMs,
    });
  }

  async listImages(query: ImageQuery): Promise<Image[]> {
    // The service matches `tag` against whole tag characters and rejects or misses a value ending in a separator
    // (`common/`), as the Python client learned: send it without, then keep only what starts with the full prefix.
    const prefix = query.tagPrefix || undefined;
    const sent = prefix?.replace(/[:/.]+$/, "") || undefined;
    const body = await this.http.json("GET", "images", {
      query: {
        limit: query.limit,
        offset: query.offset,
        tagged: query.tagged === undefined ? undefined : query.tagged ? 1 : 0,
        tag: sent,
        since: query.since || undefined,
        until: query.until || undefined,
      },
    });
    const images = parseImages(body ?? []);
    return prefix && sent !== prefix ? images.filter((image) => image.tag?.startsWith(prefix)) : images;
  }

  async getImage(uuid: string): Promise<Image> {
    // The trailing slash matters: /inspect/{uuid} without it is not the image route.
    return parseImage(await this.http.json("GET", `inspect/${segment(uuid)}/`));
  }

  async getImageByTag(tag: string): Promise<Image> {
    // The service answers 302 Location: <uuid>/ (relative to /v1/inspect/); fetch follows it.
    return parseImage(await this.http.json("GET", "inspect/", { query: { tag } }));
  }

  async setTag(uuid: string, tag: string): Promise<Image> {
    return parseImage(await this.http.json("PATCH", `images/${segment(uuid)}/tag`, { body: { tag } }));
  }

  async removeTag(uuid: string): Promise<Image> {
    // The DELETE reply is 204 or an Image depending on the server version; ask for the image either way.
    await this.http.json("DELETE", `images/${segment(uuid)}/tag`);
    return this.getImage(uuid);
  }

  async importImage(spec: ImportSpec): Promise<string> {
    const registry: Record<string, unknown> = { url: spec.registryUrl };
    if (spec.credentials) registry.credentials = spec.credentials;
    const body: Record<string, unknown> = { registry, timeout: spec.timeoutS };
    if (spec.tag) body.tag = spec.tag;
    return this.spawn("images/import", body);
  }

  async run(spec: RunSpec): Promise<string> {
    const body: Record<string, unknown> = {
      command: spec.command,
      image: spec.image,
      shell: spec.shell,
      env: spec.env,
      cwd: spec.cwd,
      timeout: spec.timeoutS,
      disposable: spec.disposable,
      truncate_output_at: spec.keepOutputBytes,
    };
    if (!spec.shell) body.args = spec.args;
    if (spec.hostname) body.hostname = spec.hostname;
    if (spec.stdin) body.stdin = encodeStdin(spec.stdin);
    const files = Object.entries(spec.files);
    if (files.length > 0) {
      body.files = Object.fromEntries(
        files.map(([path, file]) => [
          path,
          { uuid: file.uuid, mode: octalMode(file.mode), uid: file.uid ?? 0, gid: file.gid ?? 0 },
        ]),
      );
    }
    return this.spawn("instances", body);
  }

  async getOperation(id: string): Promise<Operation> {
    return parseOperation(await this.http.json("GET", `operations/${segment(id)}`));
  }

  async listOperations(query: OperationQuery): Promise<OperationSummary[]> {
    const body = await this.http.json("GET", "operations", {
      query: {
        limit: query.limit,
        offset: query.offset,
        status: query.status || undefined,
        kind: query.kind,
        since: query.since || undefined,
        until: query.until || undefined,
      },
    });
    return parseOperationSummaries(body ?? []);
  }

  async cancelOperation(id: string): Promise<void> {
    try {
      await this.http.json("DELETE", `operations/${segment(id)}`);
    } catch (error) {
      // 409 "operation is not cancellable": it already finished, which is what the caller wanted.
      if (error instanceof BackendError && error.status === 409) return;
      throw error;
    }
  }

  async findFile(sha256: string): Promise<StoredFile | null> {
    try {
      return pickStoredFile(await this.http.json("GET", `files/${segment(sha256)}`), sha256);
    } catch (error) {
      if (error instanceof BackendError && error.status === 404) return null;
      throw error;
    }
  }

  async uploadFile(body: Blob, sha256: string): Promise<StoredFile> {
    const file = parseStoredFile(await this.http.json("POST", "files", { upload: body }));
    if (file.sha256 && file.sha256.toLowerCase() !== sha256.toLowerCase()) {
      throw new BackendError({
        code: "protocol",
        detail: `uploaded a file with sha256 ${sha256} but ConTree stored ${file.sha256}`,
      });
    }
    return { ...file, sha256: file.sha256 || sha256 };
  }

  async listDirectory(image: string, path: string): Promise<DirListing> {
    const body = await this.http.json("GET", `inspect/${segment(image)}/list`, { query: { path } });
    return parseDirListing(body, path);
  }

  async readFile(image: string, path: string): Promise<ReadableStream<Uint8Array>> {
    return this.http.stream(`inspect/${segment(image)}/download`, { path });
  }

  async archive(image: string, path: string): Promise<ReadableStream<Uint8Array>> {
    return this.http.stream(`inspect/${segment(image)}/archive`, { path });
  }

  async close(): Promise<void> {
    this.http.close();
  }

  /** POST that starts an operation; the id is in the JSON body or, failing that, in Location. */
  private async spawn(path: string, body: Record<string, unknown>): Promise<string> {
    const response = await this.http.raw("POST", path, { body });
    const text = (await response.text()).trim();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    const id = operationIdFrom(parsed, response.headers.get("location"));
    if (!id) {
      throw new BackendError({
        code: "protocol",
        detail: `no operation id in the reply (neither a uuid in the body nor a Location header): ${text.slice(0, 300)}`,
        method: "POST",
        url: this.http.url(path),
        status: response.status,
      });
    }
    return id;
  }
}
