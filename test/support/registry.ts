// A real registry for tests: Debian's docker-registry (distribution 2.8) on 127.0.0.1, optionally behind htpasswd
// or a Bun token server that signs ES256 JWTs, plus a pusher that builds small OCI/Docker images in TypeScript so
// tests need neither docker nor skopeo.
import { createHash, randomUUID } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { packTar, type TarHeader } from "modern-tar";
import { RegistryClient } from "../../src/registry/auth.ts";
import { parseImageReference } from "../../src/registry/reference.ts";

export const REGISTRY_BINARY = "/usr/bin/docker-registry";
export const hasDockerRegistry =
  existsSync(REGISTRY_BINARY) && existsSync("/usr/bin/htpasswd") && existsSync("/usr/bin/openssl");

export type RegistryAuthMode = "none" | "htpasswd" | "token";

export interface TokenRequest {
  /** The user whose Basic credentials were right, or null for an anonymous request. */
  user: string | null;
  scopes: string[];
}

export interface TestRegistry {
  /** "127.0.0.1:PORT", usable in image references. */
  host: string;
  /** "http://127.0.0.1:PORT" */
  url: string;
  auth: RegistryAuthMode;
  /** Accepted by htpasswd and the token server; unused with auth "none". */
  username: string;
  password: string;
  /** Requests the token server granted (auth "token" only), in order. */
  tokenRequests: TokenRequest[];
  close(): Promise<void>;
}

export interface TestRegistryOptions {
  auth?: RegistryAuthMode;
  /** Token auth: give anonymous callers pull access (like a public repository). Default: anonymous tokens grant nothing. */
  anonymousPull?: boolean;
}

const TOKEN_SERVICE = "contree-test-registry";
const TOKEN_ISSUER = "contree-test-issuer";
const START_TIMEOUT_MS = 15_000;

function run(argv: string[]): string {
  const result = Bun.spawnSync(argv, { stdout: "pipe", stderr: "pipe" });
  if (result.exitCode !== 0) {
    throw new Error(`${argv[0]} failed (${result.exitCode}): ${result.stderr.toString()}`);
  }
  return result.stdout.toString();
}

function base64url(data: Uint8Array | string): string {
  return Buffer.from(data).toString("base64url");
}

function pemBody(pem: string): Uint8Array<ArrayBuffer> {
  return new Uint8Array(Buffer.from(pem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, ""), "base64"));
}

interface SigningKey {
  key: CryptoKey;
  certPem: string;
  certDerBase64: string;
}

let signingKey: Promise<SigningKey> | null = null;

