#!/bin/sh
# Installs the contree-mcp binary from a GitHub release:
#   curl -fsSL https://raw.githubusercontent.com/nebius/contree-mcp/main/install.sh | sh
#   curl -fsSL https://raw.githubusercontent.com/nebius/contree-mcp/main/install.sh | sh -s -- --version 0.3.0
#
# It picks the archive for this OS, CPU and C library, checks it against the release's SHA256SUMS, and moves the
# binary into place in one rename, so an interrupted or corrupt download never leaves a broken contree-mcp behind.
#
# Settings, from the environment (or the flags in brackets):
#   CONTREE_MCP_INSTALL_VERSION   [--version V]  release to install, e.g. 0.3.0 (default: the latest)
#   CONTREE_MCP_INSTALL_DIR       [--dir D]      where the binary goes (default: ~/.local/bin)
#   CONTREE_MCP_INSTALL_BASE_URL                 the releases URL (default below); files are fetched from
#                                                <base>/latest/download/<file> or <base>/download/v<version>/<file>
#   CONTREE_MCP_INSTALL_TARGET    [--target T]   skip detection: linux-x64, linux-arm64, linux-x64-musl,
#                                                linux-arm64-musl, darwin-x64 or darwin-arm64
set -eu

base_url=${CONTREE_MCP_INSTALL_BASE_URL:-https://github.com/nebius/contree-mcp/releases}
version=${CONTREE_MCP_INSTALL_VERSION:-latest}
install_dir=${CONTREE_MCP_INSTALL_DIR:-${HOME:?HOME is not set}/.local/bin}
target=${CONTREE_MCP_INSTALL_TARGET:-}

say() {
  printf '%s\n' "$*"
}

fail() {
  printf 'contree-mcp install: %s\n' "$*" >&2
  exit 1
}

while [ $# -gt 0 ]; do
  case $1 in
    --version) version=${2:?--version needs a value}; shift 2 ;;
    --dir) install_dir=${2:?--dir needs a value}; shift 2 ;;
    --target) target=${2:?--target needs a value}; shift 2 ;;
    -h | --help)
      say "usage: install.sh [--version V] [--dir D] [--target T]; see the comment at the top of this script"
      exit 0
      ;;
    *) fail "unknown argument '$1' (known: --version V, --dir D, --target T)" ;;
  esac
done
version=${version#v}

is_musl() {
  # A glibc system can have musl's loader installed too (Debian's musl package), so ask glibc first.
  if getconf GNU_LIBC_VERSION >/dev/null 2>&1; then return 1; fi
  if ldd --version 2>&1 | grep -qi musl; then return 0; fi
  for loader in /lib/ld-musl-*.so.1; do
    if [ -e "$loader" ]; then return 0; fi
  done
  return 1
}

detect_target() {
  os=$(uname -s)
  arch=$(uname -m)
  case $os in
    Linux) os=linux ;;
    Darwin) os=darwin ;;
    MINGW* | MSYS* | CYGWIN* | Windows_NT)
      fail "on Windows, download contree-mcp-<version>-windows-x64.zip from $base_url, or run: npx -y contree-mcp" ;;
    *) fail "no release binary for the OS '$os'; see docs/install.md for building from source" ;;
  esac
  case $arch in
    x86_64 | amd64) arch=x64 ;;
    aarch64 | arm64) arch=arm64 ;;
    *) fail "no release binary for the CPU '$arch'; see docs/install.md for building from source" ;;
  esac
  # A shell under Rosetta reports x86_64 on Apple silicon; the native binary is the better choice there.
  if [ "$os" = darwin ] && [ "$arch" = x64 ] && [ "$(sysctl -n sysctl.proc_translated 2>/dev/null || true)" = 1 ]; then
    arch=arm64
  fi
  if [ "$os" = linux ] && is_musl; then
    printf '%s\n' "$os-$arch-musl"
  else
    printf '%s\n' "$os-$arch"
  fi
}

