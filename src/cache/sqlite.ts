import { Database } from "bun:sqlite";
import { existsSync, mkdirSync, renameSync } from "node:fs";
import { dirname } from "node:path";
import { log } from "../log.ts";

export interface Schema {
  /** Bumped when the tables change; an older file is migrated by `migrate`, a newer or unknown one is rebuilt. */
  version: number;
  /** Creates the tables on an empty database. */
  create: string;
  /** Upgrades a database at `from` (< version). Return false when it cannot, and the file is rebuilt. */
  migrate?: (db: Database, from: number) => boolean;
}

/**
 * Opens a cache database, healing it when needed: a file that is corrupt, unreadable or of an unknown schema is
 * moved aside (never deleted: it may hold something a person wants back) and a fresh one is built, with a warning.
 * A cache must never stop the server.
 */
export function openCache(path: string, schema: Schema): Database {
  if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  try {
    return openChecked(path, schema);
  } catch (error) {
    if (path === ":memory:" || !existsSync(path)) throw error;
    const code = (error as { code?: unknown }).code;
    if (code === "SQLITE_BUSY" || code === "SQLITE_LOCKED") {
      // Another server holds the file: it is healthy, so keep it, and run on a cache of our own for now.
      log.warn(`cache ${path} is busy in another process (${String(error)}); using a memory cache this time`);
      return openChecked(":memory:", schema);
    }
    const aside = `${path}.broken-${new Date().toISOString().replace(/[:.]/g, "-")}`;
    for (const suffix of ["", "-wal", "-shm"]) {
      if (existsSync(path + suffix)) renameSync(path + suffix, aside + suffix);
    }
    log.warn(
      `cache ${path} could not be used (${String(error)}); moved it to ${aside} and started a new one`,
    );
    return openChecked(path, schema);
  }
}

function openChecked(path: string, schema: Schema): Database {
  const db = new Database(path, { create: true, strict: true });
  try {
    db.exec("PRAGMA busy_timeout = 5000");
    if (path !== ":memory:") db.exec("PRAGMA journal_mode = WAL");
    db.exec("PRAGMA synchronous = NORMAL");
    const check = db.query<{ quick_check: string }, []>("PRAGMA quick_check").get();
    if (check?.quick_check !== "ok") throw new Error(`integrity check failed: ${check?.quick_check}`);
    const version = db.query<{ user_version: number }, []>("PRAGMA user_version").get()?.user_version ?? 0;
    const tables = db
      .query<{ n: number }, []>("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table'")
      .get();
    if (version === 0 && (tables?.n ?? 0) === 0) {
      db.transaction(() => {
        db.exec(schema.create);
        db.exec(`PRAGMA user_version = ${schema.version}`);
      })();
    } else if (version < schema.version && version > 0 && schema.migrate) {
      const migrated = db.transaction(() => {
        const ok = schema.migrate!(db, version);
        if (ok) db.exec(`PRAGMA user_version = ${schema.version}`);
        return ok;
      })();
      if (!migrated) throw new Error(`schema version ${version} cannot be migrated to ${schema.version}`);
    } else if (version !== schema.version) {
      throw new Error(`schema version ${version}, expected ${schema.version}`);
    }
    return db;
  } catch (error) {
    db.close();
    throw error;
  }
}

/** Housekeeping that can wait: skipped, not fatal, while another process holds the file for writing. */
export function unlessBusy(what: string, work: () => void): void {
  try {
    work();
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (code !== "SQLITE_BUSY" && code !== "SQLITE_LOCKED") throw error;
    log.debug(`${what} skipped: the cache is busy in another process`);
  }
}
