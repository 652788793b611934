import * as z from "zod";
import { normaliseExcludes } from "../sync/exclude.ts";
import { UserError } from "../errors.ts";
import { backendKey, requireFileCache } from "../sync/paths.ts";
import { normaliseDestination } from "../sync/plan.ts";
import { localSource, syncDirectory } from "../sync/sync.ts";
import DESCRIPTION from "./rsync.md" with { type: "text" };
import { defineTool } from "./tool.ts";

const SHOWN_SKIPPED = 20;

export const rsync = defineTool({
  name: "rsync",
  title: "Sync a local directory for runs",
  description: DESCRIPTION,
  input: z.object({
    source: z.string().min(1).describe("Absolute local directory (or file) on this machine; ~ is expanded"),
    destination: z
      .string()
      .min(1)
      .describe("Absolute directory in the sandbox where the files appear, e.g. /app"),
    exclude: z
      .array(z.string())
      .nullish()
      .describe('Gitignore-style patterns, e.g. ["__pycache__", "*.pyc", ".git", "node_modules", "dist/"]'),
  }),
  output: z.object({
    directory_state_id: z
      .number()
      .int()
      .describe("Pass to {{p}}run(directory_state_id=...); stable for this source, destination and excludes"),
    source: z.string(),
    destination: z.string(),
    files: z.number().int().describe("Files in the state"),
    uploaded: z.number().int().describe("Files whose content was sent now"),
    reused: z.number().int().describe("Files whose content the backend already had"),
    hashed: z.number().int().describe("Files read and hashed now (new or changed since the last sync)"),
    bytes_uploaded: z.number().int(),
    skipped: z
      .array(z.object({ path: z.string(), reason: z.string() }))
      .describe("Files left out: links leading outside the tree, unreadable or special files"),
  }),
  annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: true, openWorldHint: true },
  async run(args, call) {
    const destination = normaliseDestination(args.destination);
    if (!destination) {
      throw new UserError(
        `destination must be an absolute directory in the sandbox (got '${args.destination}'), e.g. /app.`,
      );
    }
    const source = localSource(args.source);
    const excludes = normaliseExcludes(args.exclude);
    const { backend, config } = call.deps;
    const result = await syncDirectory({
      backend,
      cache: requireFileCache(call.deps),
      backendKey: backendKey(backend, config),
      source,
      destination,
      excludes,
      signal: call.signal,
      progress: call.progress,
    });
    return {
      directory_state_id: result.stateId,
      source,
      destination,
      files: result.files,
      uploaded: result.uploaded,
      reused: result.reused,
      hashed: result.hashed,
      bytes_uploaded: result.bytesUploaded,
      skipped: result.skipped,
    };
  },
  summary(result, call) {
    const lines = [
      `directory_state_id=${result.directory_state_id}: ${result.files} files from ${result.source} at ${result.destination} (${result.uploaded} uploaded, ${result.reused} already stored, ${result.hashed} hashed, ${result.bytes_uploaded} bytes sent)`,
      `Use it: ${call.tool("run")}(command=..., image=..., directory_state_id=${result.directory_state_id}). Call ${call.tool("rsync")} again after local edits; unchanged files cost nothing.`,
    ];
    if (result.skipped.length > 0) {
      lines.push(`Skipped ${result.skipped.length}:`);
      for (const s of result.skipped.slice(0, SHOWN_SKIPPED)) lines.push(`  ${s.path}: ${s.reason}`);
      if (result.skipped.length > SHOWN_SKIPPED)
        lines.push(`  … ${result.skipped.length - SHOWN_SKIPPED} more in structuredContent.skipped`);
    }
    return lines.join("\n");
  },
});
