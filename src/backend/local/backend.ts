// The local backend: the Backend interface over sandboxes on this machine (bubblewrap + overlayfs as root), with
// the cloud's semantics: immutable image UUIDs, child images from disposable=false runs (the same UUID when a run
// changed nothing, no image at all for disposable runs), unique tags, and queued operations.
//
// Statuses: PENDING → EXECUTING → SUCCESS | FAILED | CANCELLED. A command that exits non-zero, is killed by the
// memory limit, or runs out of time is still SUCCESS (exit state says what happened: timed_out, signal); a run that
// timed out keeps what it changed as a child image like any other run. FAILED means the backend could not do the
// work (the sandbox could not start, an import failed) and `error` says why.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from "node:fs";
import { rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BackendError } from "../../errors.ts";
import { log } from "../../log.ts";
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
import { commitUpper, flattenStack, isEmptyDir, MAX_STACK_DEPTH, spawnInMergedView } from "./commit.ts";
import { MOUNT_NAMESPACE, removeTree, ROOTLESS } from "./fsx.ts";
import { fileHostPath, LayerView, listDirectory } from "./inspect.ts";
import { runNotes } from "./notes.ts";
import { ImportTracker, importImage } from "./oci.ts";
import { Operations, type Finish } from "./operations.ts";
import { runSandbox, type FileInjection, type SandboxSpec } from "./sandbox.ts";
import { publicImage, Store, type ImageRow } from "./store.ts";

export interface LocalBackendOptions {
  root: string;
  network: "none" | "host";
  /** Runs and imports at once; the rest wait as PENDING. Default (and 0): two per CPU, at least 2. */
  maxConcurrent?: number;
  /** Per-run memory limit where cgroups allow it. Default 2 GiB; 0 = none. */
  memoryLimitBytes?: number;
  /** Per-run process limit where cgroups allow it. Default 1024; 0 = none. */
  pidsLimit?: number;
}

const DEFAULT_MEMORY_LIMIT = 2 * 1024 ** 3;
const DEFAULT_PIDS_LIMIT = 1024;
const DEFAULT_HOSTNAME = "linuxkit";
const CLOUD_HINT = "Set a ConTree token (CONTREE_MCP_TOKEN or --token) to use the ConTree cloud instead.";

function missing(what: string): string {
  return `The local backend cannot run here: ${what}. ${CLOUD_HINT}`;
}

const ROOT_HINT = "or run contree-mcp as root";

/**
 * Without root, everything hangs on three things the kernel may refuse: a user namespace, overlayfs mounted inside
 * it, and bubblewrap inside that. Tried once in a scratch directory (a few ms); null when all three work.
 */
async function rootlessProblem(): Promise<string | null> {
  const dir = mkdtempSync(join(tmpdir(), "contree-mcp-probe-"));
  try {
    for (const sub of ["lower1", "lower2", "upper", "work", "mnt"]) mkdirSync(join(dir, sub));
    const probe = `echo userns >&2
mount -t overlay overlay -o lowerdir=lower1:lower2,upperdir=upper,workdir=work,userxattr,redirect_dir=nofollow,index=off,metacopy=off mnt || exit 3
exec bwrap --ro-bind / / --proc /proc --dev /dev --unshare-user --unshare-pid --unshare-net --unshare-ipc --unshare-uts --die-with-parent -- true || exit 4`;
    const proc = Bun.spawn([...MOUNT_NAMESPACE, "--", "/bin/sh", "-c", probe], {
      cwd: dir,
      stdio: ["ignore", "ignore", "pipe"],
    });
    const [stderr, code] = await Promise.all([new Response(proc.stderr).text(), proc.exited]);
    if (code === 0) return null;
    const said =
      stderr
        .replace(/^userns\n/, "")
        .trim()
        .split("\n")
        .at(-1) ?? "";
    if (!stderr.startsWith("userns")) {
      return missing(
        `without root it needs unprivileged user namespaces, which this kernel refuses (${said || `exit ${code}`}). Allow them (sysctl user.max_user_namespaces > 0; kernel.unprivileged_userns_clone=1 on Debian kernels before 6.1; kernel.apparmor_restrict_unprivileged_userns=0 on Ubuntu 23.10+), ${ROOT_HINT}`,
      );
    }
    if (code === 3) {
      return missing(
        `without root it needs overlayfs inside a user namespace (Linux 5.11+), which this kernel refuses (${said}); ${ROOT_HINT}`,
      );
    }
    return missing(
      `without root it needs bubblewrap to work inside a user namespace, and it does not (${said || `exit ${code}`}); ${ROOT_HINT}`,
    );
  } finally {
    removeTree(dir);
  }
}

