import type { Database } from "bun:sqlite";
import { openCache, type Schema, unlessBusy } from "../cache/sqlite.ts";
import { sameStateFile } from "./plan.ts";

// What a sync remembers: the content hash of each local file by its (size, mtime, inode, mode), which blobs a
// backend already holds, and each directory state (a source tree placed at a destination) with exactly its files.
// States and blobs are per backend: a file uuid from one backend means nothing to another.
const SCHEMA: Schema = {
  version: 2,
  create: `
    CREATE TABLE local_files (
      path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ms REAL NOT NULL, ino INTEGER NOT NULL,
      mode INTEGER NOT NULL, sha256 TEXT NOT NULL, used_at INTEGER NOT NULL
    );
    CREATE TABLE blobs (
      backend TEXT NOT NULL, sha256 TEXT NOT NULL, uuid TEXT NOT NULL, checked_at INTEGER NOT NULL,
      PRIMARY KEY (backend, sha256)
    ) WITHOUT ROWID;
    CREATE TABLE states (
      id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL UNIQUE, backend TEXT NOT NULL, source TEXT NOT NULL,
      destination TEXT NOT NULL, excludes TEXT NOT NULL, synced_at INTEGER NOT NULL, used_at INTEGER NOT NULL,
      blobs_checked_at INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE state_files (
      state_id INTEGER NOT NULL, rel TEXT NOT NULL, sha256 TEXT NOT NULL, uuid TEXT NOT NULL, mode INTEGER NOT NULL,
      size INTEGER NOT NULL, mtime_ms REAL NOT NULL, ino INTEGER NOT NULL, PRIMARY KEY (state_id, rel)
    ) WITHOUT ROWID;
  `,
  // Version 2 keeps each state file's look (mtime, inode) and when the state's blobs were last confirmed, so that a
  // resync of an unchanged tree is one query. Old rows get a look that never matches and a confirmation long past;
  // the next sync finds their hashes in local_files, asks the backend once, and writes both.
  migrate(db, from) {
    if (from !== 1) return false;
    db.exec(`
      ALTER TABLE state_files ADD COLUMN mtime_ms REAL NOT NULL DEFAULT -1;
      ALTER TABLE state_files ADD COLUMN ino INTEGER NOT NULL DEFAULT -1;
      ALTER TABLE states ADD COLUMN blobs_checked_at INTEGER NOT NULL DEFAULT 0;
    `);
    return true;
  },
};

/** How a file looked when it was last hashed; the same look means the same content. */
export interface KnownFile {
  path: string;
  size: number;
  mtimeMs: number;
  ino: number;
  mode: number;
  sha256: string;
}

/** A file of a directory state: where it goes, its content, and how the local file looked when it was hashed. */
export interface StateFile {
  rel: string;
  sha256: string;
  uuid: string;
  /** Permission bits placed in the sandbox (0o777). */
  mode: number;
  size: number;
  mtimeMs: number;
  ino: number;
}

/** How a state's file looked locally: [rel, size, mtimeMs, ino, mode]. Arrays, for speed on big trees. */
export type StateLook = [string, number, number, number, number];

export interface DirectoryState {
  id: number;
  backend: string;
  source: string;
  destination: string;
  excludes: string[];
  syncedAt: number;
  /** The backend confirmed every blob of the state at this time or later (ms since the epoch). */
  blobsCheckedAt: number;
}

/** A used row is touched at most this often, so a no-change resync writes nothing per file. */
const TOUCH_AFTER_MS = 86_400_000;

/** The range of paths under a directory, for an index range scan: '0' is the character after '/'. */
function under(root: string): [string, string] {
  const base = root.endsWith("/") ? root.slice(0, -1) : root;
  return [`${base}/`, `${base}0`];
}

export class FileCache {
  readonly db: Database;

  constructor(
    path: string,
    private readonly pruneDays = 60,
  ) {
    this.db = openCache(path, SCHEMA);
    unlessBusy("pruning the file cache", () => this.prune());
  }

  /** Known files at `root` and below, by path. */
  knownFiles(root: string): Map<string, KnownFile> {
    const [from, to] = under(root);
    // Arrays rather than row objects: a resync of a big tree reads every row, and this is most of its cost.
    const rows = this.db
      .query<unknown, [string, string, string]>(
        "SELECT path, size, mtime_ms, ino, mode, sha256 FROM local_files WHERE path = ? OR (path >= ? AND path < ?)",
      )
      .values(root, from, to) as Array<[string, number, number, number, number, string]>;
    const now = Date.now();
    this.db.run(
      "UPDATE local_files SET used_at = ? WHERE (path = ? OR (path >= ? AND path < ?)) AND used_at < ?",
      [now, root, from, to, now - TOUCH_AFTER_MS],
    );
    const known = new Map<string, KnownFile>();
    for (const [path, size, mtimeMs, ino, mode, sha256] of rows) {
      known.set(path, { path, size, mtimeMs, ino, mode, sha256 });
    }
    return known;
  }

