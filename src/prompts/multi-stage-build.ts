import * as z from "zod";
import TEMPLATE from "./multi-stage-build.md" with { type: "text" };
import { definePrompt, fill } from "./_prompt.ts";

export const multiStageBuild = definePrompt({
  name: "multi-stage-build",
  title: "Multi-stage build",
  description: "Install, build and test in stages, each kept as an image to branch from or roll back to",
  args: () =>
    z.object({
      source: z.string().describe("Absolute path of the local project directory"),
      install_cmd: z.string().default("pip install -e .").describe("Dependency step, run in /app"),
      build_cmd: z.string().default("python -m build").describe("Build step, run in /app"),
      test_cmd: z.string().default("pytest").describe("Test step, run in /app"),
    }),
  text: (args) =>
    fill(TEMPLATE, {
      source: args.source,
      install_cmd: args.install_cmd,
      build_cmd: args.build_cmd,
      test_cmd: args.test_cmd,
    }),
});