export class LocalBackend implements Backend {
  readonly kind = "local" as const;
  readonly description: string;
  readonly store: Store;
  private readonly operations: Operations;
  private readonly options: Required<LocalBackendOptions>;
  private readonly removals = new Set<Promise<void>>();

  constructor(options: LocalBackendOptions) {
    this.options = {
      ...options,
      maxConcurrent: options.maxConcurrent || Math.max(2, (navigator.hardwareConcurrency ?? 2) * 2),
      memoryLimitBytes: options.memoryLimitBytes ?? DEFAULT_MEMORY_LIMIT,
      pidsLimit: options.pidsLimit ?? DEFAULT_PIDS_LIMIT,
    };
    this.store = new Store(options.root);
    this.operations = new Operations(this.store, this.options.maxConcurrent);
    this.description = `local sandboxes (bubblewrap + overlayfs${ROOTLESS ? ", rootless: one owner, a process limit but no memory limit" : ""}) in ${options.root}, network ${options.network}`;
  }

  /** null when this machine can run local sandboxes; otherwise one message saying what is missing. */
  static async check(): Promise<string | null> {
    if (process.platform !== "linux") return missing(`it needs Linux (this is ${process.platform})`);
    if (!Bun.which("bwrap")) return missing("bubblewrap is not installed (apt-get install bubblewrap)");
    if (!Bun.which("unshare") || !Bun.which("mount") || !Bun.which("setpriv")) {
      return missing("unshare, setpriv and mount from util-linux are not installed");
    }
    let filesystems = "";
    try {
      filesystems = readFileSync("/proc/filesystems", "utf8");
    } catch {
      // unreadable: treated as missing below
    }
    if (!/\toverlay\n/.test(filesystems)) {
      return missing("the kernel has no overlayfs (modprobe overlay, or a kernel with CONFIG_OVERLAY_FS)");
    }
    return ROOTLESS ? await rootlessProblem() : null;
  }

  private image(uuid: string): ImageRow {
    return this.store.requireImage(uuid);
  }

  /** The image's layer stack, for readers that need more than DirEntry (the REST API's numeric owners). */
  layerView(uuid: string): LayerView {
    return this.view(this.image(uuid));
  }

  private view(row: ImageRow): LayerView {
    return new LayerView(row.layers.toReversed().map((id) => this.store.layerPath(id)));
  }

  async listImages(query: ImageQuery): Promise<Image[]> {
    return this.store.listImages(query).map(publicImage);
  }

  async getImage(uuid: string): Promise<Image> {
    return publicImage(this.image(uuid));
  }

  async getImageByTag(tag: string): Promise<Image> {
    const row = this.store.imageByTag(tag);
    if (!row) throw new BackendError({ code: "not_found", detail: `no image is tagged '${tag}'` });
    return publicImage(row);
  }

  async setTag(uuid: string, tag: string): Promise<Image> {
    return publicImage(this.store.setTag(uuid, tag));
  }

  async removeTag(uuid: string): Promise<Image> {
    return publicImage(this.store.setTag(uuid, null));
  }

