// The README's main flow: `bun src/main.ts` with no token serves on the local backend over stdio, and a real MCP
// client imports busybox from a registry on loopback (Debian's docker-registry, standing in for Docker Hub on a
// machine without internet) and runs commands in it.
import { Client } from "@modelcontextprotocol/client";
import { StdioClientTransport } from "@modelcontextprotocol/client/stdio";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  hasDockerRegistry,
  pushImage,
  startTestRegistry,
  type TestRegistry,
} from "../../support/registry.ts";
import { canRunLocal, localProblem } from "./helpers.ts";
import { busyboxLayer } from "./layouts.ts";

const skip = !canRunLocal ? localProblem : !hasDockerRegistry ? "needs /usr/bin/docker-registry" : null;

describe.skipIf(skip !== null)(
  `README flow: no token, stdio, import then run (${skip ?? "available"})`,
  () => {
    let home: string;
    let registry: TestRegistry;
    let client: Client;
    beforeAll(async () => {
      home = mkdtempSync(join(tmpdir(), "contree-readme-"));
      registry = await startTestRegistry({ auth: "none" });
      await pushImage(registry, "library/busybox", "latest", [busyboxLayer()]);
      const transport = new StdioClientTransport({
        command: process.execPath,
        args: [join(import.meta.dir, "../../../src/main.ts")],
        // No CONTREE_MCP_TOKEN: the server must pick the local backend by itself.
        env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: home },
        stderr: "ignore",
      });
      client = new Client({ name: "readme-flow", version: "0" });
      await client.connect(transport);
    }, 60_000);
    afterAll(async () => {
      await client?.close();
      await registry?.close();
      if (home) rmSync(home, { recursive: true, force: true });
    });

    async function call(name: string, args: Record<string, unknown>): Promise<Record<string, unknown>> {
      const result = await client.callTool({ name: `contree_${name}`, arguments: args });
      expect(result.isError ?? false).toBe(false);
      return result.structuredContent as Record<string, unknown>;
    }

    test("import_image, then run in it by tag; a failed download says the network is off", async () => {
      const imported = await call("import_image", {
        registry_url: `${registry.host}/library/busybox:latest`,
        tag: "busybox",
        i_accept_that_anonymous_access_might_be_rate_limited: true,
      });
      expect(imported).toMatchObject({ status: "SUCCESS", result_tag: "busybox" });
      const ran = await call("run", { image: "tag:busybox", command: "echo hello from $(hostname); id -u" });
      expect(ran).toMatchObject({ status: "SUCCESS", exit_code: 0, stdout: "hello from linuxkit\n0\n" });
      const offline = await call("run", { image: "tag:busybox", command: "wget -q -O- http://example.com/" });
      expect(offline).toMatchObject({ exit_code: 1 });
      expect(String(offline.notes)).toContain("--local-network host");
    }, 60_000);
  },
);
