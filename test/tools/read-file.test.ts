import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { FilePart } from "../../src/tools/read-file.ts";
import { startFakeContree, cloudBackendFor } from "../support/fake-contree.ts";
import { connect, textOf, type TestSession } from "../support/mcp.ts";

type Fake = Awaited<ReturnType<typeof startFakeContree>>;

let fake: Fake;
let session: TestSession;
let image: string;

const lines = Array.from({ length: 500 }, (_, i) => `line ${i + 1}`).join("\n") + "\n";
const big = "x".repeat(200_000);
const elf = new Uint8Array(300_000);
elf.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0]);

beforeAll(async () => {
  fake = await startFakeContree();
  session = await connect(cloudBackendFor(fake));
  image = fake.addImage({
    tag: "work/read:1",
    files: {
      "/etc/os-release": "ID=alpine\nVERSION_ID=3.20\n",
      "/var/log/app.log": lines,
      "/srv/big.txt": big,
      "/srv/utf8.txt": "héllo wörld ✓\n",
      "/srv/small.bin": new Uint8Array([0, 159, 146, 150, 1]),
      "/usr/bin/tool": elf,
      "/srv/empty": "",
    },
  }).uuid;
});

afterAll(async () => {
  await session?.close();
  await fake?.close();
});

const part = (result: { structuredContent?: unknown }) => result.structuredContent as FilePart;

describe("read_file", () => {
  test("reads a whole small text file", async () => {
    const result = await session.call("read_file", { image, path: "/etc/os-release" });
    expect(result.isError, textOf(result)).toBeFalsy();
    expect(part(result)).toMatchObject({
      content: "ID=alpine\nVERSION_ID=3.20\n",
      encoding: "utf-8",
      offset: 0,
      bytes: 26,
      size: 26,
      truncated: false,
      next: null,
    });
    expect(textOf(result)).toContain("VERSION_ID=3.20");
  });

  test("a big file is capped at max_bytes and `next` reads on from there", async () => {
    const first = part(await session.call("read_file", { image, path: "/srv/big.txt" }));
    expect(first).toMatchObject({ bytes: 65_536, size: 200_000, truncated: true });
    expect(first.next).toContain("offset=65536");
    const last = part(await session.call("read_file", { image, path: "/srv/big.txt", offset: 196_608 }));
    expect(last).toMatchObject({ offset: 196_608, bytes: 3_392, truncated: false, next: null });
  });

  test("byte ranges with offset and limit", async () => {
    const range = part(
      await session.call("read_file", { image, path: "/var/log/app.log", offset: 7, limit: 6 }),
    );
    expect(range).toMatchObject({ content: "line 2", offset: 7, bytes: 6, truncated: true });
    expect(range.next).toContain("offset=13, limit=6");
  });

  test("line ranges with line_start and line_count", async () => {
    const middle = part(
      await session.call("read_file", { image, path: "/var/log/app.log", line_start: 200, line_count: 3 }),
    );
    expect(middle).toMatchObject({
      content: "line 200\nline 201\nline 202\n",
      line_start: 200,
      lines: 3,
      truncated: true,
    });
    expect(middle.next).toContain("line_start=203, line_count=3");
    const tail = part(await session.call("read_file", { image, path: "/var/log/app.log", line_start: 499 }));
    expect(tail).toMatchObject({ content: "line 499\nline 500\n", lines: 2, truncated: false, next: null });
  });

  test("a cut never splits a UTF-8 character", async () => {
    const cut = part(await session.call("read_file", { image, path: "/srv/utf8.txt", limit: 2 }));
    expect(cut).toMatchObject({ content: "h", bytes: 1, encoding: "utf-8" });
    expect(cut.next).toContain("offset=1");
  });

  test("a small binary comes back as base64; a big one is refused with its size and type", async () => {
    const small = part(await session.call("read_file", { image, path: "/srv/small.bin" }));
    expect(small).toMatchObject({
      encoding: "base64",
      content: Buffer.from([0, 159, 146, 150, 1]).toString("base64"),
    });
    const refused = await session.call("read_file", { image, path: "/usr/bin/tool" });
    expect(refused.isError).toBe(true);
    expect(textOf(refused)).toContain("ELF");
    expect(textOf(refused)).toContain("300000 bytes");
    expect(textOf(refused)).toContain("download");
    const slice = part(
      await session.call("read_file", { image, path: "/usr/bin/tool", offset: 0, limit: 4 }),
    );
    expect(slice).toMatchObject({
      encoding: "base64",
      content: Buffer.from([0x7f, 0x45, 0x4c, 0x46]).toString("base64"),
    });
  });

  test("an empty file is empty text", async () => {
    expect(part(await session.call("read_file", { image, path: "/srv/empty" }))).toMatchObject({
      content: "",
      bytes: 0,
      truncated: false,
    });
  });

  test("a missing file, a directory, mixed modes and an unknown image are clear errors", async () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ image, path: "/etc/nope" }, "No file /etc/nope"],
      [{ image, path: "/etc" }, "is a directory"],
      [{ image, path: "/etc/os-release", offset: 1, line_start: 2 }, "not both"],
      [{ image: "tag:no/such:tag", path: "/etc/os-release" }, "No image is tagged"],
    ];
    for (const [args, message] of cases) {
      const result = await session.call("read_file", args);
      expect(result.isError).toBe(true);
      expect(textOf(result)).toContain(message);
    }
  });
});
