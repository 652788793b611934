import { completable } from "@modelcontextprotocol/server";
import * as z from "zod";
import TEMPLATE from "./sync-and-run.md" with { type: "text" };
import { completeTag, definePrompt, fill, importUrl } from "./_prompt.ts";

export const syncAndRun = definePrompt({
  name: "sync-and-run",
  title: "Sync a directory and run",
  description: "Sync a local directory into a sandbox at /app and run a command there",
  args: (deps) =>
    z.object({
      source: z.string().describe("Absolute path of the local directory"),
      command: z.string().describe("The command to run in /app"),
      image: completable(
        z.string().default("alpine:latest").describe("Image name (tag), e.g. python:3.11-slim"),
        completeTag(deps),
      ),
    }),
  text: (args) =>
    fill(TEMPLATE, {
      source: args.source,
      command: args.command,
      image: args.image,
      import_url: importUrl(args.image),
    }),
});
