// The one interface every tool calls. Two implementations: cloud/ (ConTree v1 over HTTP) and local/
// (bubblewrap + overlayfs on this machine). Tools never see HTTP or namespaces, only these types.

export type BackendKind = "cloud" | "local";

/** Statuses the services use today; a backend may report others, which count as still running. */
export const KNOWN_STATUSES = ["PENDING", "ASSIGNED", "EXECUTING", "SUCCESS", "FAILED", "CANCELLED"] as const;
export const TERMINAL_STATUSES = ["SUCCESS", "FAILED", "CANCELLED"] as const;
export type TerminalStatus = (typeof TERMINAL_STATUSES)[number];

export function isTerminal(status: string): boolean {
  return (TERMINAL_STATUSES as readonly string[]).includes(status);
}

export type OperationKind = "instance" | "image_import";

export interface Image {
  uuid: string;
  tag: string | null;
  /** ISO 8601, or "" when the backend did not say. */
  createdAt: string;
}

export interface ImageQuery {
  limit: number;
  offset: number;
  tagged?: boolean;
  /** Only images whose tag starts with this. */
  tagPrefix?: string;
  /** ISO 8601 or relative (15m, 2h, 3d), passed to the backend as is. */
  since?: string;
  until?: string;
}

/** A file placed into the sandbox before the command starts. */
export interface FileSpec {
  /** The uploaded file's uuid (from uploadFile or findFile). */
  uuid: string;
  /** Permission bits only, e.g. 0o644 or 0o755. */
  mode: number;
  uid?: number;
  gid?: number;
}

export interface RunSpec {
  /** Canonical image UUID (tags are resolved before a backend sees them). */
  image: string;
  command: string;
  /** argv after the command; used only when shell is false. */
  args: string[];
  shell: boolean;
  env: Record<string, string>;
  cwd: string;
  timeoutS: number;
  /** true: throw the result away; false: keep a changed filesystem as a new child image. */
  disposable: boolean;
  stdin: Uint8Array | null;
  /** Absolute container path -> file. */
  files: Record<string, FileSpec>;
  /** Bytes of each of stdout and stderr that the backend keeps; the rest is dropped and counted. */
  keepOutputBytes: number;
  hostname?: string;
}

export interface ImportSpec {
  /** Normalised: docker://host/repository:tag (or @digest). */
  registryUrl: string;
  tag?: string;
  credentials?: { username: string; password: string };
  timeoutS: number;
  /** Called as the import advances (backends that cannot tell never call it). Must not throw. */
  onProgress?: (progress: ImportProgress) => void;
}

/** How far an import has got. Byte counts cover layer blobs only (manifests are small). */
export interface ImportProgress {
  /** One line for people: "layer 2/3: 12.0 of 50.3 MB", "layer 2/3: extracting", "layer 2/3: stored". */
  message: string;
  /** Layers whose content is in the store (downloaded and extracted, or already there). */
  layersDone: number;
  /** null until the manifest is read. */
  layersTotal: number | null;
  /** Blob bytes fetched or read so far, layers already stored not counted. */
  bytesDone: number;
  /** Sum of the blob sizes that have to be fetched, when the manifest gives them. */
  bytesTotal: number | null;
}

export interface CapturedStream {
  bytes: Uint8Array;
  /** The backend dropped output beyond what it keeps. */
  truncated: boolean;
  /** How many bytes were dropped, when the backend says. */
  droppedBytes: number | null;
}

export interface ExitState {
  /** null while running, or when the process was killed by a signal and the backend gives no code. */
  exitCode: number | null;
  signal: number | null;
  timedOut: boolean;
}

export interface InstanceResult {
  exit: ExitState;
  stdout: CapturedStream;
  stderr: CapturedStream;
  /** Counters the backend reports (elapsed_time, max_rss, user_cpu_time, ...); unknown ones omitted. */
  resources: Record<string, number>;
  /**
   * Sentences for the model about this run that the output alone does not tell, e.g. that the sandbox had no
   * network and the command seems to have needed it. Absent or empty when there is nothing to add.
   */
  notes?: string[];
}

