// Where each MCP client keeps its user-level server list, and the shape of one stdio entry there.
import { homedir } from "node:os";
import { join } from "node:path";

export interface ServerCommand {
  command: string;
  args: string[];
  env: Record<string, string>;
}

export interface Client {
  id: string;
  title: string;
  format: "json" | "toml";
  /** The key that holds the servers: a JSON member, or the TOML table prefix. */
  serversKey: string;
  path(): string;
  /** The entry to write, given what is there now (kept keys the user added, such as timeouts). */
  entry(server: ServerCommand, existing: Record<string, unknown> | undefined): Record<string, unknown>;
  /** What to do after writing. */
  next: string;
}

// Keys that belong to remote (HTTP/SSE) entries; a stdio entry that kept them would be ambiguous.
const REMOTE_KEYS = new Set(["url", "headers", "transport", "serverUrl"]);

function merged(
  server: ServerCommand,
  existing: Record<string, unknown> | undefined,
  first: Record<string, unknown>,
): Record<string, unknown> {
  const kept = Object.fromEntries(Object.entries(existing ?? {}).filter(([key]) => !REMOTE_KEYS.has(key)));
  const oldEnv = kept.env && typeof kept.env === "object" ? (kept.env as Record<string, string>) : {};
  const env = { ...oldEnv, ...server.env };
  const entry: Record<string, unknown> = {
    ...first,
    ...kept,
    ...first,
    command: server.command,
    args: server.args,
  };
  if (Object.keys(env).length > 0) entry.env = env;
  else delete entry.env;
  return entry;
}

// $HOME first: Bun's homedir() is fixed at startup, and tests point HOME at a temp dir after that.
function home(): string {
  return process.env.HOME || homedir();
}

function appData(): string {
  return process.env.APPDATA || join(home(), "AppData", "Roaming");
}

function configHome(): string {
  return process.env.XDG_CONFIG_HOME || join(home(), ".config");
}

/** Per-platform application settings directory: macOS Application Support, %APPDATA%, or XDG config. */
function appSettings(name: string): string {
  if (process.platform === "darwin") return join(home(), "Library", "Application Support", name);
  if (process.platform === "win32") return join(appData(), name);
  return join(configHome(), name);
}

export const CLIENTS: Record<string, Client> = {
  "claude-code": {
    id: "claude-code",
    title: "Claude Code",
    format: "json",
    serversKey: "mcpServers",
    // User scope: available in every project. `claude mcp add --scope user` writes the same member.
    path: () => join(home(), ".claude.json"),
    entry: (server, existing) => merged(server, existing, { type: "stdio" }),
    next: "Restart Claude Code (or run /mcp) to load it; `claude mcp list` shows it.",
  },
  "claude-desktop": {
    id: "claude-desktop",
    title: "Claude Desktop",
    format: "json",
    serversKey: "mcpServers",
    path: () => join(appSettings("Claude"), "claude_desktop_config.json"),
    entry: (server, existing) => merged(server, existing, {}),
    next: "Quit and reopen Claude Desktop to load it.",
  },
  codex: {
    id: "codex",
    title: "Codex",
    format: "toml",
    serversKey: "mcp_servers",
    path: () => join(process.env.CODEX_HOME || join(home(), ".codex"), "config.toml"),
    entry: (server, existing) => merged(server, existing, {}),
    next: "Start a new Codex session to load it; `codex mcp list` shows it.",
  },
  cursor: {
    id: "cursor",
    title: "Cursor",
    format: "json",
    serversKey: "mcpServers",
    path: () => join(home(), ".cursor", "mcp.json"),
    entry: (server, existing) => merged(server, existing, { type: "stdio" }),
    next: "Cursor picks it up from Settings > MCP; restart Cursor if it does not appear.",
  },
  vscode: {
    id: "vscode",
    title: "VS Code",
    format: "json",
    serversKey: "servers",
    path: () => join(appSettings(join("Code", "User")), "mcp.json"),
    entry: (server, existing) => merged(server, existing, { type: "stdio" }),
    next: "In VS Code, run 'MCP: List Servers' and start contree (Copilot Chat in agent mode uses it).",
  },
};

export const CLIENT_IDS = Object.keys(CLIENTS);