fetch() {
  if command -v curl >/dev/null 2>&1; then
    curl -fsSL --retry 2 -o "$2" "$1" || fail "download failed: $1"
  elif command -v wget >/dev/null 2>&1; then
    wget -q -O "$2" "$1" || fail "download failed: $1"
  else
    fail "needs curl or wget to download"
  fi
}

sha256_of() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum "$1" | cut -d ' ' -f 1
  elif command -v shasum >/dev/null 2>&1; then
    shasum -a 256 "$1" | cut -d ' ' -f 1
  elif command -v openssl >/dev/null 2>&1; then
    openssl dgst -sha256 "$1" | sed 's/^.*= *//'
  else
    fail "needs sha256sum, shasum or openssl to verify the download"
  fi
}

[ -n "$target" ] || target=$(detect_target)
case $target in
  linux-x64 | linux-arm64 | linux-x64-musl | linux-arm64-musl | darwin-x64 | darwin-arm64) ;;
  *) fail "unknown target '$target'" ;;
esac

if [ "$version" = latest ]; then
  download_url=$base_url/latest/download
else
  download_url=$base_url/download/v$version
fi

tmp=$(mktemp -d 2>/dev/null || mktemp -d -t contree-mcp)
staged=
cleanup() {
  rm -rf "$tmp"
  if [ -n "$staged" ]; then rm -f "$staged"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fetch "$download_url/SHA256SUMS" "$tmp/SHA256SUMS"
# Lines are "<sha256>  <file>"; the archive for the latest release is found by its target suffix.
suffix="-$target.tar.gz"
line=$(awk -v version="$version" -v suffix="$suffix" '{
  name = $2; sub(/^\*/, "", name)
  if (version == "latest") {
    if (substr(name, 1, 12) == "contree-mcp-" && substr(name, length(name) - length(suffix) + 1) == suffix) { print; exit }
  } else if (name == "contree-mcp-" version suffix) { print; exit }
}' "$tmp/SHA256SUMS")
[ -n "$line" ] || fail "the release ($download_url) has no archive for $target"
expected=$(printf '%s\n' "$line" | awk '{ print $1 }')
archive=$(printf '%s\n' "$line" | awk '{ name = $2; sub(/^\*/, "", name); print name }')

say "Downloading $archive"
fetch "$download_url/$archive" "$tmp/$archive"
actual=$(sha256_of "$tmp/$archive")
if [ "$actual" != "$expected" ]; then
  fail "checksum mismatch for $archive (expected $expected, got $actual); nothing was installed"
fi

mkdir -p "$tmp/unpacked"
tar -xzf "$tmp/$archive" -C "$tmp/unpacked" || fail "cannot unpack $archive"
[ -f "$tmp/unpacked/contree-mcp" ] || fail "$archive holds no contree-mcp binary"

mkdir -p "$install_dir" || fail "cannot create $install_dir"
# Staged in the install dir itself, so the final mv is a rename on one file system: atomic.
staged=$install_dir/.contree-mcp.$$.tmp
cp "$tmp/unpacked/contree-mcp" "$staged" || fail "cannot write to $install_dir"
chmod 755 "$staged"
if ! installed_version=$("$staged" --version 2>"$tmp/stderr"); then
  hint=
  case $target in *-musl) hint=" (on Alpine: apk add libstdc++ libgcc)" ;; esac
  fail "the downloaded binary does not run here$hint: $(cat "$tmp/stderr"); nothing was installed"
fi
mv -f "$staged" "$install_dir/contree-mcp"
staged=

say "Installed contree-mcp $installed_version to $install_dir/contree-mcp"
case ":${PATH:-}:" in
  *":$install_dir:"*) command=contree-mcp ;;
  *)
    command=$install_dir/contree-mcp
    say ""
    say "$install_dir is not on your PATH. Add it, e.g. in ~/.profile:"
    say "  export PATH=\"$install_dir:\$PATH\""
    ;;
esac
say ""
say "Next: add it to your MCP client, e.g.  $command setup claude-code  (also claude-desktop, codex, cursor, vscode),"
say "or use $install_dir/contree-mcp as the server command in its config. Check the setup with  $command doctor"
