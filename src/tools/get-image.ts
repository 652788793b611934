import * as z from "zod";
import DESCRIPTION from "./get-image.md" with { type: "text" };
import { imageRefSchema, imageSchema, imageView, resolveImage } from "./_images.ts";
import { defineTool } from "./tool.ts";

export const getImage = defineTool({
  name: "get_image",
  title: "Get image",
  description: DESCRIPTION,
  input: z.object({ image: imageRefSchema }),
  output: imageSchema,
  annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
  async run(args, call) {
    return imageView(await resolveImage(call.deps.backend, args.image, call.tool));
  },
  summary(image) {
    return `image ${image.uuid} tag=${image.tag ?? "-"} created_at=${image.created_at || "unknown"}`;
  },
});
