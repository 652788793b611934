// `contree-mcp doctor`: what this configuration will do and whether it can work here, one line per item with
// the fix for each problem. It reads and probes; the only things it creates are the local root (as the server
// would) and short-lived probe directories and cgroups, which it removes.
import { Database } from "bun:sqlite";
import {
  accessSync,
  constants,
  existsSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  statSync,
  statfsSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, isAbsolute, join } from "node:path";
import { ContreeHttp } from "../backend/cloud/http.ts";
import { LocalBackend } from "../backend/local/backend.ts";
import { RunCgroup } from "../backend/local/cgroups.ts";
import { MOUNT_NAMESPACE, removeTree, ROOTLESS } from "../backend/local/fsx.ts";
import { overlayOptions } from "../backend/local/sandbox.ts";
import { Store } from "../backend/local/store.ts";
import { GeneralCache } from "../cache/general.ts";
import { chosenBackend, envName, resolveConfig, type Config, type OptionName } from "../config.ts";
import { BackendError } from "../errors.ts";
import { redact, registerSecret } from "../log.ts";
import { defaultCredentialsPath } from "../registry/credentials.ts";
import { FileCache } from "../sync/cache.ts";
import { VERSION } from "../version.ts";
import { CLIENTS } from "./clients.ts";
import { readEntry } from "./setup.ts";

export type Status = "ok" | "warn" | "fail" | "skip";

export interface Check {
  section: "config" | "cloud" | "local" | "files" | "clients";
  name: string;
  status: Status;
  detail: string;
  fix?: string;
}

export interface DoctorReport {
  version: string;
  backend: { configured: string; chosen: string; reason: string } | null;
  checks: Check[];
  /** False when the configured backend cannot work: the exit code is then 1. */
  ok: boolean;
}

const GIB = 1024 ** 3;
const DISK_FAIL_BYTES = 1 * GIB;
const DISK_WARN_BYTES = 5 * GIB;
const PROBE_TIMEOUT_MS = 15_000;
const TOKEN_EXPIRY_WARN_S = 7 * 24 * 3600;
// What the tools need from a token; whoami lists these among its permissions.
const NEEDED_PERMISSIONS = ["list", "spawn", "import", "set_image_tag"];

function where(config: Config, name: OptionName): string {
  const source = config.sources[name];
  if (source === "env") return `env ${envName(name)}`;
  if (source === "file") return `in ${config.configPath}`;
  if (source === "flag") return `--${name.replaceAll("_", "-")}`;
  return source;
}

