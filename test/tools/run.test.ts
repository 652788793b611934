import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { CloudBackend } from "../../src/backend/cloud/backend.ts";
import { startFakeContree, cloudBackendFor } from "../support/fake-contree.ts";
import { connect, textOf, type TestSession } from "../support/mcp.ts";

type Fake = Awaited<ReturnType<typeof startFakeContree>>;
interface RunView {
  operation_id: string;
  status: string;
  done: boolean;
  exit_code: number | null;
  stdout: string;
  stderr: string;
  stdout_truncated: boolean;
  output_hint: string | null;
  result_image: string | null;
  filesystem_changed: boolean | null;
  input_image: string | null;
  timed_out: boolean;
  duration_s: number | null;
}

let fake: Fake;
let session: TestSession;
let base: string;

beforeAll(async () => {
  fake = await startFakeContree({
    execute: (meta) => {
      const command = String(meta.command);
      if (command.startsWith("print ")) {
        const size = Number(command.slice(6));
        return { exitCode: 0, stdout: `${"a".repeat(size / 2)}${"z".repeat(size / 2)}`, stderr: "" };
      }
      if (command === "binary") return { exitCode: 0, stdout: Buffer.from([0, 1, 2, 255]), stderr: "" };
      if (command === "touch")
        return { exitCode: 0, stdout: "", stderr: "", changed: { "/root/new.txt": "x" } };
      return undefined;
    },
  });
  session = await connect(cloudBackendFor(fake));
  base = fake.addImage({ tag: "common/base/alpine:3" }).uuid;
});

afterAll(async () => {
  await session?.close();
  await fake?.close();
});

const view = (result: { structuredContent?: unknown }) => result.structuredContent as RunView;

