import type { FileSpec } from "../backend/types.ts";
import { UserError } from "../errors.ts";
import type { ToolCall } from "../tools/tool.ts";
import { backendKey, requireFileCache } from "./paths.ts";
import { targetPath } from "./plan.ts";

/** The files of a directory state as run places them: container path -> uploaded file and its mode. */
export function directoryStateFiles(
  call: Pick<ToolCall, "deps" | "tool">,
  id: number,
): Record<string, FileSpec> {
  const cache = requireFileCache(call.deps);
  const state = cache.state(id, backendKey(call.deps.backend, call.deps.config));
  if (!state) {
    throw new UserError(
      `Unknown directory_state_id ${id}. Call ${call.tool("rsync")}(source=<local directory>, destination=<sandbox directory>) first and pass the id it returns (ids belong to this machine and backend).`,
    );
  }
  const files: Record<string, FileSpec> = {};
  for (const file of cache.stateFiles(id)) {
    files[targetPath(state.destination, file.rel)] = { uuid: file.uuid, mode: file.mode };
  }
  return files;
}

/**
 * After a run with this state failed because the backend lacks a file: the state's blobs are no longer trusted, so
 * the next rsync re-checks and re-uploads them. Returns the advice for the error message.
 */
export function distrustDirectoryState(call: Pick<ToolCall, "deps" | "tool">, id: number): string {
  const cache = requireFileCache(call.deps);
  cache.distrustState(id, backendKey(call.deps.backend, call.deps.config));
  return `Call ${call.tool("rsync")} again with the same source and destination: it checks every file of directory_state_id ${id} with the backend and uploads what is missing.`;
}
