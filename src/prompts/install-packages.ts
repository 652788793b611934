import { completable } from "@modelcontextprotocol/server";
import * as z from "zod";
import TEMPLATE from "./install-packages.md" with { type: "text" };
import { installCommand } from "./prepare-environment.ts";
import { completeTag, definePrompt, fill, importUrl, suggestedTag } from "./_prompt.ts";

export const installPackages = definePrompt({
  name: "install-packages",
  title: "Install packages into an image",
  description: "Install packages once with disposable=false and tag the resulting image for reuse",
  args: (deps) =>
    z.object({
      packages: z.string().describe("Packages to install, space-separated"),
      image: completable(
        z.string().default("ubuntu:noble").describe("Image name (tag) to install into"),
        completeTag(deps),
      ),
    }),
  text: (args) =>
    fill(TEMPLATE, {
      packages: args.packages.trim(),
      image: args.image,
      import_url: importUrl(args.image),
      install: installCommand(args.image, args.packages),
      tag: suggestedTag(args.image, undefined, args.packages),
    }),
});
