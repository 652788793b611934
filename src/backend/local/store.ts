// The local image store: metadata in bun:sqlite, layer directories and uploaded files on disk.
//
//   <root>/store.sqlite      images, layers, files, operations
//   <root>/layers/<id>/      one directory per layer, in overlayfs's own format (whiteouts are char devices 0,0,
//                            opaque directories carry trusted.overlay.opaque=y, or
//                            user.overlay.opaque=y without root: see fsx.ts), so a stack mounts as is
//   <root>/files/<sha256>    uploaded files, by content
//   <root>/tmp/<owner>/      each process's work directories; a dead process's are removed by the next one
//
// Several servers may share one root (an MCP client per editor, plus `local serve`), so cleanup after a crash only
// touches what belongs to processes that are gone: owners are boot id + pid + process start time.
//
// Layer directory names are short random ids (not digests) because overlayfs takes every lower directory in one
// mount option string of at most a page; imported layers are still shared by content through layers.digest.
import { Database } from "bun:sqlite";
import { mkdirSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { BackendError, UserError } from "../../errors.ts";
import type { Image, ImageQuery } from "../types.ts";
import { removeTree } from "./fsx.ts";

export interface ImageRow {
  uuid: string;
  parent: string | null;
  /** Layer ids, bottom first. */
  layers: string[];
  tag: string | null;
  createdAt: string;
  operationId: string | null;
  command: string | null;
  /** Imported images: the manifest digest, so importing the same image again finds it. */
  digest: string | null;
}

interface RawImage {
  uuid: string;
  parent: string | null;
  layers: string;
  tag: string | null;
  created_at: string;
  operation_id: string | null;
  command: string | null;
  digest: string | null;
}

export interface FileRow {
  uuid: string;
  sha256: string;
  size: number;
}

const SCHEMA_VERSION = 1;
const SCHEMA = `
CREATE TABLE images (
  uuid TEXT PRIMARY KEY,
  parent TEXT,
  layers TEXT NOT NULL,
  tag TEXT UNIQUE,
  created_at TEXT NOT NULL,
  operation_id TEXT,
  command TEXT,
  digest TEXT
);
CREATE INDEX images_created ON images(created_at);
CREATE INDEX images_digest ON images(digest);
CREATE TABLE layers (
  id TEXT PRIMARY KEY,
  digest TEXT UNIQUE,
  created_at TEXT NOT NULL
);
CREATE TABLE files (
  uuid TEXT PRIMARY KEY,
  sha256 TEXT NOT NULL UNIQUE,
  size INTEGER NOT NULL,
  created_at TEXT NOT NULL
);
CREATE TABLE operations (
  id TEXT PRIMARY KEY,
  kind TEXT NOT NULL,
  status TEXT NOT NULL,
  error TEXT,
  created_at TEXT NOT NULL,
  started_at TEXT,
  finished_at TEXT,
  input_image TEXT,
  command TEXT,
  disposable INTEGER,
  registry_url TEXT,
  result_image TEXT,
  result_tag TEXT,
  spec TEXT NOT NULL,
  result TEXT,
  owner TEXT
);
CREATE INDEX operations_created ON operations(created_at);
`;

/** Short, lowercase, sortable-enough ids for layer directories. */
export function newLayerId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  return Array.from(bytes, (b) => b.toString(36).padStart(2, "0")).join("");
}

export function nowIso(): string {
  return new Date().toISOString();
}

/** ISO 8601 or a relative age (15m, 2h, 3d, 30s, 1w) → ISO 8601. */
export function parseTimeBound(value: string): string {
  const relative = /^(\d+)\s*([smhdw])$/i.exec(value.trim());
  if (relative) {
    const seconds = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 }[
      relative[2]!.toLowerCase() as "s" | "m" | "h" | "d" | "w"
    ];
    return new Date(Date.now() - Number(relative[1]) * seconds * 1000).toISOString();
  }
  const parsed = new Date(value);
  if (Number.isNaN(parsed.getTime())) {
    throw new BackendError({
      code: "invalid",
      detail: `'${value}' is neither ISO 8601 nor a relative age like 15m, 2h or 3d`,
    });
  }
  return parsed.toISOString();
}

function readOr(path: string, fallback: string): string {
  try {
    return readFileSync(path, "utf8").trim();
  } catch {
    return fallback;
  }
}

