import * as z from "zod";
import type { FileSpec, RunSpec } from "../backend/types.ts";
import { waitForOperation } from "../backend/wait.ts";
import { BackendError, UserError } from "../errors.ts";
import DESCRIPTION from "./run.md" with { type: "text" };
import { imageRefSchema, resolveImageUuid } from "./_images.ts";
import { operationSchema, operationSummary, operationView, recordFinished } from "./_operation.ts";
import { directoryStateFiles, distrustDirectoryState } from "../sync/state-files.ts";
import { defineTool } from "./tool.ts";

/** The backend keeps at least this much of each stream, so output not shown can be paged later. */
const KEEP_OUTPUT_BYTES = 1 << 20;
const MAX_KEEP_OUTPUT_BYTES = 10 << 20;
/** How long a waiting run allows for queueing on top of its own timeout before it hands back the operation id. */
const QUEUE_ALLOWANCE_S = 300;
/** Under the 60 s that clients such as Codex give a tool call, as wait_operations' default. */
const SILENT_WAIT_MS = 50_000;

const fileSchema = z.union([
  z.string().describe("File UUID from {{p}}upload"),
  z.object({
    uuid: z.string().describe("File UUID from {{p}}upload"),
    mode: z
      .string()
      .regex(/^0?o?[0-7]{3,4}$/)
      .default("0644")
      .describe("Octal permission bits, e.g. 0755 for an executable"),
  }),
]);

export const run = defineTool({
  name: "run",
  title: "Run a command in a sandbox",
  description: DESCRIPTION,
  input: z.object({
    command: z.string().min(1).describe("Shell command (shell=true) or program path (shell=false)"),
    image: imageRefSchema,
    shell: z
      .boolean()
      .default(true)
      .describe("Run through /bin/sh -c; false runs `command` with `args` directly"),
    args: z.array(z.string()).nullish().describe("Arguments when shell=false"),
    env: z
      .record(z.string(), z.string())
      .nullish()
      .describe('Environment variables, e.g. {"PYTHONUNBUFFERED": "1"}'),
    cwd: z.string().default("/root").describe("Absolute working directory inside the sandbox"),
    timeout: z
      .number()
      .positive()
      .max(86_400)
      .default(30)
      .describe(
        "Seconds before the command and everything it started are killed (the cloud caps this, usually at 3600)",
      ),
    disposable: z
      .boolean()
      .default(true)
      .describe("true: discard the sandbox; false: keep changed files as a new image (result_image)"),
    stdin: z.string().nullish().describe("Text fed to the command's standard input"),
    directory_state_id: z
      .number()
      .int()
      .positive()
      .nullish()
      .describe(
        "From {{p}}rsync: places that synced directory at its destination; `files` entries override its paths",
      ),
    files: z
      .record(z.string(), fileSchema)
      .nullish()
      .describe(
        'Container path -> file UUID from {{p}}upload (or {uuid, mode}), e.g. {"/app/main.py": "<uuid>"}',
      ),
    wait: z
      .boolean()
      .default(true)
      .describe("false: return at once with operation_id; collect with {{p}}wait_operations"),
    truncate_output_at: z
      .number()
      .int()
      .min(100)
      .max(MAX_KEEP_OUTPUT_BYTES)
      .default(8000)
      .describe("Bytes of stdout and of stderr shown in the result; the rest is kept and can be paged"),
  }),
  output: operationSchema,
  annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: true },
  async run(args, call) {
    if (!args.cwd.startsWith("/")) {
      throw new UserError(
        `cwd must be an absolute path inside the sandbox (got '${args.cwd}'), e.g. /root or /app.`,
      );
    }
    const files: Record<string, FileSpec> = {};
    if (args.directory_state_id != null) {
      Object.assign(files, directoryStateFiles(call, args.directory_state_id));
    }
    for (const [path, spec] of Object.entries(args.files ?? {})) {
      if (!path.startsWith("/")) {
        throw new UserError(`files: the key '${path}' must be an absolute container path like /app/${path}.`);
      }
      const uuid = typeof spec === "string" ? spec : spec.uuid;
      const mode = typeof spec === "string" ? 0o644 : Number.parseInt(spec.mode.replace(/^0?o?/, ""), 8);
      files[path] = { uuid, mode };
    }
    const { backend, cache } = call.deps;
    const image = await resolveImageUuid(backend, args.image, call.tool);
    const spec: RunSpec = {
      image,
      command: args.command,
      args: args.shell ? [] : (args.args ?? []),
      shell: args.shell,
      env: args.env ?? {},
      cwd: args.cwd,
      timeoutS: args.timeout,
      disposable: args.disposable,
      stdin: args.stdin ? new TextEncoder().encode(args.stdin) : null,
      files,
      keepOutputBytes: Math.max(KEEP_OUTPUT_BYTES, args.truncate_output_at),
    };
    let id: string;
    try {
      id = await backend.run(spec);
    } catch (error) {
      if (error instanceof BackendError && error.code === "not_found") {
        // A synced file the backend lost would otherwise stay trusted by the file cache, and rsync would hand out
        // the same stale state again.
        const resync =
          args.directory_state_id != null ? ` ${distrustDirectoryState(call, args.directory_state_id)}` : "";
        throw new UserError(
          `The backend could not find the image or a file for this run: ${error.detail}. Check image with ${call.tool("get_image")} and file UUIDs from ${call.tool("upload")}.${resync}`,
        );
      }
      throw error;
    }
    cache.rememberStarted({
      operationId: id,
      kind: "instance",
      inputImage: image,
      command: args.command,
      registryUrl: null,
    });
    call.progress(`started operation ${id}`);
    let operation = await backend.getOperation(id);
    if (args.wait) {
      const started = Date.now();
      const fullWaitMs = (args.timeout + QUEUE_ALLOWANCE_S) * 1000;
      const waited = await waitForOperation(backend, id, {
        // A client that hears no progress gets the result or the handle before its own timeout can cancel the run.
        timeoutMs: call.hearsProgress
          ? fullWaitMs
          : Math.min(fullWaitMs, call.deps.silentWaitMs ?? SILENT_WAIT_MS),
        signal: call.signal,
        minIntervalMs: call.deps.pollIntervalMs?.min,
        maxIntervalMs: call.deps.pollIntervalMs?.max,
        onUpdate: (op) =>
          call.progress(
            `${op.status.toLowerCase()} ${Math.round((Date.now() - started) / 1000)}s: ${args.command.slice(0, 60)}`,
          ),
      });
      operation = waited.operation;
      if (waited.aborted) {
        // The caller gave up on this run: nobody will read its result, so stop it.
        await backend.cancelOperation(id).catch(() => undefined);
      }
    }
    recordFinished(call, operation);
    const view = operationView(operation, args.truncate_output_at, call);
    if (!view.done && !view.output_hint) {
      view.output_hint = `Still running. Call ${call.tool("wait_operations")}(operation_ids=["${id}"]) to wait for it, or ${call.tool("cancel_operation")} to stop it.`;
    }
    return view;
  },
  summary: (view) => operationSummary(view),
});
