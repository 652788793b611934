import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { CloudBackend } from "../../../src/backend/cloud/backend.ts";
import { ContreeHttp, parseRetryAfter } from "../../../src/backend/cloud/http.ts";
import { BackendError } from "../../../src/errors.ts";
import { runSpec } from "../../support/run-spec.ts";
import { startFakeContree, type FakeContree } from "../../support/fake-contree.ts";

let fake: FakeContree;
const opened: CloudBackend[] = [];

function backend(overrides: Partial<ConstructorParameters<typeof CloudBackend>[0]> = {}): CloudBackend {
  const made = new CloudBackend({
    url: fake.url,
    token: fake.token,
    version: "9.9.9",
    retry: { baseDelayMs: 1, maxDelayMs: 5 },
    ...overrides,
  });
  opened.push(made);
  return made;
}

async function caught(promise: Promise<unknown>): Promise<BackendError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof BackendError) return error;
    throw error;
  }
  throw new Error("expected a BackendError");
}

function countOf(method: string, path: string, since: number): number {
  return fake.requests.slice(since).filter((r) => r.method === method && r.path === path).length;
}

beforeAll(async () => {
  fake = await startFakeContree();
});

afterEach(async () => {
  await Promise.all(opened.splice(0).map((b) => b.close()));
});

afterAll(async () => {
  await fake.close();
});

