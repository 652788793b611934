import { completable } from "@modelcontextprotocol/server";
import * as z from "zod";
import TEMPLATE from "./parallel-tasks.md" with { type: "text" };
import { completeTag, definePrompt, fill, importUrl } from "./_prompt.ts";

export const parallelTasks = definePrompt({
  name: "parallel-tasks",
  title: "Run tasks in parallel",
  description: "Run several commands at once with wait=false and collect them with wait_operations",
  args: (deps) =>
    z.object({
      tasks: z.string().describe("The commands, one per line"),
      image: completable(
        z.string().default("ubuntu:noble").describe("Image name (tag) every task runs in"),
        completeTag(deps),
      ),
    }),
  text(args) {
    const tasks = args.tasks
      .split("\n")
      .map((line) => line.trim())
      .filter(Boolean);
    return fill(TEMPLATE, {
      image: args.image,
      import_url: importUrl(args.image),
      task_list: tasks.map((task, i) => `${i + 1}. \`${task}\``).join("\n") || "(no tasks given)",
    });
  },
});
