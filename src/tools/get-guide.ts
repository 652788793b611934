import * as z from "zod";
import { UserError } from "../errors.ts";
import {
  GUIDE_SECTIONS,
  SECTION_SUMMARIES,
  isGuideSection,
  unknownSectionMessage,
} from "../guide/sections.ts";
import DESCRIPTION from "./get-guide.md" with { type: "text" };
import { defineTool } from "./tool.ts";

export const getGuide = defineTool({
  name: "get_guide",
  title: "Read a usage guide section",
  description: DESCRIPTION,
  input: z.object({
    section: z
      .string()
      .min(1)
      .describe(`One of: ${GUIDE_SECTIONS.join(", ")}`),
  }),
  output: z.object({
    section: z.string(),
    content: z.string().describe("The section's markdown"),
    available_sections: z.array(z.string()).describe("Every section, in reading order"),
  }),
  annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
  async run(args, call) {
    const section = args.section.trim().toLowerCase();
    if (!isGuideSection(section)) {
      const list = GUIDE_SECTIONS.map((name) => `- ${name}: ${SECTION_SUMMARIES[name]}`).join("\n");
      throw new UserError(`${unknownSectionMessage(args.section)}\n${list}`);
    }
    // Loaded on use: the guide's reference section is generated from the tool list, which includes this tool.
    const { guideText } = await import("../guide/index.ts");
    return {
      section,
      content: guideText(section, call.deps.config.toolPrefix),
      available_sections: [...GUIDE_SECTIONS],
    };
  },
  summary: (result) => result.content,
});
