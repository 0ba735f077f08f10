#!/usr/bin/env bash
# Memory as the workspace grows (issue 9: "memory stays bounded for any workspace size"):
# gitkit with a folder store against restic with a local repository, side by side in one run,
# on generated workspaces of each size in SIZES (default 100,000 and 300,000 small text files,
# 500 a folder, committed, git objects packed). For each: first snapshot, nothing changed,
# one file edited, full restore; time and peak RSS (GNU time: the largest of the process and
# the programs it ran, so git's own memory counts for gitkit, as it does for the user; and
# gitkit's own, without git's listing, sampled by bench/peak.py), and
# `git status --porcelain` on the same workspace for reference.
#
# Run: bench/memory.sh             (GITKIT=path/to/gitkit, default target/release/gitkit; no build)
# Smoke: SIZES="2000 4000" bench/memory.sh
# Needs: git, python3, restic (apt-get install restic), GNU time (apt-get install time).
# Prints a markdown table and appends it to bench/out/memory-DATE.md.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=bench/lib.sh
source bench/lib.sh
need git python3 restic /usr/bin/time
sizes="${SIZES:-100000 300000}"

mkdir -p bench/out
out="$PWD/bench/out"
work="$(mktemp -d /tmp/gitkit-memory-bench-XXXXXX)"
log="$out/memory.log"
: >"$log"
trap 'rm -rf "$work"' EXIT
bench_env

row() { printf '| %s | %s | %s s, %s MiB (own %s MiB) | %s s, %s MiB | %s |\n' "$@"; }
table="| files | measure | gitkit (own: without git's listing) | restic | \`git status --porcelain\` |
| --- | --- | --- | --- | --- |"

for n in $sizes; do
  ws="$work/ws-$n"
  text_files "$ws" "$n" 500 11
  run git init -q "$ws"
  run git -C "$ws" add -A
  run git -C "$ws" -c gc.auto=0 commit -q -m data
  run git -C "$ws" gc -q
  store="$work/gitkit-$n" repo="$work/restic-$n"
  run restic init --repo "$repo"
  g=() r=()

  timed_own "$gitkit" -C "$ws" snapshot --store "$store"; g+=("$secs" "$mib" "$own")
  timed restic --repo "$repo" backup --quiet --host bench --exclude "$ws/.git/gitkit" "$ws"; r+=("$secs" "$mib")
  sleep 1
  timed_own "$gitkit" -C "$ws" snapshot --store "$store"; g+=("$secs" "$mib" "$own")
  timed restic --repo "$repo" backup --quiet --host bench --exclude "$ws/.git/gitkit" "$ws"; r+=("$secs" "$mib")
  timed git -C "$ws" status --porcelain; status="$secs s, $mib MiB"
  echo "edited" >>"$ws/folder000/file000.txt"
  timed_own "$gitkit" -C "$ws" snapshot --store "$store"; g+=("$secs" "$mib" "$own")
  timed restic --repo "$repo" backup --quiet --host bench --exclude "$ws/.git/gitkit" "$ws"; r+=("$secs" "$mib")
  timed_own "$gitkit" restore latest --store "$store" --workspace "ws-$n" --to "$work/g-restored-$n"; g+=("$secs" "$mib" "$own")
  timed restic --repo "$repo" restore latest --target "$work/r-restored-$n"; r+=("$secs" "$mib")
  rm -rf "$work/g-restored-$n" "$work/r-restored-$n"

  i=0 j=0
  for measure in "first snapshot" "nothing changed" "one file edited" "full restore"; do
    reference=""
    [ "$measure" = "nothing changed" ] && reference="$status"
    table+=$'\n'"$(row "$n" "$measure" "${g[i]}" "${g[i+1]}" "${g[i+2]}" "${r[j]}" "${r[j+1]}" "$reference")"
    i=$((i + 3)) j=$((j + 2))
  done
  rm -rf "$ws" "$store" "$repo"
done

report="## $(date -u +%Y-%m-%dT%H:%MZ) memory.sh ($("$gitkit" --version), $(restic version | cut -d' ' -f1-2))

$table"
echo "$report"
echo "$report" >>"$out/memory-$(date -u +%Y-%m-%d).md"
