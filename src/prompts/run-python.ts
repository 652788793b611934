import * as z from "zod";
import TEMPLATE from "./run-python.md" with { type: "text" };
import { definePrompt, fill } from "./_prompt.ts";

export const runPython = definePrompt({
  name: "run-python",
  title: "Run Python code",
  description: "Run a piece of Python code in a sandbox with a Python image",
  args: () => z.object({ code: z.string().describe("The Python code to run") }),
  text: (args) => fill(TEMPLATE, { code: args.code }),
});
