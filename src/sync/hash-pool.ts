import { availableParallelism } from "node:os";
import { log } from "../log.ts";
import { hashFile } from "./hash.ts";

export interface HashTarget {
  abs: string;
  size: number;
}

/** A file's hash, or why it could not be read (an errno code such as EACCES, or a message). */
export type HashOutcome = { sha256: string; size: number } | { code: string | null; message: string };

export interface HashManyOptions {
  signal?: AbortSignal;
  /** Worker threads for a large set; 0 hashes on this thread. Default: the CPUs, at most 4. */
  workers?: number;
  /** Called as files are done, with how many and how many bytes so far. */
  onProgress?: (files: number, bytes: number) => void;
}

/** Below this much work, starting threads costs more than it saves: the files are hashed here, a few at once. */
const SMALL_FILES = 64;
const SMALL_BYTES = 16 << 20;
/** A batch is what a worker is handed at once: big enough to amortise messages, small enough to balance the load. */
const BATCH_FILES = 64;
const BATCH_BYTES = 8 << 20;
const MAX_WORKERS = 4;

// Each worker reads its files with plain blocking reads into one reused buffer and feeds Bun's native SHA-256: no
// per-file promise or allocation, and the event loop of the server stays free while a big tree is hashed. The source
// is inline (a Blob URL) so that it also works inside a compiled single-file executable.
const WORKER_SOURCE = `
const { openSync, readSync, closeSync } = require("node:fs");
const buffer = Buffer.allocUnsafe(1 << 20);
self.onmessage = (event) => {
  const out = [];
  for (const path of event.data) {
    let fd = -1;
    try {
      fd = openSync(path, "r");
      const hasher = new Bun.CryptoHasher("sha256");
      let size = 0;
      for (;;) {
        const n = readSync(fd, buffer, 0, buffer.length, null);
        if (n > 0) hasher.update(buffer.subarray(0, n));
        size += n;
        // A regular file reads short only at its end: no extra read just to see zero bytes.
        if (n < buffer.length) break;
      }
      out.push({ sha256: hasher.digest("hex"), size });
    } catch (error) {
      out.push({ code: (error && error.code) || null, message: String((error && error.message) || error) });
    } finally {
      if (fd >= 0) closeSync(fd);
    }
  }
  postMessage(out);
};
`;

let workerUrl: string | null = null;

function defaultWorkers(): number {
  return Math.max(1, Math.min(MAX_WORKERS, availableParallelism()));
}

/**
 * SHA-256 of many files: a small set on this thread, a large one on worker threads, each reading whole batches
 * of files. Results keep the input order; a file that cannot be read gets its error, not a rejection.
 */
export async function hashMany(
  files: readonly HashTarget[],
  options: HashManyOptions = {},
): Promise<HashOutcome[]> {
  const bytes = files.reduce((sum, f) => sum + f.size, 0);
  if (files.length < SMALL_FILES && bytes < SMALL_BYTES) return hashHere(files, options);
  const queue = batches(files);
  const workers = Math.min(options.workers ?? defaultWorkers(), queue.length);
  if (workers < 1) return hashHere(files, options);
  try {
    return await hashOnWorkers(files, queue, workers, options);
  } catch (error) {
    options.signal?.throwIfAborted();
    // Threads are an optimisation: where they cannot start or die, the files are hashed here instead.
    log.warn(`hashing on worker threads failed (${String(error)}); hashing on the main thread`);
    return hashHere(files, options);
  }
}

async function hashHere(files: readonly HashTarget[], options: HashManyOptions): Promise<HashOutcome[]> {
  const results: HashOutcome[] = [];
  let done = 0;
  let doneBytes = 0;
  let next = 0;
  const lane = async () => {
    while (next < files.length) {
      const index = next++;
      const file = files[index]!;
      options.signal?.throwIfAborted();
      try {
        results[index] = await hashFile(file.abs, file.size, options.signal);
      } catch (error) {
        options.signal?.throwIfAborted();
        results[index] = failure(error);
      }
      done += 1;
      doneBytes += file.size;
      options.onProgress?.(done, doneBytes);
    }
  };
  await Promise.all(Array.from({ length: Math.min(4, files.length) }, lane));
  return results;
}

