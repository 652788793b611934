import { existsSync } from "node:fs";
import type { Backend, StoredFile } from "../backend/types.ts";
import { BackendError, UserError } from "../errors.ts";
import type { FileCache, KnownFile, StateFile } from "./cache.ts";
import { compileExcludes } from "./exclude.ts";
import { hashFile, mapLimit } from "./hash.ts";
import { hashMany, type HashOutcome } from "./hash-pool.ts";
import { localPath } from "./paths.ts";
import { planHashing, sameLook, sameLooks, sameStateFiles, stateKey } from "./plan.ts";
import { TooManyFiles, walkTree, type LocalFile, type Skipped } from "./walk.ts";

/** A blob the backend confirmed longer ago than this is asked about again before a state relies on it. */
const REVALIDATE_MS = 86_400_000;
const PROGRESS_EVERY_MS = 500;
/** Past this many files a state does not know, their cache rows are read in one range query, not one by one. */
const BULK_LOOKUP = 500;
export const MAX_FILES = 200_000;

export interface SyncRequest {
  backend: Backend;
  cache: FileCache;
  /** Which backend the uuids belong to (see backendKey). */
  backendKey: string;
  /** Absolute local path (a directory, or one file). */
  source: string;
  /** Normalised absolute container directory. */
  destination: string;
  /** Normalised exclude patterns. */
  excludes: string[];
  signal?: AbortSignal;
  progress?: (message: string) => void;
  /** Hashing threads for a large change set (0: none); default the CPUs, at most 4. */
  hashWorkers?: number;
  uploadConcurrency?: number;
  maxFiles?: number;
}

export interface SyncResult {
  stateId: number;
  /** Files in the state. */
  files: number;
  /** Files read and hashed this time (new or changed since the last sync). */
  hashed: number;
  /** Files whose content was sent to the backend. */
  uploaded: number;
  /** Files whose content the backend already had. */
  reused: number;
  bytesUploaded: number;
  skipped: Skipped[];
  /** The state's file list differs from the previous sync. */
  changed: boolean;
  /** Milliseconds per phase, for benchmarks and debug logs. */
  timings: { walk: number; hash: number; upload: number; total: number };
}

/** Expands `~` and checks that a local source exists; returns the absolute path. */
export function localSource(source: string): string {
  const absolute = localPath(source, "source");
  if (!existsSync(absolute)) {
    throw new UserError(`source path does not exist: ${absolute}. Check the path on this machine.`);
  }
  return absolute;
}

/** Uploads a file; null when it no longer has the content that was hashed (the backend refuses the mismatch). */
async function uploadChecked(backend: Backend, file: LocalFile, sha256: string): Promise<StoredFile | null> {
  try {
    return await backend.uploadFile(Bun.file(file.abs), sha256);
  } catch (error) {
    // The cloud client reports a stored hash that differs as "protocol"; the local store refuses it as "invalid".
    if (!(error instanceof BackendError) || (error.code !== "protocol" && error.code !== "invalid"))
      throw error;
    const now = await hashFile(file.abs).catch(() => null);
    if (now?.sha256 === sha256) throw error;
    return null;
  }
}

const locks = new Map<string, Promise<unknown>>();

/** Two syncs of the same state would race on its rows; the second waits for the first. */
async function serialised<T>(key: string, work: () => Promise<T>): Promise<T> {
  const before = locks.get(key) ?? Promise.resolve();
  const run = before.catch(() => undefined).then(work);
  locks.set(key, run);
  try {
    return await run;
  } finally {
    if (locks.get(key) === run) locks.delete(key);
  }
}

function throttled(progress: ((message: string) => void) | undefined): (message: () => string) => void {
  let last = 0;
  return (message) => {
    if (!progress) return;
    const now = Date.now();
    if (now - last < PROGRESS_EVERY_MS) return;
    last = now;
    progress(message());
  };
}

function unreadable(outcome: Exclude<HashOutcome, { sha256: string }>): string {
  if (outcome.code === "EACCES" || outcome.code === "EPERM") return "not readable: permission denied";
  if (outcome.code === "ENOENT") return "vanished during the sync";
  if (outcome.code === "EISDIR") return "became a directory during the sync";
  return `not readable: ${outcome.message}`;
}

