import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { unpackTar } from "modern-tar";
import { CloudBackend } from "../../../src/backend/cloud/backend.ts";
import { isTerminal, type Operation, type RunSpec } from "../../../src/backend/types.ts";
import { BackendError } from "../../../src/errors.ts";
import { runSpec } from "../../support/run-spec.ts";
import { startFakeContree, type FakeContree, cloudBackendFor } from "../../support/fake-contree.ts";

let fake: FakeContree;
let cloud: CloudBackend;

function spec(image: string, overrides: Partial<RunSpec> = {}): RunSpec {
  return runSpec(image, "echo hi", { timeoutS: 30, keepOutputBytes: 8000, ...overrides });
}

async function settle(id: string, on: CloudBackend = cloud): Promise<Operation> {
  for (;;) {
    const op = await on.getOperation(id);
    if (isTerminal(op.status)) return op;
    await Bun.sleep(5);
  }
}

function lastBody(path: string): Record<string, unknown> {
  return fake.requests.filter((r) => r.method === "POST" && r.path === path).at(-1)?.body as Record<
    string,
    unknown
  >;
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

beforeAll(async () => {
  fake = await startFakeContree({ stepMs: 5 });
  cloud = cloudBackendFor(fake);
});

afterAll(async () => {
  await cloud.close();
  await fake.close();
});

describe("images", () => {
  test("listImages sends only the set filters and parses the envelope", async () => {
    const tagged = fake.addImage({ tag: "list/me:1" });
    fake.addImage({});
    const images = await cloud.listImages({ limit: 50, offset: 0, tagged: true, tagPrefix: "list/" });
    expect(images).toEqual([{ uuid: tagged.uuid, tag: "list/me:1", createdAt: tagged.createdAt }]);
    expect(fake.requests.at(-1)?.query).toEqual({ limit: "50", offset: "0", tagged: "1", tag: "list" });
    await cloud.listImages({ limit: 5, offset: 2, tagged: false, since: "2h" });
    expect(fake.requests.at(-1)?.query).toEqual({ limit: "5", offset: "2", tagged: "0", since: "2h" });
  });

  test("getImageByTag follows the 302 to the image; an unknown tag is not_found", async () => {
    const image = fake.addImage({ tag: "by/tag:2" });
    expect(await cloud.getImageByTag("by/tag:2")).toEqual({
      uuid: image.uuid,
      tag: "by/tag:2",
      createdAt: image.createdAt,
    });
    const error = await caught(cloud.getImageByTag("no/such:tag"));
    expect(error.code).toBe("not_found");
  });

  test("setTag moves a tag; removeTag clears it", async () => {
    const first = fake.addImage({ tag: "moving:1" });
    const second = fake.addImage({});
    expect((await cloud.setTag(second.uuid, "moving:1")).tag).toBe("moving:1");
    expect((await cloud.getImage(first.uuid)).tag).toBeNull();
    const untagged = await cloud.removeTag(second.uuid);
    expect(untagged).toEqual({ uuid: second.uuid, tag: null, createdAt: second.createdAt });
    const calls = fake.requests.slice(-2).map((r) => `${r.method} ${r.path}`);
    expect(calls).toEqual([`DELETE /v1/images/${second.uuid}/tag`, `GET /v1/inspect/${second.uuid}/`]);
  });

  test("importImage sends registry, tag and timeout, credentials only when given", async () => {
    const id = await cloud.importImage({
      registryUrl: "docker://docker.io/library/alpine:3",
      tag: "alpine:3",
      timeoutS: 300,
    });
    expect(lastBody("/v1/images/import")).toEqual({
      registry: { url: "docker://docker.io/library/alpine:3" },
      tag: "alpine:3",
      timeout: 300,
    });
    const op = await settle(id);
    expect(op).toMatchObject({ kind: "image_import", status: "SUCCESS", resultTag: "alpine:3" });
    expect(op.registryUrl).toBe("docker://docker.io/library/alpine:3");
    expect((await cloud.getImageByTag("alpine:3")).uuid).toBe(op.resultImage!);

    await cloud.importImage({
      registryUrl: "docker://ghcr.io/me/private:1",
      credentials: { username: "me", password: "pat" },
      timeoutS: 60,
    });
    expect(lastBody("/v1/images/import")).toEqual({
      registry: { url: "docker://ghcr.io/me/private:1", credentials: { username: "me", password: "pat" } },
      timeout: 60,
    });
  });

  test("a failed import carries the service's error", async () => {
    const op = await settle(
      await cloud.importImage({ registryUrl: "docker://x/does-not-exist:1", timeoutS: 60 }),
    );
    expect(op.status).toBe("FAILED");
    expect(op.error).toBe("manifest unknown");
    expect(op.resultImage).toBeNull();
  });
});

describe("operations", () => {
  test("run sends only set fields, with files as 4-digit octal modes", async () => {
    const image = fake.addImage({});
    const content = new TextEncoder().encode("#!/bin/sh\necho tool\n");
    const sha256 = createHash("sha256").update(content).digest("hex");
    const file = await cloud.uploadFile(new Blob([content]), sha256);
    await cloud.run(
      spec(image.uuid, {
        command: "ls",
        env: { A: "1" },
        files: { "/usr/local/bin/tool": { uuid: file.uuid, mode: 0o755 } },
      }),
    );
    expect(lastBody("/v1/instances")).toEqual({
      command: "ls",
      image: image.uuid,
      shell: true,
      env: { A: "1" },
      cwd: "/root",
      timeout: 30,
      disposable: true,
      truncate_output_at: 8000,
      files: { "/usr/local/bin/tool": { uuid: file.uuid, mode: "0755", uid: 0, gid: 0 } },
    });

    await cloud.run(
      spec(image.uuid, {
        command: "cat",
        args: ["-n"],
        shell: false,
        hostname: "box",
        stdin: new TextEncoder().encode("hi\n"),
      }),
    );
    const body = lastBody("/v1/instances");
    expect(body.args).toEqual(["-n"]);
    expect(body.hostname).toBe("box");
    expect(body.stdin).toEqual({ value: "hi\n", encoding: "ascii" });
    expect(body.files).toBeUndefined();

    await cloud.run(spec(image.uuid, { stdin: new Uint8Array([0, 255, 10]) }));
    expect(lastBody("/v1/instances").stdin).toEqual({ value: "AP8K", encoding: "base64" });
    expect(lastBody("/v1/instances").args).toBeUndefined();
  });

  test("a run reports exit, output, resources and the input image", async () => {
    const image = fake.addImage({});
    const op = await settle(await cloud.run(spec(image.uuid, { command: "exit 3", disposable: false })));
    expect(op).toMatchObject({
      kind: "instance",
      status: "SUCCESS",
      inputImage: image.uuid,
      command: "exit 3",
      disposable: false,
    });
    expect(op.result?.exit).toEqual({ exitCode: 3, signal: null, timedOut: false });
    // Nothing changed: the result is the input image.
    expect(op.resultImage).toBe(image.uuid);
    expect(op.result?.resources.max_rss).toBeUndefined();
    expect(typeof op.result?.resources.elapsed_time).toBe("number");

    const echoed = await settle(await cloud.run(spec(image.uuid)));
    expect(new TextDecoder().decode(echoed.result?.stdout.bytes)).toBe("ran: echo hi\n");
    expect(echoed.resultImage).toBeNull();
  });

  test("a non-disposable run with injected files yields a child image", async () => {
    const image = fake.addImage({});
    const content = new TextEncoder().encode("data");
    const file = await cloud.uploadFile(
      new Blob([content]),
      createHash("sha256").update(content).digest("hex"),
    );
    const op = await settle(
      await cloud.run(
        spec(image.uuid, { disposable: false, files: { "/root/data": { uuid: file.uuid, mode: 0o600 } } }),
      ),
    );
    expect(op.resultImage).not.toBe(image.uuid);
    expect(fake.state.images.get(op.resultImage!)?.parent).toBe(image.uuid);
    const listing = await cloud.listDirectory(op.resultImage!, "/root");
    expect(listing.entries).toMatchObject([{ name: "data", type: "file", size: 4, mode: 0o600 }]);
  });

  test("run and import fall back to the Location header when the body has no uuid", async () => {
    const located = await startFakeContree({ spawnReply: "location", stepMs: 1 });
    const client = new CloudBackend({ url: located.url, token: located.token, version: "test" });
    try {
      const image = located.addImage({});
      const runId = await client.run(spec(image.uuid));
      expect(located.state.operations.has(runId)).toBe(true);
      const importId = await client.importImage({
        registryUrl: "docker://docker.io/library/busybox:1",
        timeoutS: 60,
      });
      expect(located.state.operations.get(importId)?.kind).toBe("image_import");
    } finally {
      await client.close();
      await located.close();
    }
  });

  test("a spawn reply with neither uuid nor Location is a protocol error", async () => {
    fake.fail({ method: "POST", path: "/v1/instances", status: 201, body: "" });
    const error = await caught(cloud.run(spec(fake.addImage({}).uuid)));
    expect(error.code).toBe("protocol");
    expect(error.detail).toContain("no operation id");
  });

  test("listOperations filters by status and kind", async () => {
    await settle(await cloud.run(spec(fake.addImage({}).uuid)));
    const listed = await cloud.listOperations({ limit: 100, offset: 0, status: "SUCCESS", kind: "instance" });
    expect(listed.length).toBeGreaterThan(0);
    expect(listed.every((op) => op.kind === "instance" && op.status === "SUCCESS")).toBe(true);
    expect(fake.requests.at(-1)?.query).toEqual({
      limit: "100",
      offset: "0",
      status: "SUCCESS",
      kind: "instance",
    });
  });

  test("cancelOperation stops a running op and ignores a terminal one", async () => {
    const id = await cloud.run(spec(fake.addImage({}).uuid, { command: "sleep 5" }));
    await cloud.cancelOperation(id);
    expect((await cloud.getOperation(id)).status).toBe("CANCELLED");
    // Already terminal: the service answers 409, which is not an error for us.
    await cloud.cancelOperation(id);
    expect(fake.requests.at(-1)?.method).toBe("DELETE");
    const error = await caught(cloud.cancelOperation("00000000-0000-0000-0000-000000000000"));
    expect(error.code).toBe("not_found");
  });

  test("a run longer than its timeout reports timed out with no exit code", async () => {
    const op = await settle(
      await cloud.run(spec(fake.addImage({}).uuid, { command: "sleep 5", timeoutS: 0.05 })),
    );
    expect(op.result?.exit).toEqual({ exitCode: null, signal: 9, timedOut: true });
  });
});

describe("files", () => {
  test("findFile is null until the upload, then finds it by sha256 (dedup)", async () => {
    const content = new TextEncoder().encode(`unique ${crypto.randomUUID()}`);
    const sha256 = createHash("sha256").update(content).digest("hex");
    expect(await cloud.findFile(sha256)).toBeNull();
    const uploaded = await cloud.uploadFile(new Blob([content]), sha256);
    expect(uploaded).toEqual({ uuid: expect.any(String), sha256, size: content.length });
    const upload = fake.requests.at(-1);
    expect(upload?.headers["content-type"]).toBe("application/octet-stream");
    expect(upload?.bodySize).toBe(content.length);
    expect(await cloud.findFile(sha256)).toEqual(uploaded);
    expect(fake.requests.at(-1)?.path).toBe(`/v1/files/${sha256}`);
    expect((await cloud.uploadFile(new Blob([content]), sha256)).uuid).toBe(uploaded.uuid);
  });

  test("findFile tolerates a files envelope", async () => {
    const sha = "a".repeat(64);
    fake.fail({
      path: `/v1/files/${sha}`,
      status: 200,
      body: { files: [{ uuid: "u-1", sha256: sha, size: 3 }] },
    });
    expect(await cloud.findFile(sha)).toEqual({ uuid: "u-1", sha256: sha, size: 3 });
    fake.fail({
      path: `/v1/files/${sha}`,
      status: 200,
      body: { files: [{ uuid: "u-2", sha256: "b".repeat(64) }] },
    });
    expect(await cloud.findFile(sha)).toBeNull();
  });
});

describe("inspect", () => {
  let image: string;

  beforeAll(() => {
    image = fake.addImage({
      tag: "inspect/me:1",
      files: {
        "/app/main.py": "print('hi')\n",
        "/app/run.sh": { content: "#!/bin/sh\n", mode: 0o755 },
        "/app/lib/util.py": "x = 1\n",
        "/app/link": { content: "", symlinkTo: "main.py" },
        "/bin/blob": new Uint8Array([0, 1, 2, 255]),
      },
    }).uuid;
  });

  test("listDirectory maps entries: name, type, mode without type bits, owner, target", async () => {
    const listing = await cloud.listDirectory(image, "/app");
    expect(listing.path).toBe("/app");
    const byName = Object.fromEntries(listing.entries.map((entry) => [entry.name, entry]));
    expect(Object.keys(byName).toSorted()).toEqual(["lib", "link", "main.py", "run.sh"]);
    expect(byName["main.py"]).toMatchObject({
      type: "file",
      size: 12,
      mode: 0o644,
      owner: "root",
      group: "root",
      target: null,
    });
    expect(byName["run.sh"]?.mode).toBe(0o755);
    expect(byName.lib).toMatchObject({ type: "directory", mode: 0o755 });
    expect(byName.link).toMatchObject({ type: "symlink", target: "main.py" });
    expect(fake.requests.at(-1)?.query).toEqual({ path: "/app" });
  });

  test("listDirectory of a missing path is not_found", async () => {
    expect((await caught(cloud.listDirectory(image, "/nope"))).code).toBe("not_found");
  });

  test("readFile streams bytes; a missing file is not_found and a directory invalid", async () => {
    const bytes = new Uint8Array(await new Response(await cloud.readFile(image, "/bin/blob")).arrayBuffer());
    expect([...bytes]).toEqual([0, 1, 2, 255]);
    expect((await caught(cloud.readFile(image, "/app/missing"))).code).toBe("not_found");
    expect((await caught(cloud.readFile(image, "/app"))).code).toBe("invalid");
  });

  test("archive streams a tar of the directory", async () => {
    const tar = new Uint8Array(await new Response(await cloud.archive(image, "/app")).arrayBuffer());
    const entries = await unpackTar(tar);
    const names = entries.map((entry) => entry.header.name).toSorted();
    expect(names).toEqual(["lib/", "lib/util.py", "link", "main.py", "run.sh"]);
    const main = entries.find((entry) => entry.header.name === "main.py");
    expect(new TextDecoder().decode(main?.data)).toBe("print('hi')\n");
  });
});
