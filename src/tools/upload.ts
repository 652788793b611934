import { statSync } from "node:fs";
import * as z from "zod";
import { UserError } from "../errors.ts";
import { hashBytes } from "../sync/hash.ts";
import { hashOne } from "../sync/hash-pool.ts";
import { localPath } from "../sync/paths.ts";
import DESCRIPTION from "./upload.md" with { type: "text" };
import { defineTool } from "./tool.ts";

const BASE64 = /^[A-Za-z0-9+/_-]*={0,2}$/;

/** Only a missing file is "not found"; a file we may not read needs its permissions fixed, not another path. */
function statProblem(path: string, error: unknown): UserError {
  const code = (error as NodeJS.ErrnoException).code;
  switch (code) {
    case "ENOENT":
      return new UserError(`File not found: ${path}. Check the path on this machine.`);
    case "ENOTDIR":
      return new UserError(`File not found: a parent of ${path} is a file, not a directory. Check the path.`);
    case "EACCES":
    case "EPERM":
      return new UserError(
        `Cannot read ${path}: permission denied (${code}) for this server's user. Ask the user to make it readable, or choose another file.`,
      );
    default:
      return new UserError(
        `Cannot read ${path}: ${error instanceof Error ? error.message : String(error)}. Check the path on this machine.`,
      );
  }
}

export const upload = defineTool({
  name: "upload",
  title: "Upload a file",
  description: DESCRIPTION,
  input: z.object({
    path: z.string().nullish().describe("Absolute path of a local file on this machine (streamed; any size)"),
    content: z.string().nullish().describe("Text content (UTF-8); may be empty"),
    content_base64: z.string().nullish().describe("Binary content, base64-encoded"),
  }),
  output: z.object({
    uuid: z.string().describe('File UUID: use it in {{p}}run(files={"/container/path": uuid})'),
    sha256: z.string(),
    size: z.number().int().describe("Bytes"),
    already_stored: z.boolean().describe("The backend had this content already; nothing was sent"),
  }),
  annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: true, openWorldHint: true },
  async run(args, call) {
    const given = (["path", "content", "content_base64"] as const).filter(
      (k) => args[k] !== undefined && args[k] !== null,
    );
    if (given.length !== 1) {
      throw new UserError(
        given.length === 0
          ? "Give one of 'path' (a local file), 'content' (text, may be empty) or 'content_base64' (binary)."
          : `Give only one of 'path', 'content' and 'content_base64' (got ${given.join(", ")}).`,
      );
    }
    let body: Blob;
    let sha256: string;
    if (args.path !== undefined && args.path !== null) {
      const path = localPath(args.path, "path");
      let stat;
      try {
        stat = statSync(path);
      } catch (error) {
        throw statProblem(path, error);
      }
      if (stat.isDirectory()) {
        throw new UserError(`${path} is a directory. Use ${call.tool("rsync")} to send a directory.`);
      }
      if (!stat.isFile()) throw new UserError(`${path} is not a regular file.`);
      let hashed;
      try {
        hashed = await hashOne(path, stat.size, call.signal);
      } catch (error) {
        throw new UserError(
          `Cannot read ${path}: ${error instanceof Error ? error.message : String(error)}.`,
        );
      }
      // Bun.file streams from disk when sent, so a big file is never held in memory.
      body = Bun.file(path);
      if (body.size !== hashed.size)
        throw new UserError(`${path} changed while it was read; upload it again.`);
      sha256 = hashed.sha256;
    } else {
      let bytes: Uint8Array;
      if (args.content_base64 !== undefined && args.content_base64 !== null) {
        const compact = args.content_base64.replace(/\s+/g, "");
        if (!BASE64.test(compact)) {
          throw new UserError("content_base64 is not valid base64; send text with 'content' instead.");
        }
        bytes = new Uint8Array(Buffer.from(compact, "base64"));
      } else {
        bytes = new TextEncoder().encode(args.content ?? "");
      }
      body = new Blob([bytes]);
      sha256 = hashBytes(bytes);
    }
    const { backend } = call.deps;
    const found = await backend.findFile(sha256);
    if (found) return { uuid: found.uuid, sha256, size: body.size, already_stored: true };
    const stored = await backend.uploadFile(body, sha256);
    return { uuid: stored.uuid, sha256, size: body.size, already_stored: false };
  },
  summary(result, call) {
    const how = result.already_stored ? "already stored" : "uploaded";
    return `${how}: uuid ${result.uuid} (${result.size} bytes, sha256 ${result.sha256})\nPlace it with ${call.tool("run")}(..., files={"/path/in/sandbox": "${result.uuid}"}) or {"uuid": "${result.uuid}", "mode": "0755"} for an executable.`;
  },
});
