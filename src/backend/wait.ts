import type { Backend, Operation } from "./types.ts";
import { isTerminal } from "./types.ts";

export interface WaitOptions {
  /** Give up after this long and return the operation as it is (nothing is cancelled). */
  timeoutMs?: number;
  /** Stops waiting early (the caller went away); the operation is left as it is. */
  signal?: AbortSignal;
  /** Called after every fetch, so callers can report progress. */
  onUpdate?: (operation: Operation) => void;
  /** First poll interval; it grows by half each time up to maxIntervalMs. */
  minIntervalMs?: number;
  maxIntervalMs?: number;
}

export interface WaitResult {
  operation: Operation;
  /** true when the wait ended before the operation reached a terminal status. */
  timedOut: boolean;
  aborted: boolean;
}

/**
 * Waits for an operation to finish. Polling starts fast (short runs answer in tens of milliseconds) and backs
 * off to once a second; each waiter sleeps on its own, so a thousand waiters never starve each other (the HTTP
 * client bounds concurrent requests per request, not per waiter). A backend that can push changes wakes us early.
 */
export async function waitForOperation(
  backend: Backend,
  id: string,
  options: WaitOptions = {},
): Promise<WaitResult> {
  const deadline = options.timeoutMs === undefined ? Infinity : Date.now() + options.timeoutMs;
  let interval = options.minIntervalMs ?? 25;
  const maxInterval = options.maxIntervalMs ?? 1000;
  for (;;) {
    const operation = await backend.getOperation(id);
    options.onUpdate?.(operation);
    if (isTerminal(operation.status)) return { operation, timedOut: false, aborted: false };
    const left = deadline - Date.now();
    if (left <= 0) return { operation, timedOut: true, aborted: false };
    if (options.signal?.aborted) return { operation, timedOut: false, aborted: true };
    await pause(backend, id, Math.min(interval, left), options.signal);
    if (options.signal?.aborted) return { operation, timedOut: false, aborted: true };
    interval = Math.min(maxInterval, Math.ceil(interval * 1.5));
  }
}

async function pause(backend: Backend, id: string, ms: number, outer?: AbortSignal): Promise<void> {
  const controller = new AbortController();
  const stop = () => controller.abort();
  outer?.addEventListener("abort", stop, { once: true });
  const timer = setTimeout(stop, ms);
  try {
    const sleeping = new Promise<void>((resolve) =>
      controller.signal.addEventListener("abort", () => resolve()),
    );
    const pushed = backend.operationChanged?.(id, controller.signal).catch(() => undefined);
    await (pushed ? Promise.race([sleeping, pushed]) : sleeping);
  } finally {
    clearTimeout(timer);
    controller.abort();
    outer?.removeEventListener("abort", stop);
  }
}
