import { mkdirSync } from "node:fs";
import { CloudBackend } from "./backend/cloud/backend.ts";
import type { Backend } from "./backend/types.ts";
import { unavailableBackend } from "./backend/unavailable.ts";
import { GeneralCache } from "./cache/general.ts";
import { chosenBackend, localBackendOptions, type Config } from "./config.ts";
import { log, registerSecret } from "./log.ts";
import { CredentialStore, defaultCredentialsPath } from "./registry/credentials.ts";
import { FileCache } from "./sync/cache.ts";
import type { ToolDeps } from "./tools/tool.ts";
import { VERSION } from "./version.ts";

/** Opens the backend the configuration asks for, or one that explains why it cannot work here. */
export async function openBackend(config: Config): Promise<Backend> {
  registerSecret(config.token);
  registerSecret(config.httpToken);
  if (chosenBackend(config) === "cloud") {
    if (!config.token) {
      return unavailableBackend(
        "cloud",
        "The cloud backend needs a ConTree token: set CONTREE_MCP_TOKEN, token in ~/.config/contree/mcp.ini, or --token. Without a token, --backend local runs sandboxes on this machine.",
      );
    }
    return new CloudBackend({
      url: config.url,
      token: config.token,
      project: config.project,
      version: VERSION,
    });
  }
  const { LocalBackend } = await import("./backend/local/backend.ts");
  const problem = await LocalBackend.check();
  if (problem) return unavailableBackend("local", problem);
  mkdirSync(config.localRoot, { recursive: true, mode: 0o700 });
  return new LocalBackend(localBackendOptions(config));
}

export interface App {
  deps: ToolDeps;
  close(): Promise<void>;
}

/** Everything a server needs, opened once per process and shared by every MCP connection. */
export async function openApp(config: Config, backend?: Backend): Promise<App> {
  const chosen = backend ?? (await openBackend(config));
  const cache = new GeneralCache(config.cacheGeneral, config.cachePruneDays);
  const fileCache = new FileCache(config.cacheFiles, config.cachePruneDays);
  const credentials = new CredentialStore(defaultCredentialsPath());
  log.info(`backend: ${chosen.description}`);
  return {
    deps: { backend: chosen, cache, fileCache, credentials, config },
    async close() {
      await chosen.close();
      cache.close();
      fileCache.close();
    },
  };
}
