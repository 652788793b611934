import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { BackendError } from "../../src/errors.ts";
import { parseChallenge, RegistryClient, validateCredentials } from "../../src/registry/auth.ts";
import { parseImageReference } from "../../src/registry/reference.ts";
import {
  hasDockerRegistry,
  MEDIA_TYPES,
  pushImage,
  sha256Digest,
  startTestRegistry,
  type PushedImage,
  type TestRegistry,
} from "../support/registry.ts";

const MANIFEST_ACCEPT = [
  MEDIA_TYPES.oci.index,
  MEDIA_TYPES.oci.manifest,
  MEDIA_TYPES.docker.index,
  MEDIA_TYPES.docker.manifest,
].join(", ");

async function caught(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected a rejection");
}

describe("parseChallenge", () => {
  test("Bearer with realm, service and a scope holding commas inside quotes", () => {
    expect(
      parseChallenge(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/python:pull,push"',
      ),
    ).toEqual({
      scheme: "bearer",
      realm: "https://auth.docker.io/token",
      service: "registry.docker.io",
      scope: "repository:library/python:pull,push",
    });
  });

  test("scheme and parameter names are case-insensitive; spaces around commas and '=' are fine", () => {
    expect(parseChallenge('bEaReR Realm = "https://x/token" ,  SERVICE=reg')).toEqual({
      scheme: "bearer",
      realm: "https://x/token",
      service: "reg",
    });
  });

  test("Basic with and without realm", () => {
    expect(parseChallenge('Basic realm="probe-realm"')).toEqual({ scheme: "basic", realm: "probe-realm" });
    expect(parseChallenge("basic")).toEqual({ scheme: "basic", realm: "" });
  });

  test("escaped quotes inside a quoted value", () => {
    expect(parseChallenge('Bearer realm="https://x/t?a=\\"b\\""')?.realm).toBe('https://x/t?a="b"');
  });

  test("prefers Bearer when several challenges are offered", () => {
    expect(parseChallenge('Basic realm="b", Bearer realm="https://t/token", service="s"')).toEqual({
      scheme: "bearer",
      realm: "https://t/token",
      service: "s",
    });
  });

  test("null for missing, unknown or realm-less Bearer challenges", () => {
    expect(parseChallenge(null)).toBeNull();
    expect(parseChallenge("")).toBeNull();
    expect(parseChallenge('Negotiate abc, Digest realm="x"')).toBeNull();
    expect(parseChallenge('Bearer service="s"')).toBeNull();
  });
});

