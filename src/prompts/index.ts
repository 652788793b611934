import type { McpServer } from "@modelcontextprotocol/server";
import type { ToolDeps } from "../tools/tool.ts";
import { buildProject } from "./build-project.ts";
import { debugFailure } from "./debug-failure.ts";
import { inspectImage } from "./inspect-image.ts";
import { installPackages } from "./install-packages.ts";
import { multiStageBuild } from "./multi-stage-build.ts";
import { parallelTasks } from "./parallel-tasks.ts";
import { prepareEnvironment } from "./prepare-environment.ts";
import { registerPrompt, type PromptDefinition } from "./_prompt.ts";
import { runPython } from "./run-python.ts";
import { runShell } from "./run-shell.ts";
import { syncAndRun } from "./sync-and-run.ts";

/** Every prompt, in the order clients list them (the Python server's names and arguments). */
export const PROMPTS = [
  prepareEnvironment,
  runPython,
  runShell,
  syncAndRun,
  installPackages,
  parallelTasks,
  buildProject,
  debugFailure,
  inspectImage,
  multiStageBuild,
] as unknown as PromptDefinition[];

/** Registers every prompt (one file each in this directory). The only place they are registered. */
export function registerPrompts(server: McpServer, deps: ToolDeps): void {
  for (const prompt of PROMPTS) registerPrompt(server, prompt, deps);
}
