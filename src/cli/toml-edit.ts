// Replaces or appends one table (`[a.b]` and its sub-tables) of a TOML document, leaving every other byte as it
// was. Not a TOML writer: callers check the result with Bun.TOML.parse, which catches what a line scan misses.

const BARE_KEY = /^[A-Za-z0-9_-]+$/;

export function tomlKey(key: string): string {
  return BARE_KEY.test(key) ? key : JSON.stringify(key);
}

/** A TOML value on one line: strings as basic strings, tables inline. */
export function tomlValue(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  if (value instanceof Date) return value.toISOString();
  if (Array.isArray(value)) return `[${value.map(tomlValue).join(", ")}]`;
  if (value && typeof value === "object") {
    const entries = Object.entries(value).map(([k, v]) => `${tomlKey(k)} = ${tomlValue(v)}`);
    return entries.length ? `{ ${entries.join(", ")} }` : "{}";
  }
  throw new Error(`cannot write ${String(value)} as TOML`);
}

/** `[path]` followed by `key = value` lines, in the entry's key order. */
export function tomlTable(path: string[], entry: Record<string, unknown>): string {
  const lines = [`[${path.map(tomlKey).join(".")}]`];
  for (const [key, value] of Object.entries(entry)) lines.push(`${tomlKey(key)} = ${tomlValue(value)}`);
  return `${lines.join("\n")}\n`;
}

/** Splits a header's dotted key (`mcp_servers."my server"`) into its parts. */
function headerPath(inner: string): string[] | null {
  const parts: string[] = [];
  let rest = inner.trim();
  while (rest) {
    let match = /^([A-Za-z0-9_-]+)\s*/.exec(rest);
    if (match) parts.push(match[1]!);
    else if ((match = /^"((?:[^"\\]|\\.)*)"\s*/.exec(rest)))
      parts.push(JSON.parse(`"${match[1]}"`) as string);
    else if ((match = /^'([^']*)'\s*/.exec(rest))) parts.push(match[1]!);
    else return null;
    rest = rest.slice(match[0].length);
    if (!rest) break;
    if (!rest.startsWith(".")) return null;
    rest = rest.slice(1).trimStart();
  }
  return parts;
}

interface Header {
  line: number;
  path: string[] | null;
}

/** Table headers by line, skipping lines inside multi-line strings. */
function headers(lines: string[]): Header[] {
  const found: Header[] = [];
  let open: '"""' | "'''" | null = null;
  lines.forEach((line, index) => {
    if (!open) {
      const match = /^\s*\[\[?([^[\]]+)\]\]?\s*(?:#.*)?$/.exec(line);
      if (match) found.push({ line: index, path: headerPath(match[1]!) });
    }
    for (const quote of line.match(/"""|'''/g) ?? []) {
      if (!open) open = quote as '"""' | "'''";
      else if (open === quote) open = null;
    }
  });
  return found;
}

function startsWith(path: string[] | null, prefix: string[]): boolean {
  return !!path && path.length >= prefix.length && prefix.every((part, i) => path[i] === part);
}

/**
 * Returns `text` with the table at `path` (and its sub-tables) replaced by `table`, or `table` appended when the
 * document has none. Blank lines and comments after the last line of the old table stay: they usually introduce
 * what follows.
 */
export function replaceTomlTable(text: string, path: string[], table: string): string {
  const lines = text.split("\n");
  const all = headers(lines);
  const spans: [number, number][] = [];
  all.forEach((header, index) => {
    if (!startsWith(header.path, path)) return;
    const next = all[index + 1]?.line ?? lines.length;
    let end = next;
    while (end > header.line + 1 && /^\s*(#.*)?$/.test(lines[end - 1]!)) end--;
    spans.push([header.line, end]);
  });
  if (spans.length === 0) {
    if (!text.trim()) return table;
    const separator = text.endsWith("\n\n") ? "" : text.endsWith("\n") ? "\n" : "\n\n";
    return text + separator + table;
  }
  const out: string[] = [];
  let cursor = 0;
  spans.forEach(([start, end], index) => {
    // A dropped sub-table takes the blank lines before it along, so no gap is left behind.
    if (index > 0) while (start > cursor && lines[start - 1]!.trim() === "") start--;
    out.push(...lines.slice(cursor, start));
    if (index === 0) out.push(...table.replace(/\n$/, "").split("\n"));
    cursor = end;
  });
  out.push(...lines.slice(cursor));
  return out.join("\n");
}