describe("RegistryClient against a scripted server", () => {
  test("a redirect to another host keeps Authorization off that host", async () => {
    const seen: { host: string; authorization: string | null }[] = [];
    const storage = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch(req) {
        seen.push({ host: "storage", authorization: req.headers.get("authorization") });
        return new Response("blob-bytes");
      },
    });
    const registry = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch(req) {
        const authorization = req.headers.get("authorization");
        seen.push({ host: "registry", authorization });
        if (authorization !== "Basic dTpw") {
          return new Response("", { status: 401, headers: { "www-authenticate": 'Basic realm="r"' } });
        }
        const url = new URL(req.url);
        if (url.pathname.endsWith("/same")) return Response.redirect(`/v2/x/blobs/target`, 307);
        if (url.pathname.endsWith("/target")) return new Response("same-host");
        return Response.redirect(`http://127.0.0.1:${storage.port}/bucket/blob?sig=1`, 307);
      },
    });
    try {
      const ref = parseImageReference(`127.0.0.1:${registry.port}/x`);
      const client = new RegistryClient(ref, { username: "u", password: "p" });
      const response = await client.fetch("/v2/x/blobs/sha256:abc");
      expect(await response.text()).toBe("blob-bytes");
      expect(seen).toEqual([
        { host: "registry", authorization: null },
        { host: "registry", authorization: "Basic dTpw" },
        { host: "storage", authorization: null },
      ]);
      // Same-host redirects keep the credentials, which the first request taught the client.
      seen.length = 0;
      expect(await (await client.fetch("/v2/x/blobs/same")).text()).toBe("same-host");
      expect(seen.map((s) => s.authorization)).toEqual(["Basic dTpw", "Basic dTpw"]);
    } finally {
      registry.stop(true);
      storage.stop(true);
    }
  });

  test("reads access_token, caches it per scope, and fetches a new one when the registry refuses it", async () => {
    let issued = 0;
    let revoked = "";
    const tokens = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch(req) {
        issued++;
        const url = new URL(req.url);
        expect(url.searchParams.get("service")).toBe("svc");
        expect(url.searchParams.get("scope")).toBe("repository:team/app:pull");
        return Response.json({ access_token: `tok-${issued}`, expires_in: 3600 });
      },
    });
    const registry = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch(req) {
        const authorization = req.headers.get("authorization");
        if (!authorization || authorization === revoked) {
          // No scope in the challenge: the client falls back to repository:<repo>:pull.
          return new Response("", {
            status: 401,
            headers: {
              "www-authenticate": `Bearer realm="http://127.0.0.1:${tokens.port}/token",service="svc"`,
            },
          });
        }
        return new Response(authorization);
      },
    });
    try {
      const client = new RegistryClient(parseImageReference(`127.0.0.1:${registry.port}/team/app`));
      expect(await (await client.fetch("/v2/team/app/manifests/a")).text()).toBe("Bearer tok-1");
      expect(await (await client.fetch("/v2/team/app/manifests/b")).text()).toBe("Bearer tok-1");
      expect(issued).toBe(1);
      revoked = "Bearer tok-1";
      expect(await (await client.fetch("/v2/team/app/manifests/c")).text()).toBe("Bearer tok-2");
      expect(issued).toBe(2);
    } finally {
      registry.stop(true);
      tokens.stop(true);
    }
  });

  test("a token response without a token is a protocol error", async () => {
    const tokens = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => Response.json({ nope: true }) });
    const registry = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch: () =>
        new Response("", {
          status: 401,
          headers: { "www-authenticate": `Bearer realm="http://127.0.0.1:${tokens.port}/token"` },
        }),
    });
    try {
      const client = new RegistryClient(parseImageReference(`127.0.0.1:${registry.port}/a`));
      const error = await caught(client.fetch("/v2/a/manifests/latest"));
      expect(error).toBeInstanceOf(BackendError);
      expect((error as BackendError).code).toBe("protocol");
    } finally {
      registry.stop(true);
      tokens.stop(true);
    }
  });

  test("an unreachable registry is a BackendError 'unreachable' naming the URL", async () => {
    const closed = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response() });
    const port = closed.port;
    closed.stop(true);
    const ref = parseImageReference(`127.0.0.1:${port}/a`);
    const fromClient = await caught(new RegistryClient(ref).fetch("/v2/"));
    expect(fromClient).toBeInstanceOf(BackendError);
    expect((fromClient as BackendError).code).toBe("unreachable");
    expect((fromClient as BackendError).message).toContain(`http://127.0.0.1:${port}/v2/`);

    const fromValidate = await caught(validateCredentials(ref, { username: "u", password: "secret-pw" }));
    expect(fromValidate).toBeInstanceOf(BackendError);
    expect((fromValidate as BackendError).code).toBe("unreachable");
    expect((fromValidate as BackendError).message).toContain(`http://127.0.0.1:${port}/v2/`);
    expect((fromValidate as BackendError).message).not.toContain("secret-pw");
  });

  test("a registry that never answers times out as 'unreachable'", async () => {
    const silent = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch: () => new Promise<Response>(() => {}),
    });
    try {
      const ref = parseImageReference(`127.0.0.1:${silent.port}/a`);
      const error = await caught(new RegistryClient(ref, undefined, { timeoutMs: 100 }).fetch("/v2/"));
      expect(error).toBeInstanceOf(BackendError);
      expect((error as BackendError).code).toBe("unreachable");
      expect((error as BackendError).message).toMatch(/no answer within/);
    } finally {
      silent.stop(true);
    }
  });

  test("an https registry whose token realm is plain http gets no credentials: a clear error instead", async () => {
    const seen: string[] = [];
    // Stands in for the network: an https registry that points its realm at http.
    const network = (async (input: URL | Request | string) => {
      const url = String(input);
      seen.push(url);
      if (url.startsWith("https://registry.example.com/")) {
        return new Response("", {
          status: 401,
          headers: { "www-authenticate": 'Bearer realm="http://auth.example.com/token",service="svc"' },
        });
      }
      return Response.json({ token: "leaked" });
    }) as typeof fetch;
    const ref = parseImageReference("registry.example.com/team/app");
    expect(ref.scheme).toBe("https");
    const credentials = { username: "u", password: "secret-pw" };

    const fromValidate = await caught(validateCredentials(ref, credentials, { fetch: network }));
    expect(fromValidate).toBeInstanceOf(BackendError);
    expect((fromValidate as BackendError).code).toBe("protocol");
    expect((fromValidate as BackendError).message).toContain("http://auth.example.com/token");
    expect((fromValidate as BackendError).message).toMatch(/not https/);

    const fromClient = await caught(
      new RegistryClient(ref, credentials, { fetch: network }).fetch("/v2/team/app/manifests/1"),
    );
    expect(fromClient).toBeInstanceOf(BackendError);
    expect((fromClient as BackendError).code).toBe("protocol");
    expect(seen.filter((url) => !url.startsWith("https://"))).toEqual([]);
  });

  test("a server that is not a registry is reported, not taken as 'invalid credentials'", async () => {
    const web = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch: () => new Response("nope", { status: 404 }),
    });
    try {
      const error = await caught(
        validateCredentials(parseImageReference(`127.0.0.1:${web.port}/a`), { username: "u", password: "p" }),
      );
      expect(error).toBeInstanceOf(BackendError);
      expect((error as BackendError).code).toBe("not_found");
      expect((error as BackendError).message).toMatch(/container registry/);
    } finally {
      web.stop(true);
    }
  });
});

