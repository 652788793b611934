import { randomUUID } from "node:crypto";
import { chmodSync, lstatSync, mkdirSync, renameSync, rmSync, type Stats } from "node:fs";
import { basename, dirname, join, sep } from "node:path";
import * as z from "zod";
import { BackendError, UserError } from "../errors.ts";
import { containerPath, localPath } from "../sync/paths.ts";
import { extractTar } from "../sync/untar.ts";
import DESCRIPTION from "./download.md" with { type: "text" };
import { imageRefSchema, resolveImageUuid } from "./_images.ts";
import { requireImage } from "./read-file.ts";
import { defineTool, type ToolCall } from "./tool.ts";

function lstatOrNull(path: string): Stats | null {
  try {
    return lstatSync(path);
  } catch {
    return null;
  }
}

/** Whether `error` is a file system error about `destination`, its parent directories or the temp files beside it. */
function isWriteError(error: unknown, destination: string): error is NodeJS.ErrnoException {
  if (!(error instanceof Error)) return false;
  const { code, syscall, path } = error as NodeJS.ErrnoException;
  if (typeof code !== "string" || typeof syscall !== "string") return false;
  // Reads of the image (a local backend's store) fail with paths elsewhere; those are not the destination's fault.
  if (typeof path !== "string") return syscall === "write";
  const parent = dirname(destination);
  return (
    path.startsWith(parent + sep) ||
    destination.startsWith(path + sep) ||
    path === destination ||
    path === parent
  );
}

/** "ENOENT: no such file or directory, mkdir '/proc/nope'" -> "no such file or directory (ENOENT, mkdir /proc/nope)". */
function reasonOf(error: NodeJS.ErrnoException): string {
  const match = /^[A-Z0-9]+: (.*?)(?:, (\w+) '(.*)')?$/.exec(error.message);
  if (!match) return error.message;
  const [, message, syscall, path] = match;
  // mkdir -p through a file says EEXIST, which reads as if the destination itself were taken.
  const what =
    error.code === "EEXIST" && syscall === "mkdir" ? "a file is in the way, not a directory" : message;
  return `${what} (${[error.code, syscall && path ? `${syscall} ${path}` : undefined].filter(Boolean).join(", ")})`;
}

/** Runs the part of a download that writes to this machine; its file system errors say what the model can change. */
async function writing<T>(destination: string, work: () => Promise<T> | T): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (!isWriteError(error, destination)) throw error;
    throw new UserError(`Cannot write ${destination}: ${reasonOf(error)}. Choose a writable absolute path.`, {
      cause: error,
    });
  }
}

/** A temp name beside the destination: the same filesystem, so the final rename is atomic. */
function tempBeside(destination: string): string {
  return join(dirname(destination), `.${basename(destination)}.download-${randomUUID().slice(0, 8)}`);
}

async function writeFileAtomically(
  stream: ReadableStream<Uint8Array>,
  destination: string,
  executable: boolean,
  signal: AbortSignal,
): Promise<number> {
  const temp = `${tempBeside(destination)}.tmp`;
  let size = 0;
  try {
    const writer = Bun.file(temp).writer();
    try {
      for await (const chunk of stream) {
        signal.throwIfAborted();
        writer.write(chunk);
        size += chunk.length;
        if (size % (8 << 20) < chunk.length) await writer.flush();
      }
    } finally {
      await writer.end();
    }
    if (executable) chmodSync(temp, 0o755);
    renameSync(temp, destination);
    return size;
  } catch (error) {
    rmSync(temp, { force: true });
    throw error;
  }
}

async function openFile(
  call: ToolCall,
  image: string,
  path: string,
): Promise<ReadableStream<Uint8Array> | "directory"> {
  try {
    return await call.deps.backend.readFile(image, path);
  } catch (error) {
    if (error instanceof BackendError && error.code === "invalid") return "directory";
    if (error instanceof BackendError && error.code === "not_found") {
      await requireImage(call, image);
      throw new UserError(
        `No file or directory ${path} in image ${image}. Call ${call.tool("list_files")}(image="${image}", path="${dirname(path)}") to see what is there.`,
      );
    }
    throw error;
  }
}

