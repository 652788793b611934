import { describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chosenBackend, localBackendOptions, parseIni, resolveConfig } from "../src/config.ts";
import { UserError } from "../src/errors.ts";

function iniFile(text: string): string {
  const path = join(mkdtempSync(join(tmpdir(), "contree-mcp-ini-")), "mcp.ini");
  writeFileSync(path, text);
  return path;
}

describe("resolveConfig", () => {
  test("defaults", () => {
    const config = resolveConfig({}, {});
    expect(config.url).toBe("https://contree.dev");
    expect(config.mode).toBe("stdio");
    expect(config.httpListen).toBe("127.0.0.1");
    expect(config.httpPort).toBe(9452);
    expect(config.logLevel).toBe("warning");
    expect(config.cachePruneDays).toBe(60);
    expect(config.backend).toBe("auto");
    expect(config.toolPrefix).toBe("contree_");
    expect(config.token).toBeUndefined();
    expect(config.cacheGeneral).toEndWith("/contree-mcp/cache.db");
    expect(chosenBackend(config)).toBe("local");
  });

  test("precedence: flag > env > file > default", () => {
    const config = iniFile(
      "[DEFAULT]\nurl = https://file.example\nhttp_port = 1000\nlog-level = debug\ntoken = file-token\n",
    );
    const env = {
      CONTREE_MCP_CONFIG: config,
      CONTREE_MCP_HTTP_PORT: "2000",
      CONTREE_MCP_URL: "https://env.example",
    };
    const resolved = resolveConfig({ url: "https://flag.example/" }, env);
    expect(resolved.url).toBe("https://flag.example");
    expect(resolved.sources.url).toBe("flag");
    expect(resolved.httpPort).toBe(2000);
    expect(resolved.sources.http_port).toBe("env");
    expect(resolved.logLevel).toBe("debug");
    expect(resolved.token).toBe("file-token");
    expect(resolved.sources.token).toBe("file");
    expect(chosenBackend(resolved)).toBe("cloud");
  });

  test("reads the Python server's [http] and [cache] sections as a fallback", () => {
    const config = iniFile("[http]\nport = 7000\nlisten = 0.0.0.0\n[cache]\nprune_days = 5\n");
    const resolved = resolveConfig({ config });
    expect(resolved.httpPort).toBe(7000);
    expect(resolved.httpListen).toBe("0.0.0.0");
    expect(resolved.cachePruneDays).toBe(5);
  });

  test("an empty tool prefix is allowed", () => {
    expect(resolveConfig({ tool_prefix: "" }, {}).toolPrefix).toBe("");
  });

  test("bad values are user errors that name the setting and its source", () => {
    expect(() => resolveConfig({ mode: "carrier-pigeon" }, {})).toThrow(UserError);
    expect(() => resolveConfig({}, { CONTREE_MCP_HTTP_PORT: "eighty" })).toThrow(
      /http-port 'eighty' \(from env\)/,
    );
    expect(() => resolveConfig({ url: "contree.dev" }, {})).toThrow(/http:\/\/ or https:\/\//);
    expect(() => resolveConfig({ config: "/no/such/file.ini" }, {})).toThrow(/does not exist/);
  });

  test("local backend limits: sizes with units, 0 for none, bad values named", () => {
    const defaults = localBackendOptions(resolveConfig({}, {}));
    expect(defaults).toMatchObject({ memoryLimitBytes: 2 * 1024 ** 3, pidsLimit: 1024, maxConcurrent: 0 });
    const set = resolveConfig(
      { local_memory: "512m", local_pids: "0" },
      { CONTREE_MCP_LOCAL_CONCURRENCY: "3" },
    );
    expect(localBackendOptions(set)).toMatchObject({
      memoryLimitBytes: 512 * 1024 ** 2,
      pidsLimit: 0,
      maxConcurrent: 3,
    });
    expect(resolveConfig({ local_memory: "1.5GiB" }, {}).localMemoryBytes).toBe(1.5 * 1024 ** 3);
    expect(resolveConfig({ local_memory: "0" }, {}).localMemoryBytes).toBe(0);
    expect(() => resolveConfig({ local_memory: "lots" }, {})).toThrow(/local-memory 'lots' \(from flag\)/);
  });

  test("a missing default config file is ignored", () => {
    expect(resolveConfig({}, { CONTREE_MCP_CONFIG: "/no/such/file.ini" }).url).toBe("https://contree.dev");
  });
});

test("parseIni handles comments, quotes and sections", () => {
  const ini = parseIni('; comment\n# another\n[DEFAULT]\ntoken = "abc"\n[http]\nPort: 80\n');
  expect(ini.DEFAULT).toEqual({ token: "abc" });
  expect(ini.http).toEqual({ port: "80" });
});
