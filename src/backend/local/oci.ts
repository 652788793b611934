// Image import: OCI registries (docker://…) and local sources, into layers in overlayfs's format.
//
// Sources (ImportSpec.registryUrl):
//   docker://host/repo:tag, docker://repo@sha256:…, python:3.11   any OCI registry (anonymous, Basic or Bearer)
//   oci-layout:/path/to/layout[:tag]                             an OCI image layout directory (umoci, skopeo oci:)
//   oci-archive:/path/to/image.tar[:tag]                         that layout as a tar (skopeo oci-archive:, buildah)
//   docker-archive:/path/to/image.tar[:repo:tag]                 `docker save` output (legacy or OCI-style)
//
// Manifests: OCI index and Docker manifest list (the host's platform is picked), OCI and Docker v2 manifests.
// Every blob is checked against its digest before it is used. Layers: plain, gzip or zstd tar (by magic bytes);
// `.wh.NAME` becomes an overlay whiteout, `.wh..wh..opq` an opaque directory; modes (setuid too), owners, times,
// symlinks, hardlinks, fifos and PAX xattrs are kept. A layer blob is extracted once and shared by digest.
// A layer that reaches outside its own directory (`..`, or writing, whiting out or hard-linking through a symlink)
// is refused: the import fails and names the entry.
import { createTarDecoder, type TarHeader } from "modern-tar";
import {
  chmodSync,
  existsSync,
  linkSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  utimesSync,
} from "node:fs";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { BackendError } from "../../errors.ts";
import { RegistryClient } from "../../registry/auth.ts";
import { parseImageReference } from "../../registry/reference.ts";
import { localImageSourceScheme, type ImportProgress, type ImportSpec } from "../types.ts";
import {
  makeNode,
  makeWhiteout,
  OVERLAY_XATTR_PREFIXES,
  removeTree,
  setOpaque,
  setOwner,
  setXattr,
} from "./fsx.ts";
import { newLayerId, type Store } from "./store.ts";

export interface PulledImage {
  /** Layer ids, bottom first. */
  layers: string[];
  /** The platform manifest's digest: importing it again finds the same image. */
  digest: string | null;
}

const MB = 1024 * 1024;
/** Byte counts are reported at most this often (ms); layer and phase changes always are. */
const PROGRESS_INTERVAL = 200;

/** Follows an import: what it is doing, layers stored, bytes fetched. Tells the listener as it changes. */
export class ImportTracker {
  private state: ImportProgress = {
    message: "starting",
    layersDone: 0,
    layersTotal: null,
    bytesDone: 0,
    bytesTotal: null,
  };
  private lastBytesReport = 0;
  private layerLabel = "";
  private layerBytes = { done: 0, total: null as number | null };
  private readonly listener: (progress: ImportProgress) => void;

  constructor(listener: (progress: ImportProgress) => void) {
    this.listener = listener;
  }

  get current(): ImportProgress {
    return { ...this.state };
  }

  say(message: string, patch: Partial<ImportProgress> = {}): void {
    this.state = { ...this.state, ...patch, message };
    this.lastBytesReport = performance.now();
    try {
      this.listener({ ...this.state });
    } catch {
      // a listener's bug must not fail the import
    }
  }

  /** A new layer blob starts: its byte counts are reported against `size`. */
  startLayer(label: string, size: number | null): void {
    this.layerLabel = label;
    this.layerBytes = { done: 0, total: size };
    this.say(`${label}: fetching${size ? ` ${(size / MB).toFixed(1)} MB` : ""}`);
  }

  bytes(count: number): void {
    this.layerBytes.done += count;
    this.state.bytesDone += count;
    if (performance.now() - this.lastBytesReport < PROGRESS_INTERVAL) return;
    const { done, total } = this.layerBytes;
    this.say(
      `${this.layerLabel}: ${(done / MB).toFixed(1)}${total ? ` of ${(total / MB).toFixed(1)}` : ""} MB`,
    );
  }
}

type Progress = ImportTracker;

const MEDIA = {
  ociIndex: "application/vnd.oci.image.index.v1+json",
  dockerList: "application/vnd.docker.distribution.manifest.list.v2+json",
  ociManifest: "application/vnd.oci.image.manifest.v1+json",
  dockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
};
const ACCEPT = [MEDIA.ociIndex, MEDIA.dockerList, MEDIA.ociManifest, MEDIA.dockerManifest].join(", ");
const S_IFIFO = 0o010000;

