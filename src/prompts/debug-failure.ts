import { completable } from "@modelcontextprotocol/server";
import * as z from "zod";
import TEMPLATE from "./debug-failure.md" with { type: "text" };
import { completeOperation, definePrompt, fill } from "./_prompt.ts";

export const debugFailure = definePrompt({
  name: "debug-failure",
  title: "Debug a failed operation",
  description: "Read a failed run or import, find the cause and fix it",
  args: (deps) =>
    z.object({
      operation_id: completable(
        z.string().describe("The operation that failed (from run or list_operations)"),
        completeOperation(deps),
      ),
    }),
  text: (args) => fill(TEMPLATE, { operation_id: args.operation_id.trim() }),
});
