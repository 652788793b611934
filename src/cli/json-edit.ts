// Edits one member of a JSON (or JSONC: comments, trailing commas) document in place, leaving every other byte as
// it was. Client configs such as ~/.claude.json hold far more than our entry; a parse-and-reformat would reorder
// nothing but could still change number spellings, escapes and comments the user cares about.

interface Node {
  kind: "object" | "array" | "value";
  start: number;
  /** Just past the last character of the value. */
  end: number;
  members?: Member[];
}

interface Member {
  key: string;
  keyStart: number;
  value: Node;
}

export class JsonSyntaxError extends Error {
  override readonly name = "JsonSyntaxError";
}

class Parser {
  private pos = 0;

  constructor(private readonly text: string) {}

  document(): Node {
    this.space();
    const node = this.value();
    this.space();
    if (this.pos < this.text.length) this.fail("unexpected text after the end of the document");
    return node;
  }

  private fail(message: string): never {
    const before = this.text.slice(0, this.pos);
    const line = before.split("\n").length;
    const column = this.pos - before.lastIndexOf("\n");
    throw new JsonSyntaxError(`${message} at line ${line}, column ${column}`);
  }

  /** Whitespace and comments. */
  private space(): void {
    const text = this.text;
    while (this.pos < text.length) {
      const ch = text[this.pos]!;
      if (ch === " " || ch === "\t" || ch === "\n" || ch === "\r" || ch === "\uFEFF") {
        this.pos++;
      } else if (text.startsWith("//", this.pos)) {
        const next = text.indexOf("\n", this.pos);
        this.pos = next < 0 ? text.length : next;
      } else if (text.startsWith("/*", this.pos)) {
        const close = text.indexOf("*/", this.pos + 2);
        if (close < 0) this.fail("unclosed comment");
        this.pos = close + 2;
      } else {
        return;
      }
    }
  }

  private value(): Node {
    const ch = this.text[this.pos];
    if (ch === "{") return this.object();
    if (ch === "[") return this.array();
    const start = this.pos;
    if (ch === '"') {
      this.string();
    } else {
      const match = /^(?:-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null)/.exec(this.text.slice(this.pos));
      if (!match) this.fail("expected a value");
      this.pos += match[0].length;
    }
    return { kind: "value", start, end: this.pos };
  }

  private string(): string {
    const start = this.pos;
    this.pos++;
    while (this.pos < this.text.length) {
      const ch = this.text[this.pos]!;
      if (ch === "\\") this.pos += 2;
      else if (ch === '"') {
        this.pos++;
        try {
          return JSON.parse(this.text.slice(start, this.pos)) as string;
        } catch {
          this.pos = start;
          this.fail("invalid string");
        }
      } else if (ch === "\n") this.fail("line break inside a string");
      else this.pos++;
    }
    this.pos = start;
    return this.fail("unclosed string");
  }

  private object(): Node {
    const start = this.pos++;
    const members: Member[] = [];
    this.space();
    while (this.text[this.pos] !== "}") {
      if (this.text[this.pos] !== '"') this.fail("expected a quoted key or '}'");
      const keyStart = this.pos;
      const key = this.string();
      this.space();
      if (this.text[this.pos] !== ":") this.fail("expected ':'");
      this.pos++;
      this.space();
      members.push({ key, keyStart, value: this.value() });
      this.space();
      if (this.text[this.pos] === ",") {
        this.pos++;
        this.space();
      } else if (this.text[this.pos] !== "}") {
        this.fail("expected ',' or '}'");
      }
    }
    this.pos++;
    return { kind: "object", start, end: this.pos, members };
  }

  private array(): Node {
    const start = this.pos++;
    this.space();
    while (this.text[this.pos] !== "]") {
      if (this.pos >= this.text.length) this.fail("unclosed array");
      this.value();
      this.space();
      if (this.text[this.pos] === ",") {
        this.pos++;
        this.space();
      } else if (this.text[this.pos] !== "]") {
        this.fail("expected ',' or ']'");
      }
    }
    this.pos++;
    return { kind: "array", start, end: this.pos };
  }
}

/** The whitespace that starts the line holding `pos`. */
function lineIndent(text: string, pos: number): string {
  const lineStart = text.lastIndexOf("\n", pos - 1) + 1;
  return /^[ \t]*/.exec(text.slice(lineStart))![0];
}

/** The file's own indent step, from the first member of the root object that sits on its own line. */
function indentUnit(text: string, root: Node): string {
  const first = root.members?.[0];
  if (first && text.lastIndexOf("\n", first.keyStart) > root.start) {
    const indent = lineIndent(text, first.keyStart);
    if (indent) return indent;
  }
  return "  ";
}

function render(value: unknown, indent: string, unit: string): string {
  return JSON.stringify(value, null, unit).replaceAll("\n", `\n${indent}`);
}

/** Text that adds `"key": value` to the object `node`, whose own line is indented by `indent`. */
function insertMember(
  text: string,
  node: Node,
  key: string,
  value: unknown,
  indent: string,
  unit: string,
): string {
  const members = node.members!;
  const inner = indent + unit;
  const entry = `${JSON.stringify(key)}: ${render(value, inner, unit)}`;
  const last = members.at(-1);
  if (last) {
    const sameLine = text.lastIndexOf("\n", last.keyStart) < node.start;
    const memberIndent = sameLine ? inner : lineIndent(text, last.keyStart);
    const insert = `,\n${memberIndent}${JSON.stringify(key)}: ${render(value, memberIndent, unit)}`;
    return text.slice(0, last.value.end) + insert + text.slice(last.value.end);
  }
  const body = text.slice(node.start + 1, node.end - 1);
  if (body.trim() === "") {
    return `${text.slice(0, node.start + 1)}\n${inner}${entry}\n${indent}${text.slice(node.end - 1)}`;
  }
  // Only comments inside: put our member after them, on its own line.
  return `${text.slice(0, node.end - 1).trimEnd()}\n${inner}${entry}\n${indent}${text.slice(node.end - 1)}`;
}

/**
 * Returns `text` with `root[parent][key] = value`, creating `parent` when absent. Only the bytes of that one
 * member change (or are inserted). Throws JsonSyntaxError when the text does not parse, and a plain Error when
 * the document's shape does not allow the edit (a root that is not an object, a `parent` that is not one).
 */
export function setJsonMember(text: string, parent: string, key: string, value: unknown): string {
  if (text.trim() === "") return `${JSON.stringify({ [parent]: { [key]: value } }, null, 2)}\n`;
  const root = new Parser(text).document();
  if (root.kind !== "object") throw new Error("the file's top level is not a JSON object");
  const unit = indentUnit(text, root);
  // JSON.parse keeps the last of duplicate keys, and so do clients: edit that one.
  const holder = root.members!.findLast((member) => member.key === parent);
  if (!holder) return insertMember(text, root, parent, { [key]: value }, lineIndent(text, root.start), unit);
  if (holder.value.kind !== "object") throw new Error(`"${parent}" in this file is not a JSON object`);
  const existing = holder.value.members!.findLast((member) => member.key === key);
  if (!existing) {
    return insertMember(text, holder.value, key, value, lineIndent(text, holder.keyStart), unit);
  }
  const indent = lineIndent(text, existing.keyStart);
  return text.slice(0, existing.value.start) + render(value, indent, unit) + text.slice(existing.value.end);
}
