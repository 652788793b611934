import { completable } from "@modelcontextprotocol/server";
import * as z from "zod";
import TEMPLATE from "./run-shell.md" with { type: "text" };
import { completeTag, definePrompt, fill, importUrl } from "./_prompt.ts";

export const runShell = definePrompt({
  name: "run-shell",
  title: "Run a shell command",
  description: "Run a shell command in a sandbox from a given image",
  args: (deps) =>
    z.object({
      command: z.string().describe("The shell command"),
      image: completable(
        z.string().default("ubuntu:noble").describe("Image name (tag), e.g. ubuntu:noble"),
        completeTag(deps),
      ),
    }),
  text: (args) =>
    fill(TEMPLATE, {
      command: args.command,
      image: args.image,
      image_name: args.image.split(":")[0]!,
      import_url: importUrl(args.image),
    }),
});