interface Descriptor {
  mediaType?: string;
  digest: string;
  size?: number;
  platform?: { os?: string; architecture?: string; variant?: string };
  annotations?: Record<string, string>;
}

interface ManifestJson {
  mediaType?: string;
  manifests?: Descriptor[];
  layers?: Descriptor[];
  config?: Descriptor;
}

/** Where blobs come from: a registry or a directory. Both verify digests. */
interface BlobSource {
  /** The manifest (or index) bytes for a digest. */
  manifest(digest: string): Promise<Uint8Array>;
  /**
   * A host file holding the verified blob, and whether it is a temporary copy to delete after use. `onBytes` hears
   * of each chunk fetched or read.
   */
  blobFile(
    digest: string,
    size: number | undefined,
    onBytes: (count: number) => void,
  ): Promise<{ path: string; temporary: boolean }>;
}

function hostArchitecture(): { architecture: string; variant?: string } {
  if (process.arch === "x64") return { architecture: "amd64" };
  if (process.arch === "arm64") return { architecture: "arm64", variant: "v8" };
  if (process.arch === "arm") return { architecture: "arm", variant: "v7" };
  return { architecture: process.arch };
}

function sha256Hex(bytes: Uint8Array): string {
  return new Bun.CryptoHasher("sha256").update(bytes).digest("hex");
}

function checkDigest(digest: string, bytes: Uint8Array, what: string): void {
  const [algorithm, hex] = digest.split(":");
  if (algorithm !== "sha256") {
    throw new BackendError({
      code: "protocol",
      detail: `${what}: unsupported digest algorithm in ${digest}`,
    });
  }
  if (sha256Hex(bytes) !== hex) {
    throw new BackendError({ code: "protocol", detail: `${what}: content does not match digest ${digest}` });
  }
}

async function hashFile(path: string, onBytes?: (count: number) => void): Promise<string> {
  const hasher = new Bun.CryptoHasher("sha256");
  for await (const chunk of Bun.file(path).stream()) {
    hasher.update(chunk);
    onBytes?.(chunk.length);
  }
  return `sha256:${hasher.digest("hex")}`;
}

function parseJson(bytes: Uint8Array, what: string): ManifestJson {
  try {
    return JSON.parse(new TextDecoder().decode(bytes)) as ManifestJson;
  } catch {
    throw new BackendError({ code: "protocol", detail: `${what} is not JSON` });
  }
}

/** Picks the host's platform from an index; attestation and other platforms are skipped. */
function pickPlatform(index: ManifestJson, what: string): Descriptor {
  const manifests = index.manifests ?? [];
  const host = hostArchitecture();
  const linux = manifests.filter(
    (m) => (m.platform?.os ?? "linux") === "linux" && m.platform?.architecture === host.architecture,
  );
  const exact = linux.find(
    (m) => !host.variant || !m.platform?.variant || m.platform.variant === host.variant,
  );
  const chosen = exact ?? linux[0] ?? (manifests.length === 1 ? manifests[0] : undefined);
  if (!chosen) {
    const offered = manifests
      .map((m) => `${m.platform?.os ?? "?"}/${m.platform?.architecture ?? "?"}`)
      .join(", ");
    throw new BackendError({
      code: "not_found",
      detail: `${what} has no linux/${host.architecture} image (it offers ${offered || "nothing"})`,
    });
  }
  return chosen;
}

/** Follows indexes down to one image manifest. */
async function resolveManifest(
  source: BlobSource,
  top: Uint8Array,
  topDigest: string | null,
  what: string,
): Promise<{ manifest: ManifestJson; digest: string }> {
  let bytes = top;
  let digest = topDigest ?? `sha256:${sha256Hex(top)}`;
  for (let depth = 0; depth < 4; depth++) {
    const json = parseJson(bytes, what);
    if (json.manifests) {
      const chosen = pickPlatform(json, what);
      bytes = await source.manifest(chosen.digest);
      checkDigest(chosen.digest, bytes, what);
      digest = chosen.digest;
      continue;
    }
    if (!json.layers)
      throw new BackendError({ code: "protocol", detail: `${what}: manifest lists no layers` });
    return { manifest: json, digest };
  }
  throw new BackendError({ code: "protocol", detail: `${what}: indexes nested too deep` });
}

