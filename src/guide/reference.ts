// The tool reference, generated from the registry so it cannot drift from the code: the `reference` guide section
// (for the model, with the configured prefix) and docs/tools.md (for people, via scripts/docs.ts).
import * as z from "zod";
import type { ToolDefinition } from "../tools/tool.ts";
import { withPrefix } from "../tools/tool.ts";

type JsonSchema = {
  type?: string | string[];
  description?: string;
  default?: unknown;
  enum?: unknown[];
  const?: unknown;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  items?: JsonSchema;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: JsonSchema | boolean;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
};

export interface Field {
  name: string;
  type: string;
  required: boolean;
  /** JSON of the default, or null when there is none. */
  default: string | null;
  description: string;
}

function withoutNull(schema: JsonSchema): { schema: JsonSchema; nullable: boolean } {
  if (Array.isArray(schema.type) && schema.type.includes("null")) {
    const rest = schema.type.filter((type) => type !== "null");
    return { schema: { ...schema, type: rest.length === 1 ? rest[0] : rest }, nullable: true };
  }
  const options = schema.anyOf ?? schema.oneOf;
  if (!options) return { schema, nullable: false };
  const rest = options.filter((option) => option.type !== "null");
  if (rest.length === options.length) return { schema, nullable: false };
  const inner: JsonSchema =
    rest.length === 1
      ? { ...rest[0], description: schema.description ?? rest[0]!.description }
      : { ...schema, anyOf: rest, oneOf: undefined };
  return { schema: inner, nullable: true };
}

/** Bounds zod adds for any integer (the safe-integer range) say nothing to a reader. */
function bound(value: number | undefined): number | undefined {
  return value === undefined || Math.abs(value) >= Number.MAX_SAFE_INTEGER ? undefined : value;
}

/** A short, readable type: string, integer 1-1000, "all" | "any", string[], {string: string}, ... */
export function typeOf(schema: JsonSchema, showNull = false): string {
  const { schema: inner, nullable } = withoutNull(schema);
  const type = plainType(inner);
  return showNull && nullable ? `${type} | null` : type;
}

function plainType(inner: JsonSchema): string {
  if (inner.enum) return inner.enum.map((value) => JSON.stringify(value)).join(" | ");
  const options = inner.anyOf ?? inner.oneOf;
  if (options) return options.map((option) => typeOf(option)).join(" | ");
  const type = Array.isArray(inner.type) ? inner.type.join(" | ") : inner.type;
  if (type === "array") return `${inner.items ? typeOf(inner.items) : "any"}[]`;
  if (type === "object") {
    if (inner.properties) return `{${Object.keys(inner.properties).join(", ")}}`;
    if (inner.additionalProperties && typeof inner.additionalProperties === "object") {
      return `{string: ${typeOf(inner.additionalProperties)}}`;
    }
    return "object";
  }
  if (type === "integer" || type === "number") {
    const min = bound(inner.minimum);
    const max = bound(inner.maximum);
    const above = bound(inner.exclusiveMinimum);
    if (min !== undefined && max !== undefined) return `${type} ${min}-${max}`;
    if (above !== undefined && max !== undefined) return `${type} > ${above}, ≤ ${max}`;
    if (above !== undefined) return `${type} > ${above}`;
    if (min !== undefined) return `${type} ≥ ${min}`;
    if (max !== undefined) return `${type} ≤ ${max}`;
  }
  return type ?? "any";
}

function fieldsOf(schema: JsonSchema, showNull: boolean): Field[] {
  const required = new Set(schema.required ?? []);
  return Object.entries(schema.properties ?? {}).map(([name, property]) => ({
    name,
    type: typeOf(property, showNull),
    required: required.has(name) && property.default === undefined,
    default: property.default === undefined ? null : JSON.stringify(property.default),
    description: property.description ?? withoutNull(property).schema.description ?? "",
  }));
}

export function inputFields(tool: ToolDefinition): Field[] {
  return fieldsOf(z.toJSONSchema(tool.input, { io: "input" }) as JsonSchema, false);
}

export function outputFields(tool: ToolDefinition): Field[] {
  return fieldsOf(z.toJSONSchema(tool.output, { io: "output" }) as JsonSchema, true);
}