describe("run", () => {
  test("returns a flat result with the command's output", async () => {
    const result = await session.call("run", { command: "echo hi", image: base });
    expect(result.isError).toBeFalsy();
    const run = view(result);
    expect(run.status).toBe("SUCCESS");
    expect(run.done).toBe(true);
    expect(run.exit_code).toBe(0);
    expect(run.stdout).toBe("ran: echo hi\n");
    expect(run.result_image).toBeNull();
    expect(run.input_image).toBe(base);
    expect(textOf(result)).toContain("ran: echo hi");
  });

  test("accepts tag:NAME and sends the resolved UUID with the documented defaults", async () => {
    await session.call("run", { command: "echo tagged", image: "tag:common/base/alpine:3" });
    const request = fake.requests.filter((r) => r.method === "POST" && r.path === "/v1/instances").at(-1);
    const body = request?.body as Record<string, unknown>;
    expect(body.image).toBe(base);
    expect(body.shell).toBe(true);
    expect(body.cwd).toBe("/root");
    expect(body.timeout).toBe(30);
    expect(body.disposable).toBe(true);
  });

  test("a non-zero exit is SUCCESS with its exit code", async () => {
    const run = view(await session.call("run", { command: "exit 3", image: base }));
    expect(run.status).toBe("SUCCESS");
    expect(run.exit_code).toBe(3);
  });

  test("disposable=false that changes files returns a child image", async () => {
    const run = view(await session.call("run", { command: "touch", image: base, disposable: false }));
    expect(run.result_image).toBeTruthy();
    expect(run.result_image).not.toBe(base);
    expect(run.filesystem_changed).toBe(true);
  });

  test("disposable=false that changes nothing returns the same image", async () => {
    const run = view(await session.call("run", { command: "echo same", image: base, disposable: false }));
    expect(run.result_image).toBe(base);
    expect(run.filesystem_changed).toBe(false);
  });

  test("long output is cut in the middle and can be paged with get_operation", async () => {
    const run = view(
      await session.call("run", { command: "print 20000", image: base, truncate_output_at: 1000 }),
    );
    expect(run.stdout_truncated).toBe(true);
    expect(run.stdout.startsWith("a".repeat(250))).toBe(true);
    expect(run.stdout.endsWith("z".repeat(750))).toBe(true);
    expect(run.output_hint).toContain('stream="stdout", offset=250');
    const page = await session.call("get_operation", {
      operation_id: run.operation_id,
      stream: "stdout",
      offset: 250,
      limit: 19000,
    });
    const content = (page.structuredContent as { page: { content: string; next_offset: number | null } })
      .page;
    expect(content.content.length).toBe(19000);
    expect(content.next_offset).toBe(19250);
  });

  test("binary output comes back as base64", async () => {
    const run = view(await session.call("run", { command: "binary", image: base })) as RunView & {
      stdout_encoding: string;
    };
    expect(run.stdout_encoding).toBe("base64");
    expect(Buffer.from(run.stdout, "base64")).toEqual(Buffer.from([0, 1, 2, 255]));
  });

  test("wait=false returns at once; wait_operations collects several", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const run = view(await session.call("run", { command: `echo ${i}`, image: base, wait: false }));
      expect(run.done).toBe(false);
      ids.push(run.operation_id);
    }
    const waited = await session.call("wait_operations", { operation_ids: ids });
    const result = waited.structuredContent as {
      completed: string[];
      still_running: string[];
      timed_out: boolean;
      results: Record<string, RunView>;
    };
    expect(result.completed.toSorted()).toEqual([...ids].toSorted());
    expect(result.still_running).toEqual([]);
    expect(result.timed_out).toBe(false);
    expect(result.results[ids[2]!]?.stdout).toBe("ran: echo 2\n");
  });

  test("a wait_operations timeout reports what still runs and cancels nothing", async () => {
    const slow = view(await session.call("run", { command: "sleep 3", image: base, wait: false }));
    const waited = await session.call("wait_operations", {
      operation_ids: [slow.operation_id],
      timeout: 0.2,
    });
    const result = waited.structuredContent as { still_running: string[]; timed_out: boolean };
    expect(result.timed_out).toBe(true);
    expect(result.still_running).toEqual([slow.operation_id]);
    expect(fake.requests.some((r) => r.method === "DELETE" && r.path.endsWith(slow.operation_id))).toBe(
      false,
    );
    const cancelled = await session.call("cancel_operation", { operation_id: slow.operation_id });
    expect((cancelled.structuredContent as { cancelled: boolean }).cancelled).toBe(true);
  });

  test("many operations in flight are all collected (no starvation)", async () => {
    const ids = await Promise.all(
      Array.from(
        { length: 40 },
        async (_, i) =>
          view(await session.call("run", { command: `echo ${i}`, image: base, wait: false })).operation_id,
      ),
    );
    const waited = await session.call("wait_operations", { operation_ids: ids, timeout: 20 });
    expect((waited.structuredContent as { completed: string[] }).completed.length).toBe(40);
  });

  test("progress notifications arrive while waiting", async () => {
    const seen: unknown[] = [];
    const result = await session.call(
      "run",
      { command: "sleep 2", image: base },
      { onprogress: (p) => seen.push(p) },
    );
    expect(result.isError).toBeFalsy();
    expect(seen.length).toBeGreaterThanOrEqual(2);
  });

  test("a client that takes no progress gets the handle before its own timeout; the run goes on", async () => {
    session.app.deps.silentWaitMs = 300;
    try {
      const began = Date.now();
      const result = await session.call("run", { command: "sleep 2", image: base });
      expect(Date.now() - began).toBeLessThan(1500);
      const early = result.structuredContent as { done: boolean; operation_id: string; output_hint: string };
      expect(early.done).toBe(false);
      expect(early.output_hint).toContain("contree_wait_operations");
      const waited = await session.call("wait_operations", { operation_ids: [early.operation_id] });
      expect(JSON.stringify(waited.structuredContent)).toContain('"status":"SUCCESS"');
      // With progress, heartbeats keep the client waiting, so the same run is waited for to the end.
      const heard = await session.call("run", { command: "sleep 1", image: base }, { onprogress: () => {} });
      expect((heard.structuredContent as { done: boolean }).done).toBe(true);
    } finally {
      session.app.deps.silentWaitMs = undefined;
    }
  });

  test("a client cancelling a waiting run cancels the operation", async () => {
    const controller = new AbortController();
    const pending = session.call("run", { command: "sleep 30", image: base }, { signal: controller.signal });
    await Bun.sleep(300);
    controller.abort();
    await pending.catch(() => undefined);
    await Bun.sleep(300);
    const started = fake.requests.filter((r) => r.method === "POST" && r.path === "/v1/instances").at(-1);
    expect(started).toBeDefined();
    expect(fake.requests.some((r) => r.method === "DELETE" && r.path.startsWith("/v1/operations/"))).toBe(
      true,
    );
  });
});

