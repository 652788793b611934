// Registry credentials the user gave through registry_auth, one JSON file per user, readable only by them.
// The Python original kept these in its general cache, which pruned them after 60 days; this file never expires.
import { randomBytes } from "node:crypto";
import {
  closeSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { UserError } from "../errors.ts";
import { log, registerSecret } from "../log.ts";

export interface StoredCredential {
  registry: string;
  username: string;
  password: string;
  savedAt: string;
}

interface StoreFile {
  version: 1;
  registries: Record<string, Omit<StoredCredential, "registry">>;
}

const LOCK_WAIT_MS = 5_000;
/** A lock older than this was left by a process that died mid-write. */
const LOCK_STALE_MS = 30_000;

/** $XDG_CONFIG_HOME/contree-mcp/registries.json (~/.config when XDG_CONFIG_HOME is unset). */
export function defaultCredentialsPath(): string {
  const config = process.env.XDG_CONFIG_HOME || join(homedir(), ".config");
  return join(config, "contree-mcp", "registries.json");
}

function keyOf(registry: string): string {
  return registry.trim().toLowerCase();
}

class CorruptStoreError extends Error {}

function parseStore(text: string): StoreFile {
  const data: unknown = JSON.parse(text);
  if (typeof data !== "object" || data === null) throw new CorruptStoreError("not a JSON object");
  const registries = (data as { registries?: unknown }).registries;
  if (typeof registries !== "object" || registries === null || Array.isArray(registries)) {
    throw new CorruptStoreError("no 'registries' object");
  }
  for (const [registry, entry] of Object.entries(registries)) {
    const { username, password } = (entry ?? {}) as Record<string, unknown>;
    if (typeof username !== "string" || typeof password !== "string") {
      throw new CorruptStoreError(`entry '${registry}' lacks a username or password`);
    }
  }
  return { version: 1, registries: registries as StoreFile["registries"] };
}

export class CredentialStore {
  readonly path: string;
  #warned = false;

  constructor(path: string) {
    this.path = path;
  }

  get(registry: string): StoredCredential | null {
    const store = this.#readOrNull();
    const entry = store?.registries[keyOf(registry)];
    if (!entry) return null;
    registerSecret(entry.password);
    return { registry: keyOf(registry), ...entry };
  }

  /** Saves or replaces one registry's credentials, keeping every other entry. */
  async set(registry: string, username: string, password: string): Promise<void> {
    registerSecret(password);
    await this.#update((store) => {
      store.registries[keyOf(registry)] = { username, password, savedAt: new Date().toISOString() };
      return true;
    });
  }

  /** True when there was an entry to delete. */
  async delete(registry: string): Promise<boolean> {
    let deleted = false;
    await this.#update((store) => {
      const key = keyOf(registry);
      deleted = Object.hasOwn(store.registries, key);
      delete store.registries[key];
      return deleted;
    });
    return deleted;
  }

  list(): Omit<StoredCredential, "password">[] {
    const store = this.#readOrNull();
    if (!store) return [];
    return Object.entries(store.registries)
      .map(([registry, { username, password, savedAt }]) => {
        registerSecret(password);
        return { registry, username, savedAt };
      })
      .toSorted((a, b) => a.registry.localeCompare(b.registry));
  }

  /** The parsed file; an empty store when there is no file; throws CorruptStoreError when it does not parse. */
  #read(): StoreFile {
    let text: string;
    try {
      text = readFileSync(this.path, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return { version: 1, registries: {} };
      throw error;
    }
    try {
      return parseStore(text);
    } catch (error) {
      throw new CorruptStoreError(error instanceof Error ? error.message : String(error));
    }
  }

  #readOrNull(): StoreFile | null {
    try {
      return this.#read();
    } catch (error) {
      if (!(error instanceof CorruptStoreError)) throw error;
      if (!this.#warned) {
        this.#warned = true;
        log.warn(`registry credentials file ${this.path} is unreadable (${error.message}); ignoring it`);
      }
      return null;
    }
  }

  async #update(change: (store: StoreFile) => boolean): Promise<void> {
    const dir = dirname(this.path);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const release = await this.#lock();
    try {
      let store: StoreFile;
      try {
        store = this.#read();
      } catch (error) {
        if (!(error instanceof CorruptStoreError)) throw error;
        throw new UserError(
          `The registry credentials file ${this.path} is not valid (${error.message}), so it was left untouched. Move it aside (mv '${this.path}' '${this.path}.bak') and call registry_auth again.`,
        );
      }
      if (!change(store)) return;
      const temp = join(dir, `.registries.${process.pid}.${randomBytes(6).toString("hex")}.tmp`);
      try {
        writeFileSync(temp, `${JSON.stringify(store, null, 2)}\n`, { mode: 0o600, flag: "wx" });
        renameSync(temp, this.path);
      } catch (error) {
        rmSync(temp, { force: true });
        throw error;
      }
    } finally {
      release();
    }
  }

  /**
   * Serialises read-modify-write across processes (several MCP servers may share one user's store) and across calls
   * in this one. Waits asynchronously: a sleeping event loop would stall every session of this server.
   */
  async #lock(): Promise<() => void> {
    const lockPath = `${this.path}.lock`;
    const started = Date.now();
    for (;;) {
      try {
        closeSync(openSync(lockPath, "wx", 0o600));
        return () => rmSync(lockPath, { force: true });
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      }
      const age = lockAgeMs(lockPath);
      if (age !== null && age > LOCK_STALE_MS) {
        rmSync(lockPath, { force: true });
        continue;
      }
      if (Date.now() - started > LOCK_WAIT_MS) {
        throw new UserError(
          `The registry credentials file ${this.path} is locked by another process (${lockPath}). Try again; if it stays locked and no other contree-mcp is running, delete ${lockPath}.`,
        );
      }
      await Bun.sleep(10);
    }
  }
}

function lockAgeMs(path: string): number | null {
  try {
    return Date.now() - statSync(path).mtimeMs;
  } catch {
    return null;
  }
}
