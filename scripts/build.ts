// Compiles the server into one standalone executable: dist/contree-mcp (this machine's platform).
import pkg from "../package.json" with { type: "json" };

const version = process.env.CONTREE_MCP_VERSION ?? pkg.version;
const outfile = process.argv[2] ?? "dist/contree-mcp";

const result = await Bun.build({
  entrypoints: ["src/main.ts"],
  compile: { outfile },
  // Bytecode needs ESM output when the code uses top-level await; it cuts startup roughly in half.
  bytecode: true,
  format: "esm",
  minify: true,
  sourcemap: "linked",
  define: { CONTREE_MCP_VERSION: JSON.stringify(version) },
});
if (!result.success) {
  for (const message of result.logs) console.error(message);
  process.exit(1);
}
console.log(`built ${outfile} (contree-mcp ${version})`);
