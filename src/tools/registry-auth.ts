import * as z from "zod";
import { UserError } from "../errors.ts";
import { registerSecret } from "../log.ts";
import { validateCredentials } from "../registry/auth.ts";
import { registryHostOf, registryProbeReference } from "../registry/reference.ts";
import DESCRIPTION from "./registry-auth.md" with { type: "text" };
import { defineTool } from "./tool.ts";

export const registryAuth = defineTool({
  name: "registry_auth",
  title: "Store registry credentials",
  description: DESCRIPTION,
  input: z.object({
    registry_url: z
      .string()
      .min(1)
      .describe("Registry or image reference, e.g. docker.io or docker://ghcr.io/org/img:tag"),
    username: z.string().min(1).describe("Registry user name"),
    token: z.string().min(1).describe("Access token (read-only is enough) or password, as given by the user"),
  }),
  output: z.object({
    registry: z.string(),
    username: z.string(),
    stored: z.boolean(),
    message: z.string(),
  }),
  annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: true, openWorldHint: true },
  async run(args, call) {
    registerSecret(args.token);
    const registry = registryHostOf(args.registry_url);
    const ref = registryProbeReference(args.registry_url);
    const valid = await validateCredentials(ref, { username: args.username, password: args.token });
    if (!valid) {
      throw new UserError(
        `Invalid credentials for '${registry}': the registry refused user '${args.username}' with this token. Ask the user to check the username and create a new read-only token (${call.tool("registry_token_obtain")} says where). Nothing was stored.`,
      );
    }
    call.deps.credentials.set(registry, args.username, args.token);
    return {
      registry,
      username: args.username,
      stored: true,
      message: `Authenticated with '${registry}' as '${args.username}' successfully; ${call.tool("import_image")} will use these credentials.`,
    };
  },
  summary: (result) => result.message,
});
