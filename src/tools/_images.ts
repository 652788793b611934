import * as z from "zod";
import type { Backend, Image } from "../backend/types.ts";
import { BackendError, UserError } from "../errors.ts";

const UUID = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;

/** The canonical lower-case hyphenated form of a UUID written in any common way, or null. */
export function canonicalUuid(text: string): string | null {
  const bare = text
    .trim()
    .replace(/^urn:uuid:/i, "")
    .replace(/^\{(.*)\}$/, "$1");
  if (!UUID.test(bare)) return null;
  const hex = bare.replaceAll("-", "").toLowerCase();
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

// The service's rule: lower-case letters, digits, _ and -, with : / . as separators, at most 256 characters.
const TAG = /^[a-z0-9_-]+(?:[:/.][a-z0-9_-]+)*$/;

export function checkTag(tag: string): string {
  if (tag.length > 256 || !TAG.test(tag)) {
    throw new UserError(
      `Invalid tag '${tag}': use lower-case letters, digits, '_' and '-', separated by ':', '/' or '.', at most 256 characters (e.g. 'common/python/python:3.11-slim').`,
    );
  }
  return tag;
}

export const imageRefSchema = z
  .string()
  .min(1)
  .describe("Image UUID, or tag:NAME for a tagged image (e.g. tag:common/python/python:3.11-slim)");

/** Resolves a UUID or `tag:NAME` to an image; a bare name that is not a UUID is tried as a tag. */
export async function resolveImage(
  backend: Backend,
  reference: string,
  tool: (name: string) => string,
): Promise<Image> {
  const ref = safeDecode(reference.trim());
  const uuid = canonicalUuid(ref);
  if (uuid) {
    try {
      return await backend.getImage(uuid);
    } catch (error) {
      if (error instanceof BackendError && error.code === "not_found") {
        throw new UserError(
          `No image with UUID ${uuid}. Call ${tool("list_images")} to see the images, or use tag:NAME for a tagged one.`,
        );
      }
      throw error;
    }
  }
  const tag = ref.startsWith("tag:") ? ref.slice(4) : ref;
  if (!tag || tag.length > 256 || !TAG.test(tag)) {
    throw new UserError(
      `Invalid image reference '${reference}': use an image UUID (from ${tool("list_images")}) or tag:NAME.`,
    );
  }
  try {
    return await backend.getImageByTag(tag);
  } catch (error) {
    if (error instanceof BackendError && error.code === "not_found") {
      const hint = ref.startsWith("tag:") ? "" : ` ('${ref}' is not a UUID, so it was tried as a tag)`;
      throw new UserError(
        `No image is tagged '${tag}'${hint}. Call ${tool("list_images")} with tag_prefix to find one, or ${tool("import_image")} with tag='${tag}' to create it.`,
      );
    }
    throw error;
  }
}

/** Resolves to a UUID without a round trip when the reference already is one. */
export async function resolveImageUuid(
  backend: Backend,
  reference: string,
  tool: (name: string) => string,
): Promise<string> {
  const uuid = canonicalUuid(safeDecode(reference.trim()));
  if (uuid) return uuid;
  return (await resolveImage(backend, reference, tool)).uuid;
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

export const imageSchema = z.object({
  uuid: z.string().describe("Image UUID (immutable)"),
  tag: z.string().nullable().describe("Tag, if the image has one"),
  created_at: z.string().describe("ISO 8601 creation time, empty when unknown"),
});

export function imageView(image: Image): z.output<typeof imageSchema> {
  return { uuid: image.uuid, tag: image.tag, created_at: image.createdAt };
}

/** Tags on the backend that start with `prefix`, sorted, for completion: a backend that cannot answer offers none. */
export async function tagsStartingWith(backend: Backend, prefix: string, limit = 50): Promise<string[]> {
  try {
    const images = await backend.listImages({
      tagged: true,
      limit,
      offset: 0,
      ...(prefix ? { tagPrefix: prefix } : {}),
    });
    return images.flatMap((image) => (image.tag ? [image.tag] : [])).toSorted();
  } catch {
    // Completion is a convenience, never an error.
    return [];
  }
}
