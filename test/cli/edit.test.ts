import { describe, expect, test } from "bun:test";
import { JsonSyntaxError, setJsonMember } from "../../src/cli/json-edit.ts";
import { replaceTomlTable, tomlTable } from "../../src/cli/toml-edit.ts";

const ENTRY = { command: "/c", args: [] };

describe("setJsonMember", () => {
  const cases: [string, string, string][] = [
    ["empty file", "", '{\n  "s": {\n    "x": {\n      "command": "/c",\n      "args": []\n    }\n  }\n}\n'],
    [
      "empty object",
      "{}",
      '{\n  "s": {\n    "x": {\n      "command": "/c",\n      "args": []\n    }\n  }\n}',
    ],
    [
      "empty holder",
      '{\n\t"s": {}\n}',
      '{\n\t"s": {\n\t\t"x": {\n\t\t\t"command": "/c",\n\t\t\t"args": []\n\t\t}\n\t}\n}',
    ],
    [
      "holder with only a comment",
      '{\n  "s": {\n    // none yet\n  }\n}',
      '{\n  "s": {\n    // none yet\n    "x": {\n      "command": "/c",\n      "args": []\n    }\n  }\n}',
    ],
    [
      "one-line document",
      '{"a": 1, "s": {"y": 2}}',
      '{"a": 1, "s": {"y": 2,\n  "x": {\n    "command": "/c",\n    "args": []\n  }}}',
    ],
    [
      "replaces the last of duplicate keys, as JSON.parse reads it",
      '{\n  "s": {"x": 1},\n  "s": {"x": 2}\n}',
      '{\n  "s": {"x": 1},\n  "s": {"x": {\n    "command": "/c",\n    "args": []\n  }}\n}',
    ],
  ];
  for (const [name, before, after] of cases) {
    test(name, () => {
      const edited = setJsonMember(before, "s", "x", ENTRY);
      expect(edited).toBe(after);
      expect((Bun.JSONC.parse(edited) as { s: { x: unknown } }).s.x).toEqual(ENTRY);
    });
  }

  test("syntax errors name the line and column", () => {
    expect(() => setJsonMember('{\n  "a": tru\n}', "s", "x", ENTRY)).toThrow(JsonSyntaxError);
    expect(() => setJsonMember('{\n  "a": tru\n}', "s", "x", ENTRY)).toThrow(/line 2, column 8/);
    expect(() => setJsonMember("[]", "s", "x", ENTRY)).toThrow("not a JSON object");
    expect(() => setJsonMember('{"s": "str"}', "s", "x", ENTRY)).toThrow("not a JSON object");
  });
});

describe("replaceTomlTable", () => {
  const table = tomlTable(["mcp_servers", "x"], ENTRY);

  test("quoted and spaced headers are recognised", () => {
    const before = 'a = 1\n\n[ mcp_servers . "x" ] # ours\ncommand = "old"\n\n[b]\nc = 2\n';
    expect(replaceTomlTable(before, ["mcp_servers", "x"], table)).toBe(
      'a = 1\n\n[mcp_servers.x]\ncommand = "/c"\nargs = []\n\n[b]\nc = 2\n',
    );
  });

  test("a comment that introduces the next table stays with it", () => {
    const before = '[mcp_servers.x]\ncommand = "old"\n\n# the next one\n[mcp_servers.y]\ncommand = "y"\n';
    expect(replaceTomlTable(before, ["mcp_servers", "x"], table)).toBe(
      '[mcp_servers.x]\ncommand = "/c"\nargs = []\n\n# the next one\n[mcp_servers.y]\ncommand = "y"\n',
    );
  });

  test("a similar name is not ours", () => {
    const before = '[mcp_servers.xx]\ncommand = "y"\n';
    expect(replaceTomlTable(before, ["mcp_servers", "x"], table)).toBe(`${before}\n${table}`);
  });

  test("values are written as TOML", () => {
    expect(tomlTable(["a", "b c"], { s: 'q"\\', n: 1, t: true, l: ["x"], e: { K: "v", "a b": "w" } })).toBe(
      '[a."b c"]\ns = "q\\"\\\\"\nn = 1\nt = true\nl = ["x"]\ne = { K = "v", "a b" = "w" }\n',
    );
  });
});
