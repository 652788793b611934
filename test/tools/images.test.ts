import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { startFakeContree, cloudBackendFor } from "../support/fake-contree.ts";
import { connect, textOf, type TestSession } from "../support/mcp.ts";

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

interface ImageView {
  uuid: string;
  tag: string | null;
  created_at: string;
}

describe("image tools", () => {
  test("list_images pages and filters by tag prefix", async () => {
    const a = fake.addImage({ tag: "common/python/python:3.11" }).uuid;
    fake.addImage({ tag: "proj/x/ubuntu:noble" });
    fake.addImage({ tag: "commonplace:1" });
    const result = await session.call("list_images", { tag_prefix: "common/" });
    const images = (result.structuredContent as { images: ImageView[] }).images;
    expect(images.map((i) => i.uuid)).toEqual([a]);
    expect(textOf(result)).toContain("common/python/python:3.11");
    // Sent without the trailing separator, as the service wants it; the full prefix still decides.
    const query = fake.requests.filter((r) => r.path === "/v1/images").at(-1)?.query;
    expect(query?.tag).toBe("common");
  });

  test("get_image by UUID in any common spelling and by tag", async () => {
    const image = fake.addImage({ tag: "lookup/me:1" });
    const upper = `{${image.uuid.toUpperCase()}}`;
    const byUuid = (await session.call("get_image", { image: upper })).structuredContent as ImageView;
    expect(byUuid.uuid).toBe(image.uuid);
    const byTag = (await session.call("get_image", { image: "tag:lookup/me:1" }))
      .structuredContent as ImageView;
    expect(byTag.uuid).toBe(image.uuid);
    const bare = (await session.call("get_image", { image: "lookup/me:1" })).structuredContent as ImageView;
    expect(bare.uuid).toBe(image.uuid);
  });

  test("set_tag moves a tag; an empty tag removes it", async () => {
    const first = fake.addImage({ tag: "moving:tag" }).uuid;
    const second = fake.addImage({}).uuid;
    const moved = (await session.call("set_tag", { image_uuid: second, tag: "moving:tag" }))
      .structuredContent as ImageView;
    expect(moved).toMatchObject({ uuid: second, tag: "moving:tag" });
    const firstNow = (await session.call("get_image", { image: first })).structuredContent as ImageView;
    expect(firstNow.tag).toBeNull();
    const removed = (await session.call("set_tag", { image_uuid: second, tag: "" }))
      .structuredContent as ImageView;
    expect(removed.tag).toBeNull();
    const gone = await session.call("get_image", { image: "tag:moving:tag" });
    expect(gone.isError).toBe(true);
  });

  test("import_image normalises Docker Hub short names and needs consent for anonymous pulls", async () => {
    const refused = await session.call("import_image", { registry_url: "docker://python:3.11-slim" });
    expect(refused.isError).toBe(true);
    expect(textOf(refused)).toContain("Not authenticated with 'docker.io'");
    const result = await session.call("import_image", {
      registry_url: "docker://python:3.11-slim",
      tag: "python:3.11-slim",
      i_accept_that_anonymous_access_might_be_rate_limited: true,
    });
    expect(result.isError).toBeFalsy();
    const op = result.structuredContent as { status: string; result_image: string; registry_url: string };
    expect(op.status).toBe("SUCCESS");
    expect(op.result_image).toBeTruthy();
    const body = fake.requests.filter((r) => r.path === "/v1/images/import").at(-1)?.body as {
      registry: { url: string; credentials?: unknown };
      tag: string;
    };
    expect(body.registry.url).toBe("docker://docker.io/library/python:3.11-slim");
    expect(body.registry.credentials).toBeUndefined();
    expect(body.tag).toBe("python:3.11-slim");
    const tagged = (await session.call("get_image", { image: "tag:python:3.11-slim" }))
      .structuredContent as ImageView;
    expect(tagged.uuid).toBe(op.result_image);
  });

  test("list_operations filters by type and status", async () => {
    const result = await session.call("list_operations", { type: "image_import", status: "success" });
    const ops = (result.structuredContent as { operations: { type: string; status: string }[] }).operations;
    expect(ops.length).toBeGreaterThan(0);
    expect(ops.every((op) => op.type === "image_import" && op.status === "SUCCESS")).toBe(true);
    const query = fake.requests.filter((r) => r.path === "/v1/operations").at(-1)?.query;
    expect(query).toMatchObject({ kind: "image_import", status: "SUCCESS" });
  });
});
