import { ResourceTemplate, type McpServer } from "@modelcontextprotocol/server";
import { UserError } from "../errors.ts";
import { TOOLS } from "../tools/index.ts";
import { withPrefix, type ToolDefinition, type ToolDeps } from "../tools/tool.ts";
import { referenceSection } from "./reference.ts";
import {
  GUIDE_SECTIONS,
  SECTION_SUMMARIES,
  WRITTEN_SECTIONS,
  isGuideSection,
  unknownSectionMessage,
  type GuideSection,
} from "./sections.ts";

/** A section's markdown with the tool prefix filled in. */
export function guideText(
  section: GuideSection,
  prefix: string,
  tools: readonly ToolDefinition[] = TOOLS,
): string {
  if (section === "reference") return referenceSection(tools, prefix);
  return withPrefix(WRITTEN_SECTIONS[section], prefix).trim();
}

export function guideUri(section: GuideSection): string {
  return `contree://guide/${section}`;
}

/** Registers the guide sections as resources contree://guide/{section}. */
export function registerGuide(server: McpServer, deps: ToolDeps): void {
  const prefix = deps.config.toolPrefix;
  server.registerResource(
    "guide",
    new ResourceTemplate("contree://guide/{section}", {
      // Listed one by one too: some clients show resources but not templates.
      list: () => ({
        resources: GUIDE_SECTIONS.map((section) => ({
          uri: guideUri(section),
          name: `guide-${section}`,
          title: `Guide: ${section}`,
          description: SECTION_SUMMARIES[section],
          mimeType: "text/markdown",
        })),
      }),
      complete: {
        section: (value) => GUIDE_SECTIONS.filter((section) => section.startsWith(value ?? "")),
      },
    }),
    {
      title: "Usage guide",
      description: `How to use these tools well, by section: ${GUIDE_SECTIONS.join(", ")}. Also the ${prefix}get_guide tool.`,
      mimeType: "text/markdown",
    },
    (uri, variables) => {
      const raw = variables.section;
      const section = Array.isArray(raw) ? raw.join(",") : (raw ?? "");
      if (!isGuideSection(section)) throw new UserError(unknownSectionMessage(section));
      return { contents: [{ uri: uri.href, mimeType: "text/markdown", text: guideText(section, prefix) }] };
    },
  );
}