  async importImage(spec: ImportSpec): Promise<string> {
    const id = this.operations.create({
      kind: "image_import",
      registryUrl: spec.registryUrl,
      spec: { registry: { url: spec.registryUrl }, tag: spec.tag ?? null, timeout: spec.timeoutS },
    });
    this.operations.enqueue(id, async (signal): Promise<Finish> => {
      const timeout = AbortSignal.timeout(spec.timeoutS * 1000);
      const both = AbortSignal.any([signal, timeout]);
      try {
        const tracker = new ImportTracker((progress) => {
          log.debug(`import ${id}: ${progress.message}`);
          this.operations.setProgress(id, progress);
          spec.onProgress?.(progress);
        });
        const pulled = await importImage(this.store, spec, both, tracker);
        const existing = pulled.digest ? this.store.imageByDigest(pulled.digest) : null;
        const same = existing && JSON.stringify(existing.layers) === JSON.stringify(pulled.layers);
        const row = same
          ? spec.tag
            ? this.store.setTag(existing.uuid, spec.tag)
            : existing
          : this.store.addImage(
              {
                uuid: crypto.randomUUID(),
                parent: null,
                layers: pulled.layers,
                operationId: id,
                command: null,
                digest: pulled.digest,
              },
              spec.tag ?? null,
            );
        return { status: "SUCCESS", resultImage: row.uuid, resultTag: row.tag };
      } catch (error) {
        if (signal.aborted) return { status: "CANCELLED", error: "cancelled" };
        if (timeout.aborted) {
          return { status: "FAILED", error: `the import did not finish within ${spec.timeoutS}s` };
        }
        throw error;
      }
    });
    return id;
  }

  async run(spec: RunSpec): Promise<string> {
    const image = this.image(spec.image);
    const files: FileInjection[] = [];
    for (const [path, file] of Object.entries(spec.files)) {
      const stored = this.store.fileByUuid(file.uuid);
      if (!stored)
        throw new BackendError({ code: "not_found", detail: `file ${file.uuid} (for ${path}) not found` });
      if (!path.startsWith("/")) {
        throw new BackendError({ code: "invalid", detail: `files: '${path}' must be an absolute path` });
      }
      files.push({
        path,
        source: this.store.filePath(stored.sha256),
        mode: file.mode,
        uid: file.uid ?? 0,
        gid: file.gid ?? 0,
      });
    }
    if (!spec.cwd.startsWith("/")) {
      throw new BackendError({ code: "invalid", detail: `cwd must be absolute (got '${spec.cwd}')` });
    }
    const command = spec.shell ? { script: spec.command } : { argv: [spec.command, ...spec.args] };
    const id = this.operations.create({
      kind: "instance",
      inputImage: image.uuid,
      command: spec.command,
      disposable: spec.disposable,
      spec: {
        command: spec.command,
        args: spec.args,
        shell: spec.shell,
        env: spec.env,
        cwd: spec.cwd,
        timeout: spec.timeoutS,
        disposable: spec.disposable,
        files: spec.files,
        hostname: spec.hostname ?? DEFAULT_HOSTNAME,
        truncate_output_at: spec.keepOutputBytes,
      },
    });
    this.operations.enqueue(id, (signal) => this.execute(id, image, spec, command, files, signal));
    return id;
  }

  private async execute(
    id: string,
    image: ImageRow,
    spec: RunSpec,
    command: SandboxSpec["command"],
    files: FileInjection[],
    signal: AbortSignal,
  ): Promise<Finish> {
    const workDir = join(this.store.tmpDir, `run-${id}`);
    try {
      const outcome = await runSandbox(
        this.view(image),
        {
          layersDir: this.store.layersDir,
          lowerIds: image.layers.toReversed(),
          workDir,
          command,
          env: spec.env,
          cwd: spec.cwd,
          stdin: spec.stdin,
          files,
          keepOutputBytes: spec.keepOutputBytes,
          timeoutS: spec.timeoutS,
          hostname: spec.hostname ?? DEFAULT_HOSTNAME,
          network: this.options.network,
          limits: { memoryBytes: this.options.memoryLimitBytes, pids: this.options.pidsLimit },
          signal,
        },
        id,
      );
      const notes = runNotes(this.options.network, outcome.stdout.bytes, outcome.stderr.bytes);
      const result = {
        exit: outcome.exit,
        stdout: outcome.stdout,
        stderr: outcome.stderr,
        resources: outcome.resources,
        ...(notes.length > 0 ? { notes } : {}),
      };
      if (outcome.setupError) return { status: "FAILED", error: outcome.setupError, result };
      if (outcome.cancelled) return { status: "CANCELLED", error: "cancelled", result };
      if (spec.disposable) return { status: "SUCCESS", result };
      if (isEmptyDir(outcome.upperDir)) {
        return { status: "SUCCESS", resultImage: image.uuid, resultTag: image.tag, result };
      }
      const layer = commitUpper(this.store, outcome.upperDir);
      let layers = [...image.layers, layer];
      if (layers.length > MAX_STACK_DEPTH) layers = await flattenStack(this.store, layers);
      const child = this.store.addImage({
        uuid: crypto.randomUUID(),
        parent: image.uuid,
        layers,
        operationId: id,
        command: spec.command,
        digest: null,
      });
      return { status: "SUCCESS", resultImage: child.uuid, result };
    } finally {
      this.removeLater(workDir);
    }
  }