function failure(error: unknown): HashOutcome {
  return {
    code: (error as { code?: string }).code ?? null,
    message: error instanceof Error ? error.message : String(error),
  };
}

/** Consecutive runs of files, each at most BATCH_FILES files or BATCH_BYTES bytes (one big file is a batch alone). */
function batches(files: readonly HashTarget[]): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  let start = 0;
  let size = 0;
  for (let i = 0; i < files.length; i++) {
    if (i > start && (i - start >= BATCH_FILES || size + files[i]!.size > BATCH_BYTES)) {
      out.push([start, i]);
      start = i;
      size = 0;
    }
    size += files[i]!.size;
  }
  if (start < files.length) out.push([start, files.length]);
  return out;
}

function hashOnWorkers(
  files: readonly HashTarget[],
  queue: ReadonlyArray<[number, number]>,
  count: number,
  options: HashManyOptions,
): Promise<HashOutcome[]> {
  workerUrl ??= URL.createObjectURL(new Blob([WORKER_SOURCE], { type: "application/javascript" }));
  const url = workerUrl;
  const results: HashOutcome[] = Array.from({ length: files.length });
  const { signal } = options;
  return new Promise<HashOutcome[]>((resolve, reject) => {
    const pool: Worker[] = [];
    let next = 0;
    let busy = 0;
    let done = 0;
    let doneBytes = 0;
    let settled = false;
    const finish = (error?: unknown) => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener("abort", onAbort);
      for (const worker of pool) worker.terminate();
      if (error === undefined) resolve(results);
      else reject(error);
    };
    const onAbort = () => finish(signal!.reason);
    if (signal?.aborted) return finish(signal.reason);
    signal?.addEventListener("abort", onAbort, { once: true });
    const feed = (worker: Worker, slot: { batch: [number, number] | null }) => {
      if (settled) return;
      const batch = queue[next++];
      slot.batch = batch ?? null;
      if (!batch) {
        if (busy === 0) finish();
        return;
      }
      busy += 1;
      const [start, end] = batch;
      // oxlint-disable-next-line unicorn/require-post-message-target-origin -- a Worker's postMessage has no origin
      worker.postMessage(files.slice(start, end).map((f) => f.abs));
    };
    try {
      for (let i = 0; i < count; i++) {
        const worker = new Worker(url);
        const slot: { batch: [number, number] | null } = { batch: null };
        worker.addEventListener("message", (event: MessageEvent<HashOutcome[]>) => {
          if (!slot.batch) return;
          const [start, end] = slot.batch;
          busy -= 1;
          event.data.forEach((outcome, j) => {
            results[start + j] = outcome;
            doneBytes += files[start + j]!.size;
          });
          done += end - start;
          options.onProgress?.(done, doneBytes);
          feed(worker, slot);
        });
        worker.addEventListener("error", (event) =>
          finish(new Error(`hashing thread failed: ${event.message}`)),
        );
        pool.push(worker);
        feed(worker, slot);
      }
    } catch (error) {
      finish(error);
    }
  });
}

/** SHA-256 of one file: a big one on a worker thread (a blocking read loop there beats async chunks here). */
export async function hashOne(
  path: string,
  size: number,
  signal?: AbortSignal,
): Promise<{ sha256: string; size: number }> {
  const [outcome] = await hashMany([{ abs: path, size }], { signal, workers: 1 });
  if (!outcome || !("sha256" in outcome)) {
    throw Object.assign(new Error(outcome?.message ?? "not hashed"), { code: outcome?.code ?? undefined });
  }
  return outcome;
}
