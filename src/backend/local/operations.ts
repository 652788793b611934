// Operations: rows in SQLite (so they outlive the process and list like the cloud's) and an in-memory queue with a
// concurrency limit. Waiters subscribe to changes instead of polling.
import { BackendError } from "../../errors.ts";
import { log } from "../../log.ts";
import type {
  CapturedStream,
  ImportProgress,
  InstanceResult,
  Operation,
  OperationKind,
  OperationQuery,
  OperationSummary,
} from "../types.ts";
import { isTerminal } from "../types.ts";
import { isOwnerAlive, nowIso, OWNER, parseTimeBound, type Store } from "./store.ts";

export const SERVER_STOPPED = "server stopped while this operation was running";

interface OperationRow {
  id: string;
  kind: OperationKind;
  status: string;
  error: string | null;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  input_image: string | null;
  command: string | null;
  disposable: number | null;
  registry_url: string | null;
  result_image: string | null;
  result_tag: string | null;
  spec: string;
  result: string | null;
}

interface StoredStream {
  base64: string;
  truncated: boolean;
  droppedBytes: number | null;
}

interface StoredResult extends Omit<InstanceResult, "stdout" | "stderr"> {
  stdout: StoredStream;
  stderr: StoredStream;
}

function storeStream(stream: CapturedStream): StoredStream {
  return {
    base64: Buffer.from(stream.bytes).toString("base64"),
    truncated: stream.truncated,
    droppedBytes: stream.droppedBytes,
  };
}

function loadStream(stream: StoredStream): CapturedStream {
  return {
    bytes: new Uint8Array(Buffer.from(stream.base64, "base64")),
    truncated: stream.truncated,
    droppedBytes: stream.droppedBytes,
  };
}

function toOperation(row: OperationRow): Operation {
  const started = row.started_at ? Date.parse(row.started_at) : null;
  const finished = row.finished_at ? Date.parse(row.finished_at) : null;
  const stored = row.result ? (JSON.parse(row.result) as StoredResult) : null;
  return {
    id: row.id,
    kind: row.kind,
    status: row.status,
    error: row.error,
    createdAt: row.created_at,
    durationS: started !== null ? ((finished ?? Date.now()) - started) / 1000 : finished !== null ? 0 : null,
    resultImage: row.result_image,
    resultTag: row.result_tag,
    inputImage: row.input_image,
    command: row.command,
    disposable: row.disposable === null ? null : row.disposable === 1,
    registryUrl: row.registry_url,
    result: stored
      ? { ...stored, stdout: loadStream(stored.stdout), stderr: loadStream(stored.stderr) }
      : null,
  };
}

export interface NewOperation {
  kind: OperationKind;
  inputImage?: string | null;
  command?: string | null;
  disposable?: boolean | null;
  registryUrl?: string | null;
  /** What was asked, kept for people reading the row (no secrets, no stdin). */
  spec: unknown;
}

export interface Finish {
  status: "SUCCESS" | "FAILED" | "CANCELLED";
  error?: string | null;
  resultImage?: string | null;
  resultTag?: string | null;
  result?: InstanceResult | null;
}

type Task = (signal: AbortSignal) => Promise<Finish>;

export class Operations {
  private readonly store: Store;
  private readonly maxConcurrent: number;
  private readonly waiting: { id: string; task: Task; done: () => void }[] = [];
  private readonly running = new Map<string, AbortController>();
  private readonly listeners = new Map<string, Set<() => void>>();
  private readonly settled = new Map<string, Promise<void>>();
  /** Running imports' progress: in memory only, since it means nothing once the process is gone. */
  private readonly progress = new Map<string, ImportProgress>();
  private closed = false;

  constructor(store: Store, maxConcurrent: number) {
    this.store = store;
    this.maxConcurrent = Math.max(1, maxConcurrent);
    // Unfinished operations of servers that are gone (another live server's are its own business).
    const unfinished = store.db
      .query<{ id: string; owner: string | null }, []>(
        "SELECT id, owner FROM operations WHERE status NOT IN ('SUCCESS', 'FAILED', 'CANCELLED')",
      )
      .all()
      .filter((row) => !isOwnerAlive(row.owner));
    const mark = store.db.query(
      "UPDATE operations SET status = 'FAILED', error = ?, finished_at = ? WHERE id = ? AND status NOT IN ('SUCCESS', 'FAILED', 'CANCELLED')",
    );
    for (const row of unfinished) mark.run(SERVER_STOPPED, nowIso(), row.id);
    if (unfinished.length > 0) log.info(`marked ${unfinished.length} interrupted local operation(s) FAILED`);
  }

  create(init: NewOperation): string {
    const id = crypto.randomUUID();
    this.store.db
      .query(
        "INSERT INTO operations (id, kind, status, created_at, input_image, command, disposable, registry_url, spec, owner) VALUES (?, ?, 'PENDING', ?, ?, ?, ?, ?, ?, ?)",
      )
      .run(
        id,
        init.kind,
        nowIso(),
        init.inputImage ?? null,
        init.command ?? null,
        init.disposable === undefined || init.disposable === null ? null : init.disposable ? 1 : 0,
        init.registryUrl ?? null,
        JSON.stringify(init.spec),
        OWNER,
      );
    return id;
  }