  /**
   * Removes a finished run's work directory off the event loop: a disposable run that wrote 100 MB must not wait for
   * their deletion before it answers. Anything left when the process dies is removed at the next start.
   */
  private removeLater(dir: string): void {
    const removal = rm(dir, { recursive: true, force: true })
      .catch(() => removeTree(dir))
      .catch((error: unknown) => log.debug(`could not remove ${dir}: ${String(error)}`))
      .finally(() => this.removals.delete(removal));
    this.removals.add(removal);
  }

  /** Resolves when the work directories of finished runs are gone (close, tests). */
  async removalsDone(): Promise<void> {
    while (this.removals.size > 0) await Promise.all(this.removals);
  }

  async getOperation(id: string): Promise<Operation> {
    return this.operations.get(id);
  }

  async listOperations(query: OperationQuery): Promise<OperationSummary[]> {
    return this.operations.list(query);
  }

  async cancelOperation(id: string): Promise<void> {
    this.operations.cancel(id);
  }

  operationChanged(id: string, signal: AbortSignal): Promise<void> {
    return this.operations.changed(id, signal);
  }

  /** Resolves when an operation's work is over (tests, benchmarks). */
  async settled(id: string): Promise<Operation> {
    await this.operations.settledOf(id);
    return this.operations.get(id);
  }

  async findFile(sha256: string): Promise<StoredFile | null> {
    const row = this.store.fileBySha(sha256.toLowerCase());
    if (!row || !existsSync(this.store.filePath(row.sha256))) return null;
    return { uuid: row.uuid, sha256: row.sha256, size: row.size };
  }

  async uploadFile(body: Blob, sha256: string): Promise<StoredFile> {
    const expected = sha256.toLowerCase();
    const temp = join(this.store.tmpDir, `upload-${crypto.randomUUID()}`);
    try {
      const hasher = new Bun.CryptoHasher("sha256");
      const writer = Bun.file(temp).writer();
      let size = 0;
      for await (const chunk of body.stream()) {
        hasher.update(chunk);
        writer.write(chunk);
        size += chunk.length;
      }
      await writer.end();
      const actual = hasher.digest("hex");
      if (actual !== expected) {
        throw new BackendError({
          code: "invalid",
          detail: `the uploaded content has sha256 ${actual}, not the ${expected} that was given`,
        });
      }
      renameSync(temp, this.store.filePath(actual));
      const row = this.store.addFile(actual, size);
      return { uuid: row.uuid, sha256: row.sha256, size: row.size };
    } finally {
      rmSync(temp, { force: true });
    }
  }

  async listDirectory(image: string, path: string): Promise<DirListing> {
    return listDirectory(this.view(this.image(image)), path);
  }

  async readFile(image: string, path: string): Promise<ReadableStream<Uint8Array>> {
    return Bun.file(fileHostPath(this.view(this.image(image)), path)).stream();
  }

  async archive(image: string, path: string): Promise<ReadableStream<Uint8Array>> {
    const row = this.image(image);
    const { comps, hit } = this.view(row).resolve(path);
    if (!hit) throw new BackendError({ code: "not_found", detail: `${path}: no such file or directory` });
    const proc = spawnInMergedView(
      this.store,
      row.layers.toReversed(),
      `cd "$M/$1" && exec tar --format=posix --numeric-owner -cf - ${hit.stat.isDirectory() ? "." : '"$2"'}`,
      hit.stat.isDirectory() ? [comps.join("/")] : [comps.slice(0, -1).join("/"), comps.at(-1)!],
      "pipe",
    );
    return proc.stdout as ReadableStream<Uint8Array>;
  }

  async close(): Promise<void> {
    await this.operations.close();
    await this.removalsDone();
    this.store.close();
  }
}
