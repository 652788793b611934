import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startFakeContree, cloudBackendFor } from "../support/fake-contree.ts";
import { connect, textOf, type TestSession } from "../support/mcp.ts";

type Fake = Awaited<ReturnType<typeof startFakeContree>>;
interface Uploaded {
  uuid: string;
  sha256: string;
  size: number;
  already_stored: boolean;
}

let fake: Fake;
let session: TestSession;
let dir: string;

beforeAll(async () => {
  fake = await startFakeContree();
  session = await connect(cloudBackendFor(fake));
  dir = mkdtempSync(join(tmpdir(), "contree-upload-"));
});

afterAll(async () => {
  await session?.close();
  await fake?.close();
  rmSync(dir, { recursive: true, force: true });
});

const sha = (data: string | Uint8Array) => createHash("sha256").update(data).digest("hex");
const uploaded = (result: { structuredContent?: unknown }) => result.structuredContent as Uploaded;
const posts = () => fake.requests.filter((r) => r.method === "POST" && r.path === "/v1/files").length;

describe("upload", () => {
  test("text content is uploaded once; the same content again is found by hash", async () => {
    const first = await session.call("upload", { content: "print('hi')\n" });
    expect(first.isError, textOf(first)).toBeFalsy();
    expect(uploaded(first)).toMatchObject({ sha256: sha("print('hi')\n"), size: 12, already_stored: false });
    expect(textOf(first)).toContain(uploaded(first).uuid);
    const before = posts();
    const second = uploaded(await session.call("upload", { content: "print('hi')\n" }));
    expect(second).toMatchObject({ uuid: uploaded(first).uuid, already_stored: true });
    expect(posts()).toBe(before);
  });

  test("empty content is a valid empty file", async () => {
    const result = await session.call("upload", { content: "" });
    expect(result.isError, textOf(result)).toBeFalsy();
    expect(uploaded(result)).toMatchObject({ sha256: sha(""), size: 0 });
  });

  test("base64 content is decoded", async () => {
    const bytes = new Uint8Array([0, 1, 2, 254, 255]);
    const result = uploaded(
      await session.call("upload", { content_base64: Buffer.from(bytes).toString("base64") }),
    );
    expect(result).toMatchObject({ sha256: sha(bytes), size: 5 });
  });

  test("a local file is streamed, whatever its size", async () => {
    const big = new Uint8Array(5 * 1024 * 1024).map((_, i) => (i * 31) % 256);
    writeFileSync(join(dir, "big.bin"), big);
    const result = await session.call("upload", { path: join(dir, "big.bin") });
    expect(result.isError, textOf(result)).toBeFalsy();
    expect(uploaded(result)).toMatchObject({ sha256: sha(big), size: big.length });
  });

  test("bad input is a clear isError", async () => {
    mkdirSync(join(dir, "a-dir"), { recursive: true });
    const cases: Array<[Record<string, unknown>, string]> = [
      [{}, "Give one of"],
      [{ content: "x", content_base64: "eA==" }, "only one of"],
      [{ path: join(dir, "missing.txt") }, "File not found"],
      [{ path: "relative.txt" }, "absolute path"],
      [{ path: join(dir, "a-dir") }, "is a directory"],
      [{ content_base64: "not base64!" }, "not valid base64"],
    ];
    for (const [args, message] of cases) {
      const result = await session.call("upload", args);
      expect(result.isError).toBe(true);
      expect(textOf(result)).toContain(message);
    }
  });

  test("a path that exists but cannot be read is not reported as 'File not found'", async () => {
    writeFileSync(join(dir, "plain"), "x");
    symlinkSync("loop-b", join(dir, "loop-a"));
    symlinkSync("loop-a", join(dir, "loop-b"));
    const cases: Array<[string, RegExp]> = [
      [join(dir, "plain", "inner.txt"), /a parent of .* is a file, not a directory/],
      [join(dir, "loop-a"), /^Cannot read .*loop-a: ELOOP/],
    ];
    for (const [path, message] of cases) {
      const result = await session.call("upload", { path });
      expect(result.isError).toBe(true);
      expect(textOf(result)).toMatch(message);
    }
    expect(textOf(await session.call("upload", { path: join(dir, "loop-a") }))).not.toContain("not found");
  });
});
