import picomatch from "picomatch";
import { UserError } from "../errors.ts";

/** Decides, for a path relative to the synced root ("a/b/c.txt"), whether a sync leaves it out. */
export type ExcludeTest = (relativePath: string, isDirectory: boolean) => boolean;

interface Rule {
  matches: (path: string) => boolean;
  /** A pattern without a slash matches the last component at any depth; one with a slash, the whole path. */
  anchored: boolean;
  directoryOnly: boolean;
  negated: boolean;
}

/**
 * Gitignore-style patterns: `__pycache__` and `*.pyc` match at any depth, `.git` matches only `.git` (not
 * `.gitignore`), a trailing `/` matches directories only, a leading or inner `/` anchors to the root, `**` spans
 * directories, and `!pattern` takes a path back in (the last matching rule wins). An excluded directory is not
 * entered at all, so nothing under it comes back.
 */
export function compileExcludes(patterns: readonly string[]): ExcludeTest {
  const rules: Rule[] = [];
  for (const raw of patterns) {
    let pattern = raw.trim();
    if (!pattern || pattern.startsWith("#")) continue;
    const negated = pattern.startsWith("!");
    if (negated) pattern = pattern.slice(1);
    const directoryOnly = pattern.endsWith("/");
    pattern = pattern.replace(/\/+$/, "");
    const anchored = pattern.includes("/");
    pattern = pattern.replace(/^\/+/, "");
    if (!pattern) {
      throw new UserError(
        `exclude pattern '${raw}' matches nothing useful; use names like '__pycache__' or 'dist/'.`,
      );
    }
    rules.push({
      matches: picomatch(pattern, { dot: true, nonegate: true }),
      anchored,
      directoryOnly,
      negated,
    });
  }
  if (rules.length === 0) return () => false;
  return (relativePath, isDirectory) => {
    const name = relativePath.slice(relativePath.lastIndexOf("/") + 1);
    let excluded = false;
    for (const rule of rules) {
      if (rule.directoryOnly && !isDirectory) continue;
      if (rule.negated !== excluded) continue;
      if (rule.matches(rule.anchored ? relativePath : name)) excluded = !rule.negated;
    }
    return excluded;
  };
}

/**
 * Patterns without duplicates or blanks, sorted so that the same set always names the same directory state. With a
 * `!` pattern the order means something, so it is kept.
 */
export function normaliseExcludes(patterns: readonly string[] | null | undefined): string[] {
  const unique = [...new Set((patterns ?? []).map((p) => p.trim()).filter((p) => p && !p.startsWith("#")))];
  return unique.some((p) => p.startsWith("!")) ? unique : unique.toSorted();
}
