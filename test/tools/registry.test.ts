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

describe("registry_auth: registry failures get registry advice, not ConTree advice", () => {
  test("a web server that is not a registry: 404 at /v2/, check the host", async () => {
    const web = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch: () => new Response("no", { status: 404 }),
    });
    try {
      const result = await session.call("registry_auth", {
        registry_url: `127.0.0.1:${web.port}/a/b`,
        username: "u",
        token: "secret-token-404",
      });
      expect(result.isError).toBe(true);
      const text = textOf(result);
      expect(text).toContain(`'127.0.0.1:${web.port}' answered 404 at http://127.0.0.1:${web.port}/v2/`);
      expect(text).toContain("not an OCI registry");
      expect(text).toContain("Check the host");
      expect(text).not.toMatch(/ConTree|list_images|\?\./);
      expect(text).not.toContain("secret-token-404");
      expect(existsSync(defaultCredentialsPath())).toBe(false);
    } finally {
      web.stop(true);
    }
  });

  test("a token server that fails (500): the registry is failing, try again later", async () => {
    const web = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch(req): Response {
        const url = new URL(req.url);
        if (url.pathname === "/token") return new Response("", { status: 500 });
        return new Response("", {
          status: 401,
          headers: { "www-authenticate": `Bearer realm="${url.origin}/token"` },
        });
      },
    });
    try {
      const result = await session.call("registry_auth", {
        registry_url: `127.0.0.1:${web.port}/a/b`,
        username: "u",
        token: "t",
      });
      expect(result.isError).toBe(true);
      expect(textOf(result)).toContain("busy or failing");
      expect(textOf(result)).not.toMatch(/ConTree/);
    } finally {
      web.stop(true);
    }
  });

  test("an unreachable registry: check the host and the network", async () => {
    const closed = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response() });
    const port = closed.port;
    closed.stop(true);
    const result = await session.call("registry_auth", {
      registry_url: `127.0.0.1:${port}/a/b`,
      username: "u",
      token: "t",
    });
    expect(result.isError).toBe(true);
    expect(textOf(result)).toContain(`Cannot reach the registry '127.0.0.1:${port}'`);
    expect(textOf(result)).not.toMatch(/ConTree|--url/);
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
