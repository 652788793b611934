import type { Variables } from "@modelcontextprotocol/server";
import { UserError } from "../errors.ts";
import type { ToolCall, ToolDeps } from "../tools/tool.ts";
import { tagsStartingWith } from "../tools/_images.ts";

/** Resource handlers reuse tool logic: a call without progress, cancelled with the request. */
export function resourceCall(deps: ToolDeps, signal: AbortSignal = new AbortController().signal): ToolCall {
  return {
    deps,
    signal,
    progress: () => {},
    hearsProgress: false,
    tool: (name) => `${deps.config.toolPrefix}${name}`,
  };
}

/** A template variable, percent-decoded (the SDK hands them over as they appear in the URI). */
export function variable(variables: Variables, name: string): string {
  const raw = variables[name];
  const value = Array.isArray(raw) ? raw.join(",") : (raw ?? "");
  try {
    return decodeURIComponent(value);
  } catch {
    throw new UserError(`The ${name} in this URI is not valid percent-encoding: ${value}`);
  }
}

const COMPLETIONS = 50;

/** Completes `{image}` from tagged images, as `tag:NAME` (percent-encoding is the client's job). */
export function completeImage(deps: ToolDeps): (value: string) => Promise<string[]> {
  return async (value) => {
    const typed = decodeSafe(value);
    const prefix = typed.startsWith("tag:") ? typed.slice(4) : typed;
    return (await tagsStartingWith(deps.backend, prefix, COMPLETIONS)).map((tag) => `tag:${tag}`);
  };
}

function decodeSafe(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