export interface Operation {
  id: string;
  kind: OperationKind;
  /** Upper case; see KNOWN_STATUSES. */
  status: string;
  error: string | null;
  createdAt: string;
  durationS: number | null;
  /** The image a successful instance or import produced (for a run that changed nothing, its input). */
  resultImage: string | null;
  resultTag: string | null;
  /** Instance operations: the image it ran in, and what it ran. */
  inputImage: string | null;
  command: string | null;
  disposable: boolean | null;
  /** Import operations: what was imported. */
  registryUrl: string | null;
  /** Instance operations that finished (or were stopped) have one. */
  result: InstanceResult | null;
  /** Import operations still running, on backends that track it: how far they are. */
  progress?: ImportProgress | null;
}

export interface OperationSummary {
  id: string;
  kind: OperationKind;
  status: string;
  error: string | null;
  createdAt: string;
}

export interface OperationQuery {
  limit: number;
  offset: number;
  status?: string;
  kind?: OperationKind;
  since?: string;
  until?: string;
}

export interface StoredFile {
  uuid: string;
  sha256: string;
  size: number | null;
}

export type EntryType = "file" | "directory" | "symlink" | "socket" | "fifo" | "other";

export interface DirEntry {
  name: string;
  type: EntryType;
  size: number;
  /** Permission bits plus setuid/setgid/sticky (no file-type bits). */
  mode: number;
  /** Unix seconds. */
  mtime: number;
  owner: string | number;
  group: string | number;
  /** Symlink target, or null. */
  target: string | null;
}

export interface DirListing {
  /** The listed directory, absolute. */
  path: string;
  entries: DirEntry[];
}

/**
 * Image sources on the server's own disk (`oci-layout:/dir[:tag]`, `oci-archive:/file.tar`, `docker-archive:/file.tar`),
 * which only the local backend can read: the cloud cannot see this machine's files.
 */
export const LOCAL_IMAGE_SOURCE_SCHEMES = ["oci-layout", "oci-archive", "docker-archive"] as const;

/** The scheme of a local image source, or null for a registry reference. */
export function localImageSourceScheme(reference: string): string | null {
  const scheme = /^([a-z-]+):/.exec(reference)?.[1];
  return scheme && (LOCAL_IMAGE_SOURCE_SCHEMES as readonly string[]).includes(scheme) ? scheme : null;
}

export interface Backend {
  readonly kind: BackendKind;
  /** One line for people: "ConTree cloud at https://contree.dev". Never contains a secret. */
  readonly description: string;

  listImages(query: ImageQuery): Promise<Image[]>;
  /** Throws BackendError code "not_found" when there is no such image. */
  getImage(uuid: string): Promise<Image>;
  getImageByTag(tag: string): Promise<Image>;
  /** Tags are unique: setting one moves it from whichever image had it. */
  setTag(uuid: string, tag: string): Promise<Image>;
  removeTag(uuid: string): Promise<Image>;

  /** Starts an import; returns the operation id. */
  importImage(spec: ImportSpec): Promise<string>;
  /** Starts a run; returns the operation id. */
  run(spec: RunSpec): Promise<string>;
  getOperation(id: string): Promise<Operation>;
  listOperations(query: OperationQuery): Promise<OperationSummary[]>;
  /** Asks the backend to stop an operation. A terminal operation is left as it is (no error). */
  cancelOperation(id: string): Promise<void>;
  /**
   * Optional push: resolves as soon as the operation may have changed (or when the signal aborts), so
   * waiters need not poll a backend that can tell them. Polling remains the fallback.
   */
  operationChanged?(id: string, signal: AbortSignal): Promise<void>;

  /** Files by content: null when the backend does not have this sha256 yet. */
  findFile(sha256: string): Promise<StoredFile | null>;
  uploadFile(body: Blob, sha256: string): Promise<StoredFile>;
  listDirectory(image: string, path: string): Promise<DirListing>;
  /** A file's bytes. Throws not_found for a missing file and invalid for a directory. */
  readFile(image: string, path: string): Promise<ReadableStream<Uint8Array>>;
  /** A directory as a POSIX tar stream. */
  archive(image: string, path: string): Promise<ReadableStream<Uint8Array>>;

  close(): Promise<void>;
}
