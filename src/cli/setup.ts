// `contree-mcp setup <client>`: adds this server to an MCP client's user config. Only our entry changes; the
// file is backed up first and replaced atomically; running it twice changes nothing the second time. A file that
// does not parse is never touched.
import { existsSync, readFileSync, statSync } from "node:fs";
import { dirname, isAbsolute, resolve, sep } from "node:path";
import { envName, resolveConfig, type OptionName } from "../config.ts";
import { UserError } from "../errors.ts";
import { redact, registerSecret } from "../log.ts";
import { CLIENT_IDS, CLIENTS, type Client, type ServerCommand } from "./clients.ts";
import { backup, diff, PRIVATE, realTarget, writeAtomic } from "./files.ts";
import { JsonSyntaxError, setJsonMember } from "./json-edit.ts";
import { replaceTomlTable, tomlTable } from "./toml-edit.ts";

export interface SetupOptions {
  client: string;
  /** Server name in the client's config. */
  name?: string;
  /** Executable to write instead of this one; `args` then follow it. */
  command?: string;
  args?: string[];
  /** Settings flags passed on to the server (`--backend local`, ...). */
  serverArgs?: string[];
  /** Written into the entry's env (only the token today, and only when asked). */
  env?: Record<string, string>;
  /** Show the change, write nothing. */
  print?: boolean;
  /** The client's config file, instead of its usual place. */
  file?: string;
}

export interface Output {
  out(text: string): void;
  err(text: string): void;
}

export const stdio: Output = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
};

/** True inside a `bun build --compile` binary, whose sources live in Bun's embedded file system. */
export function isCompiled(main = Bun.main): boolean {
  return main.startsWith("/$bunfs/") || /^[A-Z]:[\\/]~BUN[\\/]/.test(main);
}

/**
 * What a client should start to get this server: the running binary when compiled; the npx/bunx form when run
 * from their caches (those paths change with every version); bun plus the absolute main.ts from a checkout.
 */