// ---- registry

function registrySource(
  store: Store,
  client: RegistryClient,
  repository: string,
  what: string,
  signal: AbortSignal,
): BlobSource {
  return {
    async manifest(digest) {
      const response = await client.fetch(`/v2/${repository}/manifests/${digest}`, {
        headers: { accept: ACCEPT },
        signal,
      });
      if (!response.ok) throw await registryError(response, what, `manifest ${digest}`);
      return new Uint8Array(await response.arrayBuffer());
    },
    async blobFile(digest, _size, onBytes) {
      const response = await client.fetch(`/v2/${repository}/blobs/${digest}`, { signal });
      if (!response.ok || !response.body) throw await registryError(response, what, `blob ${digest}`);
      const path = join(store.tmpDir, `blob-${crypto.randomUUID()}`);
      const hasher = new Bun.CryptoHasher("sha256");
      const writer = Bun.file(path).writer();
      try {
        for await (const chunk of response.body) {
          hasher.update(chunk);
          writer.write(chunk);
          onBytes(chunk.length);
        }
        await writer.end();
        if (`sha256:${hasher.digest("hex")}` !== digest) {
          throw new BackendError({
            code: "protocol",
            detail: `${what}: blob does not match its digest ${digest}`,
          });
        }
      } catch (error) {
        await Promise.resolve(writer.end()).catch(() => undefined);
        rmSync(path, { force: true });
        throw error;
      }
      return { path, temporary: true };
    },
  };
}

async function registryError(response: Response, what: string, item: string): Promise<BackendError> {
  await response.body?.cancel().catch(() => undefined);
  const status = response.status;
  const detail =
    status === 401 || status === 403
      ? `${what}: access denied to ${item}; check the image name, or give registry credentials for a private image`
      : status === 404
        ? `${what}: ${item} not found; check the image name and tag`
        : `${what}: ${item}: registry answered ${status}`;
  const code =
    status === 401
      ? "unauthorized"
      : status === 403
        ? "forbidden"
        : status === 404
          ? "not_found"
          : "unavailable";
  return new BackendError({ code, detail, status });
}

async function pullFromRegistry(
  store: Store,
  spec: ImportSpec,
  signal: AbortSignal,
  progress: Progress,
): Promise<PulledImage> {
  const ref = parseImageReference(spec.registryUrl);
  const what = `${ref.registry}/${ref.repository}${ref.digest ? `@${ref.digest}` : `:${ref.tag ?? "latest"}`}`;
  const client = new RegistryClient(ref, spec.credentials, { timeoutMs: spec.timeoutS * 1000 });
  const source = registrySource(store, client, ref.repository, what, signal);
  const reference = ref.digest ?? ref.tag ?? "latest";
  progress.say(`fetching the manifest of ${what}`);
  const response = await client.fetch(`/v2/${ref.repository}/manifests/${reference}`, {
    headers: { accept: ACCEPT },
    signal,
  });
  if (!response.ok) throw await registryError(response, what, "the manifest");
  const top = new Uint8Array(await response.arrayBuffer());
  if (ref.digest) checkDigest(ref.digest, top, what);
  const { manifest, digest } = await resolveManifest(source, top, ref.digest, what);
  return { layers: await storeLayers(store, source, manifest.layers ?? [], signal, progress), digest };
}

// ---- local sources

function layoutSource(root: string, what: string): BlobSource {
  const blobPath = (digest: string) => {
    const [algorithm, hex] = digest.split(":");
    if (!algorithm || !hex || !/^[a-z0-9]+$/.test(algorithm) || !/^[a-f0-9]+$/.test(hex)) {
      throw new BackendError({ code: "protocol", detail: `${what}: bad digest ${digest}` });
    }
    const path = join(root, "blobs", algorithm, hex);
    if (!existsSync(path))
      throw new BackendError({ code: "not_found", detail: `${what}: blob ${digest} is missing` });
    return path;
  };
  return {
    async manifest(digest) {
      return readFileSync(blobPath(digest));
    },
    async blobFile(digest, _size, onBytes) {
      const path = blobPath(digest);
      if ((await hashFile(path, onBytes)) !== digest) {
        throw new BackendError({
          code: "protocol",
          detail: `${what}: blob does not match its digest ${digest}`,
        });
      }
      return { path, temporary: false };
    },
  };
}

