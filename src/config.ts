// Settings come from four places, first wins: CLI flag, CONTREE_MCP_<NAME> env var, the INI file, default.
import type { LocalBackendOptions } from "./backend/local/backend.ts";
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { UserError } from "./errors.ts";

type Kind = "string" | "int" | "enum";

interface OptionSpec {
  kind: Kind;
  description: string;
  default?: string;
  values?: readonly string[];
  /** Never printed: not in --help defaults, logs or errors. */
  secret?: boolean;
  /** INI section and key in the Python server's layout ([http] port), read as a fallback. */
  legacyIni?: [section: string, key: string];
}

function xdg(name: "XDG_CONFIG_HOME" | "XDG_CACHE_HOME" | "XDG_DATA_HOME", fallback: string): string {
  return process.env[name] || join(homedir(), fallback);
}

export const OPTIONS = {
  token: {
    kind: "string",
    description: "ConTree API token (prefer the env var or the INI file: flags show in process listings)",
    secret: true,
  },
  url: { kind: "string", description: "ConTree service URL", default: "https://contree.dev" },
  project: { kind: "string", description: "ConTree project id, sent as the Project header" },
  backend: {
    kind: "enum",
    description:
      "Where sandboxes run: cloud (ConTree), local (bubblewrap on this machine), auto (cloud when a token is set)",
    default: "auto",
    values: ["auto", "cloud", "local"],
  },
  mode: { kind: "enum", description: "MCP transport", default: "stdio", values: ["stdio", "http"] },
  http_listen: {
    kind: "string",
    description: "HTTP mode: address to bind",
    default: "127.0.0.1",
    legacyIni: ["http", "listen"],
  },
  http_port: { kind: "int", description: "HTTP mode: port", default: "9452", legacyIni: ["http", "port"] },
  http_token: {
    kind: "string",
    description: "HTTP mode: bearer token clients must send on /mcp",
    secret: true,
  },
  log_level: {
    kind: "enum",
    description: "Log level (stderr)",
    default: "warning",
    values: ["critical", "error", "warning", "warn", "info", "debug", "trace", "silent"],
  },
  cache_general: {
    kind: "string",
    description: "Path of the general cache database",
    legacyIni: ["cache", "general"],
  },
  cache_files: {
    kind: "string",
    description: "Path of the file-sync cache database",
    legacyIni: ["cache", "files"],
  },
  cache_prune_days: {
    kind: "int",
    description: "Drop cache entries unused for this many days (0 keeps them forever)",
    default: "60",
    legacyIni: ["cache", "prune_days"],
  },
  tool_prefix: { kind: "string", description: "Prefix of every tool name", default: "contree_" },
  local_root: { kind: "string", description: "Local backend: where images and layers are stored" },
  local_network: {
    kind: "enum",
    description: "Local backend: sandbox network (none = loopback only)",
    default: "none",
    values: ["none", "host"],
  },
  local_memory: {
    kind: "string",
    description: "Local backend: memory limit per run, e.g. 512m or 2g (0 = none; needs cgroups)",
    default: "2g",
  },
  local_pids: {
    kind: "int",
    description: "Local backend: process limit per run (0 = none)",
    default: "1024",
  },
  local_concurrency: {
    kind: "int",
    description: "Local backend: runs at once; more wait as PENDING (0 = two per CPU)",
    default: "0",
  },
  config: { kind: "string", description: "INI config file ([DEFAULT] section, same key names)" },
} as const satisfies Record<string, OptionSpec>;

export type OptionName = keyof typeof OPTIONS;

export interface Config {
  token: string | undefined;
  url: string;
  project: string | undefined;
  backend: "auto" | "cloud" | "local";
  mode: "stdio" | "http";
  httpListen: string;
  httpPort: number;
  httpToken: string | undefined;
  logLevel: string;
  cacheGeneral: string;
  cacheFiles: string;
  cachePruneDays: number;
  toolPrefix: string;
  localRoot: string;
  localNetwork: "none" | "host";
  /** Bytes; 0 means no limit. */
  localMemoryBytes: number;
  localPids: number;
  localConcurrency: number;
  configPath: string;
  /** For `doctor`: where each setting came from. */
  sources: Record<OptionName, "flag" | "env" | "file" | "default" | "unset">;
}

export function envName(name: OptionName): string {
  return `CONTREE_MCP_${name.toUpperCase()}`;
}

export function defaultConfigPath(): string {
  return join(xdg("XDG_CONFIG_HOME", ".config"), "contree", "mcp.ini");
}

/** A small INI reader: sections, key = value, ; and # comments, optional quotes. Keys are lower-cased. */
export function parseIni(text: string): Record<string, Record<string, string>> {
  const sections: Record<string, Record<string, string>> = { DEFAULT: {} };
  let current = sections.DEFAULT!;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith(";") || line.startsWith("#")) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      const name = header[1]!.trim();
      current = sections[name] ??= {};
      continue;
    }
    const eq = line.search(/[=:]/);
    if (eq <= 0) continue;
    const key = line.slice(0, eq).trim().toLowerCase().replaceAll("-", "_");
    let value = line.slice(eq + 1).trim();
    if (value.length >= 2 && (value[0] === '"' || value[0] === "'") && value.at(-1) === value[0]) {
      value = value.slice(1, -1);
    }
    current[key] = value;
  }
  return sections;
}

