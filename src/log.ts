import { createConsola, type ConsolaInstance, type LogObject } from "consola";

// stdout belongs to MCP in stdio mode: every level goes to stderr.
const secrets = new Set<string>();

/** Registers a value that must never appear in a log line (tokens, registry passwords). */
export function registerSecret(value: string | undefined): void {
  if (value && value.length >= 4) secrets.add(value);
}

/** Replaces every registered secret in `text` with `***`. */
export function redact(text: string): string {
  let out = text;
  for (const secret of secrets) out = out.split(secret).join("***");
  return out;
}

const LEVELS: Record<string, number> = {
  silent: -999,
  critical: 0,
  fatal: 0,
  error: 0,
  warning: 1,
  warn: 1,
  info: 3,
  debug: 4,
  trace: 5,
};

export const LOG_LEVEL_NAMES = ["critical", "error", "warning", "info", "debug", "trace", "silent"] as const;

export function levelNumber(name: string): number {
  return LEVELS[name.toLowerCase()] ?? 1;
}

const TAGS: Record<number, string> = {
  0: "error",
  1: "warning",
  2: "info",
  3: "info",
  4: "debug",
  5: "trace",
};

function formatArg(arg: unknown): string {
  if (typeof arg === "string") return arg;
  if (arg instanceof Error) return arg.stack ?? arg.message;
  try {
    return JSON.stringify(arg);
  } catch {
    return String(arg);
  }
}

export const log: ConsolaInstance = createConsola({
  level: 1,
  reporters: [
    {
      log(logObj: LogObject) {
        const line = logObj.args.map(formatArg).join(" ");
        process.stderr.write(`[contree-mcp] ${TAGS[logObj.level] ?? "log"}: ${redact(line)}\n`);
      },
    },
  ],
});

export function setLogLevel(name: string): void {
  log.level = levelNumber(name);
}
