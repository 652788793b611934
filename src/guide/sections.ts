import ASYNC from "./async.md" with { type: "text" };
import ERRORS from "./errors.md" with { type: "text" };
import QUICKSTART from "./quickstart.md" with { type: "text" };
import STATE from "./state.md" with { type: "text" };
import TAGGING from "./tagging.md" with { type: "text" };
import WORKFLOW from "./workflow.md" with { type: "text" };

/** Every guide section, in reading order. `reference` is generated from the tool registry (reference.ts). */
export const GUIDE_SECTIONS = [
  "workflow",
  "quickstart",
  "reference",
  "state",
  "async",
  "tagging",
  "errors",
] as const;

export type GuideSection = (typeof GUIDE_SECTIONS)[number];

/** The hand-written sections, with `{{p}}` for the tool prefix. */
export const WRITTEN_SECTIONS: Record<Exclude<GuideSection, "reference">, string> = {
  workflow: WORKFLOW,
  quickstart: QUICKSTART,
  state: STATE,
  async: ASYNC,
  tagging: TAGGING,
  errors: ERRORS,
};

export const SECTION_SUMMARIES: Record<GuideSection, string> = {
  workflow: "Pick or prepare an image, then run: the decision tree, a worked example, mistakes to avoid",
  quickstart: "Short recipes: run, sync files, chain installs, import, page long output, env and excludes",
  reference: "Every tool with its parameters, defaults and result fields (generated from the code)",
  state: "Immutable images, disposable vs disposable=false, branching, rollback and lineage",
  async: "wait=false, wait_operations, operation statuses, cancelling",
  tagging: "The {scope}/{purpose}/{base} tag convention and how to find, set and move tags",
  errors: "Reading failures: exit codes, timeouts, missing images, truncated output, auth, backend errors",
};

export function isGuideSection(name: string): name is GuideSection {
  return (GUIDE_SECTIONS as readonly string[]).includes(name);
}

export function unknownSectionMessage(name: string): string {
  return `Unknown guide section '${name}'. Available sections: ${GUIDE_SECTIONS.join(", ")}.`;
}
