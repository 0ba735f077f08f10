#!/usr/bin/env bash
# `git commit` with gitkit's post-commit hook installed against the same commit with hooks
# disabled, many commits each, one run. The hook's snapshot runs detached; what is measured is
# what the commit waits for. Needs: hyperfine.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -q
mkdir -p bench/out
gitkit="$PWD/target/release/gitkit"
work="$(mktemp -d /tmp/gitkit-bench-hooks-XXXXXX)"
trap 'rm -rf "$work"' EXIT

export HOME="$work/home" GIT_CONFIG_NOSYSTEM=1 GITKIT_STORE="$work/store"
export GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=b@example.com GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=b@example.com
mkdir -p "$HOME"
repo="$work/repo"
git init -q "$repo"
for i in $(seq 1 200); do echo "line $i" >"$repo/file$i.txt"; done
git -C "$repo" add -A
git -C "$repo" commit -q -m initial
"$gitkit" -C "$repo" hooks install

hyperfine -N --warmup 5 --runs "${RUNS:-100}" --export-json bench/out/hooks.json \
  -n "git commit (hooks disabled)" "git -C $repo -c core.hooksPath=/dev/null commit -q --allow-empty -m bench" \
  -n "git commit (gitkit hook)" "git -C $repo commit -q --allow-empty -m bench"

python3 - <<'PY'
import json
r = {x["command"]: x for x in json.load(open("bench/out/hooks.json"))["results"]}
off, on = r["git commit (hooks disabled)"], r["git commit (gitkit hook)"]
print(f"median: without hook {off['median']*1000:.2f} ms, with hook {on['median']*1000:.2f} ms, "
      f"added {(on['median'] - off['median'])*1000:.2f} ms")
PY
"$gitkit" -C "$repo" hooks status
