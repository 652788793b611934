import { describe, expect, test } from "bun:test";
import { showStream, utf8OrNull } from "../../src/tools/_operation.ts";

const bytes = (text: string) => new TextEncoder().encode(text);

describe("showStream", () => {
  test("short text is shown whole", () => {
    expect(showStream(bytes("hello\n"), 100)).toEqual({
      text: "hello\n",
      encoding: "utf-8",
      cut: false,
      omitted: null,
    });
  });

  test("long text keeps head and tail and names the omitted range", () => {
    const text = `${"a".repeat(500)}MIDDLE${"z".repeat(500)}`;
    const shown = showStream(bytes(text), 100);
    expect(shown.cut).toBe(true);
    expect(shown.text.startsWith("a".repeat(25))).toBe(true);
    expect(shown.text.endsWith("z".repeat(75))).toBe(true);
    expect(shown.text).not.toContain("MIDDLE");
    expect(shown.omitted).toEqual({ offset: 25, length: 906 });
  });

  test("never splits a multi-byte character", () => {
    const text = "é".repeat(300);
    const shown = showStream(bytes(text), 101);
    expect(shown.encoding).toBe("utf-8");
    expect(shown.text).not.toContain("\uFFFD");
  });

  test("binary output is base64", () => {
    const shown = showStream(new Uint8Array([0, 1, 2, 255, 254]), 100);
    expect(shown.encoding).toBe("base64");
    expect(Buffer.from(shown.text, "base64")).toEqual(Buffer.from([0, 1, 2, 255, 254]));
  });

  test("text cut inside a character by the backend still counts as text", () => {
    const cut = bytes("héllo").subarray(0, 2);
    expect(utf8OrNull(cut)).toBe("h");
  });

  test("ANSI colour escapes are text", () => {
    expect(utf8OrNull(bytes("\u001b[31mred\u001b[0m"))).toBe("\u001b[31mred\u001b[0m");
  });
});
