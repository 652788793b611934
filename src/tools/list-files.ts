import * as z from "zod";
import type { DirEntry, DirListing } from "../backend/types.ts";
import { BackendError, UserError } from "../errors.ts";
import { containerPath } from "../sync/paths.ts";
import DESCRIPTION from "./list-files.md" with { type: "text" };
import { imageRefSchema, resolveImageUuid } from "./_images.ts";
import { requireImage } from "./read-file.ts";
import { defineTool, type ToolCall } from "./tool.ts";

/** Entries beyond this are counted but not returned: a listing is for a model to read. */
export const MAX_ENTRIES = 1000;

const TYPE_CHAR: Record<DirEntry["type"], string> = {
  file: "-",
  directory: "d",
  symlink: "l",
  socket: "s",
  fifo: "p",
  other: "?",
};

/** rwxr-xr-x with setuid, setgid and sticky folded in the way ls shows them. */
function permissions(mode: number): string {
  const bits = ["r", "w", "x", "r", "w", "x", "r", "w", "x"].map((c, i) => (mode & (0o400 >> i) ? c : "-"));
  const special = (index: number, bit: number, set: string) => {
    if (mode & bit) bits[index] = bits[index] === "x" ? set : set.toUpperCase();
  };
  special(2, 0o4000, "s");
  special(5, 0o2000, "s");
  special(8, 0o1000, "t");
  return bits.join("");
}

function when(mtime: number): string {
  return mtime > 0 ? new Date(mtime * 1000).toISOString().slice(0, 16).replace("T", " ") : "-";
}

const width = (values: string[]) => Math.max(0, ...values.map((v) => v.length));

/** An `ls -l`-like text: type and mode, owner, group, size, time, name (with `/` for directories and `->` for links). */
export function listingText(listing: DirListing, limit = MAX_ENTRIES): string {
  const shown = sortEntries(listing.entries).slice(0, limit);
  const owners = shown.map((e) => String(e.owner));
  const groups = shown.map((e) => String(e.group));
  const sizes = shown.map((e) => String(e.size));
  const [ow, gw, sw] = [width(owners), width(groups), width(sizes)];
  const lines = [`${listing.path}: ${listing.entries.length} entries`];
  shown.forEach((e, i) => {
    const name =
      e.type === "directory"
        ? `${e.name}/`
        : e.type === "symlink" && e.target
          ? `${e.name} -> ${e.target}`
          : e.name;
    lines.push(
      `${TYPE_CHAR[e.type]}${permissions(e.mode)} ${owners[i]!.padEnd(ow)} ${groups[i]!.padEnd(gw)} ${sizes[i]!.padStart(sw)} ${when(e.mtime)} ${name}`,
    );
  });
  if (listing.entries.length > shown.length)
    lines.push(`… ${listing.entries.length - shown.length} more entries not shown`);
  return lines.join("\n");
}

export function sortEntries(entries: readonly DirEntry[]): DirEntry[] {
  return entries.toSorted((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** Lists a directory of an image, turning a missing path or a file into errors that say what to do. */
export async function listImageDirectory(
  call: Pick<ToolCall, "deps" | "tool">,
  imageRef: string,
  rawPath: string,
): Promise<DirListing> {
  const image = await resolveImageUuid(call.deps.backend, imageRef, call.tool);
  const path = containerPath(rawPath);
  try {
    return await call.deps.backend.listDirectory(image, path);
  } catch (error) {
    if (error instanceof BackendError && error.code === "not_found") {
      await requireImage(call, image);
      throw new UserError(`No directory ${path} in image ${image}. List its parent to see what is there.`);
    }
    if (error instanceof BackendError && error.code === "invalid") {
      throw new UserError(
        `${path} in image ${image} is not a directory: read it with ${call.tool("read_file")}.`,
      );
    }
    throw error;
  }
}

const entrySchema = z.object({
  name: z.string(),
  type: z.enum(["file", "directory", "symlink", "socket", "fifo", "other"]),
  size: z.number(),
  mode: z.string().describe("Octal permission bits, e.g. 0755"),
  mtime: z.string().describe("ISO 8601, empty when unknown"),
  owner: z.string(),
  group: z.string(),
  target: z.string().nullable().describe("Symlink target"),
});

export const listFiles = defineTool({
  name: "list_files",
  title: "List a directory in an image",
  description: DESCRIPTION,
  input: z.object({
    image: imageRefSchema,
    path: z.string().default("/").describe("Directory in the image, e.g. /app (default /)"),
  }),
  output: z.object({
    image: z.string(),
    path: z.string(),
    count: z.number().int().describe("Entries in the directory"),
    truncated: z
      .boolean()
      .describe(`More than ${MAX_ENTRIES} entries: only the first ${MAX_ENTRIES} by name are returned`),
    entries: z.array(entrySchema),
  }),
  annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
  async run(args, call) {
    const image = await resolveImageUuid(call.deps.backend, args.image, call.tool);
    const listing = await listImageDirectory(call, image, args.path);
    const entries = sortEntries(listing.entries).slice(0, MAX_ENTRIES);
    return {
      image,
      path: listing.path,
      count: listing.entries.length,
      truncated: listing.entries.length > entries.length,
      entries: entries.map((e) => ({
        name: e.name,
        type: e.type,
        size: e.size,
        mode: e.mode.toString(8).padStart(4, "0"),
        mtime: e.mtime > 0 ? new Date(e.mtime * 1000).toISOString() : "",
        owner: String(e.owner),
        group: String(e.group),
        target: e.target,
      })),
    };
  },
  summary(result) {
    const listing: DirListing = {
      path: result.path,
      entries: result.entries.map((e) => ({
        ...e,
        mode: Number.parseInt(e.mode, 8),
        mtime: e.mtime ? Date.parse(e.mtime) / 1000 : 0,
      })),
    };
    const text = listingText(listing);
    return result.truncated
      ? text.replace(
          /^[^\n]*/,
          `${result.path}: ${result.count} entries (first ${result.entries.length} shown)`,
        )
      : text;
  },
});
