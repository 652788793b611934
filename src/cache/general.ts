import type { Database } from "bun:sqlite";
import type { CapturedStream, Operation } from "../backend/types.ts";
import { isTerminal } from "../backend/types.ts";
import { openCache, type Schema, unlessBusy } from "./sqlite.ts";

// Only facts that never change are kept: terminal operations and image lineage. Rows are pruned by last use,
// not by creation, so what an agent still uses stays.
const SCHEMA: Schema = {
  version: 1,
  create: `
    CREATE TABLE operations (id TEXT PRIMARY KEY, data TEXT NOT NULL, used_at INTEGER NOT NULL);
    CREATE TABLE started (
      operation_id TEXT PRIMARY KEY, kind TEXT NOT NULL, input_image TEXT, command TEXT, registry_url TEXT,
      created_at INTEGER NOT NULL
    );
    CREATE TABLE images (
      uuid TEXT PRIMARY KEY, parent TEXT, operation_id TEXT, command TEXT, registry_url TEXT, tag TEXT,
      recorded_at INTEGER NOT NULL, used_at INTEGER NOT NULL
    );
    CREATE INDEX images_parent ON images(parent);
  `,
};

export interface StartedOperation {
  operationId: string;
  kind: "instance" | "image_import";
  inputImage: string | null;
  command: string | null;
  registryUrl: string | null;
}

export interface ImageFact {
  uuid: string;
  parent: string | null;
  operationId: string | null;
  command: string | null;
  registryUrl: string | null;
  tag: string | null;
  recordedAt: string;
}

interface ImageRow {
  uuid: string;
  parent: string | null;
  operation_id: string | null;
  command: string | null;
  registry_url: string | null;
  tag: string | null;
  recorded_at: number;
}

type StoredStream = Omit<CapturedStream, "bytes"> & { base64: string };

function toJson(operation: Operation): string {
  return JSON.stringify(operation, (_key, value: unknown) =>
    value instanceof Uint8Array ? { __bytes: Buffer.from(value).toString("base64") } : value,
  );
}

function fromJson(text: string): Operation {
  return JSON.parse(text, (_key, value: unknown) =>
    value && typeof value === "object" && "__bytes" in value
      ? new Uint8Array(Buffer.from(String((value as { __bytes: string }).__bytes), "base64"))
      : value,
  ) as Operation;
}

export type { StoredStream };

export class GeneralCache {
  readonly db: Database;

  constructor(
    path: string,
    private readonly pruneDays = 60,
  ) {
    this.db = openCache(path, SCHEMA);
    unlessBusy("pruning the general cache", () => this.prune());
  }

  getOperation(id: string): Operation | null {
    const row = this.db.query<{ data: string }, [string]>("SELECT data FROM operations WHERE id = ?").get(id);
    if (!row) return null;
    this.db.run("UPDATE operations SET used_at = ? WHERE id = ?", [Date.now(), id]);
    return fromJson(row.data);
  }

  /** Keeps an operation only once it is terminal: a running one changes, and serving it later would be stale. */
  putOperation(operation: Operation): void {
    if (!isTerminal(operation.status)) return;
    this.db.run("INSERT OR REPLACE INTO operations (id, data, used_at) VALUES (?, ?, ?)", [
      operation.id,
      toJson(operation),
      Date.now(),
    ]);
  }

  rememberStarted(started: StartedOperation): void {
    this.db.run(
      `INSERT OR REPLACE INTO started (operation_id, kind, input_image, command, registry_url, created_at)
       VALUES (?, ?, ?, ?, ?, ?)`,
      [
        started.operationId,
        started.kind,
        started.inputImage,
        started.command,
        started.registryUrl,
        Date.now(),
      ],
    );
  }

  started(operationId: string): StartedOperation | null {
    const row = this.db
      .query<
        {
          operation_id: string;
          kind: string;
          input_image: string | null;
          command: string | null;
          registry_url: string | null;
        },
        [string]
      >("SELECT * FROM started WHERE operation_id = ?")
      .get(operationId);
    if (!row) return null;
    return {
      operationId: row.operation_id,
      kind: row.kind === "image_import" ? "image_import" : "instance",
      inputImage: row.input_image,
      command: row.command,
      registryUrl: row.registry_url,
    };
  }

  /** Records where an image came from. An existing record keeps what it knew unless the new one knows more. */
  recordImage(fact: Omit<ImageFact, "recordedAt">): void {
    const now = Date.now();
    this.db.run(
      `INSERT INTO images (uuid, parent, operation_id, command, registry_url, tag, recorded_at, used_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT(uuid) DO UPDATE SET
         parent = COALESCE(excluded.parent, images.parent),
         operation_id = COALESCE(excluded.operation_id, images.operation_id),
         command = COALESCE(excluded.command, images.command),
         registry_url = COALESCE(excluded.registry_url, images.registry_url),
         tag = COALESCE(excluded.tag, images.tag),
         used_at = excluded.used_at`,
      [fact.uuid, fact.parent, fact.operationId, fact.command, fact.registryUrl, fact.tag, now, now],
    );
  }

  image(uuid: string): ImageFact | null {
    const row = this.db.query<ImageRow, [string]>("SELECT * FROM images WHERE uuid = ?").get(uuid);
    if (!row) return null;
    this.db.run("UPDATE images SET used_at = ? WHERE uuid = ?", [Date.now(), uuid]);
    return {
      uuid: row.uuid,
      parent: row.parent,
      operationId: row.operation_id,
      command: row.command,
      registryUrl: row.registry_url,
      tag: row.tag,
      recordedAt: new Date(row.recorded_at).toISOString(),
    };
  }

  children(uuid: string, limit = 100): string[] {
    return this.db
      .query<{ uuid: string }, [string, number]>(
        "SELECT uuid FROM images WHERE parent = ? ORDER BY recorded_at LIMIT ?",
      )
      .all(uuid, limit)
      .map((row) => row.uuid);
  }

  prune(): void {
    if (this.pruneDays <= 0) return;
    const cutoff = Date.now() - this.pruneDays * 86_400_000;
    this.db.run("DELETE FROM operations WHERE used_at < ?", [cutoff]);
    this.db.run("DELETE FROM started WHERE created_at < ?", [cutoff]);
    this.db.run("DELETE FROM images WHERE used_at < ?", [cutoff]);
  }

  close(): void {
    this.db.close();
  }
}