function megabytes(bytes: number): string {
  return `${(bytes / 1_048_576).toFixed(1)} MB`;
}

/**
 * Makes the directory state for `source` at `destination` hold exactly the files of the tree now. Unchanged files
 * are neither read nor hashed; content the backend has is not sent again; the rest is uploaded, a few at a time.
 */
export async function syncDirectory(request: SyncRequest): Promise<SyncResult> {
  const key = stateKey(request.backendKey, request.source, request.destination, request.excludes);
  return serialised(key, () => syncLocked(request, key));
}

async function syncLocked(request: SyncRequest, key: string): Promise<SyncResult> {
  const { backend, cache, backendKey, signal } = request;
  const report = throttled(request.progress);
  const started = performance.now();
  const maxFiles = request.maxFiles ?? MAX_FILES;
  let walked;
  try {
    walked = await walkTree(request.source, {
      exclude: compileExcludes(request.excludes),
      maxFiles,
      signal,
      onProgress: (found) => report(() => `scanning ${request.source}: ${found} files`),
    });
  } catch (error) {
    if (error instanceof TooManyFiles) {
      throw new UserError(
        `${request.source} has more than ${maxFiles} files. Sync a smaller directory or add exclude patterns (e.g. node_modules, .git, build/).`,
      );
    }
    throw error;
  }
  const walkedAt = performance.now();
  const skipped = [...walked.skipped];
  if (walked.files.length === 0) {
    const why = request.excludes.length ? ` after excludes ${JSON.stringify(request.excludes)}` : "";
    throw new UserError(
      `No files to sync in ${request.source}${why}${
        skipped.length
          ? ` (${skipped.length} skipped: ${skipped
              .slice(0, 3)
              .map((s) => `${s.path}: ${s.reason}`)
              .join("; ")})`
          : ""
      }. Check the source path and the exclude patterns.`,
    );
  }
  const previous = cache.stateByKey(key);
  skipped.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));

  // The common case, a resync of a tree that has not changed: every file looks as the state recorded it and the
  // backend confirmed every blob recently. One query over the state, no hashing, no per-file lookup.
  if (
    previous &&
    sameLooks(cache.stateLooks(previous.id), walked.files) &&
    Date.now() - previous.blobsCheckedAt < REVALIDATE_MS
  ) {
    cache.touchState(previous.id);
    const checkedAt = performance.now();
    return {
      stateId: previous.id,
      files: walked.files.length,
      hashed: 0,
      uploaded: 0,
      reused: walked.files.length,
      bytesUploaded: 0,
      skipped,
      changed: false,
      timings: {
        walk: walkedAt - started,
        hash: checkedAt - walkedAt,
        upload: 0,
        total: checkedAt - started,
      },
    };
  }

  const before = previous
    ? cache.stateFilesAndBlobs(previous.id, backendKey)
    : { files: [], blobs: new Map<string, { uuid: string; checkedAt: number }>() };
  const stateByRel = new Map(before.files.map((f) => [f.rel, f]));
  // What a state does not know (a new tree, new files) may be known from another sync of the same files.
  const unknown = walked.files.filter((f) => !stateByRel.has(f.rel)).length;
  const knownByPath = unknown > BULK_LOOKUP ? cache.knownFiles(request.source) : null;
  const plan = planHashing(walked.files, (file) => {
    const inState = stateByRel.get(file.rel);
    if (inState && sameLook(inState, file)) return inState;
    return knownByPath ? knownByPath.get(file.abs) : cache.knownFile(file.abs);
  });
  const hashes = new Map<LocalFile, string>();
  for (const { file, sha256 } of plan.unchanged) hashes.set(file, sha256);

  const total = plan.changed.reduce((sum, f) => sum + f.size, 0);
  const outcomes = await hashMany(plan.changed, {
    signal,
    workers: request.hashWorkers,
    onProgress: (count, bytes) =>
      report(
        () => `hashing ${count}/${plan.changed.length} files (${megabytes(bytes)} of ${megabytes(total)})`,
      ),
  });
  const fresh: KnownFile[] = [];
  plan.changed.forEach((file, index) => {
    const outcome = outcomes[index]!;
    if ("sha256" in outcome) {
      hashes.set(file, outcome.sha256);
      // The stat from the walk is kept: if the file changed while it was read, the next sync sees a new look.
      fresh.push({
        path: file.abs,
        size: outcome.size,
        mtimeMs: file.mtimeMs,
        ino: file.ino,
        mode: file.mode,
        sha256: outcome.sha256,
      });
      file.size = outcome.size;
    } else {
      skipped.push({ path: file.rel, reason: unreadable(outcome) });
    }
  });
  cache.rememberFiles(fresh);
  const hashedAt = performance.now();

  // One file per distinct content is enough to find or upload it.
  const bySha = new Map<string, LocalFile[]>();
  for (const file of walked.files) {
    const sha = hashes.get(file);
    if (sha === undefined) continue;
    const group = bySha.get(sha);
    if (group) group.push(file);
    else bySha.set(sha, [file]);
  }
  const uuids = new Map<string, string>();
  const unresolved: string[] = [];
  const now = Date.now();
  // The oldest confirmation the state relies on: a resync trusts the whole state until it is a day old.
  let blobsCheckedAt = now;
  for (const sha of bySha.keys()) {
    const blob = before.blobs.get(sha) ?? cache.blob(backendKey, sha);
    if (blob && now - blob.checkedAt < REVALIDATE_MS) {
      uuids.set(sha, blob.uuid);
      blobsCheckedAt = Math.min(blobsCheckedAt, blob.checkedAt);
    } else {
      unresolved.push(sha);
    }
  }

  let uploaded = 0;
  let bytesUploaded = 0;
  let done = 0;
  const lost = new Set<string>();
  await mapLimit(unresolved, request.uploadConcurrency ?? 8, async (sha) => {
    signal?.throwIfAborted();
    const group = bySha.get(sha)!;
    const found = await backend.findFile(sha);
    if (found) {
      uuids.set(sha, found.uuid);
      cache.rememberBlob(backendKey, sha, found.uuid);
    } else {
      const first = group[0]!;
      const stored = await uploadChecked(backend, first, sha);
      if (!stored) {
        // The file changed between hashing and sending: what arrived is not what the state would claim.
        lost.add(sha);
        for (const file of group) {
          cache.forgetFile(file.abs);
          skipped.push({ path: file.rel, reason: "changed while being synced; call rsync again" });
        }
      } else {
        uuids.set(sha, stored.uuid);
        cache.rememberBlob(backendKey, sha, stored.uuid);
        uploaded += 1;
        bytesUploaded += first.size;
      }
    }
    done += 1;
    report(
      () =>
        `checking and uploading ${done}/${unresolved.length} distinct files (${megabytes(bytesUploaded)} sent)`,
    );
  });

  const uploadedAt = performance.now();
  const stateFiles: StateFile[] = [];
  for (const file of walked.files) {
    const sha = hashes.get(file);
    if (sha === undefined || lost.has(sha)) continue;
    stateFiles.push({
      rel: file.rel,
      sha256: sha,
      uuid: uuids.get(sha)!,
      mode: file.mode & 0o777,
      size: file.size,
      mtimeMs: file.mtimeMs,
      ino: file.ino,
    });
  }
  if (stateFiles.length === 0) {
    throw new UserError(
      `None of the files in ${request.source} could be synced: ${skipped
        .slice(0, 3)
        .map((s) => `${s.path}: ${s.reason}`)
        .join("; ")}.`,
    );
  }
  const state = cache.ensureState({
    key,
    backend: backendKey,
    source: request.source,
    destination: request.destination,
    excludes: request.excludes,
  });
  const changed = state.id !== previous?.id || !sameStateFiles(before.files, stateFiles);
  if (changed) {
    const seen = previous?.id === state.id ? { files: before.files, syncedAt: previous.syncedAt } : undefined;
    cache.replaceStateFiles(state.id, stateFiles, blobsCheckedAt, seen);
  } else cache.touchState(state.id, blobsCheckedAt);
  skipped.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return {
    stateId: state.id,
    files: stateFiles.length,
    hashed: plan.changed.length,
    uploaded,
    reused: stateFiles.length - uploaded,
    bytesUploaded,
    skipped,
    changed,
    timings: {
      walk: walkedAt - started,
      hash: hashedAt - walkedAt,
      upload: uploadedAt - hashedAt,
      total: performance.now() - started,
    },
  };
}
