import { completable } from "@modelcontextprotocol/server";
import * as z from "zod";
import { completeImage } from "../resources/_shared.ts";
import TEMPLATE from "./inspect-image.md" with { type: "text" };
import { definePrompt, fill } from "./_prompt.ts";

export const inspectImage = definePrompt({
  name: "inspect-image",
  title: "Inspect an image",
  description: "See what an image contains, with the free file tools first",
  args: (deps) =>
    z.object({
      image: completable(z.string().describe("Image UUID or tag:NAME"), async (value) =>
        completeImage(deps)(value ?? ""),
      ),
    }),
  text(args) {
    const image = args.image.trim();
    return fill(TEMPLATE, { image });
  },
});
