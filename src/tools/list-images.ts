import * as z from "zod";
import DESCRIPTION from "./list-images.md" with { type: "text" };
import { imageSchema, imageView } from "./_images.ts";
import { defineTool } from "./tool.ts";

export const listImages = defineTool({
  name: "list_images",
  title: "List images",
  description: DESCRIPTION,
  input: z.object({
    limit: z.number().int().min(1).max(1000).default(100).describe("How many images to return (1-1000)"),
    offset: z
      .number()
      .int()
      .min(0)
      .default(0)
      .describe("Skip this many (for the next page, pass next_offset)"),
    tagged: z.boolean().nullish().describe("true: only tagged images; false: only untagged; omit for both"),
    tag_prefix: z.string().nullish().describe("Only images whose tag starts with this, e.g. 'common/'"),
    since: z
      .string()
      .nullish()
      .describe("Only images created after this: ISO 8601 or relative like 15m, 2h, 3d"),
    until: z.string().nullish().describe("Only images created before this: ISO 8601 or relative"),
  }),
  output: z.object({
    images: z.array(imageSchema),
    count: z.number().int(),
    next_offset: z
      .number()
      .int()
      .nullable()
      .describe("Pass as offset to get the next page; null when this was the last"),
  }),
  annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
  async run(args, call) {
    const images = await call.deps.backend.listImages({
      limit: args.limit,
      offset: args.offset,
      tagged: args.tagged ?? undefined,
      tagPrefix: args.tag_prefix || undefined,
      since: args.since || undefined,
      until: args.until || undefined,
    });
    return {
      images: images.map(imageView),
      count: images.length,
      next_offset: images.length >= args.limit ? args.offset + images.length : null,
    };
  },
  summary(result, call) {
    if (!result.count) return `No images match. Import one with ${call.tool("import_image")}.`;
    const rows = result.images.map((image) => `${image.uuid}  ${image.tag ?? "-"}  ${image.created_at}`);
    const more = result.next_offset === null ? "" : `\n(more: offset=${result.next_offset})`;
    return `${result.count} image(s):\n${rows.join("\n")}${more}`;
  },
});
