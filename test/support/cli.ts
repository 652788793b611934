import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const ROOT = resolve(import.meta.dir, "../..");
/** bun and the CLI's entry point from this checkout: what `contree-mcp` is when run from source. */
export const FROM_SOURCE = [join(ROOT, "node_modules", ".bin", "bun"), join(ROOT, "src", "main.ts")];
// One transpiler cache for every spawn: a fresh HOME would otherwise mean a cold start each time.
const TRANSPILER_CACHE = mkdtempSync(join(tmpdir(), "contree-mcp-cli-bun-cache-"));

export interface CliResult {
  stdout: string;
  stderr: string;
  code: number;
}

/** Runs the CLI as a user would, with `home` as HOME and XDG dirs, and nothing of this machine's settings. */
export async function cli(
  home: string,
  args: string[],
  env: Record<string, string> = {},
  argv0: string[] = FROM_SOURCE,
): Promise<CliResult> {
  const proc = Bun.spawn([...argv0, ...args], {
    cwd: home,
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    env: {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      HOME: home,
      XDG_CONFIG_HOME: join(home, ".config"),
      XDG_CACHE_HOME: join(home, ".cache"),
      XDG_DATA_HOME: join(home, ".local", "share"),
      BUN_RUNTIME_TRANSPILER_CACHE_PATH: TRANSPILER_CACHE,
      ...env,
    },
  });
  const [stdout, stderr, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  return { stdout, stderr, code };
}