async function importLayout(
  store: Store,
  root: string,
  tag: string | null,
  what: string,
  signal: AbortSignal,
  progress: Progress,
): Promise<PulledImage> {
  const indexPath = join(root, "index.json");
  if (!existsSync(indexPath)) {
    throw new BackendError({ code: "not_found", detail: `${what}: no index.json (not an OCI image layout)` });
  }
  const index = parseJson(readFileSync(indexPath), `${what} index.json`);
  const manifests = index.manifests ?? [];
  const named = tag
    ? manifests.filter((m) => {
        const name = m.annotations?.["org.opencontainers.image.ref.name"] ?? "";
        return name === tag || name.endsWith(`:${tag}`);
      })
    : manifests;
  if (named.length === 0) {
    throw new BackendError({ code: "not_found", detail: `${what}: no image tagged '${tag}'` });
  }
  const source = layoutSource(root, what);
  const chosen = named.length === 1 ? named[0]! : pickPlatform({ manifests: named }, what);
  const top = await source.manifest(chosen.digest);
  checkDigest(chosen.digest, top, what);
  const { manifest, digest } = await resolveManifest(source, top, chosen.digest, what);
  return { layers: await storeLayers(store, source, manifest.layers ?? [], signal, progress), digest };
}

/** `docker save` without an OCI layout: manifest.json names the config and the layer tars by path. */
async function importDockerArchive(
  store: Store,
  root: string,
  tag: string | null,
  what: string,
  signal: AbortSignal,
  progress: Progress,
): Promise<PulledImage> {
  const manifestPath = join(root, "manifest.json");
  if (!existsSync(manifestPath)) {
    throw new BackendError({
      code: "not_found",
      detail: `${what}: no manifest.json (not a docker save archive)`,
    });
  }
  const entries = JSON.parse(readFileSync(manifestPath, "utf8")) as {
    Config: string;
    RepoTags?: string[] | null;
    Layers: string[];
  }[];
  const entry = tag
    ? entries.find((e) => (e.RepoTags ?? []).some((t) => t === tag || t.endsWith(`:${tag}`)))
    : entries[0];
  if (!entry) throw new BackendError({ code: "not_found", detail: `${what}: no image tagged '${tag}'` });
  const layers: Descriptor[] = [];
  for (const layer of entry.Layers) {
    const path = join(root, layer);
    if (!path.startsWith(`${root}/`) || !existsSync(path)) {
      throw new BackendError({ code: "protocol", detail: `${what}: layer ${layer} is missing` });
    }
    layers.push({ digest: await hashFile(path), annotations: { path } });
  }
  const source: BlobSource = {
    async manifest() {
      throw new BackendError({ code: "protocol", detail: `${what}: unexpected manifest reference` });
    },
    async blobFile(digest) {
      const found = layers.find((layer) => layer.digest === digest);
      return { path: found!.annotations!.path!, temporary: false };
    },
  };
  const digest = await hashFile(join(root, entry.Config));
  return { layers: await storeLayers(store, source, layers, signal, progress), digest };
}

/** `scheme:/path[:tag]`: the tag is whatever follows a colon after the last slash when the whole is not a path. */
function splitPathAndTag(rest: string): { path: string; tag: string | null } {
  if (existsSync(rest)) return { path: rest, tag: null };
  const slash = rest.lastIndexOf("/");
  const colon = rest.indexOf(":", slash + 1);
  if (colon < 0) return { path: rest, tag: null };
  return { path: rest.slice(0, colon), tag: rest.slice(colon + 1) || null };
}