function expandHome(path: string): string {
  if (path === "~") return homedir();
  if (path.startsWith("~/")) return join(homedir(), path.slice(2));
  return path;
}

/**
 * Resolves the configuration. `flags` holds what the command line gave (snake_case keys, undefined when
 * absent). A missing or unreadable INI file is ignored unless it was named explicitly.
 */
export function resolveConfig(
  flags: Partial<Record<OptionName, string | undefined>>,
  env: Record<string, string | undefined> = process.env,
): Config {
  const explicitPath = flags.config ?? env[envName("config")];
  const configPath = expandHome(explicitPath || defaultConfigPath());
  let ini: Record<string, Record<string, string>> = { DEFAULT: {} };
  if (existsSync(configPath)) {
    try {
      ini = parseIni(readFileSync(configPath, "utf8"));
    } catch (error) {
      if (explicitPath) throw new UserError(`Cannot read config file ${configPath}: ${String(error)}`);
    }
  } else if (flags.config) {
    throw new UserError(`Config file ${configPath} does not exist (given by --config).`);
  }

  const sources = {} as Config["sources"];
  const raw = {} as Record<OptionName, string | undefined>;
  for (const name of Object.keys(OPTIONS) as OptionName[]) {
    const spec: OptionSpec = OPTIONS[name];
    const fromIni =
      ini.DEFAULT?.[name] ?? (spec.legacyIni ? ini[spec.legacyIni[0]]?.[spec.legacyIni[1]] : undefined);
    const candidates: [Config["sources"][OptionName], string | undefined][] = [
      ["flag", flags[name]],
      ["env", env[envName(name)]],
      ["file", fromIni],
      ["default", spec.default],
    ];
    // An empty value counts as unset, except for the prefix, where "" means "no prefix".
    const hit = candidates.find(
      ([, value]) => value !== undefined && (value !== "" || name === "tool_prefix"),
    );
    raw[name] = hit?.[1];
    sources[name] = hit?.[0] ?? "unset";
    if (hit && spec.kind === "enum" && !spec.values?.includes(hit[1]!.toLowerCase())) {
      throw new UserError(
        `Invalid ${name.replaceAll("_", "-")} '${hit[1]}' (from ${hit[0]}): use one of ${spec.values?.join(", ")}.`,
      );
    }
  }

  const int = (name: OptionName): number => {
    const value = Number(raw[name]);
    if (!Number.isInteger(value) || value < 0) {
      throw new UserError(
        `Invalid ${name.replaceAll("_", "-")} '${raw[name]}' (from ${sources[name]}): use a whole number.`,
      );
    }
    return value;
  };
  const cacheDir = join(xdg("XDG_CACHE_HOME", ".cache"), "contree-mcp");
  const url = raw.url!.replace(/\/+$/, "");
  if (!/^https?:\/\//.test(url)) {
    throw new UserError(`Invalid url '${url}' (from ${sources.url}): use an http:// or https:// URL.`);
  }
  return {
    token: raw.token,
    url,
    project: raw.project,
    backend: raw.backend!.toLowerCase() as Config["backend"],
    mode: raw.mode!.toLowerCase() as Config["mode"],
    httpListen: raw.http_listen!,
    httpPort: int("http_port"),
    httpToken: raw.http_token,
    logLevel: raw.log_level!.toLowerCase(),
    cacheGeneral: resolve(expandHome(raw.cache_general ?? join(cacheDir, "cache.db"))),
    cacheFiles: resolve(expandHome(raw.cache_files ?? join(cacheDir, "files.db"))),
    cachePruneDays: int("cache_prune_days"),
    toolPrefix: raw.tool_prefix ?? "",
    localRoot: resolve(
      expandHome(raw.local_root ?? join(xdg("XDG_DATA_HOME", ".local/share"), "contree-mcp")),
    ),
    localNetwork: raw.local_network!.toLowerCase() as Config["localNetwork"],
    localMemoryBytes: byteSize(raw.local_memory!, sources.local_memory),
    localPids: int("local_pids"),
    localConcurrency: int("local_concurrency"),
    configPath,
    sources,
  };
}

const SIZE_UNITS: Record<string, number> = { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/** "512m", "2g", "1.5G", "1048576" -> bytes (binary units, as docker and cgroups read them). */
function byteSize(text: string, source: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?$/i.exec(text.trim());
  if (!match) {
    throw new UserError(
      `Invalid local-memory '${text}' (from ${source}): use bytes or a size like 512m or 2g.`,
    );
  }
  return Math.round(Number(match[1]) * SIZE_UNITS[match[2]!.toLowerCase()]!);
}

/** Which backend `auto` means for this configuration. */
export function chosenBackend(config: Config): "cloud" | "local" {
  if (config.backend === "auto") return config.token ? "cloud" : "local";
  return config.backend;
}

/** The local backend's settings, as LocalBackend takes them. */
export function localBackendOptions(config: Config): LocalBackendOptions {
  return {
    root: config.localRoot,
    network: config.localNetwork,
    memoryLimitBytes: config.localMemoryBytes,
    pidsLimit: config.localPids,
    maxConcurrent: config.localConcurrency,
  };
}
