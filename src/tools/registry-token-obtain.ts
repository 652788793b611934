import * as z from "zod";
import { KNOWN_REGISTRIES, registryHostOf } from "../registry/reference.ts";
import DESCRIPTION from "./registry-token-obtain.md" with { type: "text" };
import { defineTool } from "./tool.ts";

export const registryTokenObtain = defineTool({
  name: "registry_token_obtain",
  title: "Where to create a registry token",
  description: DESCRIPTION,
  input: z.object({
    registry_url: z
      .string()
      .min(1)
      .describe("Registry or image reference, e.g. docker.io, ghcr.io, docker://ghcr.io/org/img"),
  }),
  output: z.object({
    registry: z.string().describe("Registry host"),
    known: z.boolean().describe("Whether this server knows the registry's token page"),
    url: z
      .string()
      .nullable()
      .describe("Page where the user creates a read-only token; open it in the user's browser"),
    message: z.string().describe("What to tell the user"),
    agent_instruction: z.string(),
  }),
  annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
  async run(args, call) {
    const registry = registryHostOf(args.registry_url);
    const known = KNOWN_REGISTRIES[registry];
    const next = `${call.tool("registry_auth")}(registry_url="${args.registry_url}", username="<username>", token="<token>")`;
    const message = known
      ? `Open ${known.tokenPage} and create a read-only (pull) access token for ${known.name}. Then give me your username and the token.`
      : `Create a read-only (pull) access token in ${registry}'s web interface (see its documentation), then give me your username and the token.`;
    return {
      registry,
      known: Boolean(known),
      url: known?.tokenPage ?? null,
      message,
      agent_instruction: `STOP here: show the user this message and wait for them to reply with the username and token. Then call ${next}. Do not guess credentials.`,
    };
  },
  summary: (result) => `${result.message}\n${result.agent_instruction}`,
});
