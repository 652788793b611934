import * as z from "zod";
import DESCRIPTION from "./get-lineage.md" with { type: "text" };
import { imageRefSchema, resolveImage } from "./_images.ts";
import { defineTool, type ToolCall } from "./tool.ts";

/** Far deeper than any real chain of runs; it also stops a cycle in a damaged cache. */
const MAX_DEPTH = 200;

const stepSchema = z.object({
  uuid: z.string(),
  operation_id: z.string().nullable().describe("The run or import that made this image"),
  command: z.string().nullable().describe("The command of that run"),
  registry_url: z.string().nullable().describe("Imports: what was imported"),
  tag: z.string().nullable(),
  known: z.boolean().describe("false: only its uuid is known (made outside this server's records)"),
});

export const lineageSchema = z.object({
  image: z.string(),
  tag: z.string().nullable(),
  known: z.boolean().describe("This server has a record of how the image was made"),
  parent: z.string().nullable().describe("The image the run that made this one started from"),
  operation_id: z.string().nullable(),
  command: z.string().nullable(),
  registry_url: z.string().nullable(),
  depth: z.number().int().describe("Number of ancestors"),
  root: z.string().describe("The oldest known ancestor (the image itself when it has none)"),
  ancestors: z.array(stepSchema).describe("Parent first, then its parent, up to the root"),
  children: z.array(stepSchema).describe("Images made directly from this one"),
});

export type Lineage = z.output<typeof lineageSchema>;

function step(call: Pick<ToolCall, "deps">, uuid: string): z.output<typeof stepSchema> {
  const fact = call.deps.cache.image(uuid);
  return {
    uuid,
    operation_id: fact?.operationId ?? null,
    command: fact?.command ?? null,
    registry_url: fact?.registryUrl ?? null,
    tag: fact?.tag ?? null,
    known: fact !== null,
  };
}

/** Where an image came from and what was made from it, as recorded when this server's operations finished. */
export async function lineageOf(call: Pick<ToolCall, "deps" | "tool">, imageRef: string): Promise<Lineage> {
  const image = await resolveImage(call.deps.backend, imageRef, call.tool);
  const { cache } = call.deps;
  const fact = cache.image(image.uuid);
  const ancestors: Lineage["ancestors"] = [];
  const seen = new Set([image.uuid]);
  for (let parent = fact?.parent ?? null; parent && !seen.has(parent) && ancestors.length < MAX_DEPTH;) {
    seen.add(parent);
    const ancestor = step(call, parent);
    ancestors.push(ancestor);
    parent = ancestor.known ? (cache.image(parent)?.parent ?? null) : null;
  }
  return {
    image: image.uuid,
    tag: image.tag ?? fact?.tag ?? null,
    known: fact !== null,
    parent: fact?.parent ?? null,
    operation_id: fact?.operationId ?? null,
    command: fact?.command ?? null,
    registry_url: fact?.registryUrl ?? null,
    depth: ancestors.length,
    root: ancestors.at(-1)?.uuid ?? image.uuid,
    ancestors,
    children: cache.children(image.uuid).map((uuid) => step(call, uuid)),
  };
}

/** One line per image: what made it. */
const describeStep = (s: {
  uuid: string;
  tag: string | null;
  command: string | null;
  registry_url: string | null;
  operation_id: string | null;
}) => {
  const how = s.command
    ? `run \`${s.command}\``
    : s.registry_url
      ? `import of ${s.registry_url}`
      : "origin unknown";
  return `${s.uuid}${s.tag ? ` (tag ${s.tag})` : ""}: ${how}${s.operation_id ? ` [operation ${s.operation_id}]` : ""}`;
};

export function lineageText(lineage: Lineage): string {
  const lines = [describeStep({ ...lineage, uuid: lineage.image })];
  if (!lineage.known)
    lines.push("No record of how this image was made (not made by an operation this server saw).");
  if (lineage.ancestors.length) {
    lines.push(`ancestors (depth ${lineage.depth}, root ${lineage.root}):`);
    for (const a of lineage.ancestors) lines.push(`  ${describeStep(a)}`);
  }
  lines.push(lineage.children.length ? `children (${lineage.children.length}):` : "children: none recorded");
  for (const c of lineage.children) lines.push(`  ${describeStep(c)}`);
  return lines.join("\n");
}

export const getLineage = defineTool({
  name: "get_lineage",
  title: "Show where an image came from",
  description: DESCRIPTION,
  input: z.object({ image: imageRefSchema }),
  output: lineageSchema,
  annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
  run: (args, call) => lineageOf(call, args.image),
  summary: (lineage) => lineageText(lineage),
});