async function importLocal(
  store: Store,
  url: string,
  signal: AbortSignal,
  progress: Progress,
): Promise<PulledImage> {
  const colon = url.indexOf(":");
  const scheme = url.slice(0, colon);
  const { path, tag } = splitPathAndTag(url.slice(colon + 1));
  if (!path.startsWith("/")) {
    throw new BackendError({ code: "invalid", detail: `${scheme}: needs an absolute path (got '${path}')` });
  }
  if (!existsSync(path)) throw new BackendError({ code: "not_found", detail: `${path} does not exist` });
  if (scheme === "oci-layout") return importLayout(store, path, tag, url, signal, progress);
  // Archives: unpack with the host's tar into a work directory, then read it as a directory.
  const unpacked = join(store.tmpDir, `archive-${crypto.randomUUID()}`);
  mkdirSync(unpacked);
  try {
    progress.say(`unpacking ${path}`);
    const proc = Bun.spawn(["tar", "-xf", path, "-C", unpacked], { stdio: ["ignore", "ignore", "pipe"] });
    const [stderr, code] = await Promise.all([new Response(proc.stderr).text(), proc.exited]);
    if (code !== 0)
      throw new BackendError({ code: "invalid", detail: `${path} is not a readable tar: ${stderr.trim()}` });
    // Newer `docker save` writes an OCI layout too; prefer it when present.
    if (existsSync(join(unpacked, "index.json")) && (scheme === "oci-archive" || !tag)) {
      return await importLayout(store, unpacked, tag, url, signal, progress);
    }
    if (scheme === "docker-archive")
      return await importDockerArchive(store, unpacked, tag, url, signal, progress);
    throw new BackendError({ code: "invalid", detail: `${path} holds no OCI image layout (index.json)` });
  } finally {
    // An unpacked archive can be gigabytes: its removal must not hold up the event loop (other runs' output, MCP).
    await rm(unpacked, { recursive: true, force: true }).catch(() => removeTree(unpacked));
  }
}

/** Imports an image from a registry or a local source into the store; returns its layers. */
export async function importImage(
  store: Store,
  spec: ImportSpec,
  signal: AbortSignal,
  progress: Progress,
): Promise<PulledImage> {
  if (localImageSourceScheme(spec.registryUrl)) return importLocal(store, spec.registryUrl, signal, progress);
  return pullFromRegistry(store, spec, signal, progress);
}

// ---- layers

async function storeLayers(
  store: Store,
  source: BlobSource,
  layers: Descriptor[],
  signal: AbortSignal,
  progress: Progress,
): Promise<string[]> {
  const ids: string[] = [];
  const missing = layers.filter((layer) => !store.layerByDigest(layer.digest));
  const sizes = missing.map((layer) => layer.size);
  progress.say(
    missing.length === 0
      ? `all ${layers.length} layers are already stored`
      : `${missing.length} of ${layers.length} layers to fetch`,
    {
      layersTotal: layers.length,
      layersDone: layers.length - missing.length,
      bytesTotal: sizes.every((size) => typeof size === "number")
        ? sizes.reduce<number>((sum, size) => sum + size!, 0)
        : null,
    },
  );
  for (const [index, layer] of layers.entries()) {
    signal.throwIfAborted();
    const known = store.layerByDigest(layer.digest);
    if (known) {
      ids.push(known);
      continue;
    }
    const label = `layer ${index + 1}/${layers.length}`;
    progress.startLayer(label, layer.size ?? null);
    const blob = await source.blobFile(layer.digest, layer.size, (count) => progress.bytes(count));
    progress.say(`${label}: extracting`);
    const id = newLayerId();
    const building = join(store.tmpDir, `layer-${id}`);
    try {
      mkdirSync(building, { mode: 0o755 });
      await extractLayer(blob.path, building, signal);
      renameSync(building, store.layerPath(id));
      try {
        store.addLayer(id, layer.digest);
        ids.push(id);
      } catch {
        // Another import stored the same layer meanwhile: use theirs.
        rmSync(store.layerPath(id), { recursive: true, force: true });
        const other = store.layerByDigest(layer.digest);
        if (!other)
          throw new BackendError({ code: "unavailable", detail: `could not store layer ${layer.digest}` });
        ids.push(other);
      }
    } finally {
      removeTree(building);
      if (blob.temporary) rmSync(blob.path, { force: true });
    }
    progress.say(`${label}: stored`, { layersDone: ids.length });
  }
  return ids;
}

async function decompressed(path: string): Promise<ReadableStream<Uint8Array>> {
  const head = new Uint8Array(await Bun.file(path).slice(0, 4).arrayBuffer());
  const stream = Bun.file(path).stream();
  if (head[0] === 0x1f && head[1] === 0x8b) return stream.pipeThrough(new DecompressionStream("gzip"));
  if (head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) {
    // Bun decompresses zstd; the DOM typings only list gzip and deflate.
    return stream.pipeThrough(new DecompressionStream("zstd" as "gzip"));
  }
  return stream;
}