/** The kernel's start time of a process (clock ticks since boot), or null when there is no such process. */
function startTime(pid: number): string | null {
  const stat = readOr(`/proc/${pid}/stat`, "");
  // Field 22; the command name (field 2) may hold spaces, so count from the closing parenthesis.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return fields[19] ?? null;
}

const BOOT_ID = readOr("/proc/sys/kernel/random/boot_id", "noboot").replaceAll("-", "").slice(0, 12);

/** Who owns work in progress: this process, identified so that a reused pid is not mistaken for it. */
export const OWNER = `${BOOT_ID}-${process.pid}-${startTime(process.pid) ?? "0"}`;

export function isOwnerAlive(owner: string | null): boolean {
  const [boot, pid, start] = (owner ?? "").split("-");
  if (boot !== BOOT_ID || !pid || !start) return false;
  return startTime(Number(pid)) === start;
}

function toImageRow(raw: RawImage): ImageRow {
  return {
    uuid: raw.uuid,
    parent: raw.parent,
    layers: JSON.parse(raw.layers) as string[],
    tag: raw.tag,
    createdAt: raw.created_at,
    operationId: raw.operation_id,
    command: raw.command,
    digest: raw.digest,
  };
}

export function publicImage(row: ImageRow): Image {
  return { uuid: row.uuid, tag: row.tag, createdAt: row.createdAt };
}

export class Store {
  readonly root: string;
  readonly layersDir: string;
  readonly filesDir: string;
  readonly tmpDir: string;
  readonly db: Database;

  constructor(root: string) {
    this.root = root;
    this.layersDir = join(root, "layers");
    this.filesDir = join(root, "files");
    const tmpRoot = join(root, "tmp");
    this.tmpDir = join(tmpRoot, OWNER);
    for (const dir of [root, this.layersDir, this.filesDir]) mkdirSync(dir, { recursive: true, mode: 0o700 });
    mkdirSync(this.tmpDir, { recursive: true, mode: 0o700 });
    // Work directories of runs and imports that a crash interrupted: nothing refers to them.
    let othersAlive = false;
    for (const name of readdirSync(tmpRoot)) {
      if (name === OWNER) continue;
      if (isOwnerAlive(name)) othersAlive = true;
      else removeTree(join(tmpRoot, name));
    }
    const dbPath = join(root, "store.sqlite");
    this.db = new Database(dbPath, { create: true, strict: true });
    let version: number;
    try {
      this.db.exec("PRAGMA busy_timeout = 5000");
      this.db.exec("PRAGMA journal_mode = WAL");
      this.db.exec("PRAGMA synchronous = NORMAL");
      version = this.db.query<{ user_version: number }, []>("PRAGMA user_version").get()?.user_version ?? 0;
    } catch (error) {
      this.db.close();
      const code = (error as { code?: unknown }).code;
      // Not repaired here: the database is the only record of which layers and files make up which image.
      if (code === "SQLITE_NOTADB" || code === "SQLITE_CORRUPT") {
        throw new UserError(
          `The local store's database ${dbPath} is damaged (${(error as Error).message}). Move ${root} aside (the database with the layers/ and files/ next to it) or use another --local-root.`,
        );
      }
      throw error;
    }
    if (version === 0) {
      this.db.transaction(() => {
        this.db.exec(SCHEMA);
        this.db.exec(`PRAGMA user_version = ${SCHEMA_VERSION}`);
      })();
    } else if (version !== SCHEMA_VERSION) {
      this.db.close();
      throw new UserError(
        `The local store ${root} has schema version ${version}; this contree-mcp knows ${SCHEMA_VERSION}. Use a newer contree-mcp or another --local-root.`,
      );
    }
    // Another live server may be between renaming a layer into place and writing its row.
    if (!othersAlive) this.removeOrphanLayers();
  }

  /** Layer directories without a row were being written when the process died (the row comes after the rename). */
  private removeOrphanLayers(): void {
    const known = new Set(
      this.db
        .query<{ id: string }, []>("SELECT id FROM layers")
        .all()
        .map((row) => row.id),
    );
    for (const name of readdirSync(this.layersDir)) {
      if (!known.has(name)) removeTree(join(this.layersDir, name));
    }
  }

  layerPath(id: string): string {
    return join(this.layersDir, id);
  }

  filePath(sha256: string): string {
    return join(this.filesDir, sha256);
  }

  close(): void {
    this.db.close();
  }

  // --- layers

