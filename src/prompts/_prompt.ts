import type { GetPromptResult, McpServer } from "@modelcontextprotocol/server";
import type * as z from "zod";
import type { ToolDeps } from "../tools/tool.ts";
import { withPrefix } from "../tools/tool.ts";
import { tagsStartingWith } from "../tools/_images.ts";

export interface PromptDefinition<S extends z.ZodRawShape = z.ZodRawShape> {
  name: string;
  title: string;
  description: string;
  /** Built once per deps (completers capture them); registerPrompt reuses it for every server over those deps. */
  args(deps: ToolDeps): z.ZodObject<S>;
  /** The user message; `{{p}}` stands for the tool prefix. */
  text(args: z.output<z.ZodObject<S>>): string;
}

export function definePrompt<S extends z.ZodRawShape>(definition: PromptDefinition<S>): PromptDefinition<S> {
  return definition;
}

/** Fills `{{name}}` placeholders; `{{p}}` is left for the prefix. A placeholder without a value is a bug. */
export function fill(template: string, values: Record<string, string>): string {
  return template.replaceAll(/\{\{(\w+)\}\}/g, (match, name: string) => {
    if (name === "p") return match;
    const value = values[name];
    if (value === undefined) throw new Error(`prompt template: no value for {{${name}}}`);
    return value;
  });
}

/** Schemas by deps: HTTP mode builds a server per request over the same deps, and building them was a hot spot. */
const argsByDeps = new WeakMap<ToolDeps, Map<string, z.ZodObject>>();

function argsSchema(definition: PromptDefinition, deps: ToolDeps): z.ZodObject {
  let byName = argsByDeps.get(deps);
  if (!byName) argsByDeps.set(deps, (byName = new Map()));
  let schema = byName.get(definition.name);
  if (!schema) byName.set(definition.name, (schema = definition.args(deps)));
  return schema;
}

export function registerPrompt(server: McpServer, definition: PromptDefinition, deps: ToolDeps): void {
  server.registerPrompt(
    definition.name,
    {
      title: definition.title,
      description: definition.description,
      argsSchema: argsSchema(definition, deps),
    },
    (args): GetPromptResult => ({
      description: definition.description,
      messages: [
        {
          role: "user",
          content: {
            type: "text",
            text: withPrefix(definition.text(args as never), deps.config.toolPrefix).trim(),
          },
        },
      ],
    }),
  );
}

const COMPLETIONS = 50;

/** Completes an image name argument (e.g. `ubuntu:noble`) from the tags on the backend. */
export function completeTag(deps: ToolDeps): (value: string | undefined) => Promise<string[]> {
  return (value) => tagsStartingWith(deps.backend, (value ?? "").replace(/^tag:/, ""), COMPLETIONS);
}

/** Completes a project scope from the first part of existing tags (`myproject/deps/...` gives `myproject`). */
export function completeScope(deps: ToolDeps): (value: string | undefined) => Promise<string[]> {
  return async (value) => {
    const scopes = new Set<string>();
    for (const tag of await tagsStartingWith(deps.backend, value ?? "", 1000)) {
      const scope = tag.split("/")[0];
      if (scope && tag.includes("/") && scope !== "common") scopes.add(scope);
    }
    return [...scopes].toSorted().slice(0, COMPLETIONS);
  };
}

/** Completes an operation id from the most recent operations, failed ones first. */
export function completeOperation(deps: ToolDeps): (value: string | undefined) => Promise<string[]> {
  return async (value) => {
    const typed = value ?? "";
    try {
      const operations = await deps.backend.listOperations({ limit: 100, offset: 0 });
      return operations
        .filter((op) => op.id.startsWith(typed))
        .toSorted((a, b) => Number(b.status === "FAILED") - Number(a.status === "FAILED"))
        .map((op) => op.id)
        .slice(0, COMPLETIONS);
    } catch {
      return [];
    }
  };
}

/** A piece of a tag made valid: lower case, and runs of other characters turned into `-`. */
function tagPart(text: string): string {
  return text
    .toLowerCase()
    .replaceAll(/[^a-z0-9_.:/-]+/g, "-")
    .replaceAll(/^[-/:.]+|[-/:.]+$/g, "");
}

/** The convention's tag for an environment: `{scope}/{purpose}/{base}`. */
export function suggestedTag(
  base: string,
  project: string | undefined,
  packages: string | undefined,
): string {
  const first = packages
    ?.trim()
    .split(/[\s,]+/)[0]
    ?.split(/[=<>~![;@]/)[0];
  const purpose = first ? `${tagPart(first)}-env` : "custom-env";
  const scope = (project && tagPart(project).replaceAll("/", "-")) || "common";
  return `${scope}/${purpose}/${tagPart(base.replace(/^docker:\/\//, "")) || "base"}`;
}

/** `docker://<reference>` for an image name such as `ubuntu:noble` or `ghcr.io/org/img:1`. */
export function importUrl(image: string): string {
  return image.startsWith("docker://") ? image : `docker://${image}`;
}