/** One self-signed P-256 cert per test process: the registry trusts it as its root and finds it in each token's x5c. */
function tokenSigningKey(): Promise<SigningKey> {
  signingKey ??= (async () => {
    const dir = mkdtempSync(join(tmpdir(), "contree-token-key-"));
    try {
      const key = join(dir, "token.key");
      const cert = join(dir, "token.crt");
      const pkcs8 = join(dir, "token.pkcs8");
      run([
        "openssl",
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-days",
        "3650",
        "-subj",
        "/CN=contree-test-token",
        "-keyout",
        key,
        "-out",
        cert,
      ]);
      run(["openssl", "pkcs8", "-topk8", "-nocrypt", "-in", key, "-out", pkcs8]);
      const certPem = readFileSync(cert, "utf8");
      const cryptoKey = await crypto.subtle.importKey(
        "pkcs8",
        pemBody(readFileSync(pkcs8, "utf8")),
        { name: "ECDSA", namedCurve: "P-256" },
        false,
        ["sign"],
      );
      return { key: cryptoKey, certPem, certDerBase64: Buffer.from(pemBody(certPem)).toString("base64") };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  })();
  return signingKey;
}

interface Access {
  type: string;
  name: string;
  actions: string[];
}

function parseScopes(scopes: string[]): Access[] {
  return scopes.flatMap((scope) =>
    scope
      .split(" ")
      .filter(Boolean)
      .map((item) => {
        const first = item.indexOf(":");
        const last = item.lastIndexOf(":");
        return {
          type: item.slice(0, first),
          name: item.slice(first + 1, last),
          actions: item.slice(last + 1).split(","),
        };
      }),
  );
}

async function signToken(signing: SigningKey, subject: string, access: Access[]): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const header = { alg: "ES256", typ: "JWT", x5c: [signing.certDerBase64] };
  const claims = {
    iss: TOKEN_ISSUER,
    sub: subject,
    aud: TOKEN_SERVICE,
    exp: now + 300,
    nbf: now - 60,
    iat: now,
    jti: randomUUID(),
    access,
  };
  const input = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(claims))}`;
  const signature = await crypto.subtle.sign(
    { name: "ECDSA", hash: "SHA-256" },
    signing.key,
    new TextEncoder().encode(input),
  );
  return `${input}.${base64url(new Uint8Array(signature))}`;
}

function startTokenServer(
  signing: SigningKey,
  username: string,
  password: string,
  anonymousPull: boolean,
  requests: TokenRequest[],
) {
  return Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      const url = new URL(req.url);
      if (url.pathname !== "/token") return new Response("not found", { status: 404 });
      const authorization = req.headers.get("authorization");
      let user: string | null = null;
      if (authorization) {
        const decoded = authorization.startsWith("Basic ")
          ? Buffer.from(authorization.slice(6), "base64").toString("utf8")
          : "";
        if (decoded !== `${username}:${password}`) {
          return Response.json(
            { errors: [{ code: "UNAUTHORIZED", message: "bad credentials" }] },
            { status: 401 },
          );
        }
        user = username;
      }
      const scopes = url.searchParams.getAll("scope");
      requests.push({ user, scopes });
      const requested = parseScopes(scopes);
      // Like Docker Hub: an anonymous caller still gets a token, which grants only what is public.
      const access = user
        ? requested
        : anonymousPull
          ? requested.map((a) => ({ ...a, actions: a.actions.filter((action) => action === "pull") }))
          : [];
      const token = await signToken(signing, user ?? "", access);
      return Response.json({
        token,
        access_token: token,
        expires_in: 300,
        issued_at: new Date().toISOString(),
      });
    },
  });
}

function freePort(): number {
  const probe = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response() });
  const port = probe.port!;
  probe.stop(true);
  return port;
}

function registryConfig(dir: string, port: number, auth: string): string {
  return `version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: ${join(dir, "data")}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:${port}
  secret: ${randomUUID()}
${auth}`;
}

async function waitForRegistry(url: string, process: Bun.Subprocess, stderr: () => string): Promise<boolean> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (process.exitCode !== null || process.signalCode !== null) return false;
    try {
      const response = await fetch(`${url}/v2/`);
      await response.body?.cancel();
      if (response.status === 200 || response.status === 401) return true;
    } catch {
      // not listening yet
    }
    await Bun.sleep(20);
  }
  throw new Error(`docker-registry did not answer on ${url} within ${START_TIMEOUT_MS} ms: ${stderr()}`);
}

/** Starts docker-registry on a free loopback port with a temp storage dir. Call close() when done. */
export async function startTestRegistry(options: TestRegistryOptions = {}): Promise<TestRegistry> {
  const auth = options.auth ?? "none";
  const dir = mkdtempSync(join(tmpdir(), "contree-registry-"));
  mkdirSync(join(dir, "data"));
  const username = "probe";
  const password = `pw-${randomUUID()}`;
  const tokenRequests: TokenRequest[] = [];
  let tokenServer: ReturnType<typeof Bun.serve> | null = null;
  let authBlock = "";
  if (auth === "htpasswd") {
    const htpasswd = join(dir, "htpasswd");
    writeFileSync(htpasswd, run(["htpasswd", "-Bbn", username, password]));
    authBlock = `auth:\n  htpasswd:\n    realm: contree-test-realm\n    path: ${htpasswd}\n`;
  } else if (auth === "token") {
    const signing = await tokenSigningKey();
    const cert = join(dir, "token.crt");
    writeFileSync(cert, signing.certPem);
    tokenServer = startTokenServer(
      signing,
      username,
      password,
      options.anonymousPull ?? false,
      tokenRequests,
    );
    authBlock = `auth:\n  token:\n    realm: http://127.0.0.1:${tokenServer.port}/token\n    service: ${TOKEN_SERVICE}\n    issuer: ${TOKEN_ISSUER}\n    rootcertbundle: ${cert}\n`;
  }

  const cleanup = () => {
    tokenServer?.stop(true);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    // The free port can be taken between probing and binding; then the registry exits and we try another.
    for (let attempt = 0; attempt < 5; attempt++) {
      const port = freePort();
      const configPath = join(dir, "config.yml");
      writeFileSync(configPath, registryConfig(dir, port, authBlock));
      const child = Bun.spawn([REGISTRY_BINARY, "serve", configPath], { stdout: "ignore", stderr: "pipe" });
      let errors = "";
      void (async () => {
        for await (const chunk of child.stderr) errors += new TextDecoder().decode(chunk);
      })();
      const url = `http://127.0.0.1:${port}`;
      let ready = false;
      try {
        ready = await waitForRegistry(url, child, () => errors);
      } catch (error) {
        child.kill();
        throw error;
      }
      if (!ready) continue;
      return {
        host: `127.0.0.1:${port}`,
        url,
        auth,
        username,
        password,
        tokenRequests,
        async close() {
          child.kill();
          await child.exited;
          cleanup();
        },
      };
    }
    throw new Error("docker-registry exited at startup five times (port clashes?)");
  } catch (error) {
    cleanup();
    throw error;
  }
}