function applyXattrs(path: string, header: TarHeader): void {
  for (const [key, value] of Object.entries(header.pax ?? {})) {
    if (!key.startsWith("SCHILY.xattr.")) continue;
    const name = key.slice("SCHILY.xattr.".length);
    // overlay's own attributes in an image would change how the stack is read.
    if (OVERLAY_XATTR_PREFIXES.some((prefix) => name.startsWith(prefix))) continue;
    try {
      setXattr(path, name, Buffer.from(value, "latin1"));
    } catch {
      // an attribute the file system does not take is not worth failing an import
    }
  }
}

/** A layer that reaches outside its directory, or is malformed so that it might: the import fails, naming the entry. */
function refused(entry: string, why: string): BackendError {
  return new BackendError({
    code: "invalid",
    detail: `layer entry '${entry}' ${why}; a layer may only write inside its own directory, so the image is refused`,
  });
}

/**
 * A layer-relative path without `.` or leading slashes (a leading `/` means the layer's root, as docker and
 * containerd read it); null for the root itself. `..` is refused: no image tool writes it and it can only climb out.
 */
function layerPath(name: string, entry: string): string | null {
  const parts: string[] = [];
  for (const part of name.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") throw refused(entry, `has '..' in '${name}'`);
    parts.push(part);
  }
  return parts.length ? parts.join("/") : null;
}

interface DirectoryMeta {
  mtime: Date;
  mode: number;
}

/**
 * The layer directory being filled. No entry may write, delete or link through a symlink: a layer holding
 * `evil -> /etc` and then `evil/cron.d/x` (or `evil/.wh.passwd`, or a hard link to `evil/shadow`) would otherwise
 * reach the host as root. Parent directories are checked top down with lstat, so the check itself never passes a
 * link, and remembered, so a layer of many files in few directories costs one lstat per directory. Every removal
 * goes through `remove`, which forgets the directories it took away.
 */
class LayerTree {
  /**
   * Layer-relative paths checked to be real directories, with the mode and time from their header (null for a
   * parent made on the way). By path: a directory listed twice takes its last header, at its first position, and
   * parents come before their children.
   */
  private readonly dirs = new Map<string, DirectoryMeta | null>();
  private readonly root: string;

  constructor(root: string) {
    this.root = root;
  }

  path(rel: string): string {
    return join(this.root, rel);
  }

  /**
   * Checks that every directory above `rel` is a real directory; makes missing ones when `create`, else returns false
   * when one is missing.
   */
  parents(rel: string, entry: string, create: boolean): boolean {
    const end = rel.lastIndexOf("/");
    if (end < 0 || this.dirs.has(rel.slice(0, end))) return true;
    for (let at = rel.indexOf("/"); at > 0; at = rel.indexOf("/", at + 1)) {
      const dir = rel.slice(0, at);
      if (this.dirs.has(dir)) continue;
      const stat = lstatSync(this.path(dir), { throwIfNoEntry: false });
      if (!stat) {
        if (!create) return false;
        mkdirSync(this.path(dir), { mode: 0o755 });
      } else if (stat.isSymbolicLink()) {
        throw refused(entry, `goes through the symlink '${dir}'`);
      } else if (!stat.isDirectory()) {
        throw refused(entry, `goes through '${dir}', which is not a directory`);
      }
      this.dirs.set(dir, null);
    }
    return true;
  }

  /** `rel`, whose parents are checked, is a real directory with this header. */
  addDirectory(rel: string, meta: DirectoryMeta): void {
    this.dirs.set(rel, meta);
  }

  /** Removes what is at `rel` without following a link; keeps a directory when `keepDirectory`. */
  remove(rel: string, keepDirectory: boolean): void {
    const stat = lstatSync(this.path(rel), { throwIfNoEntry: false });
    if (!stat || (keepDirectory && stat.isDirectory())) return;
    rmSync(this.path(rel), { recursive: true, force: true });
    if (!stat.isDirectory()) return;
    // Rare (a layer replacing a directory it made): what was below may come back as links, so check it again.
    this.dirs.delete(rel);
    const below = `${rel}/`;
    for (const dir of this.dirs.keys()) if (dir.startsWith(below)) this.dirs.delete(dir);
  }

