import * as z from "zod";
import TEMPLATE from "./build-project.md" with { type: "text" };
import { definePrompt, fill } from "./_prompt.ts";

export const buildProject = definePrompt({
  name: "build-project",
  title: "Build and test a project",
  description: "Sync a project, install it once with disposable=false, then run its tests on the result",
  args: () =>
    z.object({
      source: z.string().describe("Absolute path of the local project directory"),
      install_cmd: z.string().default("pip install -e .").describe("Install command, run in /app"),
      test_cmd: z.string().default("pytest").describe("Test command, run in /app"),
    }),
  text: (args) =>
    fill(TEMPLATE, { source: args.source, install_cmd: args.install_cmd, test_cmd: args.test_cmd }),
});