/** Every property name anywhere in a schema (nested result objects included) and every enum value. */
export function schemaWords(schema: z.ZodType, io: "input" | "output"): Set<string> {
  const words = new Set<string>();
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) {
      for (const item of node) visit(item);
      return;
    }
    if (!node || typeof node !== "object") return;
    const record = node as Record<string, unknown>;
    if (record.properties && typeof record.properties === "object") {
      for (const name of Object.keys(record.properties)) words.add(name);
    }
    if (Array.isArray(record.enum)) for (const value of record.enum) words.add(String(value));
    for (const value of Object.values(record)) visit(value);
  };
  visit(z.toJSONSchema(schema, { io }));
  return words;
}

export function annotationText(tool: ToolDefinition): string {
  const a = tool.annotations;
  const parts = [a.readOnlyHint ? "read-only" : a.destructiveHint ? "destructive" : "changes state"];
  if (a.idempotentHint) parts.push("idempotent");
  parts.push(a.openWorldHint ? "open world" : "closed world");
  return parts.join(", ");
}

function cell(text: string): string {
  return text.replaceAll("|", "\\|").replaceAll("\n", " ");
}

function firstParagraph(markdown: string): string {
  return markdown
    .trim()
    .split(/\n\s*\n|\n- /)[0]!
    .trim();
}

export interface ReferenceOptions {
  /** Tool prefix to show (the configured one for the guide; the default for docs/tools.md). */
  prefix: string;
  /** Whole descriptions (docs for people) or only their first paragraph (the guide section for the model). */
  fullDescriptions: boolean;
}

/** Markdown for every tool: what it costs and does, its parameters with types and defaults, its result fields. */
export function toolReference(tools: readonly ToolDefinition[], options: ReferenceOptions): string {
  const { prefix } = options;
  const out: string[] = [];
  for (const tool of tools) {
    const name = `${prefix}${tool.name}`;
    const description = withPrefix(tool.description, prefix).trim();
    out.push(`## ${name}`, "", `**${tool.title}** (${annotationText(tool)})`, "");
    out.push(options.fullDescriptions ? description : firstParagraph(description), "");
    const inputs = inputFields(tool);
    if (inputs.length) {
      out.push("| parameter | type | default | description |", "|---|---|---|---|");
      for (const field of inputs) {
        const fallback = field.required
          ? "**required**"
          : field.default === null
            ? ""
            : `\`${field.default}\``;
        out.push(
          `| \`${field.name}\` | ${cell(field.type)} | ${cell(fallback)} | ${cell(withPrefix(field.description, prefix))} |`,
        );
      }
      out.push("");
    }
    const outputs = outputFields(tool);
    if (options.fullDescriptions) {
      out.push("| result field | type | description |", "|---|---|---|");
      for (const field of outputs) {
        out.push(
          `| \`${field.name}\` | ${cell(field.type)} | ${cell(withPrefix(field.description, prefix))} |`,
        );
      }
      out.push("");
    } else {
      out.push(`Returns: ${outputs.map((field) => `\`${field.name}\` (${field.type})`).join(", ")}.`, "");
    }
  }
  return out.join("\n").trim();
}

/** The `reference` guide section. */
export function referenceSection(tools: readonly ToolDefinition[], prefix: string): string {
  return [
    "# Tools Reference",
    "",
    `Generated from the code: every tool with its parameters, defaults and result fields. Only \`${prefix}run\` and \`${prefix}import_image\` start work on the backend; every other tool is free. Images are given as a UUID or \`tag:NAME\`.`,
    "",
    toolReference(tools, { prefix, fullDescriptions: false }),
    "",
  ].join("\n");
}

/** docs/tools.md: the reference for people, with the default prefix. scripts/docs.ts writes it; a test checks it. */
export function toolsDocument(tools: readonly ToolDefinition[], prefix = "contree_"): string {
  return [
    "# Tools",
    "",
    "<!-- Generated from src/tools by `bun scripts/docs.ts`; do not edit by hand. -->",
    "",
    `Every tool of the server, as the model sees it, with the default prefix \`${prefix}\` (\`--tool-prefix\` changes it).`,
    "Annotations: _read-only_ tools change nothing; _destructive_ ones may delete or overwrite; _idempotent_ ones can be",
    "repeated safely; _open world_ ones reach beyond this server (the ConTree service, a registry, local files).",
    "",
    ...tools.map((tool) => `- [\`${prefix}${tool.name}\`](#${prefix}${tool.name}): ${tool.title}`),
    "",
    toolReference(tools, { prefix, fullDescriptions: true }),
    "",
  ].join("\n");
}