  /** One known file; for the few files a state does not already know. */
  knownFile(path: string): KnownFile | null {
    const row = this.db
      .query<unknown, [string]>(
        "SELECT path, size, mtime_ms, ino, mode, sha256 FROM local_files WHERE path = ?",
      )
      .values(path)[0] as [string, number, number, number, number, string] | undefined;
    if (!row) return null;
    const [, size, mtimeMs, ino, mode, sha256] = row;
    return { path, size, mtimeMs, ino, mode, sha256 };
  }

  rememberFiles(files: readonly KnownFile[]): void {
    if (files.length === 0) return;
    const insert = this.db.prepare(
      "INSERT OR REPLACE INTO local_files (path, size, mtime_ms, ino, mode, sha256, used_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
    );
    const now = Date.now();
    this.db.transaction(() => {
      for (const f of files) insert.run(f.path, f.size, f.mtimeMs, f.ino, f.mode, f.sha256, now);
    })();
  }

  forgetFile(path: string): void {
    this.db.run("DELETE FROM local_files WHERE path = ?", [path]);
  }

  /** The uuid under which `backend` holds this content, and when that was last confirmed. */
  blob(backend: string, sha256: string): { uuid: string; checkedAt: number } | null {
    const row = this.db
      .query<{ uuid: string; checked_at: number }, [string, string]>(
        "SELECT uuid, checked_at FROM blobs WHERE backend = ? AND sha256 = ?",
      )
      .get(backend, sha256);
    return row ? { uuid: row.uuid, checkedAt: row.checked_at } : null;
  }

  rememberBlob(backend: string, sha256: string, uuid: string): void {
    this.db.run("INSERT OR REPLACE INTO blobs (backend, sha256, uuid, checked_at) VALUES (?, ?, ?, ?)", [
      backend,
      sha256,
      uuid,
      Date.now(),
    ]);
  }

  forgetBlob(backend: string, sha256: string): void {
    this.db.run("DELETE FROM blobs WHERE backend = ? AND sha256 = ?", [backend, sha256]);
  }

  stateByKey(key: string): DirectoryState | null {
    const row = this.db.query<StateRow, [string]>("SELECT * FROM states WHERE key = ?").get(key);
    return row ? toState(row) : null;
  }

  /** A state by id, only when it belongs to `backend` (another backend's uuids would not resolve). */
  state(id: number, backend: string): DirectoryState | null {
    const row = this.db
      .query<StateRow, [number, string]>("SELECT * FROM states WHERE id = ? AND backend = ?")
      .get(id, backend);
    if (!row) return null;
    const now = Date.now();
    if (row.used_at < now - TOUCH_AFTER_MS)
      this.db.run("UPDATE states SET used_at = ? WHERE id = ?", [now, id]);
    return toState(row);
  }

  stateFiles(id: number): StateFile[] {
    const rows = this.db
      .query<unknown, [number]>(
        "SELECT rel, sha256, uuid, mode, size, mtime_ms, ino FROM state_files WHERE state_id = ? ORDER BY rel",
      )
      .values(id) as Array<[string, string, string, number, number, number, number]>;
    return rows.map(([rel, sha256, uuid, mode, size, mtimeMs, ino]) => ({
      rel,
      sha256,
      uuid,
      mode,
      size,
      mtimeMs,
      ino,
    }));
  }

  /** Each file's look, ordered by rel: all a resync needs to see that nothing changed. */
  stateLooks(id: number): StateLook[] {
    return this.db
      .query<unknown, [number]>(
        "SELECT rel, size, mtime_ms, ino, mode FROM state_files WHERE state_id = ? ORDER BY rel",
      )
      .values(id) as StateLook[];
  }

  /**
   * A state's files, and what `backend` is known to hold of their content: the blobs a resync of an unchanged
   * tree needs, read in one query that grows with the tree, not with everything ever synced.
   */
  stateFilesAndBlobs(
    id: number,
    backend: string,
  ): { files: StateFile[]; blobs: Map<string, { uuid: string; checkedAt: number }> } {
    const rows = this.db
      .query<unknown, [string, number]>(
        `SELECT f.rel, f.sha256, f.uuid, f.mode, f.size, f.mtime_ms, f.ino, b.uuid, b.checked_at FROM state_files f
         LEFT JOIN blobs b ON b.backend = ? AND b.sha256 = f.sha256 WHERE f.state_id = ? ORDER BY f.rel`,
      )
      .values(backend, id) as Array<
      [string, string, string, number, number, number, number, string | null, number | null]
    >;
    const files: StateFile[] = [];
    const blobs = new Map<string, { uuid: string; checkedAt: number }>();
    for (const [rel, sha256, uuid, mode, size, mtimeMs, ino, blobUuid, checkedAt] of rows) {
      files.push({ rel, sha256, uuid, mode, size, mtimeMs, ino });
      if (blobUuid !== null && checkedAt !== null) blobs.set(sha256, { uuid: blobUuid, checkedAt });
    }
    return { files, blobs };
  }

