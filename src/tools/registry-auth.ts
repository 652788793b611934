import * as z from "zod";
import { BackendError, UserError } from "../errors.ts";
import { registerSecret } from "../log.ts";
import { validateCredentials } from "../registry/auth.ts";
import { registryHostOf, registryProbeReference } from "../registry/reference.ts";
import DESCRIPTION from "./registry-auth.md" with { type: "text" };
import { defineTool } from "./tool.ts";

/**
 * The registry, not ConTree, failed: generic backend advice (check the ConTree token, list images) would send the
 * model the wrong way.
 */
function registryProblem(registry: string, error: BackendError): UserError {
  const at = error.url ? ` at ${error.url}` : "";
  const answered = error.status ? `answered ${error.status}${at}` : `failed${at}`;
  const kept = "Nothing was stored.";
  switch (error.code) {
    case "not_found":
      if (error.url?.endsWith("/v2/")) {
        return new UserError(
          `'${registry}' ${answered}: it is not an OCI registry (${error.detail}). Check the host, e.g. ghcr.io rather than github.com. ${kept}`,
        );
      }
      break;
    case "unauthorized":
    case "forbidden":
      return new UserError(
        `'${registry}' ${answered}: the registry rejected these credentials (${error.detail}). Ask the user to check the username and token. ${kept}`,
      );
    case "unreachable":
      return new UserError(
        `Cannot reach the registry '${registry}'${at}: ${error.detail}. Check the host name and port, and the network. ${kept}`,
      );
    case "rate_limited":
    case "unavailable":
      return new UserError(
        `'${registry}' ${answered}: the registry is busy or failing (${error.detail}). Try again later. ${kept}`,
      );
    case "protocol":
    case "invalid":
    case "conflict":
      break;
  }
  return new UserError(
    `The registry '${registry}' cannot be used (${error.message}). Check the host, or ask the registry's operator. ${kept}`,
  );
}

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
    let valid: boolean;
    try {
      valid = await validateCredentials(ref, { username: args.username, password: args.token });
    } catch (error) {
      if (error instanceof BackendError) throw registryProblem(registry, error);
      throw error;
    }
    if (!valid) {
      throw new UserError(
        `Invalid credentials for '${registry}': the registry refused user '${args.username}' with this token. Ask the user to check the username and create a new read-only token (${call.tool("registry_token_obtain")} says where). Nothing was stored.`,
      );
    }
    await call.deps.credentials.set(registry, args.username, args.token);
    return {
      registry,
      username: args.username,
      stored: true,
      message: `Authenticated with '${registry}' as '${args.username}' successfully; ${call.tool("import_image")} will use these credentials.`,
    };
  },
  summary: (result) => result.message,
});
