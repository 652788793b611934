#!/usr/bin/env bun
import { defineCommand, runMain, type ArgsDef } from "citty";
import { openApp } from "./app.ts";
import { OPTIONS, envName, resolveConfig, type OptionName, localBackendOptions } from "./config.ts";
import { UserError } from "./errors.ts";
import { log, setLogLevel } from "./log.ts";
import { runStdio } from "./server/stdio.ts";
import { VERSION } from "./version.ts";

function flagName(name: OptionName): string {
  return name.replaceAll("_", "-");
}

/** Every setting as a string flag; defaults are shown in the help text but applied by resolveConfig. */
const SETTINGS_ARGS: ArgsDef = Object.fromEntries(
  (Object.keys(OPTIONS) as OptionName[]).map((name) => {
    const spec = OPTIONS[name];
    const values = "values" in spec ? ` (${spec.values.join("|")})` : "";
    const fallback = "default" in spec ? `; default ${spec.default}` : "";
    return [
      flagName(name),
      { type: "string", description: `${spec.description}${values} [env ${envName(name)}${fallback}]` },
    ];
  }),
);

function flagsOf(args: Record<string, unknown>): Partial<Record<OptionName, string>> {
  const flags: Partial<Record<OptionName, string>> = {};
  for (const name of Object.keys(OPTIONS) as OptionName[]) {
    const value = args[flagName(name)];
    if (typeof value === "string") flags[name] = value;
  }
  return flags;
}

async function serve(args: Record<string, unknown>): Promise<void> {
  const config = resolveConfig(flagsOf(args));
  setLogLevel(config.logLevel);
  if (config.sources.token === "flag") {
    log.warn("--token is visible in process listings; prefer CONTREE_MCP_TOKEN or token in the INI file");
  }
  if (config.sources.http_token === "flag") {
    log.warn(
      "--http-token is visible in process listings; prefer CONTREE_MCP_HTTP_TOKEN or http_token in the INI file",
    );
  }
  const app = await openApp(config);
  if (config.mode === "http") {
    const { runHttp } = await import("./server/http.ts");
    await runHttp(app, config);
    return;
  }
  await runStdio(app);
}

async function localServe(args: Record<string, unknown>): Promise<void> {
  const config = resolveConfig(flagsOf(args));
  setLogLevel(config.logLevel === "warning" ? "info" : config.logLevel);
  const { LocalBackend } = await import("./backend/local/backend.ts");
  const { serveContreeApi } = await import("./backend/local/rest.ts");
  const problem = await LocalBackend.check();
  if (problem) throw new UserError(problem);
  const port = Number(args.port ?? 9453);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new UserError(`Invalid --port '${String(args.port)}'.`);
  // The token guards the API; without one configured, a random one is made and shown once, on stderr.
  const token = config.token ?? crypto.randomUUID();
  const backend = new LocalBackend(localBackendOptions(config));
  const server = serveContreeApi(backend, { port, hostname: "127.0.0.1", token });
  log.info(
    `ConTree v1 API of the local backend at http://127.0.0.1:${server.port}/v1 (images in ${config.localRoot})`,
  );
  if (!config.token) process.stderr.write(`bearer token for this run: ${token}\n`);
  await new Promise<void>((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
  });
  await server.stop();
  await backend.close();
}

const localCommand = defineCommand({
  meta: { name: "local", description: "The local backend on its own" },
  subCommands: {
    serve: defineCommand({
      meta: {
        name: "serve",
        description:
          "Serve the local backend as the ConTree v1 REST API on 127.0.0.1 (bearer token: --token, else a random one)",
      },
      args: {
        ...SETTINGS_ARGS,
        port: { type: "string", description: "Port (default 9453; 0 picks a free one)" },
      },
      run: ({ args }) => failingClearly(() => localServe(args)),
    }),
  },
});

/** Runs a CLI command that reports to the terminal: a UserError is one line on stderr and exit code 1. */
/** A UserError (bad setting, missing sandbox support) is one line on stderr and exit 1, not a stack trace. */
async function failingClearly(body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (error) {
    if (!(error instanceof UserError)) throw error;
    log.error(error.message);
    process.exit(1);
  }
}

async function report(body: () => Promise<number>): Promise<void> {
  try {
    process.exitCode = await body();
  } catch (error) {
    if (!(error instanceof UserError)) throw error;
    process.stderr.write(`${error.message}\n`);
    process.exitCode = 1;
  }
}

const doctorCommand = defineCommand({
  meta: {
    name: "doctor",
    description:
      "Check the configuration, the ConTree service or this machine's local sandboxes, caches and credentials; exit 1 when the configured backend cannot work",
  },
  args: {
    ...SETTINGS_ARGS,
    json: { type: "boolean", description: "Print the report as JSON" },
  },
  run: ({ args }) =>
    report(async () => {
      const { formatReport, runDoctor } = await import("./cli/doctor.ts");
      const result = await runDoctor(flagsOf(args));
      process.stdout.write(args.json ? `${JSON.stringify(result, null, 2)}\n` : formatReport(result));
      return result.ok ? 0 : 1;
    }),
});

const setupCommand = defineCommand({
  meta: {
    name: "setup",
    description:
      "Add this server to an MCP client's user config (claude-code, claude-desktop, codex, cursor, vscode). Settings flags given here are passed on to the server; arguments after -- follow --command.",
  },
  args: {
    client: { type: "positional", description: "claude-code | claude-desktop | codex | cursor | vscode" },
    print: { type: "boolean", description: "Show the change as a diff and write nothing" },
    name: { type: "string", description: "Server name in the client's config (default contree)" },
    command: {
      type: "string",
      description: "Executable the client starts (default: this binary; from source: bun and src/main.ts)",
    },
    file: { type: "string", description: "The client's config file, if not in its usual place" },
    "env-token": {
      type: "boolean",
      description:
        "Also write the configured ConTree token into the entry's env (clear text in the client's config)",
    },
    ...SETTINGS_ARGS,
  },
  run: ({ args }) =>
    report(async () => {
      const { runSetup, setupArgs } = await import("./cli/setup.ts");
      return runSetup(setupArgs(args, flagsOf(args)));
    }),
});

const serveCommand = defineCommand({
  meta: { name: "serve", description: "Serve MCP (the default command)" },
  args: SETTINGS_ARGS,
  run: ({ args }) => failingClearly(() => serve(args)),
});

export const main = defineCommand({
  meta: {
    name: "contree-mcp",
    version: VERSION,
    description:
      "MCP server: sandboxes with immutable, branchable images (ConTree cloud, or bubblewrap on this machine)",
  },
  args: SETTINGS_ARGS,
  subCommands: { serve: serveCommand, local: localCommand, doctor: doctorCommand, setup: setupCommand },
  default: "serve",
});

if (import.meta.main) {
  runMain(main).catch((error: unknown) => {
    log.error(error instanceof UserError ? error.message : error);
    process.exit(1);
  });
}
