import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { suggestedTag } from "../../src/prompts/_prompt.ts";
import { startFakeContree, type FakeContree, cloudBackendFor } from "../support/fake-contree.ts";
import { connect, type TestSession } from "../support/mcp.ts";

/** The Python server's prompts: names and arguments (required ones marked). */
const ORIGINAL: Record<string, string[]> = {
  "prepare-environment": ["task*", "base", "project", "packages"],
  "run-python": ["code*"],
  "run-shell": ["command*", "image"],
  "sync-and-run": ["source*", "command*", "image"],
  "install-packages": ["packages*", "image"],
  "parallel-tasks": ["tasks*", "image"],
  "build-project": ["source*", "install_cmd", "test_cmd"],
  "debug-failure": ["operation_id*"],
  "inspect-image": ["image*"],
  "multi-stage-build": ["source*", "install_cmd", "build_cmd", "test_cmd"],
};

let fake: FakeContree;
let session: TestSession;

beforeAll(async () => {
  fake = await startFakeContree();
  session = await connect(cloudBackendFor(fake));
  fake.addImage({ tag: "ubuntu:noble" });
  fake.addImage({ tag: "python:3.11-slim" });
  fake.addImage({ tag: "common/python-ml/python:3.11-slim" });
  fake.addImage({ tag: "acme/deps/python:3.12-slim" });
  fake.addImage();
});

afterAll(async () => {
  await session?.close();
  await fake?.close();
});

async function render(name: string, args: Record<string, string>): Promise<string> {
  const result = await session.client.getPrompt({ name, arguments: args });
  expect(result.messages).toHaveLength(1);
  const content = result.messages[0]!.content;
  expect(content.type).toBe("text");
  return content.type === "text" ? content.text : "";
}

describe("prompts", () => {
  test("the ten prompts keep the original names and arguments", async () => {
    const { prompts } = await session.client.listPrompts();
    expect(prompts.map((p) => p.name)).toEqual(Object.keys(ORIGINAL));
    for (const prompt of prompts) {
      const args = (prompt.arguments ?? []).map((a) => `${a.name}${a.required ? "*" : ""}`);
      expect(args).toEqual(ORIGINAL[prompt.name]!);
      expect(prompt.description).toBeTruthy();
      for (const arg of prompt.arguments ?? [])
        expect(arg.description, `${prompt.name}.${arg.name}`).toBeTruthy();
    }
  });

  test("each argument value appears in the text, and defaults fill the rest", async () => {
    const env = await render("prepare-environment", {
      task: "train a model",
      packages: "numpy==1.26 pandas",
    });
    expect(env).toContain("train a model");
    expect(env).toContain("common/numpy-env/python:3.11-slim");
    expect(env).toContain('contree_list_images(tag_prefix="common/")');
    expect(env).toContain("pip install --no-cache-dir numpy==1.26 pandas");
    expect(env).toContain("disposable=false");
    const scoped = await render("prepare-environment", { task: "t", base: "ubuntu:noble", project: "Acme" });
    expect(scoped).toContain("acme/custom-env/ubuntu:noble");
    expect(scoped).toContain("docker://ubuntu:noble");

    const code = "import sys\nprint(sys.version)";
    const python = await render("run-python", { code });
    expect(python).toContain(code);
    expect(python).toContain("contree_run");

    expect(await render("run-shell", { command: "uname -a" })).toContain("tag:ubuntu:noble");
    expect(await render("run-shell", { command: "uname -a", image: "alpine:3.20" })).toContain(
      "docker://alpine:3.20",
    );

    const sync = await render("sync-and-run", { source: "/home/me/proj", command: "make test" });
    expect(sync).toContain('contree_rsync(source="/home/me/proj"');
    expect(sync).toContain("make test");
    expect(sync).toContain("tag:alpine:latest");

    const install = await render("install-packages", { packages: "requests", image: "python:3.12-slim" });
    expect(install).toContain("pip install requests");
    expect(install).toContain("disposable=false");
    expect(install).toContain("common/requests-env/python:3.12-slim");

    const parallel = await render("parallel-tasks", { tasks: "pytest tests/a\n\npytest tests/b\n" });
    expect(parallel).toContain("1. `pytest tests/a`\n2. `pytest tests/b`");
    expect(parallel).toContain("wait=false");
    expect(parallel).toContain("contree_wait_operations");

    const build = await render("build-project", { source: "/src/app" });
    expect(build).toContain("pip install -e .");
    expect(build).toContain("pytest");
    const custom = await render("build-project", {
      source: "/src/app",
      install_cmd: "npm ci",
      test_cmd: "npm test",
    });
    expect(custom).toContain("npm ci");
    expect(custom).toContain("npm test");

    const debug = await render("debug-failure", { operation_id: "op-123" });
    expect(debug).toContain('contree_get_operation(operation_id="op-123")');

    expect(await render("inspect-image", { image: "tag:python:3.11-slim" })).toContain(
      'contree_list_files(image="tag:python:3.11-slim", path="/")',
    );

    const stages = await render("multi-stage-build", { source: "/src/app", build_cmd: "make dist" });
    expect(stages).toContain("make dist");
    expect(stages).toContain("pip install -e .");
    expect(stages).toContain("pytest");
  });

  test("a required argument that is missing is an error", async () => {
    const error = await session.client
      .getPrompt({ name: "run-python", arguments: {} })
      .catch((e: Error) => e);
    expect(error).toBeInstanceOf(Error);
  });

  test("image arguments complete from the tags on the backend", async () => {
    const complete = async (prompt: string, argument: string, value: string) =>
      (
        await session.client.complete({
          ref: { type: "ref/prompt", name: prompt },
          argument: { name: argument, value },
        })
      ).completion.values;
    expect(await complete("run-shell", "image", "ub")).toEqual(["ubuntu:noble"]);
    expect(await complete("prepare-environment", "base", "")).toContain("python:3.11-slim");
    expect(await complete("inspect-image", "image", "tag:common/")).toEqual([
      "tag:common/python-ml/python:3.11-slim",
    ]);
    expect(await complete("prepare-environment", "project", "")).toEqual(["acme"]);
  });

  test("operation ids complete from recent operations", async () => {
    const run = await session.call("run", { command: "true", image: "tag:ubuntu:noble" });
    const id = (run.structuredContent as { operation_id: string }).operation_id;
    const { completion } = await session.client.complete({
      ref: { type: "ref/prompt", name: "debug-failure" },
      argument: { name: "operation_id", value: id.slice(0, 4) },
    });
    expect(completion.values).toContain(id);
  });
});

test("suggested tags follow the convention and the tag rules", () => {
  expect(suggestedTag("python:3.11-slim", undefined, "scikit-learn[all]>=1.4 numpy")).toBe(
    "common/scikit-learn-env/python:3.11-slim",
  );
  expect(suggestedTag("docker://ubuntu:noble", "My Project", undefined)).toBe(
    "my-project/custom-env/ubuntu:noble",
  );
});
