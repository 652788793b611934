import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { serveContreeApi } from "../../../src/backend/local/rest.ts";
import { canRunLocal, localProblem, openFixture, type LocalFixture } from "./helpers.ts";
import { ROOTLESS } from "../../../src/backend/local/fsx.ts";

const needs = `(needs bwrap, overlayfs: ${localProblem ?? (ROOTLESS ? "available, rootless" : "available")})`;
const TOKEN = "local-test-token";

describe.skipIf(!canRunLocal)(`the ConTree v1 REST API over the local backend ${needs}`, () => {
  let fx: LocalFixture;
  let server: ReturnType<typeof serveContreeApi>;
  let base: string;
  const api = (path: string, init: RequestInit = {}) =>
    fetch(`${base}${path}`, {
      ...init,
      redirect: "manual",
      headers: { authorization: `Bearer ${TOKEN}`, ...(init.headers as Record<string, string>) },
    });

  async function finished(id: string): Promise<Record<string, unknown>> {
    for (let i = 0; i < 1000; i++) {
      const op = (await (await api(`/v1/operations/${id}`)).json()) as Record<string, unknown>;
      if (["SUCCESS", "FAILED", "CANCELLED"].includes(op.status as string)) return op;
      await Bun.sleep(10);
    }
    throw new Error("operation did not finish");
  }

  beforeAll(async () => {
    fx = await openFixture();
    server = serveContreeApi(fx.backend, { port: 0, token: TOKEN });
    base = `http://127.0.0.1:${server.port}`;
  });
  afterAll(async () => {
    await server?.stop(true);
    await fx?.close();
  });

  test("requests without the exact bearer token are refused with 401", async () => {
    const response = await fetch(`${base}/v1/images`);
    expect(response.status).toBe(401);
    expect(await response.json()).toMatchObject({ status: 401 });
    for (const header of [`Bearer ${TOKEN.slice(0, -1)}`, `Bearer ${TOKEN}x`, TOKEN, `Bearer  ${TOKEN}`]) {
      const wrong = await fetch(`${base}/v1/images`, { headers: { authorization: header } });
      expect(wrong.status).toBe(401);
    }
    const right = await fetch(`${base}/v1/images`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(right.status).toBe(200);
  });

  test("upload, run with a file and stdin, read the operation, inspect the child image", async () => {
    const upload = await api("/v1/files", { method: "POST", body: "print me\n" });
    expect(upload.status).toBe(201);
    const file = (await upload.json()) as { uuid: string; sha256: string };
    expect((await api(`/v1/files/${file.sha256}`, { method: "HEAD" })).status).toBe(200);
    expect((await api(`/v1/files/${"0".repeat(64)}`, { method: "HEAD" })).status).toBe(404);

    const started = await api("/v1/instances", {
      method: "POST",
      body: JSON.stringify({
        command: "cat /app/in.txt; cat; echo saved > /app/out.txt; exit 3",
        image: "tag:busybox",
        disposable: false,
        stdin: { value: Buffer.from("from stdin\n").toString("base64"), encoding: "base64" },
        files: { "/app/in.txt": { uuid: file.uuid, mode: "0600" } },
      }),
    });
    expect(started.status).toBe(201);
    const { uuid } = (await started.json()) as { uuid: string };
    expect(started.headers.get("location")).toBe(`/v1/operations/${uuid}`);
    const op = await finished(uuid);
    expect(op).toMatchObject({ status: "SUCCESS", kind: "instance" });
    const result = (op.metadata as { result: { state: { exit_code: number }; stdout: unknown } }).result;
    expect(result.state.exit_code).toBe(3);
    expect(result.stdout).toEqual({ value: "print me\nfrom stdin\n", encoding: "ascii", truncated: false });
    const child = op.result_image_uuid as string;
    expect(child).not.toBe(fx.image);

    const listing = (await (await api(`/v1/inspect/${child}/list?path=/app`)).json()) as {
      files: { path: string; mode: number; is_regular: boolean }[];
    };
    expect(listing.files.map((f) => [f.path, f.mode, f.is_regular])).toEqual([
      ["/app/in.txt", 0o600, true],
      ["/app/out.txt", 0o644, true],
    ]);
    expect(await (await api(`/v1/inspect/${child}/download?path=/app/out.txt`)).text()).toBe("saved\n");
    expect((await api(`/v1/inspect/${child}/download?path=/app/none`)).status).toBe(404);
    expect((await api(`/v1/inspect/${child}/download?path=/app`)).status).toBe(422);
    const archive = await api(`/v1/inspect/${child}/archive?path=/app`);
    expect(archive.headers.get("content-type")).toBe("application/x-tar");
    expect((await archive.arrayBuffer()).byteLength).toBeGreaterThan(1024);
  });

  test("tags, image lists, inspect by tag, and the limit check", async () => {
    const tagged = await api(`/v1/images/${fx.image}/tag`, {
      method: "PATCH",
      body: JSON.stringify({ tag: "rest/bb" }),
    });
    expect(await tagged.json()).toMatchObject({ uuid: fx.image, tag: "rest/bb" });
    const redirect = await api("/v1/inspect/?tag=rest/bb");
    expect(redirect.status).toBe(302);
    expect(redirect.headers.get("location")).toBe(`${fx.image}/`);
    const list = (await (await api("/v1/images?tagged=1&tag=rest/")).json()) as {
      images: { uuid: string }[];
    };
    expect(list.images.map((i) => i.uuid)).toEqual([fx.image]);
    expect((await api("/v1/images?limit=0")).status).toBe(400);
    expect((await api(`/v1/images/${fx.image}/tag`, { method: "DELETE" })).status).toBe(200);
    expect((await api(`/v1/images/${crypto.randomUUID()}/tag`, { method: "DELETE" })).status).toBe(404);
  });

  test("cancel: 202 while running, 409 once terminal", async () => {
    const started = await api("/v1/instances", {
      method: "POST",
      body: JSON.stringify({ command: "sleep 100", image: fx.image }),
    });
    const { uuid } = (await started.json()) as { uuid: string };
    expect((await api(`/v1/operations/${uuid}`, { method: "DELETE" })).status).toBe(202);
    expect((await finished(uuid)).status).toBe("CANCELLED");
    const again = await api(`/v1/operations/${uuid}`, { method: "DELETE" });
    expect(again.status).toBe(409);
    expect(await again.json()).toEqual({ error: "operation is not cancellable", status: 409 });
    const listed = (await (await api("/v1/operations?status=CANCELLED")).json()) as { uuid: string }[];
    expect(listed.map((op) => op.uuid)).toContain(uuid);
  });
});