function gib(bytes: number): string {
  return `${(bytes / GIB).toFixed(1)} GiB`;
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The closest existing directory at or above `path`. */
function existingAncestor(path: string): string {
  let current = path;
  while (!existsSync(current) && dirname(current) !== current) current = dirname(current);
  return current;
}

/** user_version of an SQLite file, opened read-only so that doctor never migrates or heals anything. */
function fileVersion(path: string): number {
  const db = new Database(path, { readonly: true });
  try {
    return db.query<{ user_version: number }, []>("PRAGMA user_version").get()?.user_version ?? 0;
  } finally {
    db.close();
  }
}

function configChecks(config: Config, checks: Check[]): void {
  const file = config.configPath;
  if (!existsSync(file)) {
    checks.push({
      section: "config",
      name: "config file",
      status: "ok",
      detail: `${file} (not present; flags, environment and defaults only)`,
    });
  } else {
    const mode = statSync(file).mode & 0o777;
    const secrets = config.sources.token === "file" || config.sources.http_token === "file";
    if (secrets && mode & 0o077) {
      checks.push({
        section: "config",
        name: "config file",
        status: "warn",
        detail: `${file} holds a token and is readable by others (mode ${mode.toString(8).padStart(4, "0")})`,
        fix: `chmod 600 '${file}'`,
      });
    } else {
      checks.push({ section: "config", name: "config file", status: "ok", detail: `${file} (read)` });
    }
  }
}

/** How a setting was given, in the words the user would have typed. */
function given(config: Config, name: OptionName, value: string): string {
  const source = config.sources[name];
  if (source === "flag") return `--${name.replaceAll("_", "-")} ${value}`;
  if (source === "env") return `${envName(name)}=${value}`;
  if (source === "file") return `${name} = ${value} in ${config.configPath}`;
  return `${name} ${value} (the default)`;
}

function backendReason(config: Config): string {
  const origin = given(config, "backend", config.backend);
  if (config.backend !== "auto") return origin;
  return config.token
    ? `${origin}, and a token is set (${where(config, "token")})`
    : `${origin}, and no ConTree token is set`;
}

interface Whoami {
  token_expiration?: number | null;
  permissions?: Record<string, boolean>;
}

async function cloudChecks(config: Config, checks: Check[], timeoutMs: number): Promise<void> {
  if (!config.token) {
    checks.push({
      section: "cloud",
      name: "token",
      status: "fail",
      detail: "no ConTree token is set, and the cloud backend needs one",
      fix: `set ${envName("token")}, or token = ... in ${config.configPath} (chmod 600); or use --backend local`,
    });
    return;
  }
  const http = new ContreeHttp({
    url: config.url,
    token: config.token,
    project: config.project,
    userAgent: `contree-mcp/${VERSION} doctor`,
    retry: { attempts: 2, baseDelayMs: 200, maxDelayMs: 1000 },
    timeoutMs,
  });
  const service = `${config.url}${config.project ? ` (project ${config.project})` : ""}`;
  const started = performance.now();
  try {
    let whoami: Whoami | undefined;
    try {
      whoami = await http.json<Whoami>("GET", "whoami");
    } catch (error) {
      // A service without /whoami still answers a list of one image with the same auth.
      if (!(error instanceof BackendError && error.status === 404)) throw error;
      await http.json("GET", "images", { query: { limit: 1 } });
    }
    const ms = Math.round(performance.now() - started);
    checks.push({
      section: "cloud",
      name: "service",
      status: "ok",
      detail: `${service} answered in ${ms} ms`,
    });
    tokenAccepted(config, whoami, checks);
  } catch (error) {
    if (error instanceof BackendError && error.status !== undefined) {
      checks.push({ section: "cloud", name: "service", status: "ok", detail: `${service} answered` });
      const rejected = error.status === 401 || error.status === 403;
      checks.push({
        section: "cloud",
        name: "token",
        status: "fail",
        detail: rejected
          ? `the service rejected the token (${where(config, "token")}): ${error.status} ${error.detail}`
          : `the service answered ${error.status}: ${error.detail}`,
        fix:
          error.status === 401
            ? "the token is wrong or expired: get a new one and set it where this one comes from"
            : error.status === 403
              ? "the token may not use this project: check --project, or ask for a token with access to it"
              : "try again later; if it persists, check --url",
      });
    } else {
      checks.push({
        section: "cloud",
        name: "service",
        status: "fail",
        detail: error instanceof BackendError ? error.detail : `cannot reach ${service}: ${errorText(error)}`,
        fix: `check the URL (${config.url}, ${where(config, "url")}), the network, and any proxy (HTTPS_PROXY)`,
      });
      checks.push({ section: "cloud", name: "token", status: "skip", detail: "not checked: no answer" });
    }
  } finally {
    http.close();
  }
}

function tokenAccepted(config: Config, whoami: Whoami | undefined, checks: Check[]): void {
  const origin = where(config, "token");
  const expires = whoami?.token_expiration;
  const left = typeof expires === "number" ? expires - Date.now() / 1000 : undefined;
  const missing = whoami?.permissions
    ? NEEDED_PERMISSIONS.filter((name) => whoami.permissions?.[name] === false)
    : [];
  if (left !== undefined && left <= 0) {
    checks.push({
      section: "cloud",
      name: "token",
      status: "fail",
      detail: `expired on ${new Date(expires! * 1000).toISOString()} (${origin})`,
      fix: "get a new token and set it where this one comes from",
    });
    return;
  }
  const expiry =
    left === undefined ? "" : `; expires ${new Date(expires! * 1000).toISOString().slice(0, 10)}`;
  if (missing.length > 0) {
    checks.push({
      section: "cloud",
      name: "token",
      status: "warn",
      detail: `accepted (${origin}), but lacks the permissions ${missing.join(", ")}${expiry}`,
      fix: "tools that need them will fail; ask for a token with these permissions",
    });
  } else if (left !== undefined && left < TOKEN_EXPIRY_WARN_S) {
    checks.push({
      section: "cloud",
      name: "token",
      status: "warn",
      detail: `accepted (${origin})${expiry}`,
      fix: "get a new token soon",
    });
  } else {
    checks.push({ section: "cloud", name: "token", status: "ok", detail: `accepted (${origin})${expiry}` });
  }
}

async function run(argv: string[], cwd?: string): Promise<{ code: number; out: string }> {
  try {
    // A probe that hangs (a stuck mount, a confined unshare) must not hang doctor.
    const proc = Bun.spawn(argv, {
      cwd,
      stdout: "pipe",
      stderr: "pipe",
      stdin: "ignore",
      timeout: PROBE_TIMEOUT_MS,
    });
    const [out, err, code] = await Promise.all([
      new Response(proc.stdout).text(),
      new Response(proc.stderr).text(),
      proc.exited,
    ]);
    return { code, out: `${out}${err}`.trim() };
  } catch (error) {
    return { code: -1, out: errorText(error) };
  }
}

async function localChecks(config: Config, checks: Check[]): Promise<void> {
  const problem = await LocalBackend.check();
  if (problem) {
    checks.push({ section: "local", name: "requirements", status: "fail", detail: problem });
    return;
  }
  const version = (await run(["bwrap", "--version"])).out;
  checks.push({
    section: "local",
    name: "requirements",
    status: "ok",
    detail: `Linux, ${version || "bubblewrap"}, util-linux, overlayfs, ${ROOTLESS ? "user namespaces (rootless: every file in an image has one owner)" : "root"}`,
  });
  try {
    mkdirSync(config.localRoot, { recursive: true, mode: 0o700 });
    checks.push(...sandboxChecks(config.localRoot, await sandboxProbe(config.localRoot)));
  } catch (error) {
    checks.push({
      section: "local",
      name: "overlayfs",
      status: "fail",
      detail: `cannot use ${config.localRoot}: ${errorText(error)}`,
      fix: "point --local-root at a directory this user can create and write",
    });
  }
  checks.push(await cgroupCheck());
  checks.push(diskCheck(config.localRoot));
  checks.push(storeCheck(config.localRoot));
}

// What a run does, minus the image: a private mount namespace (a user namespace too when rootless), overlayfs with
// the real mount options and its upper directory under the local root, then bubblewrap with a run's namespaces.
const PROBE = `mount -t overlay overlay -o "$1" mnt || exit 3
shift
exec bwrap "$@" || exit 4`;

async function sandboxProbe(root: string): Promise<{ code: number; out: string }> {
  const base = join(root, "tmp");
  mkdirSync(base, { recursive: true, mode: 0o700 });
  const dir = mkdtempSync(join(base, "doctor-"));
  try {
    for (const sub of ["lower1", "lower2", "upper", "work", "mnt"]) mkdirSync(join(dir, sub));
    const options = overlayOptions(dir, ["lower1", "lower2"], join(dir, "upper"), join(dir, "work"));
    const bwrap = ["--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev"];
    bwrap.push("--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-net", "--die-with-parent");
    if (ROOTLESS) bwrap.push("--unshare-user");
    return await run(
      [...MOUNT_NAMESPACE, "--", "/bin/sh", "-c", PROBE, "probe", options, ...bwrap, "--", "true"],
      dir,
    );
  } finally {
    removeTree(dir);
  }
}

function sandboxChecks(root: string, result: { code: number; out: string }): Check[] {
  const said = result.out.replace(/\s+/g, " ").trim() || `exit ${result.code}`;
  const overlayOk: Check = {
    section: "local",
    name: "overlayfs",
    status: "ok",
    detail: `mounts with its upper directory in ${root}`,
  };
  if (result.code === 0) {
    return [
      overlayOk,
      {
        section: "local",
        name: "bubblewrap",
        status: "ok",
        detail: "a sandbox with new PID, IPC, UTS and network namespaces starts",
      },
    ];
  }
  if (result.code === 3) {
    return [
      {
        section: "local",
        name: "overlayfs",
        status: "fail",
        detail: `cannot mount overlayfs with its upper directory in ${root}: ${said}`,
        fix: `put --local-root on a filesystem that can hold an overlayfs upper directory${ROOTLESS ? " with user xattrs" : ""} (ext4, xfs, btrfs; not overlayfs itself, such as a container's root: mount a volume there)`,
      },
    ];
  }
  if (result.code === 4) {
    return [
      overlayOk,
      {
        section: "local",
        name: "bubblewrap",
        status: "fail",
        detail: `bwrap cannot start a sandbox: ${said}`,
        fix: "in a container, run it privileged (or with CAP_SYS_ADMIN and without a seccomp or AppArmor profile that blocks namespaces)",
      },
    ];
  }
  return [
    {
      section: "local",
      name: "namespaces",
      status: "fail",
      detail: `cannot make a private mount namespace (${MOUNT_NAMESPACE.join(" ")}): ${said}`,
      fix: "in a container, run it privileged or with CAP_SYS_ADMIN",
    },
  ];
}

async function cgroupCheck(): Promise<Check> {
  const group = RunCgroup.create(`doctor-${process.pid}`, { memoryBytes: 64 * 1024 ** 2, pids: 64 });
  if (!group) {
    return {
      section: "local",
      name: "cgroups",
      status: "warn",
      detail: "no usable cgroups: runs get no memory or process-count limit",
      fix: "run as root on a machine with cgroup v1 memory and pids hierarchies, or cgroup v2 with the memory and pids controllers",
    };
  }
  await group.remove();
  const kind = group.dirs.length > 1 ? "v1 memory + pids" : "v2";
  return {
    section: "local",
    name: "cgroups",
    status: "ok",
    detail: `${kind}: runs get memory and process limits`,
  };
}

function diskCheck(root: string): Check {
  const stats = statfsSync(existingAncestor(root));
  const free = stats.bavail * stats.bsize;
  const detail = `${gib(free)} free under ${root}`;
  if (free < DISK_FAIL_BYTES) {
    return {
      section: "local",
      name: "disk",
      status: "fail",
      detail,
      fix: "free space there, or point --local-root elsewhere",
    };
  }
  if (free < DISK_WARN_BYTES) {
    return {
      section: "local",
      name: "disk",
      status: "warn",
      detail: `${detail}: image imports need room for their layers`,
      fix: "free space there, or point --local-root elsewhere",
    };
  }
  return { section: "local", name: "disk", status: "ok", detail };
}

function storeCheck(root: string): Check {
  const path = join(root, "store.sqlite");
  if (!existsSync(path))
    return { section: "local", name: "image store", status: "ok", detail: `${path} (not created yet)` };
  try {
    const found = fileVersion(path);
    const known = storeVersion();
    if (found === known) {
      return { section: "local", name: "image store", status: "ok", detail: `${path} (schema v${found})` };
    }
    return {
      section: "local",
      name: "image store",
      status: "fail",
      detail: `${path} has schema v${found}; this contree-mcp knows v${known}`,
      fix: "use the contree-mcp that made it, or another --local-root",
    };
  } catch (error) {
    return {
      section: "local",
      name: "image store",
      status: "fail",
      detail: `${path} cannot be read: ${errorText(error)}`,
      fix: "move it aside (with the layers/ and files/ next to it) or use another --local-root",
    };
  }
}

/** The schema version this build writes, read from a throwaway store: the constant is private to store.ts. */
function storeVersion(): number {
  const dir = mkdtempSync(join(tmpdir(), "contree-mcp-doctor-"));
  try {
    const store = new Store(dir);
    const version =
      store.db.query<{ user_version: number }, []>("PRAGMA user_version").get()?.user_version ?? 0;
    store.close();
    return version;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function writable(path: string): boolean {
  try {
    accessSync(existingAncestor(path), constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

function cacheCheck(name: string, path: string, known: number): Check {
  if (!writable(dirname(path))) {
    return {
      section: "files",
      name,
      status: "fail",
      detail: `${path}: its directory cannot be created or written`,
      fix: `fix the permissions of ${existingAncestor(dirname(path))}, or set --${name === "general cache" ? "cache-general" : "cache-files"} elsewhere`,
    };
  }
  if (!existsSync(path)) return { section: "files", name, status: "ok", detail: `${path} (not created yet)` };
  let found: number;
  try {
    found = fileVersion(path);
  } catch (error) {
    return {
      section: "files",
      name,
      status: "warn",
      detail: `${path} cannot be read (${errorText(error)}): the server will move it aside and start a new one`,
    };
  }
  if (found > 0 && found < known) {
    return {
      section: "files",
      name,
      status: "ok",
      detail: `${path} (schema v${found}; the server migrates it to v${known} at its next start, or starts a new one where it cannot)`,
    };
  }
  if (found !== known) {
    return {
      section: "files",
      name,
      status: "warn",
      detail: `${path} has schema v${found}, this contree-mcp uses v${known}: the server will move it aside and start a new one`,
    };
  }
  return { section: "files", name, status: "ok", detail: `${path} (schema v${found})` };
}

function cacheVersion(open: (path: string) => { db: Database; close(): void }): number {
  const cache = open(":memory:");
  try {
    return cache.db.query<{ user_version: number }, []>("PRAGMA user_version").get()?.user_version ?? 0;
  } finally {
    cache.close();
  }
}

function fileChecks(config: Config, checks: Check[]): void {
  checks.push(
    cacheCheck(
      "general cache",
      config.cacheGeneral,
      cacheVersion((p) => new GeneralCache(p)),
    ),
  );
  checks.push(
    cacheCheck(
      "file cache",
      config.cacheFiles,
      cacheVersion((p) => new FileCache(p)),
    ),
  );
  const credentials = defaultCredentialsPath();
  if (!existsSync(credentials)) {
    checks.push({
      section: "files",
      name: "registry credentials",
      status: "ok",
      detail: `${credentials} (none stored)`,
    });
    return;
  }
  const mode = statSync(credentials).mode & 0o777;
  checks.push(
    mode & 0o077
      ? {
          section: "files",
          name: "registry credentials",
          status: "warn",
          detail: `${credentials} is readable by others (mode ${mode.toString(8).padStart(4, "0")})`,
          fix: `chmod 600 '${credentials}'`,
        }
      : {
          section: "files",
          name: "registry credentials",
          status: "ok",
          detail: `${credentials} (mode 0600)`,
        },
  );
}

/** Which MCP clients start this server, and whether what they start still exists. */
function clientChecks(checks: Check[]): void {
  let found = 0;
  for (const client of Object.values(CLIENTS)) {
    const { path, exists, entry, error } = readEntry(client);
    if (!exists) continue;
    if (error) {
      checks.push({
        section: "clients",
        name: client.id,
        status: "warn",
        detail: `${path} does not parse: ${error}`,
        fix: `fix the file; ${client.title} cannot read it either`,
      });
      continue;
    }
    if (!entry) continue;
    found++;
    const command = typeof entry.command === "string" ? entry.command : "";
    // A token passed as an argument is hidden even when it is not the one configured here.
    const args = (Array.isArray(entry.args) ? entry.args.map(String) : []).map((arg, i, all) =>
      /^--(http-)?token$/.test(all[i - 1] ?? "") ? "***" : arg.replace(/^(--(?:http-)?token=).*/, "$1***"),
    );
    const env = entry.env && typeof entry.env === "object" ? Object.keys(entry.env) : [];
    const detail = `'contree' runs ${[command, ...args].join(" ")}${env.length ? ` (env ${env.join(", ")})` : ""} [${path}]`;
    const missing = isAbsolute(command) && !existsSync(command);
    checks.push(
      missing
        ? {
            section: "clients",
            name: client.id,
            status: "warn",
            detail: `${detail}: ${command} does not exist`,
            fix: `run contree-mcp setup ${client.id} again from the binary you use now`,
          }
        : { section: "clients", name: client.id, status: "ok", detail },
    );
  }
  if (found === 0) {
    checks.push({
      section: "clients",
      name: "clients",
      status: "skip",
      detail: `no MCP client config here has a 'contree' server; contree-mcp setup <${Object.keys(CLIENTS).join("|")}> adds one`,
    });
  }
}

export interface DoctorOptions {
  /** Per request to the ConTree service. */
  timeoutMs?: number;
  env?: Record<string, string | undefined>;
}

/** Runs every check for the configuration that `flags` (and the environment and INI file) describe. */
export async function runDoctor(
  flags: Partial<Record<OptionName, string>>,
  options: DoctorOptions = {},
): Promise<DoctorReport> {
  const checks: Check[] = [];
  let config: Config;
  try {
    config = resolveConfig(flags, options.env);
  } catch (error) {
    checks.push({
      section: "config",
      name: "settings",
      status: "fail",
      detail: errorText(error),
      fix: "fix that setting where it comes from (flag, CONTREE_MCP_* variable, or the INI file)",
    });
    return { version: VERSION, backend: null, checks, ok: false };
  }
  registerSecret(config.token);
  registerSecret(config.httpToken);
  configChecks(config, checks);
  const chosen = chosenBackend(config);
  const reason = backendReason(config);
  checks.push({ section: "config", name: "backend", status: "ok", detail: `${chosen}: ${reason}` });

  if (chosen === "cloud") {
    await cloudChecks(config, checks, options.timeoutMs ?? 10_000);
    const problem = await LocalBackend.check();
    checks.push({
      section: "local",
      name: "local backend",
      status: "skip",
      detail: `not in use; ${problem ? problem.replace(/ Set a ConTree token.*$/, "") : "it would work here (--backend local)"}`,
    });
  } else {
    checks.push({
      section: "cloud",
      name: "cloud backend",
      status: "skip",
      detail: config.token ? "not in use (--backend local); a token is set" : "not in use: no token",
    });
    await localChecks(config, checks);
  }
  fileChecks(config, checks);
  clientChecks(checks);

  for (const check of checks) {
    check.detail = redact(check.detail);
    if (check.fix) check.fix = redact(check.fix);
  }
  return {
    version: VERSION,
    backend: { configured: config.backend, chosen, reason: redact(reason) },
    checks,
    ok: !checks.some((check) => check.status === "fail"),
  };
}

const TITLES: Record<Check["section"], string> = {
  config: "Configuration",
  cloud: "ConTree cloud",
  local: "Local backend",
  files: "Caches and credentials",
  clients: "MCP clients",
};

/** The report as aligned text, grouped by section, with the fix under each problem. */
export function formatReport(report: DoctorReport): string {
  const lines = [`contree-mcp ${report.version} doctor`];
  const width = Math.max(...report.checks.map((check) => check.name.length));
  for (const section of Object.keys(TITLES) as Check["section"][]) {
    const items = report.checks.filter((check) => check.section === section);
    if (items.length === 0) continue;
    lines.push("", TITLES[section]);
    for (const check of items) {
      lines.push(`  ${check.status.padEnd(5)} ${check.name.padEnd(width)}  ${check.detail}`);
      if (check.fix) lines.push(`  ${"".padEnd(5)} ${"".padEnd(width)}  fix: ${check.fix}`);
    }
  }
  const fails = report.checks.filter((check) => check.status === "fail").length;
  const warns = report.checks.filter((check) => check.status === "warn").length;
  lines.push(
    "",
    report.ok
      ? `Ready${warns ? ` (${warns} warning${warns > 1 ? "s" : ""})` : ""}.`
      : `${fails} problem${fails > 1 ? "s" : ""} to fix: the configured backend cannot work as is.`,
  );
  return `${lines.join("\n")}\n`;
}