// ---- Images ----

export const MEDIA_TYPES = {
  oci: {
    manifest: "application/vnd.oci.image.manifest.v1+json",
    index: "application/vnd.oci.image.index.v1+json",
    config: "application/vnd.oci.image.config.v1+json",
    layerGzip: "application/vnd.oci.image.layer.v1.tar+gzip",
    layerTar: "application/vnd.oci.image.layer.v1.tar",
  },
  docker: {
    manifest: "application/vnd.docker.distribution.manifest.v2+json",
    index: "application/vnd.docker.distribution.manifest.list.v2+json",
    config: "application/vnd.docker.container.image.v1+json",
    layerGzip: "application/vnd.docker.image.rootfs.diff.tar.gzip",
    layerTar: "application/vnd.docker.image.rootfs.diff.tar",
  },
} as const;

export type ImageFormat = keyof typeof MEDIA_TYPES;

/** File content, or a full entry: directories, symlinks, hardlinks (linkname), setuid modes, owners. */
export type LayerEntry =
  | string
  | Uint8Array
  | {
      content?: string | Uint8Array;
      mode?: number;
      type?: "file" | "directory" | "symlink" | "link";
      linkname?: string;
      uid?: number;
      gid?: number;
    };

/** One layer: paths (no leading slash) to entries, written in this order. Whiteouts are plain empty `.wh.NAME` files. */
export interface LayerSpec {
  files: Record<string, LayerEntry>;
}

export interface Platform {
  os?: string;
  architecture: string;
  variant?: string;
}

export interface ImageConfigInput {
  Cmd?: string[];
  Entrypoint?: string[];
  Env?: string[];
  WorkingDir?: string;
  User?: string;
  Labels?: Record<string, string>;
}

export interface PushOptions {
  /** Media types: OCI (default) or Docker v2 schema 2. */
  format?: ImageFormat;
  config?: ImageConfigInput;
  /** Default linux/amd64. */
  platform?: Platform;
  /** false: uncompressed tar layers. Default true (gzip). */
  gzip?: boolean;
  /**
   * Push an image index (OCI) or manifest list (Docker) under the tag, holding this image plus these other platforms'
   * images, each pushed by digest. `index: true` with no other platforms pushes a one-entry index.
   */
  otherPlatforms?: { platform: Platform; layers: LayerSpec[]; config?: ImageConfigInput }[];
  index?: boolean;
}

export interface BuiltLayer {
  /** Uncompressed tar. */
  tar: Uint8Array<ArrayBuffer>;
  /** What goes to the registry: gzip of the tar, or the tar itself. */
  blob: Uint8Array<ArrayBuffer>;
  digest: string;
  /** sha256 of the uncompressed tar, as listed in the config's rootfs.diff_ids. */
  diffId: string;
  mediaType: string;
}

export interface PushedManifest {
  digest: string;
  mediaType: string;
  platform: Platform;
  configDigest: string;
  layers: BuiltLayer[];
  manifest: Record<string, unknown>;
  config: Record<string, unknown>;
}

export interface PushedImage {
  /** "127.0.0.1:PORT/repo:tag" */
  reference: string;
  /** Digest the tag points to (the index's when one was pushed). */
  digest: string;
  mediaType: string;
  /** The image for the first platform (options.platform). */
  image: PushedManifest;
  /** Every platform image, first one first. */
  images: PushedManifest[];
}

function manifestDigest(manifest: Record<string, unknown>): string {
  return sha256Digest(JSON.stringify(manifest));
}

export function sha256Digest(data: Uint8Array | string): string {
  return `sha256:${createHash("sha256").update(data).digest("hex")}`;
}

const LAYER_MTIME = new Date("2024-01-01T00:00:00Z");

