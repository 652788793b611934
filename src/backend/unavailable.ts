import { UserError } from "../errors.ts";
import type { Backend, BackendKind } from "./types.ts";

/**
 * Stands in when the configured backend cannot work here (e.g. the local backend on a machine without bubblewrap):
 * the server still starts, answers tools/list, and every call says what is missing and how to fix it.
 */
export function unavailableBackend(kind: BackendKind, reason: string): Backend {
  const fail = async (): Promise<never> => {
    throw new UserError(reason);
  };
  return {
    kind,
    description: `${kind} backend (unavailable: ${reason})`,
    listImages: fail,
    getImage: fail,
    getImageByTag: fail,
    setTag: fail,
    removeTag: fail,
    importImage: fail,
    run: fail,
    getOperation: fail,
    listOperations: fail,
    cancelOperation: fail,
    findFile: fail,
    uploadFile: fail,
    listDirectory: fail,
    readFile: fail,
    archive: fail,
    close: async () => {},
  };
}
