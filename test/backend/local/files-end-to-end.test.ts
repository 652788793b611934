import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CloudBackend } from "../../../src/backend/cloud/backend.ts";
import { ROOTLESS } from "../../../src/backend/local/fsx.ts";
import { serveContreeApi } from "../../../src/backend/local/rest.ts";
import { connect, textOf, type TestSession } from "../../support/mcp.ts";
import { canRunLocal, localProblem, openFixture, type LocalFixture } from "./helpers.ts";

const needs = `(needs bwrap, overlayfs: ${localProblem ?? (ROOTLESS ? "available, rootless" : "available")})`;

interface RunView {
  status: string;
  exit_code: number | null;
  stdout: string;
  stderr: string;
  result_image: string | null;
}

interface SyncView {
  directory_state_id: number;
  files: number;
  uploaded: number;
  hashed: number;
}

// The sync-then-run workflow on real sandboxes: rsync a local project, run it, change a file and sync again, then
// look at what the run made without starting anything (list_files, read_file, resources) and bring it back
// (download). Once straight on the local backend, once through the cloud client and the local ConTree REST API.
describe.skipIf(!canRunLocal)(`files in and out on real sandboxes ${needs}`, () => {
  let fx: LocalFixture;
  let server: ReturnType<typeof serveContreeApi>;
  let work: string;
  const sessions: Record<string, TestSession> = {};

  beforeAll(async () => {
    fx = await openFixture();
    server = serveContreeApi(fx.backend, { port: 0, token: "files-e2e" });
    sessions.local = await connect(fx.backend);
    sessions.cloud = await connect(
      new CloudBackend({ url: `http://127.0.0.1:${server.port}`, token: "files-e2e", version: "test" }),
    );
    work = mkdtempSync(join(tmpdir(), "contree-files-e2e-"));
  });

  afterAll(async () => {
    await sessions.cloud?.close();
    await server?.stop(true);
    await sessions.local?.close();
    await fx?.close();
    rmSync(work, { recursive: true, force: true });
  });

  function project(name: string): string {
    const root = join(work, name);
    const files: Record<string, string> = {
      "run.sh":
        '#!/bin/sh\nset -e\nmkdir -p /app/out/logs\ncat /app/data/input.txt | tr a-z A-Z > /app/out/result.txt\nfor i in 1 2 3 4 5; do echo "line $i" >> /app/out/logs/build.log; done\nln -s result.txt /app/out/latest\necho "ran from $(pwd)"\n',
      "data/input.txt": `hello ${name}\n`,
      "data/__pycache__/junk.pyc": "junk",
      "lib/mod.pyc": "junk",
      ".gitignore": "*.pyc\n",
      ".git/HEAD": "ref: refs/heads/main\n",
    };
    for (const [rel, content] of Object.entries(files)) {
      mkdirSync(join(root, rel, ".."), { recursive: true });
      writeFileSync(join(root, rel), content);
    }
    chmodSync(join(root, "run.sh"), 0o755);
    return root;
  }

  for (const via of ["local", "cloud"] as const) {
    test(`${via}: rsync -> run -> resync -> list_files, read_file, resources -> download`, async () => {
      const session = sessions[via]!;
      const root = project(via);
      const exclude = [".git", "__pycache__", "*.pyc"];

      const synced = await session.call("rsync", { source: root, destination: "/app", exclude });
      expect(synced.isError, textOf(synced)).toBeFalsy();
      const state = synced.structuredContent as SyncView;
      expect(state).toMatchObject({ files: 3, hashed: 3 });

      // Only the tree's own files arrive, with their modes: run.sh runs without chmod.
      const listing = await session.call("run", {
        command: "find /app -type f | sort; ls -l /app/run.sh",
        image: "tag:busybox",
        directory_state_id: state.directory_state_id,
      });
      const seen = listing.structuredContent as RunView;
      expect(seen.exit_code, textOf(listing)).toBe(0);
      expect(seen.stdout).toContain("/app/.gitignore\n/app/data/input.txt\n/app/run.sh\n");
      expect(seen.stdout).not.toContain(".pyc");
      expect(seen.stdout).not.toContain(".git/");
      expect(seen.stdout).toMatch(/-rwxr-xr-x .* \/app\/run\.sh/);

      // Edit one file: the resync hashes and sends only it, and the same id now carries the new content.
      writeFileSync(join(root, "data/input.txt"), `again ${via}\n`);
      const resynced = (await session.call("rsync", { source: root, destination: "/app", exclude }))
        .structuredContent as SyncView;
      expect(resynced).toMatchObject({
        directory_state_id: state.directory_state_id,
        files: 3,
        hashed: 1,
        uploaded: 1,
      });

      const upload = await session.call("upload", { content: "from upload\n" });
      const uuid = (upload.structuredContent as { uuid: string }).uuid;
      const ran = await session.call("run", {
        command: "/app/run.sh && cat /app/extra.txt",
        image: "tag:busybox",
        cwd: "/app",
        disposable: false,
        directory_state_id: state.directory_state_id,
        files: { "/app/extra.txt": uuid },
      });
      const made = ran.structuredContent as RunView;
      expect(made.exit_code, textOf(ran)).toBe(0);
      expect(made.stdout).toBe("ran from /app\nfrom upload\n");
      const child = made.result_image!;
      expect(child).toBeTruthy();

      // Inspect the child image without running anything.
      const ls = await session.call("list_files", { image: child, path: "/app/out" });
      expect(ls.isError, textOf(ls)).toBeFalsy();
      expect(textOf(ls)).toContain("latest -> result.txt");
      expect(textOf(ls)).toContain("logs/");
      const read = await session.call("read_file", { image: child, path: "app/out/result.txt" });
      expect(read.structuredContent).toMatchObject({
        content: `AGAIN ${via.toUpperCase()}\n`,
        encoding: "utf-8",
      });
      const lines = await session.call("read_file", {
        image: child,
        path: "/app/out/logs/build.log",
        line_start: 2,
        line_count: 2,
      });
      expect(lines.structuredContent).toMatchObject({ content: "line 2\nline 3\n", truncated: true });
      expect((lines.structuredContent as { next: string }).next).toContain("line_start=4");

      const resource = await session.client.readResource({
        uri: `contree://image/${child}/read/app/out/result.txt`,
      });
      expect(resource.contents[0]).toMatchObject({ text: `AGAIN ${via.toUpperCase()}\n` });
      const root_ = await session.client.readResource({ uri: `contree://image/${child}/ls/` });
      expect((root_.contents[0] as { text: string }).text).toContain("app/");

      const lineage = await session.call("get_lineage", { image: child });
      expect(lineage.structuredContent).toMatchObject({
        parent: fx.image,
        depth: 1,
        command: "/app/run.sh && cat /app/extra.txt",
      });

      // Bring results back: one file, then the whole directory.
      const local = join(work, `${via}-out`);
      const file = await session.call("download", {
        image: child,
        path: "/app/out/result.txt",
        destination: join(local, "single/result.txt"),
      });
      expect(file.isError, textOf(file)).toBeFalsy();
      expect(readFileSync(join(local, "single/result.txt"), "utf8")).toBe(`AGAIN ${via.toUpperCase()}\n`);

      const tree = await session.call("download", {
        image: child,
        path: "/app",
        destination: join(local, "app"),
      });
      expect(tree.isError, textOf(tree)).toBeFalsy();
      expect(readFileSync(join(local, "app/out/logs/build.log"), "utf8")).toBe(
        "line 1\nline 2\nline 3\nline 4\nline 5\n",
      );
      expect(readlinkSync(join(local, "app/out/latest"))).toBe("result.txt");
      expect(lstatSync(join(local, "app/run.sh")).mode & 0o777).toBe(0o755);

      // Downloading again refuses to overwrite; a missing path leaves nothing behind.
      const again = await session.call("download", {
        image: child,
        path: "/app/out/result.txt",
        destination: join(local, "single/result.txt"),
      });
      expect(again.isError).toBe(true);
      expect(textOf(again)).toContain("overwrite=true");
      const missing = await session.call("download", {
        image: child,
        path: "/app/out/nope.txt",
        destination: join(local, "nope/nope.txt"),
      });
      expect(missing.isError).toBe(true);
      expect(existsSync(join(local, "nope"))).toBe(false);
    });
  }
});