describe.skipIf(!hasDockerRegistry)("against a real docker-registry (needs /usr/bin/docker-registry)", () => {
  const registries: Partial<Record<"none" | "htpasswd" | "token", TestRegistry>> = {};
  const pushed: Partial<Record<"none" | "htpasswd" | "token", PushedImage>> = {};
  const layer = { files: { "etc/hello.txt": "hello from a test layer\n" } };

  beforeAll(async () => {
    for (const auth of ["none", "htpasswd", "token"] as const) {
      const registry = await startTestRegistry({ auth });
      registries[auth] = registry;
      pushed[auth] = await pushImage(registry, "probe/bb", "v1", [layer]);
    }
  });

  afterAll(async () => {
    for (const registry of Object.values(registries)) await registry?.close();
  });

  function refOf(auth: "none" | "htpasswd" | "token"): ReturnType<typeof parseImageReference> {
    return parseImageReference(`docker://${registries[auth]!.host}/probe/bb:v1`);
  }

  test("htpasswd: right password is valid, wrong password and unknown user are not", async () => {
    const registry = registries.htpasswd!;
    const ref = refOf("htpasswd");
    expect(await validateCredentials(ref, { username: registry.username, password: registry.password })).toBe(
      true,
    );
    expect(await validateCredentials(ref, { username: registry.username, password: "wrong" })).toBe(false);
    expect(await validateCredentials(ref, { username: "nobody", password: registry.password })).toBe(false);
  });

  test("token: right password is valid (scope sent), wrong password is not", async () => {
    const registry = registries.token!;
    const ref = refOf("token");
    const before = registry.tokenRequests.length;
    expect(await validateCredentials(ref, { username: registry.username, password: registry.password })).toBe(
      true,
    );
    expect(registry.tokenRequests.slice(before)).toEqual([
      { user: registry.username, scopes: ["repository:probe/bb:pull"] },
    ]);
    expect(await validateCredentials(ref, { username: registry.username, password: "wrong" })).toBe(false);
  });

  test("an open registry accepts any credentials", async () => {
    expect(await validateCredentials(refOf("none"), { username: "any", password: "thing" })).toBe(true);
  });

  test("token: anonymous pull is denied with 401, authenticated pull gets the manifest", async () => {
    const registry = registries.token!;
    const ref = refOf("token");
    const headers = { accept: MANIFEST_ACCEPT };

    const anonymous = await new RegistryClient(ref).fetch("/v2/probe/bb/manifests/v1", { headers });
    expect(anonymous.status).toBe(401);
    await anonymous.body?.cancel();

    const client = new RegistryClient(ref, { username: registry.username, password: registry.password });
    const response = await client.fetch("/v2/probe/bb/manifests/v1", { headers });
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe(MEDIA_TYPES.oci.manifest);
    const body = await response.text();
    expect(sha256Digest(body)).toBe(pushed.token!.digest);

    // The cached token serves the blob too: no second token request for the same scope.
    const tokenCount = registry.tokenRequests.length;
    const manifest = JSON.parse(body) as { layers: { digest: string }[] };
    const blob = await client.fetch(`/v2/probe/bb/blobs/${manifest.layers[0]!.digest}`);
    expect(blob.status).toBe(200);
    const bytes = new Uint8Array(await blob.arrayBuffer());
    expect(sha256Digest(bytes)).toBe(manifest.layers[0]!.digest);
    expect(new TextDecoder().decode(Bun.gunzipSync(bytes))).toContain("hello from a test layer");
    expect(registry.tokenRequests.length).toBe(tokenCount);
  });

  test("token: wrong credentials make the client throw 'unauthorized' without the password", async () => {
    const registry = registries.token!;
    const client = new RegistryClient(refOf("token"), {
      username: registry.username,
      password: "wrong-secret",
    });
    const error = await caught(client.fetch("/v2/probe/bb/manifests/v1"));
    expect(error).toBeInstanceOf(BackendError);
    expect((error as BackendError).code).toBe("unauthorized");
    expect((error as BackendError).message).toContain("probe/bb");
    expect((error as BackendError).message).not.toContain("wrong-secret");
  });

  test("token with anonymousPull: a public repository pulls without credentials", async () => {
    const registry = await startTestRegistry({ auth: "token", anonymousPull: true });
    try {
      const image = await pushImage(registry, "pub/img", "1", [layer]);
      const ref = parseImageReference(`${registry.host}/pub/img:1`);
      const response = await new RegistryClient(ref).fetch("/v2/pub/img/manifests/1", {
        headers: { accept: MANIFEST_ACCEPT },
      });
      expect(response.status).toBe(200);
      expect(sha256Digest(await response.text())).toBe(image.digest);
      expect(registry.tokenRequests.at(-1)).toEqual({ user: null, scopes: ["repository:pub/img:pull"] });
    } finally {
      await registry.close();
    }
  });

  test("htpasswd: the client answers the Basic challenge; without credentials it gets the 401", async () => {
    const registry = registries.htpasswd!;
    const ref = refOf("htpasswd");
    const denied = await new RegistryClient(ref).fetch("/v2/probe/bb/manifests/v1");
    expect(denied.status).toBe(401);
    await denied.body?.cancel();
    const client = new RegistryClient(ref, { username: registry.username, password: registry.password });
    const response = await client.fetch("/v2/probe/bb/manifests/v1", {
      headers: { accept: MANIFEST_ACCEPT },
    });
    expect(response.status).toBe(200);
    expect(sha256Digest(await response.text())).toBe(pushed.htpasswd!.digest);
  });
});
