#!/usr/bin/env bash
# Builds gitkit, installs it into $GITKIT_HOME/bin, links ~/.local/bin/gitkit, and runs
# `gitkit setup` (extra arguments go to setup, e.g. ./install.sh --store s3://BUCKET/PREFIX).
# Safe to run again.
#
# The binary is built for glibc 2.17 with cargo-zigbuild, so that it runs on Amazon Linux 2
# (glibc 2.26, SageMaker notebook instances) and AL2023 alike. cargo-zigbuild and ziglang come
# from PyPI into a virtualenv when they are missing. Where that cannot work, it builds for this
# machine instead and says so.
#
#   GITKIT_TARGET=aarch64-unknown-linux-gnu ./install.sh   # Graviton (see README)
#   GITKIT_NATIVE=1 ./install.sh                           # skip zig: this machine's glibc only
set -euo pipefail
cd "$(dirname "$0")"

# GITKIT_HOME as gitkit itself chooses it (src/home.rs).
if [ -n "${GITKIT_HOME:-}" ]; then
  gitkit_home="$GITKIT_HOME"
elif [ -d "$HOME/.gitkit" ]; then
  gitkit_home="$HOME/.gitkit"
elif [ -d "$HOME/SageMaker" ]; then
  gitkit_home="$HOME/SageMaker/.gitkit"
else
  gitkit_home="${XDG_DATA_HOME:-$HOME/.local/share}/gitkit"
fi
target="${GITKIT_TARGET:-$(uname -m)-unknown-linux-gnu}"
venv="${XDG_CACHE_HOME:-$HOME/.cache}/gitkit/zig-venv"

# cargo-zigbuild and zig on PATH, from the virtualenv if need be.
have_zig() {
  command -v cargo-zigbuild >/dev/null 2>&1 &&
    { command -v zig >/dev/null 2>&1 || python3 -m ziglang version >/dev/null 2>&1; }
}
zig_toolchain() {
  [ -d "$venv" ] && PATH="$venv/bin:$PATH"
  have_zig && return 0
  echo "installing cargo-zigbuild and ziglang (PyPI) into $venv" >&2
  python3 -m venv "$venv" &&
    "$venv/bin/python" -m pip install -q --disable-pip-version-check cargo-zigbuild ziglang &&
    PATH="$venv/bin:$PATH" && have_zig
}

built=""
if [ -z "${GITKIT_NATIVE:-}" ] && zig_toolchain; then
  export PATH
  if [ "$target" != "$(uname -m)-unknown-linux-gnu" ] && command -v rustup >/dev/null; then
    rustup target add "$target" >&2
  fi
  if cargo zigbuild --release --locked --target "$target.2.17"; then
    built="target/$target/release/gitkit"
  else
    echo "warning: cargo zigbuild failed" >&2
  fi
fi
if [ -z "$built" ]; then
  cargo build --release --locked
  built="target/release/gitkit"
  glibc="$(ldd --version 2>/dev/null | head -n 1 | grep -oE '[0-9]+\.[0-9]+$' || true)"
  echo "warning: built for this machine only (glibc ${glibc:-unknown}): this binary will NOT run on" \
    "Amazon Linux 2 (glibc 2.26), and on-create would fetch it there; install python3-venv," \
    "or cargo-zigbuild and ziglang, and run ./install.sh again" >&2
fi

# Setup copies the binary into $GITKIT_HOME/bin (atomically) and names that copy everywhere.
"$built" setup "$@"
link_dir="$HOME/.local/bin"
mkdir -p "$link_dir"
ln -sfn "$gitkit_home/bin/gitkit" "$link_dir/gitkit"
echo "installed $gitkit_home/bin/gitkit ($("$link_dir/gitkit" --version)), linked from $link_dir/gitkit" >&2
case ":$PATH:" in
  *":$link_dir:"*) ;;
  *) echo "hint: add $link_dir to PATH" >&2 ;;
esac