/** A layer tar (via modern-tar's packer) with fixed mtimes, so equal specs give equal digests. */
export async function buildLayer(
  spec: LayerSpec,
  options: { format?: ImageFormat; gzip?: boolean } = {},
): Promise<BuiltLayer> {
  const types = MEDIA_TYPES[options.format ?? "oci"];
  const entries = Object.entries(spec.files).map(([path, entry]) => {
    const full = typeof entry === "string" || entry instanceof Uint8Array ? { content: entry } : entry;
    const type = full.type ?? "file";
    const body = type === "file" ? (full.content ?? "") : undefined;
    const bytes = typeof body === "string" ? new TextEncoder().encode(body) : body;
    const header: TarHeader = {
      name: type === "directory" && !path.endsWith("/") ? `${path}/` : path,
      size: bytes?.length ?? 0,
      type,
      mode: full.mode ?? (type === "directory" ? 0o755 : type === "symlink" ? 0o777 : 0o644),
      mtime: LAYER_MTIME,
      uid: full.uid ?? 0,
      gid: full.gid ?? 0,
    };
    if (full.linkname !== undefined) header.linkname = full.linkname;
    return { header, body: bytes };
  });
  const tar = await packTar(entries);
  const gzip = options.gzip ?? true;
  const blob = gzip ? Bun.gzipSync(tar) : tar;
  return {
    tar,
    blob,
    digest: sha256Digest(blob),
    diffId: sha256Digest(tar),
    mediaType: gzip ? types.layerGzip : types.layerTar,
  };
}

export type RegistryTarget = string | Pick<TestRegistry, "host" | "username" | "password" | "auth">;

async function expectStatus(response: Response, statuses: number[], what: string): Promise<Response> {
  if (!statuses.includes(response.status)) {
    throw new Error(`${what}: ${response.status} ${await response.text()}`);
  }
  return response;
}

async function pushBlob(client: RegistryClient, repository: string, data: Uint8Array, digest: string) {
  const head = await client.fetch(`/v2/${repository}/blobs/${digest}`, { method: "HEAD" });
  if (head.status === 200) return;
  const started = await expectStatus(
    await client.fetch(`/v2/${repository}/blobs/uploads/`, { method: "POST" }),
    [202],
    `start upload of ${digest}`,
  );
  const location = new URL(started.headers.get("location") ?? "", client.origin);
  location.searchParams.set("digest", digest);
  await expectStatus(
    await client.fetch(location.href, {
      method: "PUT",
      body: data,
      headers: { "content-type": "application/octet-stream" },
    }),
    [201],
    `upload of ${digest}`,
  );
}

async function pushManifest(
  client: RegistryClient,
  repository: string,
  reference: string,
  manifest: Record<string, unknown>,
  mediaType: string,
): Promise<string> {
  const body = JSON.stringify(manifest);
  const response = await expectStatus(
    await client.fetch(`/v2/${repository}/manifests/${reference}`, {
      method: "PUT",
      body,
      headers: { "content-type": mediaType },
    }),
    [201],
    `manifest ${repository}:${reference}`,
  );
  const digest = sha256Digest(body);
  const reported = response.headers.get("docker-content-digest");
  if (reported && reported !== digest)
    throw new Error(`registry reports digest ${reported}, expected ${digest}`);
  return digest;
}

async function pushPlatformImage(
  client: RegistryClient,
  repository: string,
  /** Tag, or null to push by digest (an index child). */
  reference: string | null,
  layerSpecs: LayerSpec[],
  platform: Platform,
  configInput: ImageConfigInput | undefined,
  format: ImageFormat,
  gzip: boolean,
): Promise<PushedManifest> {
  const types = MEDIA_TYPES[format];
  const layers: BuiltLayer[] = [];
  for (const spec of layerSpecs) layers.push(await buildLayer(spec, { format, gzip }));
  const config: Record<string, unknown> = {
    created: LAYER_MTIME.toISOString(),
    architecture: platform.architecture,
    os: platform.os ?? "linux",
    ...(platform.variant ? { variant: platform.variant } : {}),
    config: { Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], ...configInput },
    rootfs: { type: "layers", diff_ids: layers.map((layer) => layer.diffId) },
    history: layers.map(() => ({
      created: LAYER_MTIME.toISOString(),
      created_by: "contree-mcp test pushImage",
    })),
  };
  const configBytes = new TextEncoder().encode(JSON.stringify(config));
  const configDigest = sha256Digest(configBytes);
  for (const layer of layers) await pushBlob(client, repository, layer.blob, layer.digest);
  await pushBlob(client, repository, configBytes, configDigest);
  const manifest: Record<string, unknown> = {
    schemaVersion: 2,
    mediaType: types.manifest,
    config: { mediaType: types.config, digest: configDigest, size: configBytes.length },
    layers: layers.map((layer) => ({
      mediaType: layer.mediaType,
      digest: layer.digest,
      size: layer.blob.length,
    })),
  };
  const digest = await pushManifest(
    client,
    repository,
    reference ?? manifestDigest(manifest),
    manifest,
    types.manifest,
  );
  return { digest, mediaType: types.manifest, platform, configDigest, layers, manifest, config };
}

