import { open } from "node:fs/promises";

/** Files up to this size are read in one call: for small files the stream machinery costs more than the hashing. */
const WHOLE_READ_MAX = 256 * 1024;

export interface Hashed {
  sha256: string;
  /** Bytes actually read, which may differ from an earlier stat when the file changed in between. */
  size: number;
}

/** Chunk for big files: large reads mean few trips to the I/O thread, which dominate when the machine is busy. */
const CHUNK = 1 << 20;

/** SHA-256 of a file with Bun's native hasher; big files are read in chunks and never held in memory. */
export async function hashFile(path: string, sizeHint?: number, signal?: AbortSignal): Promise<Hashed> {
  const hasher = new Bun.CryptoHasher("sha256");
  if ((sizeHint ?? Bun.file(path).size) <= WHOLE_READ_MAX) {
    const bytes = await Bun.file(path).bytes();
    hasher.update(bytes);
    return { sha256: hasher.digest("hex"), size: bytes.length };
  }
  const handle = await open(path, "r");
  try {
    const buffer = Buffer.allocUnsafe(CHUNK);
    let size = 0;
    for (;;) {
      signal?.throwIfAborted();
      const { bytesRead } = await handle.read(buffer, 0, CHUNK, null);
      if (bytesRead > 0) hasher.update(buffer.subarray(0, bytesRead));
      size += bytesRead;
      // A regular file reads short only at its end.
      if (bytesRead < CHUNK) break;
    }
    return { sha256: hasher.digest("hex"), size };
  } finally {
    await handle.close();
  }
}

/** SHA-256 of bytes in memory, hex. */
export function hashBytes(bytes: Uint8Array): string {
  return new Bun.CryptoHasher("sha256").update(bytes).digest("hex");
}

/** Runs `work` over `items` with at most `limit` in flight; results keep the input order. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  work: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results: R[] = [];
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index]!, index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
