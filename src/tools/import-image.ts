import * as z from "zod";
import { localImageSourceScheme } from "../backend/types.ts";
import { waitForOperation } from "../backend/wait.ts";
import { UserError } from "../errors.ts";
import { canonicalImageUrl, parseImageReference } from "../registry/reference.ts";
import DESCRIPTION from "./import-image.md" with { type: "text" };
import { checkTag } from "./_images.ts";
import { operationSchema, operationSummary, operationView, recordFinished } from "./_operation.ts";
import { defineTool } from "./tool.ts";

const WAIT_ALLOWANCE_S = 120;

export const importImage = defineTool({
  name: "import_image",
  title: "Import an image from a registry",
  description: DESCRIPTION,
  input: z.object({
    registry_url: z
      .string()
      .min(1)
      .describe(
        "Image reference: docker://python:3.11-slim, docker://ghcr.io/org/img:tag, host:port/repo:tag; local backend also oci-layout:/dir[:tag], oci-archive:/file.tar, docker-archive:/file.tar",
      ),
    tag: z.string().nullish().describe("Tag for the imported image, e.g. python:3.11-slim"),
    wait: z.boolean().default(true).describe("false: return at once with operation_id"),
    i_accept_that_anonymous_access_might_be_rate_limited: z
      .boolean()
      .default(false)
      .describe(
        "Import without stored registry credentials (public images; registries may rate-limit anonymous pulls)",
      ),
    timeout: z
      .number()
      .int()
      .positive()
      .max(3600)
      .default(300)
      .describe("Seconds the backend may spend importing"),
  }),
  output: operationSchema,
  annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: true, openWorldHint: true },
  async run(args, call) {
    const tag = args.tag ? checkTag(args.tag.trim()) : undefined;
    const local = localImageSourceScheme(args.registry_url.trim());
    if (local && call.deps.backend.kind !== "local") {
      throw new UserError(
        `${local}: sources are files on the server's machine, which only the local backend reads. With the ConTree cloud, import from a registry (docker://...) or push the image to one first.`,
      );
    }
    // A local source needs no registry, credentials or consent to anonymous pulls: it is passed on as written.
    const ref = local ? null : parseImageReference(args.registry_url);
    const url = ref ? canonicalImageUrl(ref) : args.registry_url.trim();
    const stored = ref ? call.deps.credentials.get(ref.registry) : undefined;
    if (ref && !stored && !args.i_accept_that_anonymous_access_might_be_rate_limited) {
      throw new UserError(
        `Not authenticated with '${ref.registry}'. For a public image, call again with i_accept_that_anonymous_access_might_be_rate_limited=true. Otherwise call ${call.tool("registry_token_obtain")}(registry_url="${args.registry_url}") and then ${call.tool("registry_auth")} with the user's token.`,
      );
    }
    const { backend, cache } = call.deps;
    const id = await backend.importImage({
      registryUrl: url,
      tag,
      credentials: stored ? { username: stored.username, password: stored.password } : undefined,
      timeoutS: args.timeout,
    });
    cache.rememberStarted({
      operationId: id,
      kind: "image_import",
      inputImage: null,
      command: null,
      registryUrl: url,
    });
    call.progress(`importing ${url}`);
    let operation = await backend.getOperation(id);
    if (args.wait) {
      const started = Date.now();
      const waited = await waitForOperation(backend, id, {
        timeoutMs: (args.timeout + WAIT_ALLOWANCE_S) * 1000,
        signal: call.signal,
        minIntervalMs: call.deps.pollIntervalMs?.min,
        maxIntervalMs: call.deps.pollIntervalMs?.max,
        onUpdate: (op) =>
          call.progress(
            `import ${op.status.toLowerCase()} ${Math.round((Date.now() - started) / 1000)}s: ${url}` +
              (op.progress ? ` (${op.progress.message})` : ""),
          ),
      });
      operation = waited.operation;
    }
    recordFinished(call, operation);
    const view = operationView(operation, 4000, call);
    if (!view.done) {
      view.output_hint = `Import still running. Call ${call.tool("wait_operations")}(operation_ids=["${id}"]) to wait for it.`;
    }
    return view;
  },
  summary: (view) => operationSummary(view),
});
