// Shared by the distribution tests: one compiled binary of this machine's platform per test run.
import { existsSync, mkdtempSync, readdirSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const ROOT = join(import.meta.dir, "../..");
export const BUN_PATH = `${join(ROOT, "node_modules/.bin")}:${process.env.PATH}`;

function newestMtime(path: string): number {
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  return Math.max(stat.mtimeMs, ...readdirSync(path).map((name) => newestMtime(join(path, name))));
}

let built: Promise<string> | undefined;

/**
 * dist/contree-mcp when it is newer than every input of the build (so `npm run build` before the tests saves a
 * compile), else a fresh compile into a temp dir; compiled at most once per test run.
 */
export function hostBinary(): Promise<string> {
  built ??= (async () => {
    const dist = join(ROOT, "dist/contree-mcp");
    const inputs = ["src", "package.json", "package-lock.json", "scripts/build.ts"].map((p) => join(ROOT, p));
    if (existsSync(dist) && statSync(dist).mtimeMs > Math.max(...inputs.map(newestMtime))) return dist;
    const outfile = join(mkdtempSync(join(tmpdir(), "contree-mcp-dist-")), "contree-mcp");
    const build = Bun.spawn(["bun", "scripts/build.ts", outfile], {
      cwd: ROOT,
      env: { ...process.env, PATH: BUN_PATH },
      stdout: "ignore",
      stderr: "pipe",
    });
    if ((await build.exited) !== 0)
      throw new Error(`build failed: ${await new Response(build.stderr).text()}`);
    return outfile;
  })();
  return built;
}

/** Runs a command to its end; throws with its output when it fails. */
export async function run(
  cmd: string[],
  options: { cwd: string; env?: Record<string, string | undefined> },
): Promise<{ stdout: string; stderr: string }> {
  const proc = Bun.spawn(cmd, { ...options, stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  if (code !== 0) throw new Error(`${cmd.join(" ")} exited ${code}\n${stdout}\n${stderr}`);
  return { stdout, stderr };
}
