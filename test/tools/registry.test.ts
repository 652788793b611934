import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, statSync } from "node:fs";
import { defaultCredentialsPath } from "../../src/registry/credentials.ts";
import { startFakeContree, cloudBackendFor } from "../support/fake-contree.ts";
import { connect, textOf, type TestSession } from "../support/mcp.ts";
import { startTestRegistry } from "../support/registry.ts";

const hasRegistry = existsSync("/usr/bin/docker-registry") && existsSync("/usr/bin/htpasswd");

let fake: Awaited<ReturnType<typeof startFakeContree>>;
let session: TestSession;

beforeAll(async () => {
  fake = await startFakeContree();
  session = await connect(cloudBackendFor(fake));
});

afterAll(async () => {
  await session?.close();
  await fake?.close();
});

describe("registry_token_obtain", () => {
  test("known registries return their token page and tell the agent to stop", async () => {
    for (const [input, page] of [
      ["docker://python:3.11", "docker.com"],
      ["ghcr.io/org/img", "github.com"],
      ["registry.gitlab.com/x/y", "gitlab.com"],
    ] as const) {
      const result = await session.call("registry_token_obtain", { registry_url: input });
      const out = result.structuredContent as { url: string; agent_instruction: string; known: boolean };
      expect(out.known).toBe(true);
      expect(out.url).toContain(page);
      expect(out.agent_instruction).toMatch(/STOP/);
      expect(out.agent_instruction).toMatch(/wait/i);
    }
  });

  test("an unknown registry gets generic guidance, not an error", async () => {
    const result = await session.call("registry_token_obtain", {
      registry_url: "docker://registry.example.com/a/b",
    });
    expect(result.isError).toBeFalsy();
    expect((result.structuredContent as { url: string | null }).url).toBeNull();
  });
});

describe.skipIf(!hasRegistry)(
  "registry_auth against a real docker-registry with htpasswd (needs docker-registry, htpasswd)",
  () => {
    test("wrong credentials are refused and nothing is stored; right ones are stored 0600 and used by import", async () => {
      const registry = await startTestRegistry({ auth: "htpasswd" });
      try {
        const bad = await session.call("registry_auth", {
          registry_url: `${registry.host}/probe/bb`,
          username: registry.username,
          token: "wrong-password",
        });
        expect(bad.isError).toBe(true);
        expect(textOf(bad)).toMatch(/Invalid credentials/);
        expect(textOf(bad)).not.toContain("wrong-password");

        const good = await session.call("registry_auth", {
          registry_url: `${registry.host}/probe/bb`,
          username: registry.username,
          token: registry.password,
        });
        expect(good.isError).toBeFalsy();
        expect(textOf(good)).toMatch(/successfully/);
        expect(statSync(defaultCredentialsPath()).mode & 0o777).toBe(0o600);

        const imported = await session.call("import_image", {
          registry_url: `docker://${registry.host}/probe/bb:latest`,
        });
        expect(imported.isError).toBeFalsy();
        const body = fake.requests.filter((r) => r.path === "/v1/images/import").at(-1)?.body as {
          registry: { url: string; credentials: { username: string; password: string } };
        };
        expect(body.registry.url).toBe(`docker://${registry.host}/probe/bb:latest`);
        expect(body.registry.credentials).toEqual({
          username: registry.username,
          password: registry.password,
        });
      } finally {
        await registry.close();
      }
    });
  },
);