describe("ContreeHttp", () => {
  test("sends auth, user agent and gzip headers, and Content-Type only with a body", async () => {
    const before = fake.requests.length;
    const cloud = backend();
    await cloud.listImages({ limit: 10, offset: 0 });
    const image = fake.addImage({});
    await cloud.setTag(image.uuid, "with/body:1");
    const [get, patch] = fake.requests.slice(before);
    expect(get?.headers.authorization).toBe(`Bearer ${fake.token}`);
    expect(get?.headers["user-agent"]).toMatch(/^contree-mcp\/9\.9\.9 bun\/\S+ \S+\/\S+$/);
    expect(get?.headers.accept).toBe("application/json");
    expect(get?.headers["accept-encoding"]).toContain("gzip");
    expect(get?.headers["content-type"]).toBeUndefined();
    expect(get?.headers.project).toBeUndefined();
    expect(patch?.headers["content-type"]).toBe("application/json");
    expect(patch?.body).toEqual({ tag: "with/body:1" });
  });

  test("sends the Project header when a project is configured", async () => {
    const before = fake.requests.length;
    await backend({ project: "project-e00abc" }).listImages({ limit: 1, offset: 0 });
    expect(fake.requests[before]?.headers.project).toBe("project-e00abc");
  });

  test("strips trailing slashes from the URL and adds /v1", () => {
    const http = new ContreeHttp({ url: "https://contree.example//", token: "t", userAgent: "ua" });
    expect(http.base).toBe("https://contree.example/v1");
    expect(http.url("/images", { limit: 5, tag: undefined })).toBe(
      "https://contree.example/v1/images?limit=5",
    );
    expect(backend({ url: "https://contree.example/" }).description).toBe(
      "ConTree cloud at https://contree.example",
    );
  });

  test("retries a GET on 503 with Retry-After and then succeeds", async () => {
    fake.fail({ method: "GET", path: "/v1/images", status: 503, times: 2, headers: { "Retry-After": "0" } });
    const before = fake.requests.length;
    const images = await backend().listImages({ limit: 10, offset: 0 });
    expect(Array.isArray(images)).toBe(true);
    expect(countOf("GET", "/v1/images", before)).toBe(3);
  });

  test("retries a GET on 429 and 410 with Retry-After, but not a 410 without it", async () => {
    const image = fake.addImage({});
    const path = `/v1/inspect/${image.uuid}/`;
    fake.fail({ path, status: 429, headers: { "Retry-After": "0" } });
    fake.fail({ path, status: 410, headers: { "Retry-After": "0" } });
    let before = fake.requests.length;
    expect((await backend().getImage(image.uuid)).uuid).toBe(image.uuid);
    expect(countOf("GET", path, before)).toBe(3);

    fake.fail({ path, status: 410, body: { error: "gone", status: 410 } });
    before = fake.requests.length;
    const error = await caught(backend().getImage(image.uuid));
    expect(error.code).toBe("not_found");
    expect(countOf("GET", path, before)).toBe(1);
  });

  test("gives up after the configured attempts and reports the last status", async () => {
    fake.fail({ path: "/v1/images", status: 502, times: 3, body: "bad gateway" });
    const before = fake.requests.length;
    const error = await caught(
      backend({ retry: { attempts: 3, baseDelayMs: 1 } }).listImages({ limit: 1, offset: 0 }),
    );
    expect(error.code).toBe("unavailable");
    expect(error.status).toBe(502);
    expect(error.detail).toBe("bad gateway");
    expect(countOf("GET", "/v1/images", before)).toBe(3);
  });

  test("does not retry a POST on 500", async () => {
    const image = fake.addImage({});
    fake.fail({ method: "POST", path: "/v1/instances", status: 500, body: { error: "boom", status: 500 } });
    const before = fake.requests.length;
    const error = await caught(
      backend().run(runSpec(image.uuid, "echo hi", { timeoutS: 30, keepOutputBytes: 8000 })),
    );
    expect(error.code).toBe("unavailable");
    expect(error.detail).toBe("boom");
    expect(countOf("POST", "/v1/instances", before)).toBe(1);
  });

  test("retries a POST on 429 and 425 (rejected before processing)", async () => {
    const image = fake.addImage({});
    fake.fail({ method: "POST", path: "/v1/instances", status: 429, headers: { "Retry-After": "0" } });
    fake.fail({ method: "POST", path: "/v1/instances", status: 425 });
    const before = fake.requests.length;
    const id = await backend().run(runSpec(image.uuid, "echo hi", { timeoutS: 30, keepOutputBytes: 8000 }));
    expect(fake.state.operations.has(id)).toBe(true);
    expect(countOf("POST", "/v1/instances", before)).toBe(3);
  });

  test("a 3xx that fetch cannot follow is a protocol error, not a body", async () => {
    fake.fail({ path: "/v1/images", status: 300, body: "<html>choose one</html>" });
    const error = await caught(backend().listImages({ limit: 1, offset: 0 }));
    expect(error.code).toBe("protocol");
    expect(error.status).toBe(300);
  });

  test("401 is unauthorized and the token never shows in the error", async () => {
    const error = await caught(backend({ token: "wrong-secret-token" }).listImages({ limit: 1, offset: 0 }));
    expect(error.code).toBe("unauthorized");
    expect(error.status).toBe(401);
    expect(error.detail).toBe("invalid or missing token");
    expect(error.message).not.toContain("wrong-secret-token");
    expect(JSON.stringify({ ...error, message: error.message })).not.toContain("wrong-secret-token");
  });

  test("404 is not_found with method, URL and status", async () => {
    const missing = "00000000-0000-0000-0000-00000000dead";
    const error = await caught(backend().getImage(missing));
    expect(error.code).toBe("not_found");
    expect(error.method).toBe("GET");
    expect(error.url).toBe(`${fake.url}/v1/inspect/${missing}/`);
    expect(error.status).toBe(404);
    expect(error.message).toContain(`[GET] "${fake.url}/v1/inspect/${missing}/": 404 image not found`);
    expect(error.message).not.toContain(fake.token);
  });

  test("a non-JSON error body becomes the detail, trimmed and cut", async () => {
    fake.fail({
      path: "/v1/images",
      status: 400,
      body: `  ${"x".repeat(2000)}  `,
      headers: { "Content-Type": "text/plain" },
    });
    const error = await caught(backend().listImages({ limit: 1, offset: 0 }));
    expect(error.code).toBe("invalid");
    expect(error.detail.length).toBeLessThan(600);
    expect(error.detail.startsWith("xxx")).toBe(true);
  });

  test("400 from the service for a limit outside 1..1000", async () => {
    const error = await caught(backend().listImages({ limit: 0, offset: 0 }));
    expect(error.code).toBe("invalid");
    expect(error.detail).toBe("limit must be between 1 and 1000");
  });

  test("an unreachable port is unreachable, names the URL and hides the token", async () => {
    const server = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response("") });
    const url = `http://127.0.0.1:${server.port}`;
    await server.stop(true);
    const cloud = backend({ url, token: "very-secret-token", retry: { attempts: 2, baseDelayMs: 1 } });
    const error = await caught(cloud.listImages({ limit: 1, offset: 0 }));
    expect(error.code).toBe("unreachable");
    expect(error.url).toBe(`${url}/v1/images?limit=1&offset=0`);
    expect(error.message).toContain(url);
    expect(error.message).not.toContain("very-secret-token");
  });

  test("a connection that breaks mid-reply is retried for a GET", async () => {
    fake.fail({ path: "/v1/images", status: 200, drop: true });
    const before = fake.requests.length;
    const images = await backend().listImages({ limit: 1, offset: 0 });
    expect(Array.isArray(images)).toBe(true);
    expect(countOf("GET", "/v1/images", before)).toBe(2);
  });

  test("a reply slower than the timeout is unreachable", async () => {
    const slow = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      fetch: async () => {
        await Bun.sleep(500);
        return Response.json({ images: [] });
      },
    });
    try {
      const cloud = backend({ url: `http://127.0.0.1:${slow.port}`, timeoutMs: 50, retry: { attempts: 1 } });
      const error = await caught(cloud.listImages({ limit: 1, offset: 0 }));
      expect(error.code).toBe("unreachable");
      expect(error.detail).toContain("within 50 ms");
    } finally {
      await slow.stop(true);
    }
  });

  test("close() aborts requests in flight", async () => {
    const hanging = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      fetch: async () => {
        await Bun.sleep(2000);
        return Response.json({ images: [] });
      },
    });
    try {
      const cloud = backend({ url: `http://127.0.0.1:${hanging.port}` });
      const pending = caught(cloud.listImages({ limit: 1, offset: 0 }));
      await Bun.sleep(20);
      await cloud.close();
      const error = await pending;
      expect(error.code).toBe("unreachable");
      expect(error.detail).toContain("closed");
    } finally {
      await hanging.stop(true);
    }
  });

  test("bounds concurrent requests", async () => {
    let active = 0;
    let peak = 0;
    const counting = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      fetch: async () => {
        active++;
        peak = Math.max(peak, active);
        await Bun.sleep(10);
        active--;
        return Response.json({ images: [] });
      },
    });
    try {
      const cloud = backend({ url: `http://127.0.0.1:${counting.port}`, maxConcurrent: 2 });
      await Promise.all(Array.from({ length: 8 }, () => cloud.listImages({ limit: 1, offset: 0 })));
      expect(peak).toBeLessThanOrEqual(2);
    } finally {
      await counting.stop(true);
    }
  });

  test("parses Retry-After as seconds or an HTTP date, capped", () => {
    expect(parseRetryAfter("2")).toBe(2000);
    expect(parseRetryAfter("3600")).toBe(30_000);
    const now = Date.parse("2026-01-01T00:00:00Z");
    expect(parseRetryAfter("Thu, 01 Jan 2026 00:00:05 GMT", now)).toBe(5000);
    expect(parseRetryAfter("Wed, 31 Dec 2025 23:00:00 GMT", now)).toBe(0);
    expect(parseRetryAfter("soon")).toBeNull();
    expect(parseRetryAfter(null)).toBeNull();
  });
});