export function currentServer(
  from: { compiled: boolean; execPath: string; main: string; launcher?: string } = {
    compiled: isCompiled(),
    execPath: process.execPath,
    main: Bun.main,
    launcher: process.env.CONTREE_MCP_NPM_LAUNCHER,
  },
): { command: string; args: string[]; note?: string } {
  if (from.compiled) {
    // Under the npm launcher the binary sits in a platform package; the launcher's path is what npx or a global
    // install keeps stable.
    const launcher = from.launcher;
    const exec = launcher || from.execPath;
    if (exec.includes(`${sep}_npx${sep}`)) {
      return {
        command: "npx",
        args: ["-y", "contree-mcp"],
        note: "run through npx: writing `npx -y contree-mcp`",
      };
    }
    if (/[\\/]bunx-[^\\/]*[\\/]/.test(exec)) {
      return { command: "bunx", args: ["contree-mcp"], note: "run through bunx: writing `bunx contree-mcp`" };
    }
    // Homebrew's Cellar path names the version and goes away at `brew upgrade`; opt/ always points at the current one.
    const cellar = /^(.*)[\\/]Cellar[\\/]([^\\/]+)[\\/][^\\/]+[\\/]bin[\\/]([^\\/]+)$/.exec(exec);
    if (cellar) {
      const [, prefix, formula, binary] = cellar;
      return {
        command: `${prefix}${sep}opt${sep}${formula}${sep}bin${sep}${binary}`,
        args: [],
        note: "installed by Homebrew: writing the opt/ path, which survives upgrades",
      };
    }
    if (launcher) return { command: "node", args: [launcher], note: "run through the npm launcher" };
    return { command: exec, args: [] };
  }
  return {
    command: from.execPath,
    args: [resolve(from.main)],
    note: "running from source: writing bun and this checkout's src/main.ts; use --command with a built binary (npm run build) for a setup that survives moving the checkout",
  };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function parse(client: Client, text: string): Record<string, unknown> {
  if (!text.trim()) return {};
  const value: unknown = client.format === "toml" ? Bun.TOML.parse(text) : Bun.JSONC.parse(text);
  if (!isObject(value)) throw new JsonSyntaxError("the top level is not an object");
  return value;
}

function entryOf(
  doc: Record<string, unknown>,
  key: string,
  name: string,
): Record<string, unknown> | undefined {
  const servers = doc[key];
  if (!isObject(servers)) return undefined;
  const entry = servers[name];
  return isObject(entry) ? entry : undefined;
}

/** What a client's config holds for server `name` now; `error` when the file does not parse. */
export function readEntry(
  client: Client,
  name = "contree",
): { path: string; exists: boolean; entry?: Record<string, unknown>; error?: string } {
  const path = client.path();
  if (!existsSync(path)) return { path, exists: false };
  try {
    return {
      path,
      exists: true,
      entry: entryOf(parse(client, readFileSync(path, "utf8")), client.serversKey, name),
    };
  } catch (error) {
    return { path, exists: true, error: error instanceof Error ? error.message : String(error) };
  }
}

function withoutEntry(doc: Record<string, unknown>, key: string, name: string): Record<string, unknown> {
  const servers = doc[key];
  if (!isObject(servers)) return doc;
  const { [name]: _ours, ...rest } = servers;
  const copy: Record<string, unknown> = { ...doc, [key]: rest };
  // A servers table that held only us, or was created by us, compares equal to its absence.
  if (Object.keys(rest).length === 0) delete copy[key];
  return copy;
}

function snippet(client: Client, name: string, entry: Record<string, unknown>): string {
  if (client.format === "toml") return tomlTable([client.serversKey, name], entry);
  return `${JSON.stringify({ [client.serversKey]: { [name]: entry } }, null, 2)}\n`;
}

function edit(client: Client, text: string, name: string, entry: Record<string, unknown>): string {
  // A file written with CRLF throughout (Windows editors) is edited as LF and given its CRLF back.
  const crlf = text.includes("\r\n") && !/(?<!\r)\n/.test(text);
  const source = crlf ? text.replaceAll("\r\n", "\n") : text;
  const edited =
    client.format === "toml"
      ? replaceTomlTable(source, [client.serversKey, name], tomlTable([client.serversKey, name], entry))
      : setJsonMember(source, client.serversKey, name, entry);
  return crlf ? edited.replaceAll("\n", "\r\n") : edited;
}

const octal = (mode: number) => `0${mode.toString(8).padStart(3, "0")}`;

/** Runs setup and returns the exit code: 0 done (or nothing to do), 1 the file was left untouched. */
export function runSetup(options: SetupOptions, io: Output = stdio): number {
  const client = CLIENTS[options.client];
  if (!client) {
    throw new UserError(`Unknown client '${options.client}': use one of ${CLIENT_IDS.join(", ")}.`);
  }
  const name = options.name || "contree";
  for (const value of Object.values(options.env ?? {})) registerSecret(value);

  let server: ServerCommand;
  if (options.command) {
    const command =
      /[\\/]/.test(options.command) && !isAbsolute(options.command)
        ? resolve(options.command)
        : options.command;
    server = { command, args: [...(options.args ?? [])], env: {} };
  } else {
    const current = currentServer();
    if (current.note) io.err(`note: ${current.note}\n`);
    server = { command: current.command, args: current.args, env: {} };
  }
  server.args.push(...(options.serverArgs ?? []));
  server.env = { ...options.env };

  const path = options.file ? resolve(options.file) : client.path();
  const target = realTarget(path);
  const exists = existsSync(target);
  const text = exists ? readFileSync(target, "utf8") : "";

  let before: Record<string, unknown>;
  try {
    before = parse(client, text);
  } catch (error) {
    io.err(
      `${path} does not parse (${error instanceof Error ? error.message : String(error)}); it was left untouched. Fix it, or add this by hand:\n${redact(snippet(client, name, client.entry(server, undefined)))}`,
    );
    return 1;
  }

  const existing = entryOf(before, client.serversKey, name);
  const entry = client.entry(server, existing);
  if (existing && Bun.deepEquals(existing, entry)) {
    io.out(`${client.title} already has '${name}' as wanted in ${path}; nothing changed.\n`);
    return 0;
  }

  let after: string;
  let problem: string | undefined;
  try {
    after = edit(client, text, name, entry);
    const parsed = parse(client, after);
    if (!Bun.deepEquals(entryOf(parsed, client.serversKey, name), entry)) {
      problem = `the edited file would not hold the entry as written`;
    } else if (
      !Bun.deepEquals(
        withoutEntry(parsed, client.serversKey, name),
        withoutEntry(before, client.serversKey, name),
      )
    ) {
      problem = `the edit would change more than the '${name}' entry`;
    }
  } catch (error) {
    after = text;
    problem = error instanceof Error ? error.message : String(error);
  }
  if (problem) {
    io.err(
      `Cannot edit ${path} safely (${problem}), so it was left untouched. Add this by hand:\n${redact(snippet(client, name, entry))}`,
    );
    return 1;
  }

  const verb = existing ? "Updated" : "Added";
  if (options.print) {
    io.out(redact(diff(path, text, after)));
    io.out(`(--print: ${path} was not changed)\n`);
    return 0;
  }
  if (!existsSync(dirname(target))) {
    io.err(
      `note: ${dirname(target)} did not exist, so it is created; is ${client.title} installed for this user?\n`,
    );
  }
  // A token in env narrows an existing file (and its backup) to 0600; new files get 0600 anyway, since client
  // configs tend to collect tokens.
  const secret = Object.keys(server.env).length > 0;
  const oldMode = exists ? statSync(target).mode & 0o777 : undefined;
  const saved = exists ? backup(target, secret) : undefined;
  writeAtomic(target, after, PRIVATE, secret);
  io.out(`${verb} '${name}' in ${client.title}'s config ${path}${saved ? ` (backup: ${saved})` : ""}.\n`);
  io.out(`  command: ${[server.command, ...server.args].join(" ")}\n`);
  if (Object.keys(server.env).length > 0) {
    io.out(`  env: ${Object.keys(server.env).join(", ")} (stored in clear text in that file)\n`);
    if (oldMode !== undefined && (oldMode & ~PRIVATE) !== 0) {
      io.out(
        `  mode: narrowed from ${octal(oldMode)} to ${octal(oldMode & PRIVATE)} (owner only, backup too) since the file now holds the token\n`,
      );
    }
  } else {
    io.out(
      "  no token written: the server reads CONTREE_MCP_TOKEN or `token` in ~/.config/contree/mcp.ini (add --env-token to store it in the client's config instead)\n",
    );
  }
  io.out(`${client.next}\n`);
  return 0;
}

const NOT_PASSED = new Set<OptionName>(["token", "http_token", "mode"]);

/** SetupOptions from the command line: citty's args plus the settings flags that were given. */
export function setupArgs(
  args: Record<string, unknown> & { _?: string[] },
  flags: Partial<Record<OptionName, string>>,
  io: Output = stdio,
): SetupOptions {
  const client = typeof args.client === "string" ? args.client : "";
  if (!client) throw new UserError(`Name the client: contree-mcp setup <${CLIENT_IDS.join("|")}>.`);
  const extra = (args._ ?? []).slice(1);
  const command = typeof args.command === "string" && args.command ? args.command : undefined;
  if (extra.length > 0 && !command) {
    throw new UserError(
      `Arguments after the client (${extra.join(" ")}) are only for --command; pass settings as flags, e.g. --backend local.`,
    );
  }
  if (flags.mode && flags.mode.toLowerCase() !== "stdio") {
    throw new UserError(
      "setup writes a stdio server that the client starts; for a shared HTTP server, run contree-mcp --mode http yourself.",
    );
  }
  const serverArgs: string[] = [];
  for (const [name, value] of Object.entries(flags) as [OptionName, string][]) {
    if (!NOT_PASSED.has(name)) serverArgs.push(`--${name.replaceAll("_", "-")}`, value);
  }
  let env: Record<string, string> = {};
  if (args["env-token"]) {
    const token = resolveConfig(flags).token;
    if (!token) {
      throw new UserError(
        `--env-token: no token is configured (--token, ${envName("token")} or token in the INI file).`,
      );
    }
    env = { [envName("token")]: token };
  } else if (flags.token || flags.http_token) {
    io.err(
      "note: tokens are not written into the client's config unless you add --env-token; the server reads them from the environment or the INI file.\n",
    );
  }
  return {
    client,
    name: typeof args.name === "string" ? args.name : undefined,
    command,
    args: extra,
    serverArgs,
    env,
    print: args.print === true,
    file: typeof args.file === "string" && args.file ? args.file : undefined,
  };
}