  /** Directory modes and times last: writing their contents needed write permission and changed their times. */
  finish(): void {
    for (const [rel, meta] of [...this.dirs].toReversed()) {
      if (!meta) continue;
      chmodSync(this.path(rel), meta.mode);
      utimesSync(this.path(rel), meta.mtime, meta.mtime);
    }
  }
}

/** Extracts one layer tar into `root` (a new, empty directory) in overlayfs's format. */
export async function extractLayer(path: string, root: string, signal: AbortSignal): Promise<void> {
  const tree = new LayerTree(root);
  const entries = (await decompressed(path)).pipeThrough(createTarDecoder());
  for await (const entry of entries) {
    signal.throwIfAborted();
    const header = entry.header;
    const rel = layerPath(header.name, header.name);
    const type = header.type ?? "file";
    if (!rel) {
      await entry.body.cancel();
      continue;
    }
    tree.parents(rel, header.name, true);
    const target = tree.path(rel);
    const slash = rel.lastIndexOf("/");
    const base = rel.slice(slash + 1);
    if (base.startsWith(".wh.")) {
      await entry.body.cancel();
      if (base === ".wh..wh..opq") {
        setOpaque(slash < 0 ? root : tree.path(rel.slice(0, slash)));
      } else if (!base.startsWith(".wh..wh.")) {
        // Other `.wh..wh.` names are aufs bookkeeping, which docker skips too.
        const name = base.slice(4);
        if (name === "" || name === "." || name === "..") {
          throw refused(header.name, "whites out its own directory or a parent");
        }
        const hidden = slash < 0 ? name : `${rel.slice(0, slash)}/${name}`;
        tree.remove(hidden, false);
        makeWhiteout(tree.path(hidden));
      }
      continue;
    }
    const mode = (header.mode ?? (type === "directory" ? 0o755 : 0o644)) & 0o7777;
    const uid = header.uid ?? 0;
    const gid = header.gid ?? 0;
    const mtime = header.mtime ?? new Date(0);
    if (type === "directory") {
      await entry.body.cancel();
      tree.remove(rel, true);
      if (!existsSync(target)) mkdirSync(target);
      setOwner(target, uid, gid);
      // The mode comes at the end: a directory without write permission still has to take its entries (rootless,
      // we have no power to write past its mode).
      chmodSync(target, 0o755);
      applyXattrs(target, header);
      tree.addDirectory(rel, { mtime, mode });
      continue;
    }
    if (type === "link") {
      await entry.body.cancel();
      const source = layerPath(header.linkname ?? "", header.name);
      if (!source) throw refused(header.name, "is a hard link to nothing");
      const stat = tree.parents(source, header.name, false)
        ? lstatSync(tree.path(source), { throwIfNoEntry: false })
        : undefined;
      // link(2) does not follow a symlink: a hard link to one is another link with the same target, which is safe.
      if (!stat || !(stat.isFile() || stat.isSymbolicLink())) {
        throw refused(
          header.name,
          `is a hard link to '${header.linkname}', not to a file extracted before it`,
        );
      }
      if (source === rel) continue;
      tree.remove(rel, false);
      linkSync(tree.path(source), target);
      continue;
    }
    tree.remove(rel, false);
    if (type === "file") {
      const writer = Bun.file(target).writer();
      for await (const chunk of entry.body) writer.write(chunk);
      await writer.end();
      setOwner(target, uid, gid);
      // After chown, which clears setuid/setgid.
      chmodSync(target, mode);
      applyXattrs(target, header);
      utimesSync(target, mtime, mtime);
    } else if (type === "symlink") {
      await entry.body.cancel();
      symlinkSync(header.linkname ?? "", target);
      setOwner(target, uid, gid);
      lutimesSync(target, mtime, mtime);
    } else if (type === "fifo") {
      await entry.body.cancel();
      makeNode(target, S_IFIFO | mode, 0, 0);
      setOwner(target, uid, gid);
    } else {
      // Device nodes: the sandbox gets its own /dev, and making devices is not something an image should do here.
      await entry.body.cancel();
    }
  }
  tree.finish();
}
