#!/usr/bin/env bash
# Builds gitkit and installs it into $GITKIT_BIN_DIR (default: ~/.local/bin).
set -euo pipefail
cd "$(dirname "$0")"

bin_dir="${GITKIT_BIN_DIR:-$HOME/.local/bin}"
cargo build --release --locked
mkdir -p "$bin_dir"
# Copy then rename, so a running gitkit (a hook, git's credential helper) never sees half a file.
tmp="$(mktemp "$bin_dir/.gitkit.XXXXXX")"
cp target/release/gitkit "$tmp"
chmod 755 "$tmp"
mv -f "$tmp" "$bin_dir/gitkit"
echo "installed $bin_dir/gitkit ($("$bin_dir/gitkit" --version))" >&2
case ":$PATH:" in
  *":$bin_dir:"*) ;;
  *) echo "hint: add $bin_dir to PATH" >&2 ;;
esac
