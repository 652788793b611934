import * as z from "zod";
import DESCRIPTION from "./set-tag.md" with { type: "text" };
import { checkTag, imageRefSchema, imageSchema, imageView, resolveImageUuid } from "./_images.ts";
import { defineTool } from "./tool.ts";

export const setTag = defineTool({
  name: "set_tag",
  title: "Set or remove an image tag",
  description: DESCRIPTION,
  input: z.object({
    image_uuid: imageRefSchema.describe("The image to tag: its UUID (or tag:NAME of its current tag)"),
    tag: z
      .string()
      .nullish()
      .describe(
        "New tag: lower-case letters, digits, _ - and : / . separators; empty or null removes the tag",
      ),
  }),
  output: imageSchema,
  annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: true, openWorldHint: false },
  async run(args, call) {
    const uuid = await resolveImageUuid(call.deps.backend, args.image_uuid, call.tool);
    const { backend, cache } = call.deps;
    if (args.tag) {
      const image = await backend.setTag(uuid, checkTag(args.tag.trim()));
      cache.recordImage({
        uuid,
        parent: null,
        operationId: null,
        command: null,
        registryUrl: null,
        tag: image.tag,
      });
      return imageView(image);
    }
    return imageView(await backend.removeTag(uuid));
  },
  summary(image) {
    return image.tag ? `image ${image.uuid} is now tagged ${image.tag}` : `image ${image.uuid} has no tag`;
  },
});
