// Hermetic tests: no credentials or config from the developer's machine, and every path under a temp dir.
import { setDefaultTimeout } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

for (const name of Object.keys(process.env)) {
  if (
    name.startsWith("CONTREE_") ||
    name.startsWith("NEBIUS_") ||
    name === "DOCKER_CONFIG" ||
    name === "REGISTRY_AUTH_FILE"
  ) {
    delete process.env[name];
  }
}
const home = mkdtempSync(join(tmpdir(), "contree-mcp-test-home-"));
process.env.HOME = home;
process.env.XDG_CONFIG_HOME = join(home, ".config");
process.env.XDG_CACHE_HOME = join(home, ".cache");
process.env.XDG_DATA_HOME = join(home, ".local", "share");
process.env.CONTREE_MCP_CONFIG = join(home, "no-such-config.ini");

// bunfig's [test] timeout is not read by this Bun; tests that spawn processes or build binaries need more than 5 s
// on a busy CI machine.
setDefaultTimeout(30_000);