describe("replies", () => {
  test("gzip replies decode, for JSON and for streams", async () => {
    const zipped = await startFakeContree({ gzip: true });
    try {
      const image = zipped.addImage({ tag: "zip/me:1", files: { "/data.txt": "hello gzip\n" } });
      const cloud = backend({ url: zipped.url, token: zipped.token });
      expect((await cloud.getImageByTag("zip/me:1")).uuid).toBe(image.uuid);
      const text = await new Response(await cloud.readFile(image.uuid, "/data.txt")).text();
      expect(text).toBe("hello gzip\n");
      const error = await caught(cloud.getImage("00000000-0000-0000-0000-000000000000"));
      expect(error.detail).toBe("image not found");
    } finally {
      await zipped.close();
    }
  });

  test("an operation reply of 2 MiB is read whole", async () => {
    const big = await startFakeContree({
      stepMs: 1,
      execute: () => ({ exitCode: 0, stdout: "y".repeat(2 * 1024 * 1024) }),
    });
    try {
      const image = big.addImage({});
      const cloud = backend({ url: big.url, token: big.token });
      const id = await cloud.run({
        ...runSpec(image.uuid, "echo hi", { timeoutS: 30, keepOutputBytes: 8000 }),
        keepOutputBytes: 4 * 1024 * 1024,
      });
      let op = await cloud.getOperation(id);
      while (op.status !== "SUCCESS") {
        await Bun.sleep(5);
        op = await cloud.getOperation(id);
      }
      expect(op.result?.stdout.bytes.length).toBe(2 * 1024 * 1024);
      expect(op.result?.stdout.truncated).toBe(false);
    } finally {
      await big.close();
    }
  });

  test("operation lists come as an envelope or a bare array", async () => {
    for (const listEnvelope of [true, false]) {
      const service = await startFakeContree({ listEnvelope });
      try {
        const image = service.addImage({});
        const cloud = backend({ url: service.url, token: service.token });
        const id = await cloud.run(runSpec(image.uuid, "echo hi", { timeoutS: 30, keepOutputBytes: 8000 }));
        const listed = await cloud.listOperations({ limit: 10, offset: 0 });
        expect(listed.map((op) => op.id)).toEqual([id]);
        expect(listed[0]?.kind).toBe("instance");
      } finally {
        await service.close();
      }
    }
  });

  test("kind and status are case-insensitive and unknown fields are ignored", async () => {
    const id = "0b3c1d9e-0000-4000-8000-000000000001";
    fake.fail({
      path: `/v1/operations/${id}`,
      status: 200,
      body: {
        uuid: id,
        kind: "INSTANCE",
        status: "success",
        brand_new_field: { nested: true },
        metadata: {
          command: "true",
          image: "img",
          disposable: true,
          result: { state: { exit_code: 0 }, extra: 1 },
        },
      },
    });
    fake.fail({
      path: "/v1/operations",
      status: 200,
      body: [{ uuid: id, kind: "Image_Import", status: "executing", surprise: 1 }],
    });
    const cloud = backend();
    const op = await cloud.getOperation(id);
    expect(op.kind).toBe("instance");
    expect(op.status).toBe("SUCCESS");
    expect(op.result?.exit.exitCode).toBe(0);
    const [summary] = await cloud.listOperations({ limit: 1, offset: 0 });
    expect(summary).toEqual({ id, kind: "image_import", status: "EXECUTING", error: null, createdAt: "" });
  });

  test("a reply without uuid or status is a protocol error", async () => {
    const id = "0b3c1d9e-0000-4000-8000-000000000002";
    fake.fail({ path: `/v1/operations/${id}`, status: 200, body: { uuid: id } });
    expect((await caught(backend().getOperation(id))).code).toBe("protocol");
    fake.fail({ path: `/v1/operations/${id}`, status: 200, body: "<html>not json</html>" });
    expect((await caught(backend().getOperation(id))).code).toBe("protocol");
  });
});
