import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { MAX_STACK_DEPTH } from "../../../src/backend/local/commit.ts";
import {
  canRunLocal,
  localProblem,
  openFixture,
  runToEnd,
  stdoutOf,
  streamText,
  type LocalFixture,
} from "./helpers.ts";
import { ROOTLESS } from "../../../src/backend/local/fsx.ts";

const needs = `(needs bwrap, overlayfs: ${localProblem ?? (ROOTLESS ? "available, rootless" : "available")})`;

describe.skipIf(!canRunLocal)(`local images and commits ${needs}`, () => {
  let fx: LocalFixture;
  beforeAll(async () => {
    fx = await openFixture();
  });
  afterAll(async () => {
    await fx?.close();
  });

  test("disposable=false makes a child image; the file is in the child, not the parent", async () => {
    const op = await runToEnd(fx.backend, fx.image, "echo data > /root/made.txt", { disposable: false });
    expect(op.status).toBe("SUCCESS");
    const child = op.resultImage!;
    expect(child).not.toBe(fx.image);
    expect((await fx.backend.getImage(child)).uuid).toBe(child);
    expect(stdoutOf(await runToEnd(fx.backend, child, "cat /root/made.txt"))).toBe("data\n");
    expect(stdoutOf(await runToEnd(fx.backend, fx.image, "ls /root"))).toBe("");
    expect(fx.backend.store.getImageRow(child)?.parent).toBe(fx.image);
  });

  test("a run that changes nothing returns the same image", async () => {
    const op = await runToEnd(fx.backend, fx.image, "cat /etc/hello.txt; ls / > /dev/null", {
      disposable: false,
    });
    expect(op.resultImage).toBe(fx.image);
  });

  test("a disposable run creates no image", async () => {
    const before = (await fx.backend.listImages({ limit: 1000, offset: 0 })).length;
    const op = await runToEnd(fx.backend, fx.image, "echo x > /root/gone");
    expect(op.resultImage).toBeNull();
    expect((await fx.backend.listImages({ limit: 1000, offset: 0 })).length).toBe(before);
  });

  test("deleting a file in a child hides it in the child only (whiteout), also for inspection", async () => {
    const op = await runToEnd(
      fx.backend,
      fx.image,
      "rm /etc/hello.txt; rm -r /tmp; mkdir /tmp; echo new > /tmp/n",
      {
        disposable: false,
      },
    );
    const child = op.resultImage!;
    expect((await runToEnd(fx.backend, child, "cat /etc/hello.txt")).result?.exit.exitCode).not.toBe(0);
    expect(stdoutOf(await runToEnd(fx.backend, fx.image, "cat /etc/hello.txt"))).toBe(
      "hello from the image\n",
    );
    const names = (await fx.backend.listDirectory(child, "/etc")).entries.map((e) => e.name);
    expect(names).not.toContain("hello.txt");
    expect(names).toContain("passwd");
    await expect(fx.backend.readFile(child, "/etc/hello.txt")).rejects.toMatchObject({ code: "not_found" });
    expect(await streamText(await fx.backend.readFile(fx.image, "/etc/hello.txt"))).toBe(
      "hello from the image\n",
    );
    // A grandchild sees the deletion too.
    const grand = (await runToEnd(fx.backend, child, "touch /root/g", { disposable: false })).resultImage!;
    expect((await fx.backend.listDirectory(grand, "/etc")).entries.map((e) => e.name)).not.toContain(
      "hello.txt",
    );
    expect((await fx.backend.listDirectory(grand, "/tmp")).entries.map((e) => e.name)).toEqual(["n"]);
  });

  test("inspection lists, reads and archives through the layer stack", async () => {
    const op = await runToEnd(
      fx.backend,
      fx.image,
      // Rootless, the sandbox has one uid (see fsx.ts), so there is no other owner to give.
      `mkdir -p /srv/a && echo one > /srv/a/one && ln -s a/one /srv/link && ${ROOTLESS ? "" : "chown 65534:65534 /srv/a/one && "}chmod 4755 /srv/a/one`,
      { disposable: false },
    );
    const image = op.resultImage!;
    const listing = await fx.backend.listDirectory(image, "/srv");
    expect(listing.path).toBe("/srv");
    const byName = Object.fromEntries(listing.entries.map((e) => [e.name, e]));
    expect(byName.a?.type).toBe("directory");
    expect(byName.link).toMatchObject({ type: "symlink", target: "a/one" });
    const inner = (await fx.backend.listDirectory(image, "/srv/a")).entries[0]!;
    expect(inner).toMatchObject({
      name: "one",
      type: "file",
      size: 4,
      mode: 0o4755,
      owner: ROOTLESS ? "root" : "nobody",
      group: ROOTLESS ? "root" : "nogroup",
    });
    expect(await streamText(await fx.backend.readFile(image, "/srv/link"))).toBe("one\n");
    await expect(fx.backend.readFile(image, "/srv")).rejects.toMatchObject({ code: "invalid" });
    await expect(fx.backend.listDirectory(image, "/nope")).rejects.toMatchObject({ code: "not_found" });
    // Symlinks never lead out of the image.
    const escape = (
      await runToEnd(fx.backend, image, "ln -s /../../../../etc /srv/up", { disposable: false })
    ).resultImage!;
    expect((await fx.backend.listDirectory(escape, "/srv/up")).entries.map((e) => e.name)).toContain(
      "hello.txt",
    );

    const tar = new Uint8Array(await new Response(await fx.backend.archive(image, "/srv")).arrayBuffer());
    const { unpackTar } = await import("modern-tar");
    const entries = await unpackTar(tar);
    const names = entries.map((e) => e.header.name.replace(/^\.\//, "")).filter(Boolean);
    expect(names).toEqual(expect.arrayContaining(["a/", "a/one", "link"]));
    const one = entries.find((e) => e.header.name.endsWith("a/one"))!;
    expect(new TextDecoder().decode(one.data)).toBe("one\n");
  });

  test("tags are unique: setting one moves it", async () => {
    const a = (await runToEnd(fx.backend, fx.image, "touch /a", { disposable: false })).resultImage!;
    const b = (await runToEnd(fx.backend, fx.image, "touch /b", { disposable: false })).resultImage!;
    await fx.backend.setTag(a, "proj/app:v1");
    expect((await fx.backend.getImageByTag("proj/app:v1")).uuid).toBe(a);
    await fx.backend.setTag(b, "proj/app:v1");
    expect((await fx.backend.getImageByTag("proj/app:v1")).uuid).toBe(b);
    expect((await fx.backend.getImage(a)).tag).toBeNull();
    expect(
      (await fx.backend.listImages({ limit: 10, offset: 0, tagPrefix: "proj/" })).map((i) => i.uuid),
    ).toEqual([b]);
    await fx.backend.removeTag(b);
    await expect(fx.backend.getImageByTag("proj/app:v1")).rejects.toMatchObject({ code: "not_found" });
    await expect(fx.backend.getImage(crypto.randomUUID())).rejects.toMatchObject({ code: "not_found" });
  });

  test(`a chain of ${MAX_STACK_DEPTH + 20} commits keeps every image's content (the stack is flattened)`, async () => {
    let image = fx.image;
    const chain: string[] = [];
    for (let i = 0; i < MAX_STACK_DEPTH + 20; i++) {
      const op = await runToEnd(
        fx.backend,
        image,
        `echo ${i} >> /root/log; rm -f /root/prev; echo ${i} > /root/prev`,
        {
          disposable: false,
        },
      );
      expect(op.status).toBe("SUCCESS");
      image = op.resultImage!;
      chain.push(image);
    }
    const depths = chain.map((uuid) => fx.backend.store.getImageRow(uuid)!.layers.length);
    expect(Math.max(...depths)).toBeLessThanOrEqual(MAX_STACK_DEPTH);
    const last = await runToEnd(fx.backend, image, "wc -l < /root/log; cat /root/prev; cat /etc/hello.txt");
    expect(stdoutOf(last)).toBe(`${MAX_STACK_DEPTH + 20}\n${MAX_STACK_DEPTH + 19}\nhello from the image\n`);
    const early = await runToEnd(fx.backend, chain[4]!, "wc -l < /root/log");
    expect(stdoutOf(early)).toBe("5\n");
    // 53 sandboxes one after another: about 5 s on a busy 2-core machine.
  }, 60_000);
});
