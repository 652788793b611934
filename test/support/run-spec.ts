import type { RunSpec } from "../../src/backend/types.ts";

/** A run as the tools would ask for it, with the defaults most tests want. */
export function runSpec(image: string, command: string, overrides: Partial<RunSpec> = {}): RunSpec {
  return {
    image,
    command,
    args: [],
    shell: true,
    env: {},
    cwd: "/root",
    timeoutS: 20,
    disposable: true,
    stdin: null,
    files: {},
    keepOutputBytes: 1 << 20,
    ...overrides,
  };
}
