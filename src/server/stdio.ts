import { serveStdio } from "@modelcontextprotocol/server/stdio";
import type { App } from "../app.ts";
import { log } from "../log.ts";
import { createServerFactory } from "./create.ts";

/** Serves MCP on stdin/stdout until the client closes stdin or a signal arrives. */
export async function runStdio(app: App): Promise<void> {
  const handle = serveStdio(createServerFactory(app.deps), {
    onerror: (error) => log.warn("stdio transport:", error.message),
  });
  await new Promise<void>((resolve) => {
    const done = () => resolve();
    process.stdin.once("end", done);
    process.stdin.once("close", done);
    process.once("SIGINT", done);
    process.once("SIGTERM", done);
  });
  await handle.close().catch(() => undefined);
  await app.close();
}