  layerByDigest(digest: string): string | null {
    return (
      this.db.query<{ id: string }, [string]>("SELECT id FROM layers WHERE digest = ?").get(digest)?.id ??
      null
    );
  }

  /** The digest an imported layer came with; null for a layer a run committed (or an unknown id). */
  layerDigest(id: string): string | null {
    return (
      this.db.query<{ digest: string | null }, [string]>("SELECT digest FROM layers WHERE id = ?").get(id)
        ?.digest ?? null
    );
  }

  addLayer(id: string, digest: string | null): void {
    this.db.query("INSERT INTO layers (id, digest, created_at) VALUES (?, ?, ?)").run(id, digest, nowIso());
  }

  // --- images

  getImageRow(uuid: string): ImageRow | null {
    const raw = this.db.query<RawImage, [string]>("SELECT * FROM images WHERE uuid = ?").get(uuid);
    return raw ? toImageRow(raw) : null;
  }

  requireImage(uuid: string): ImageRow {
    const row = this.getImageRow(uuid);
    if (!row) throw new BackendError({ code: "not_found", detail: `image ${uuid} not found` });
    return row;
  }

  imageByTag(tag: string): ImageRow | null {
    const raw = this.db.query<RawImage, [string]>("SELECT * FROM images WHERE tag = ?").get(tag);
    return raw ? toImageRow(raw) : null;
  }

  imageByDigest(digest: string): ImageRow | null {
    const raw = this.db
      .query<RawImage, [string]>("SELECT * FROM images WHERE digest = ? ORDER BY created_at LIMIT 1")
      .get(digest);
    return raw ? toImageRow(raw) : null;
  }

  addImage(row: Omit<ImageRow, "createdAt" | "tag">, tag: string | null = null): ImageRow {
    const createdAt = nowIso();
    this.db.transaction(() => {
      if (tag) this.db.query("UPDATE images SET tag = NULL WHERE tag = ?").run(tag);
      this.db
        .query(
          "INSERT INTO images (uuid, parent, layers, tag, created_at, operation_id, command, digest) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .run(
          row.uuid,
          row.parent,
          JSON.stringify(row.layers),
          tag,
          createdAt,
          row.operationId,
          row.command,
          row.digest,
        );
    })();
    return { ...row, tag, createdAt };
  }

  setTag(uuid: string, tag: string | null): ImageRow {
    this.requireImage(uuid);
    this.db.transaction(() => {
      if (tag) this.db.query("UPDATE images SET tag = NULL WHERE tag = ? AND uuid != ?").run(tag, uuid);
      this.db.query("UPDATE images SET tag = ? WHERE uuid = ?").run(tag, uuid);
    })();
    return this.requireImage(uuid);
  }

  listImages(query: ImageQuery): ImageRow[] {
    const where: string[] = [];
    const params: (string | number)[] = [];
    if (query.tagged === true) where.push("tag IS NOT NULL");
    if (query.tagged === false) where.push("tag IS NULL");
    if (query.tagPrefix) {
      where.push("substr(tag, 1, ?) = ?");
      params.push(query.tagPrefix.length, query.tagPrefix);
    }
    if (query.since) {
      where.push("created_at >= ?");
      params.push(parseTimeBound(query.since));
    }
    if (query.until) {
      where.push("created_at <= ?");
      params.push(parseTimeBound(query.until));
    }
    const sql = `SELECT * FROM images ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY created_at DESC, rowid DESC LIMIT ? OFFSET ?`;
    params.push(query.limit, query.offset);
    return this.db
      .query<RawImage, (string | number)[]>(sql)
      .all(...params)
      .map(toImageRow);
  }

  // --- files

  fileBySha(sha256: string): FileRow | null {
    return this.db
      .query<FileRow, [string]>("SELECT uuid, sha256, size FROM files WHERE sha256 = ?")
      .get(sha256);
  }

  fileByUuid(uuid: string): FileRow | null {
    return this.db.query<FileRow, [string]>("SELECT uuid, sha256, size FROM files WHERE uuid = ?").get(uuid);
  }

  addFile(sha256: string, size: number): FileRow {
    this.db
      .query("INSERT OR IGNORE INTO files (uuid, sha256, size, created_at) VALUES (?, ?, ?, ?)")
      .run(crypto.randomUUID(), sha256, size, nowIso());
    return this.fileBySha(sha256)!;
  }
}