describe("bad input is an isError result and the server keeps serving", () => {
  const cases: [string, string, Record<string, unknown>, RegExp][] = [
    [
      "unknown image",
      "run",
      { command: "true", image: "00000000-0000-0000-0000-000000000001" },
      /image|not find|No image/i,
    ],
    ["bad image reference", "run", { command: "true", image: "Not A Uuid!" }, /Invalid image reference/],
    [
      "missing tag",
      "run",
      { command: "true", image: "tag:no/such/tag" },
      /No image is tagged 'no\/such\/tag'/,
    ],
    ["timeout <= 0", "run", { command: "true", image: "tag:x", timeout: 0 }, /timeout/],
    ["relative cwd", "run", { command: "true", image: "tag:x", cwd: "app" }, /absolute/],
    ["unknown operation", "get_operation", { operation_id: "nope" }, /No operation with id 'nope'/],
    ["an id that is a path", "cancel_operation", { operation_id: ".." }, /'\.\.'/],
    [
      "unknown status",
      "list_operations",
      { status: "whatever" },
      /Unknown status 'whatever': use one of PENDING/,
    ],
    ["unknown image for get_image", "get_image", { image: "tag:missing" }, /No image is tagged 'missing'/],
    ["bad tag", "set_tag", { image_uuid: "tag:common/base/alpine:3", tag: "Bad Tag" }, /Invalid tag/],
  ];
  for (const [name, tool, args, pattern] of cases) {
    test(name, async () => {
      const result = await session.call(tool, args);
      expect(result.isError).toBe(true);
      expect(textOf(result)).toMatch(pattern);
    });
  }

  test("a bad token says so", async () => {
    const other = await connect(cloudBackendFor(fake, { token: "wrong-token" }));
    const result = await other.call("list_images", {});
    expect(result.isError).toBe(true);
    expect(textOf(result)).toMatch(/rejected the credentials.*token/);
    expect(textOf(result)).not.toContain("wrong-token");
    await other.close();
  });

  test("a reply that echoes the token does not carry it to the model", async () => {
    fake.fail({
      path: "/v1/images",
      status: 401,
      body: `invalid Authorization header 'Bearer ${fake.token}'`,
    });
    fake.fail({
      path: "/v1/operations",
      status: 500,
      times: 10,
      body: `<pre>debug: token=${fake.token}</pre>`,
    });
    const refused = await session.call("list_images", {});
    const failed = await session.call("list_operations", {});
    for (const result of [refused, failed]) {
      expect(result.isError).toBe(true);
      expect(JSON.stringify(result)).not.toContain(fake.token);
    }
    expect(textOf(refused)).toContain("Bearer ***");
  });

  test("an unreachable backend says so", async () => {
    const other = await connect(
      new CloudBackend({
        url: "http://127.0.0.1:1",
        token: "t",
        version: "test",
        retry: { attempts: 2, baseDelayMs: 1 },
      }),
    );
    const result = await other.call("list_images", {});
    expect(result.isError).toBe(true);
    expect(textOf(result)).toMatch(/Cannot reach/);
    await other.close();
  });

  test("still serving after all of that", async () => {
    const result = await session.call("list_images", {});
    expect(result.isError).toBeFalsy();
  });
});
