import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { startFakeContree, cloudBackendFor } from "../support/fake-contree.ts";
import { connect, textOf, type TestSession } from "../support/mcp.ts";

type Fake = Awaited<ReturnType<typeof startFakeContree>>;
interface Listing {
  path: string;
  count: number;
  truncated: boolean;
  entries: Array<{ name: string; type: string; size: number; mode: string; target: string | null }>;
}

let fake: Fake;
let session: TestSession;
let image: string;

beforeAll(async () => {
  fake = await startFakeContree();
  session = await connect(cloudBackendFor(fake));
  image = fake.addImage({
    tag: "work/ls:1",
    files: {
      "/app/main.py": "print('hello')\n",
      "/app/lib/util.py": "X = 1\n",
      "/etc/os-release": "ID=alpine\n",
    },
  }).uuid;
});

afterAll(async () => {
  await session?.close();
  await fake?.close();
});

const listing = (result: { structuredContent?: unknown }) => result.structuredContent as Listing;

describe("list_files", () => {
  test("lists a directory as ls -l text and structured entries", async () => {
    const result = await session.call("list_files", { image, path: "/app" });
    expect(result.isError, textOf(result)).toBeFalsy();
    expect(listing(result)).toMatchObject({ path: "/app", count: 2, truncated: false });
    expect(listing(result).entries.map((e) => [e.name, e.type])).toEqual([
      ["lib", "directory"],
      ["main.py", "file"],
    ]);
    const text = textOf(result);
    expect(text).toContain("/app: 2 entries");
    expect(text).toMatch(/^d[rwx-]{9} .* lib\/$/m);
    expect(text).toMatch(/^-[rwx-]{9} .* 15 .* main\.py$/m);
  });

  test("the root is the default; paths are normalised and tags resolve", async () => {
    const root = listing(await session.call("list_files", { image: "tag:work/ls:1" }));
    expect(root.path).toBe("/");
    expect(root.entries.map((e) => e.name)).toEqual(expect.arrayContaining(["app", "etc"]));
    expect(listing(await session.call("list_files", { image, path: "app/lib/../" })).path).toBe("/app");
  });

  test("a missing directory, a file and an unknown image are clear errors", async () => {
    const missing = await session.call("list_files", { image, path: "/nope" });
    expect(missing.isError).toBe(true);
    expect(textOf(missing)).toContain("No directory /nope");
    const unknown = await session.call("list_files", { image: "tag:no/such:tag" });
    expect(unknown.isError).toBe(true);
    expect(textOf(unknown)).toContain("No image is tagged");
  });
});
