import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startFakeContree, cloudBackendFor } from "../support/fake-contree.ts";
import { connect, textOf, type TestSession } from "../support/mcp.ts";

type Fake = Awaited<ReturnType<typeof startFakeContree>>;

let fake: Fake;
let session: TestSession;
let image: string;
let dir: string;

beforeAll(async () => {
  fake = await startFakeContree();
  session = await connect(cloudBackendFor(fake));
  image = fake.addImage({
    tag: "work/files:1",
    files: {
      "/app/main.py": "print('hello')\n",
      "/app/bin/tool": "#!/bin/sh\necho tool\n",
      "/app/lib/util.py": "X = 1\n",
      "/data/blob.bin": new Uint8Array([0, 1, 2, 3, 255]),
    },
  }).uuid;
  dir = mkdtempSync(join(tmpdir(), "contree-download-"));
});

afterAll(async () => {
  await session?.close();
  await fake?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Nothing half-written: no temp files or directories left beside a destination. */
function leftovers(parent: string): string[] {
  return existsSync(parent) ? readdirSync(parent).filter((name) => name.includes(".download-")) : [];
}

describe("download", () => {
  test("writes a file, creating parent directories", async () => {
    const destination = join(dir, "new", "deep", "main.py");
    const result = await session.call("download", { image, path: "/app/main.py", destination });
    expect(result.isError, textOf(result)).toBeFalsy();
    expect(readFileSync(destination, "utf8")).toBe("print('hello')\n");
    expect(result.structuredContent).toMatchObject({ type: "file", size: 15, files: 1, destination });
    expect(leftovers(join(dir, "new", "deep"))).toEqual([]);
  });

  test("binary content arrives intact; executable=true gives mode 0755; tags work", async () => {
    const blob = join(dir, "blob.bin");
    await session.call("download", { image: "tag:work/files:1", path: "data/blob.bin", destination: blob });
    expect([...readFileSync(blob)]).toEqual([0, 1, 2, 3, 255]);
    const tool = join(dir, "tool");
    await session.call("download", { image, path: "/app/bin/tool", destination: tool, executable: true });
    expect(statSync(tool).mode & 0o777).toBe(0o755);
  });

  test("refuses to replace an existing file unless overwrite is true", async () => {
    const destination = join(dir, "existing.py");
    writeFileSync(destination, "mine");
    const refused = await session.call("download", { image, path: "/app/main.py", destination });
    expect(refused.isError).toBe(true);
    expect(textOf(refused)).toContain("overwrite=true");
    expect(readFileSync(destination, "utf8")).toBe("mine");
    const replaced = await session.call("download", {
      image,
      path: "/app/main.py",
      destination,
      overwrite: true,
    });
    expect(replaced.isError, textOf(replaced)).toBeFalsy();
    expect(readFileSync(destination, "utf8")).toBe("print('hello')\n");
    expect(leftovers(dir)).toEqual([]);
  });

  test("a directory path downloads the whole tree", async () => {
    const destination = join(dir, "app-copy");
    const result = await session.call("download", { image, path: "/app", destination });
    expect(result.isError, textOf(result)).toBeFalsy();
    expect(result.structuredContent).toMatchObject({ type: "directory", files: 3 });
    expect(readFileSync(join(destination, "main.py"), "utf8")).toBe("print('hello')\n");
    expect(readFileSync(join(destination, "lib", "util.py"), "utf8")).toBe("X = 1\n");
    expect(readFileSync(join(destination, "bin", "tool"), "utf8")).toContain("echo tool");
    expect(leftovers(dir)).toEqual([]);
  });

  test("a transfer that breaks off leaves the old file and no temp file, for a file and a directory", async () => {
    // An image of its own: the injected faults (more than the client's retries) touch nothing else.
    const broken = fake.addImage({ files: { "/app/main.py": "print('hello')\n" } }).uuid;
    const target = join(dir, "broken");
    mkdirSync(target);
    const file = join(target, "main.py");
    writeFileSync(file, "mine");
    fake.fail({ path: new RegExp(`/${broken}/download$`), status: 200, drop: true, times: 100 });
    const result = await session.call("download", {
      image: broken,
      path: "/app/main.py",
      destination: file,
      overwrite: true,
    });
    expect(result.isError).toBe(true);
    expect(readFileSync(file, "utf8")).toBe("mine");
    const other = fake.addImage({ files: { "/app/main.py": "x" } }).uuid;
    fake.fail({ path: new RegExp(`/${other}/archive$`), status: 200, drop: true, times: 100 });
    const tree = await session.call("download", {
      image: other,
      path: "/app",
      destination: join(target, "app"),
    });
    expect(tree.isError).toBe(true);
    expect(textOf(tree)).toContain("/archive");
    expect(readdirSync(target)).toEqual(["main.py"]);
  });

  test("a destination that cannot be written is a UserError naming it, for a file and a directory", async () => {
    const plain = join(dir, "plain-file");
    writeFileSync(plain, "x");
    for (const [path, destination, reason] of [
      ["/app/main.py", "/proc/nope/main.py", "no such file or directory (ENOENT, mkdir /proc/nope)"],
      ["/app", "/proc/nope/app", "no such file or directory (ENOENT, mkdir /proc/nope)"],
      ["/app/main.py", join(plain, "main.py"), `not a directory (EEXIST, mkdir ${plain})`],
      ["/app", join(plain, "app"), `not a directory (EEXIST, mkdir ${plain})`],
    ] as const) {
      const result = await session.call("download", { image, path, destination });
      expect(result.isError, destination).toBe(true);
      expect(textOf(result)).toStartWith(`Cannot write ${destination}: `);
      expect(textOf(result)).toContain(reason);
      expect(textOf(result)).toEndWith("Choose a writable absolute path.");
    }
    expect(readFileSync(plain, "utf8")).toBe("x");
    expect(leftovers(dir)).toEqual([]);
  });

  test("bad input is a clear isError and leaves nothing behind", async () => {
    const target = join(dir, "bad");
    mkdirSync(join(target, "is-a-dir"), { recursive: true });
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ image, path: "/app/main.py", destination: "relative/main.py" }, "absolute path"],
      [
        { image, path: "/app/main.py", destination: join(target, "is-a-dir"), overwrite: true },
        "is a directory",
      ],
      [{ image, path: "/app/missing.py", destination: join(target, "missing.py") }, "No file or directory"],
      [
        {
          image: "00000000-0000-0000-0000-000000000000",
          path: "/app/main.py",
          destination: join(target, "x"),
        },
        "No image",
      ],
      [
        { image: "tag:no/such:tag", path: "/app/main.py", destination: join(target, "y") },
        "No image is tagged",
      ],
    ];
    for (const [args, message] of cases) {
      const result = await session.call("download", args);
      expect(result.isError).toBe(true);
      expect(textOf(result)).toContain(message);
    }
    expect(readdirSync(target)).toEqual(["is-a-dir"]);
    expect(readdirSync(join(target, "is-a-dir"))).toEqual([]);
  });
});