  /** Creates the state for `key`, or returns the one already there: the same tree and destination keep their id. */
  ensureState(
    init: Omit<DirectoryState, "id" | "syncedAt" | "blobsCheckedAt"> & { key: string },
  ): DirectoryState {
    const now = Date.now();
    this.db.run(
      `INSERT INTO states (key, backend, source, destination, excludes, synced_at, used_at) VALUES (?, ?, ?, ?, ?, 0, ?)
       ON CONFLICT(key) DO NOTHING`,
      [init.key, init.backend, init.source, init.destination, JSON.stringify(init.excludes), now],
    );
    return this.stateByKey(init.key)!;
  }

  /**
   * Makes a state hold exactly `files`, in one transaction. Only the difference from what it holds is written, so
   * one edited file in a big tree is one row, not the whole tree again.
   */
  replaceStateFiles(
    id: number,
    files: readonly StateFile[],
    blobsCheckedAt: number,
    /** What the caller read of the state, reused when nobody has written it since. */
    seen?: { files: readonly StateFile[]; syncedAt: number },
  ): void {
    const remove = this.db.prepare("DELETE FROM state_files WHERE state_id = ? AND rel = ?");
    const upsert = this.db.prepare(
      `INSERT OR REPLACE INTO state_files (state_id, rel, sha256, uuid, mode, size, mtime_ms, ino)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    const now = Date.now();
    this.db
      .transaction(() => {
        // Read inside the transaction: another server sharing this cache may have written the state since.
        const syncedAt = this.db
          .query<{ synced_at: number }, [number]>("SELECT synced_at FROM states WHERE id = ?")
          .get(id)?.synced_at;
        const current = seen && seen.syncedAt === syncedAt ? seen.files : this.stateFiles(id);
        const old = new Map(current.map((f) => [f.rel, f]));
        for (const f of files) {
          const was = old.get(f.rel);
          old.delete(f.rel);
          if (was && sameStateFile(was, f)) continue;
          upsert.run(id, f.rel, f.sha256, f.uuid, f.mode, f.size, f.mtimeMs, f.ino);
        }
        for (const rel of old.keys()) remove.run(id, rel);
        this.db.run("UPDATE states SET synced_at = ?, used_at = ?, blobs_checked_at = ? WHERE id = ?", [
          now,
          now,
          blobsCheckedAt,
          id,
        ]);
      })
      .immediate();
  }

  /**
   * Forgets that the backend holds a state's blobs (a run found one missing): the next sync of the state asks the
   * backend about each of them again and uploads what is gone, instead of trusting the cache for a day.
   */
  distrustState(id: number, backend: string): void {
    this.db
      .transaction(() => {
        this.db.run(
          "UPDATE blobs SET checked_at = 0 WHERE backend = ? AND sha256 IN (SELECT sha256 FROM state_files WHERE state_id = ?)",
          [backend, id],
        );
        this.db.run("UPDATE states SET blobs_checked_at = 0 WHERE id = ?", [id]);
      })
      .immediate();
  }

  /** Marks a state synced now; `blobsCheckedAt` when its blobs were confirmed again. */
  touchState(id: number, blobsCheckedAt?: number): void {
    const now = Date.now();
    this.db.run(
      "UPDATE states SET synced_at = ?, used_at = ?, blobs_checked_at = COALESCE(?, blobs_checked_at) WHERE id = ?",
      [now, now, blobsCheckedAt ?? null, id],
    );
  }

  prune(): void {
    if (this.pruneDays <= 0) return;
    const cutoff = Date.now() - this.pruneDays * 86_400_000;
    this.db.transaction(() => {
      this.db.run("DELETE FROM state_files WHERE state_id IN (SELECT id FROM states WHERE used_at < ?)", [
        cutoff,
      ]);
      this.db.run("DELETE FROM states WHERE used_at < ?", [cutoff]);
      this.db.run("DELETE FROM local_files WHERE used_at < ?", [cutoff]);
      this.db.run("DELETE FROM blobs WHERE checked_at < ?", [cutoff]);
    })();
  }

  close(): void {
    this.db.close();
  }
}

interface StateRow {
  id: number;
  key: string;
  backend: string;
  source: string;
  destination: string;
  excludes: string;
  synced_at: number;
  used_at: number;
  blobs_checked_at: number;
}

function toState(row: StateRow): DirectoryState {
  return {
    id: row.id,
    backend: row.backend,
    source: row.source,
    destination: row.destination,
    excludes: JSON.parse(row.excludes) as string[],
    syncedAt: row.synced_at,
    blobsCheckedAt: row.blobs_checked_at,
  };
}
