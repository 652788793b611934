import pkg from "../package.json" with { type: "json" };

declare const CONTREE_MCP_VERSION: string | undefined;

/** Set at compile time by scripts/build.ts; falls back to package.json when run from source. */
export const VERSION: string = typeof CONTREE_MCP_VERSION === "string" ? CONTREE_MCP_VERSION : pkg.version;