/**
 * Pushes a minimal image through the registry HTTP API (blob uploads, manifest PUT): one manifest under `tag`, or an
 * index/manifest list under `tag` when `options.index` or `options.otherPlatforms` is given. Authenticates with the
 * registry's credentials when it has auth.
 */
export async function pushImage(
  registry: RegistryTarget,
  repository: string,
  tag: string,
  layers: LayerSpec[],
  options: PushOptions = {},
): Promise<PushedImage> {
  const target = typeof registry === "string" ? { host: registry, auth: "none" as const } : registry;
  const ref = parseImageReference(`${target.host}/${repository}:${tag}`);
  const credentials =
    "username" in target && target.auth !== "none"
      ? { username: target.username, password: target.password }
      : undefined;
  const client = new RegistryClient(ref, credentials);
  const format = options.format ?? "oci";
  const gzip = options.gzip ?? true;
  const platform = options.platform ?? { os: "linux", architecture: "amd64" };
  const others = options.otherPlatforms ?? [];
  const reference = `${target.host}/${repository}:${tag}`;

  if (!options.index && others.length === 0) {
    const image = await pushPlatformImage(
      client,
      repository,
      tag,
      layers,
      platform,
      options.config,
      format,
      gzip,
    );
    return { reference, digest: image.digest, mediaType: image.mediaType, image, images: [image] };
  }
  const images: PushedManifest[] = [];
  for (const item of [{ platform, layers, config: options.config }, ...others]) {
    // Children go first, by digest: registries refuse an index that names manifests they do not have.
    const child = await pushPlatformImage(
      client,
      repository,
      null,
      item.layers,
      item.platform,
      item.config,
      format,
      gzip,
    );
    images.push(child);
  }
  const indexType = MEDIA_TYPES[format].index;
  const index = {
    schemaVersion: 2,
    mediaType: indexType,
    manifests: images.map((image) => ({
      mediaType: image.mediaType,
      digest: image.digest,
      size: Buffer.byteLength(JSON.stringify(image.manifest)),
      platform: {
        os: image.platform.os ?? "linux",
        architecture: image.platform.architecture,
        ...(image.platform.variant ? { variant: image.platform.variant } : {}),
      },
    })),
  };
  const digest = await pushManifest(client, repository, tag, index, indexType);
  return { reference, digest, mediaType: indexType, image: images[0]!, images };
}

/** A layer as an OCI layout lists it: the stored blob, its media type and the diff id of its uncompressed tar. */
export interface LayoutLayer {
  blob: Uint8Array;
  mediaType: string;
  diffId: string;
}

/** Writes an OCI image layout (oci-layout, index.json, blobs) holding one linux/amd64 image of these layers. */
export function writeOciLayout(root: string, layers: LayoutLayer[], refName?: string): void {
  const blobs = join(root, "blobs", "sha256");
  mkdirSync(blobs, { recursive: true });
  const put = (data: Uint8Array | string) => {
    const digest = sha256Digest(data);
    writeFileSync(join(blobs, digest.slice(7)), data);
    return digest;
  };
  const config = JSON.stringify({
    architecture: "amd64",
    os: "linux",
    rootfs: { type: "layers", diff_ids: layers.map((layer) => layer.diffId) },
  });
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: {
      mediaType: "application/vnd.oci.image.config.v1+json",
      digest: put(config),
      size: config.length,
    },
    layers: layers.map((layer) => ({
      mediaType: layer.mediaType,
      digest: put(layer.blob),
      size: layer.blob.length,
    })),
  });
  const stored = put(manifest);
  writeFileSync(join(root, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  writeFileSync(
    join(root, "index.json"),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: "application/vnd.oci.image.manifest.v1+json",
          digest: stored,
          size: manifest.length,
          ...(refName ? { annotations: { "org.opencontainers.image.ref.name": refName } } : {}),
        },
      ],
    }),
  );
}
