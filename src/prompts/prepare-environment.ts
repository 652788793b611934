import { completable } from "@modelcontextprotocol/server";
import * as z from "zod";
import TEMPLATE from "./prepare-environment.md" with { type: "text" };
import { completeScope, completeTag, definePrompt, fill, importUrl, suggestedTag } from "./_prompt.ts";

/** How to install packages on a base: pip on a Python image, apt-get otherwise. */
export function installCommand(base: string, packages: string | undefined): string {
  if (!packages?.trim()) return "<commands that install what the task needs>";
  return /python/i.test(base)
    ? `pip install --no-cache-dir ${packages.trim()}`
    : `apt-get update && apt-get install -y ${packages.trim()}`;
}

export const prepareEnvironment = definePrompt({
  name: "prepare-environment",
  title: "Prepare a reusable environment",
  description: "Find or build a tagged image with what a task needs, then run the task in it",
  args: (deps) =>
    z.object({
      task: z.string().describe("What the environment is for"),
      base: completable(
        z.string().default("python:3.11-slim").describe("Base image, e.g. python:3.11-slim or ubuntu:noble"),
        completeTag(deps),
      ),
      // The SDK looks for the completer inside .optional(), not on it.
      project: completable(
        z.string().describe("Project name: the tag scope (default common)"),
        completeScope(deps),
      ).optional(),
      packages: z.string().optional().describe("Packages to install, space-separated"),
    }),
  text(args) {
    const tag = suggestedTag(args.base, args.project, args.packages);
    return fill(TEMPLATE, {
      task: args.task,
      base: args.base,
      packages: args.packages?.trim() || "whatever the task needs",
      tag,
      scope: tag.split("/")[0]!,
      import_url: importUrl(args.base),
      install: installCommand(args.base, args.packages),
    });
  },
});