  /** Queues a task for an operation created with `create`; it runs when a slot is free. */
  enqueue(id: string, task: Task): void {
    let done!: () => void;
    this.settled.set(
      id,
      new Promise<void>((resolve) => {
        done = resolve;
      }),
    );
    this.waiting.push({ id, done, task });
    this.pump();
  }

  /** Resolves when the operation's task has finished (for tests and close). */
  async settledOf(id: string): Promise<void> {
    await this.settled.get(id);
  }

  private pump(): void {
    while (!this.closed && this.running.size < this.maxConcurrent && this.waiting.length > 0) {
      const next = this.waiting.shift()!;
      const controller = new AbortController();
      this.running.set(next.id, controller);
      this.store.db
        .query(
          "UPDATE operations SET status = 'EXECUTING', started_at = ? WHERE id = ? AND status = 'PENDING'",
        )
        .run(nowIso(), next.id);
      this.notify(next.id);
      void next
        .task(controller.signal)
        .catch((error: unknown): Finish => ({
          status: controller.signal.aborted ? "CANCELLED" : "FAILED",
          error: error instanceof BackendError ? error.detail : String(error),
        }))
        .then((finish) => {
          this.finish(next.id, finish);
          this.running.delete(next.id);
          this.settled.delete(next.id);
          next.done();
          this.pump();
        });
    }
  }

  /** Records how far a running operation is, and wakes its waiters so they can pass it on. */
  setProgress(id: string, progress: ImportProgress): void {
    if (!this.running.has(id)) return;
    this.progress.set(id, progress);
    this.notify(id);
  }

  private finish(id: string, finish: Finish): void {
    this.progress.delete(id);
    const result: StoredResult | null = finish.result
      ? {
          ...finish.result,
          stdout: storeStream(finish.result.stdout),
          stderr: storeStream(finish.result.stderr),
        }
      : null;
    this.store.db
      .query(
        "UPDATE operations SET status = ?, error = ?, finished_at = ?, result_image = ?, result_tag = ?, result = ? WHERE id = ?",
      )
      .run(
        finish.status,
        finish.error ?? null,
        nowIso(),
        finish.resultImage ?? null,
        finish.resultTag ?? null,
        result ? JSON.stringify(result) : null,
        id,
      );
    this.notify(id);
  }

  get(id: string): Operation {
    const row = this.store.db.query<OperationRow, [string]>("SELECT * FROM operations WHERE id = ?").get(id);
    if (!row) throw new BackendError({ code: "not_found", detail: `operation ${id} not found` });
    const operation = toOperation(row);
    const progress = this.progress.get(id);
    return progress ? { ...operation, progress } : operation;
  }

  list(query: OperationQuery): OperationSummary[] {
    const where: string[] = [];
    const params: (string | number)[] = [];
    if (query.status) {
      where.push("status = ?");
      params.push(query.status.toUpperCase());
    }
    if (query.kind) {
      where.push("kind = ?");
      params.push(query.kind);
    }
    if (query.since) {
      where.push("created_at >= ?");
      params.push(parseTimeBound(query.since));
    }
    if (query.until) {
      where.push("created_at <= ?");
      params.push(parseTimeBound(query.until));
    }
    params.push(query.limit, query.offset);
    return this.store.db
      .query<OperationRow, (string | number)[]>(
        `SELECT * FROM operations ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY created_at DESC, rowid DESC LIMIT ? OFFSET ?`,
      )
      .all(...params)
      .map((row) => ({
        id: row.id,
        kind: row.kind,
        status: row.status,
        error: row.error,
        createdAt: row.created_at,
      }));
  }

  /** Stops an operation: a queued one never starts, a running one is killed. Terminal ones are left alone. */
  cancel(id: string): void {
    const running = this.running.get(id);
    if (running) {
      running.abort();
      return;
    }
    const operation = this.get(id);
    if (isTerminal(operation.status)) return;
    const queued = this.waiting.findIndex((entry) => entry.id === id);
    if (queued >= 0) {
      const [entry] = this.waiting.splice(queued, 1);
      this.finish(id, { status: "CANCELLED", error: "cancelled before it started" });
      entry?.done();
      this.settled.delete(id);
    }
  }

  /** Resolves at the operation's next change (or at once if it is already terminal), or when `signal` aborts. */
  changed(id: string, signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      const row = this.store.db
        .query<{ status: string }, [string]>("SELECT status FROM operations WHERE id = ?")
        .get(id);
      if (!row || isTerminal(row.status) || signal.aborted) {
        resolve();
        return;
      }
      let set = this.listeners.get(id);
      if (!set) {
        set = new Set();
        this.listeners.set(id, set);
      }
      const wake = () => {
        set.delete(wake);
        if (set.size === 0) this.listeners.delete(id);
        signal.removeEventListener("abort", wake);
        resolve();
      };
      set.add(wake);
      signal.addEventListener("abort", wake, { once: true });
    });
  }

  private notify(id: string): void {
    // Deleting the visited entry while iterating a Set is safe.
    for (const wake of this.listeners.get(id) ?? []) wake();
  }

  /** Stops everything: queued operations are cancelled, running ones killed and awaited. */
  async close(): Promise<void> {
    this.closed = true;
    for (const entry of this.waiting.splice(0)) {
      this.finish(entry.id, { status: "CANCELLED", error: "the server stopped before it started" });
      entry.done();
    }
    const running = [...this.running.keys()];
    for (const controller of this.running.values()) controller.abort();
    await Promise.all(running.map((id) => this.settledOf(id)));
  }
}
