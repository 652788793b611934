#!/usr/bin/env node
// The `contree-mcp` command of the npm package: runs the native binary that npm installed from the optional
// dependency for this platform (@contree-mcp/<platform>-<arch>[-musl]), the way esbuild and Biome ship theirs.
"use strict";
const { spawn } = require("node:child_process");
const { existsSync } = require("node:fs");
const { constants } = require("node:os");

function isMusl() {
  try {
    // The same test as detect-libc: a glibc process reports the glibc version it runs on, a musl one does not.
    const report = process.report.getReport();
    const header = typeof report === "string" ? JSON.parse(report).header : report.header;
    return !header.glibcVersionRuntime;
  } catch {
    return existsSync("/etc/alpine-release");
  }
}

/** Packages that may hold our binary, best first; npm installs only the one whose os/cpu/libc fit. */
function candidates() {
  const base = `@contree-mcp/${process.platform}-${process.arch}`;
  if (process.platform !== "linux") return [base];
  return isMusl() ? [`${base}-musl`, base] : [base, `${base}-musl`];
}

function findBinary() {
  if (process.env.CONTREE_MCP_BINARY_PATH) return process.env.CONTREE_MCP_BINARY_PATH;
  const exe = process.platform === "win32" ? "contree-mcp.exe" : "contree-mcp";
  for (const pkg of candidates()) {
    try {
      return require.resolve(`${pkg}/bin/${exe}`);
    } catch {
      // not installed: try the next one
    }
  }
  return undefined;
}

const binary = findBinary();
if (!binary) {
  process.stderr.write(
    `contree-mcp: no binary for ${process.platform}-${process.arch}: the package ${candidates()[0]} is not installed.\n` +
      "  If npm skipped optional dependencies (--omit=optional, --no-optional), install again without that flag.\n" +
      "  Supported: linux x64/arm64 (glibc and musl), macOS x64/arm64, Windows x64.\n" +
      "  Other ways to install: https://github.com/nebius/contree-mcp/blob/main/docs/install.md\n",
  );
  process.exit(1);
}

// Tells the binary it runs under npm, so that `setup` can write a command that survives npx's cache: the binary's own
// path lies inside that cache.
const env = { ...process.env, CONTREE_MCP_NPM_LAUNCHER: __filename };
const child = spawn(binary, process.argv.slice(2), { stdio: "inherit", windowsHide: true, env });

// A client that stops the server signals this launcher; pass it on so the server can close cleanly.
const forwarded = ["SIGINT", "SIGTERM", "SIGHUP"];
for (const signal of forwarded) {
  process.on(signal, () => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
  });
}

child.on("error", (error) => {
  process.stderr.write(`contree-mcp: cannot run ${binary}: ${error.message}\n`);
  process.exit(1);
});

child.on("exit", (code, signal) => {
  if (signal) {
    // End the same way the server did, so the caller sees the signal and not a made-up exit code.
    for (const s of forwarded) process.removeAllListeners(s);
    process.kill(process.pid, signal);
    process.exit(128 + (constants.signals[signal] ?? 1));
  }
  process.exit(code ?? 1);
});