export const download = defineTool({
  name: "download",
  title: "Download a file or directory from an image",
  description: DESCRIPTION,
  input: z.object({
    image: imageRefSchema,
    path: z.string().min(1).describe("File or directory in the image, e.g. /app/dist/report.html"),
    destination: z
      .string()
      .min(1)
      .describe("Absolute path on this machine to write (the file or directory itself)"),
    executable: z.boolean().default(false).describe("Make the downloaded file executable (0755)"),
    overwrite: z.boolean().default(false).describe("Replace an existing file or directory at destination"),
  }),
  output: z.object({
    image: z.string(),
    path: z.string(),
    destination: z.string(),
    type: z.enum(["file", "directory"]),
    size: z.number().int().describe("Bytes written"),
    files: z.number().int().describe("Files written (1 for a file)"),
    executable: z.boolean(),
    skipped: z
      .array(z.object({ path: z.string(), reason: z.string() }))
      .describe("Directory entries not written"),
  }),
  annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: true },
  async run(args, call) {
    const destination = localPath(args.destination, "destination");
    const path = containerPath(args.path);
    const existing = lstatOrNull(destination);
    if (existing && !args.overwrite) {
      const what = existing.isDirectory() ? "A directory" : "A file";
      throw new UserError(
        `${what} already exists at ${destination}. Pass overwrite=true to replace it, or choose another destination.`,
      );
    }
    const image = await resolveImageUuid(call.deps.backend, args.image, call.tool);
    const opened = path === "/" ? "directory" : await openFile(call, image, path);
    if (opened !== "directory") {
      if (existing?.isDirectory()) {
        await opened.cancel();
        throw new UserError(
          `${destination} is a directory; give the full path of the file to write, e.g. ${join(destination, basename(path))}.`,
        );
      }
      const size = await writing(destination, () => {
        mkdirSync(dirname(destination), { recursive: true });
        return writeFileAtomically(opened, destination, args.executable, call.signal);
      }).catch(async (error: unknown) => {
        await opened.cancel().catch(() => {});
        throw error;
      });
      return {
        image,
        path,
        destination,
        type: "file" as const,
        size,
        files: 1,
        // Windows has no executable bit: chmod does nothing there, so do not claim it.
        executable: args.executable && process.platform !== "win32",
        skipped: [],
      };
    }
    if (existing && !existing.isDirectory()) {
      throw new UserError(
        `${path} is a directory in the image, but ${destination} is a file. Choose a directory path as destination.`,
      );
    }
    const temp = tempBeside(destination);
    await writing(destination, () => {
      mkdirSync(dirname(destination), { recursive: true });
      mkdirSync(temp);
    });
    try {
      let archive: ReadableStream<Uint8Array>;
      try {
        archive = await call.deps.backend.archive(image, path);
      } catch (error) {
        if (error instanceof BackendError && error.code === "not_found") {
          throw new UserError(
            `No directory ${path} in image ${image}. Call ${call.tool("list_files")} to see what is there.`,
          );
        }
        throw error;
      }
      call.progress(`downloading ${path}`);
      const extracted = await writing(destination, () => extractTar(archive, temp, call.signal));
      await writing(destination, () => {
        if (!existing) {
          renameSync(temp, destination);
          return;
        }
        // Two renames, not one atomic swap: the destination never holds a partial tree, but between the renames
        // (microseconds) it does not exist, and a crash right there leaves the old tree at <temp>.old beside it.
        const old = `${temp}.old`;
        renameSync(destination, old);
        try {
          renameSync(temp, destination);
        } catch (error) {
          renameSync(old, destination);
          throw error;
        }
        rmSync(old, { recursive: true, force: true });
      });
      return {
        image,
        path,
        destination,
        type: "directory" as const,
        size: extracted.bytes,
        files: extracted.files,
        executable: false,
        skipped: extracted.skipped,
      };
    } catch (error) {
      rmSync(temp, { recursive: true, force: true });
      throw error;
    }
  },
  summary(result) {
    const what =
      result.type === "file" ? `${result.size} bytes` : `${result.files} files, ${result.size} bytes`;
    const lines = [
      `downloaded ${result.path} (${what}) from ${result.image} to ${result.destination}${result.executable ? " (executable)" : ""}`,
    ];
    for (const s of result.skipped.slice(0, 20)) lines.push(`  skipped ${s.path}: ${s.reason}`);
    return lines.join("\n");
  },
});
