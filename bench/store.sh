#!/usr/bin/env bash
# gitkit with a folder store against restic with a local repository (format 2, compression
# auto), side by side in one run, on two workspaces (issue 9, "Targets"):
#   (a) generated: N_FOLDERS x N_FILES small text files (default 200 x 500 = 100,000), seeded,
#       committed, the git objects packed (`git gc`);
#   (b) a real source tree: the first SRC_FILES (default 46,000) regular files, in path order,
#       of SRC_DIRS (default: this machine's cargo registry sources, then the Python stdlib
#       and site-packages without __pycache__), copied, committed with every file tracked
#       (`git add -f`), the git objects left loose (gc.auto=0).
# Measured: first snapshot (time, peak RSS, store size), nothing changed (hyperfine, next to
# `git status --porcelain`), store growth for one edited file, listing after N_SNAPSHOTS
# edit+snapshot rounds of (a), full restore (time, peak RSS). restic excludes gitkit's caches
# (.git/gitkit), so both save the same files.
#
# Run: bench/store.sh           (GITKIT=path/to/gitkit, default target/release/gitkit; no build)
# Smoke: N_FOLDERS=5 N_FILES=20 SRC_FILES=300 N_SNAPSHOTS=3 RUNS=2 bench/store.sh
# Needs: git, python3, hyperfine, restic (apt-get install restic), GNU time (apt-get install time).
# Prints a markdown table at the end and appends it to bench/out/store-DATE.md.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=bench/lib.sh
source bench/lib.sh
need git python3 hyperfine restic /usr/bin/time
n_folders="${N_FOLDERS:-200}"
n_files="${N_FILES:-500}"
src_files="${SRC_FILES:-46000}"
n_snapshots="${N_SNAPSHOTS:-100}"
runs="${RUNS:-5}"
default_src="$HOME/.cargo/registry/src:$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["stdlib"])')"
src_dirs="${SRC_DIRS:-$default_src}"

mkdir -p bench/out
out="$PWD/bench/out"
work="$(mktemp -d /tmp/gitkit-store-bench-XXXXXX)"
log="$out/store.log" # what every command printed, kept after the run
: >"$log"
trap 'rm -rf "$work"' EXIT

bench_env

declare -A r # results: r[a.first.g] and so on

size() { du -sb "$1" | cut -f1; }
# Median seconds of each command in a hyperfine JSON export, in order, space-separated.
medians() { python3 -c 'import json, sys
print(" ".join("%.3f" % r["median"] for r in json.load(open(sys.argv[1]))["results"]))' "$1"; }
kb() { awk -v b="$1" 'BEGIN { if (b >= 1e6) printf "%.1f MB", b / 1e6; else printf "%.1f KB", b / 1e3 }'; }

# The two snapshot commands, as words for `timed`: $1 the repository, $2 the store.
g_snap() { cmd=("$gitkit" -C "$1" snapshot --store "$2"); }
r_snap() { cmd=(restic --repo "$2" backup --quiet --host bench --exclude "$1/.git/gitkit" "$1"); }
settle() { sleep 1; git -C "$1" status --porcelain >/dev/null; } # index written, nothing racy

# --- the workspaces -------------------------------------------------------------------------
make_generated() {
  text_files "$1" "$((n_folders * n_files))" "$n_files" 9
  git init -q "$1"
  git -C "$1" add -A
  git -C "$1" commit -q -m data
  git -C "$1" gc -q
}

make_source() {
  python3 - "$1" "$src_files" "$src_dirs" <<'PY'
import os, shutil, sys
dest, limit, roots = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(":")
files = []
for i, root in enumerate(roots):
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in ("__pycache__", ".git"))
        for name in sorted(names):
            path = os.path.join(folder, name)
            if os.path.isfile(path) and not os.path.islink(path):
                files.append((i, os.path.relpath(path, root)))
for i, rel in files[:limit]:
    target = os.path.join(dest, f"src{i}", rel)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    shutil.copy2(os.path.join(roots[i], rel), target)
print(min(limit, len(files)))
PY
  git init -q "$1"
  git -C "$1" add -A -f
  git -C "$1" commit -q -m source
}

# --- the measures, on one workspace ---------------------------------------------------------
# $1: a or b, $2: the repository. Stores: $work/g-$1 (gitkit), $work/r-$1 (restic).
measure() {
  local w="$1" repo="$2" g="$work/g-$1" rr="$work/r-$1"
  git -C "$repo" config gitkit.workspace bench
  settle "$repo"
  r[$w.files]="$(git -C "$repo" ls-files | wc -l)"
  r[$w.bytes]="$(size "$repo")"
  run restic --repo "$rr" init --repository-version 2

  echo "## ($w) first snapshot" >&2
  g_snap "$repo" "$g"; timed "${cmd[@]}"; r[$w.first.g]="$secs s, $mib MiB"
  r_snap "$repo" "$rr"; timed "${cmd[@]}"; r[$w.first.r]="$secs s, $mib MiB"
  r[$w.size.g]="$(size "$g")"; r[$w.size.r]="$(size "$rr")"

  echo "## ($w) nothing changed" >&2
  settle "$repo"
  local g_cmd r_cmd
  g_snap "$repo" "$g"; g_cmd="${cmd[*]}"
  r_snap "$repo" "$rr"; r_cmd="${cmd[*]}"
  hyperfine -N --style basic --warmup 1 --runs "$runs" --export-json "$out/store-$w-unchanged.json" \
    -n "git status --porcelain" "git -C $repo status --porcelain" \
    -n "gitkit snapshot" "$g_cmd" -n "restic backup" "$r_cmd" >&2
  read -r git_s g_s r_s < <(medians "$out/store-$w-unchanged.json")
  timed git -C "$repo" status --porcelain; r[$w.same.git]="$git_s s, $mib MiB"
  g_snap "$repo" "$g"; timed "${cmd[@]}"; r[$w.same.g]="$g_s s, $mib MiB"
  r_snap "$repo" "$rr"; timed "${cmd[@]}"; r[$w.same.r]="$r_s s, $mib MiB"

  echo "## ($w) one file edited" >&2
  local edited
  edited="$(git -C "$repo" ls-files | sed -n '1p')"
  echo "one more line" >>"$repo/$edited"
  local before_g before_r
  before_g="$(size "$g")"; before_r="$(size "$rr")"
  g_snap "$repo" "$g"; run "${cmd[@]}"
  r_snap "$repo" "$rr"; run "${cmd[@]}"
  r[$w.edit.g]="$(kb $(($(size "$g") - before_g)))"
  r[$w.edit.r]="$(kb $(($(size "$rr") - before_r)))"
}

# $1: a or b, $2: the repository. Restores the latest snapshot of each into an empty folder.
restore() {
  local w="$1" repo="$2" to_g="$work/restore-g-$1" to_r="$work/restore-r-$1"
  echo "## ($w) full restore" >&2
  timed "$gitkit" restore latest --store "$work/g-$w" --workspace bench --to "$to_g"
  r[$w.restore.g]="$secs s, $mib MiB, $(find "$to_g" -type f -not -path '*/.git/*' | wc -l) files"
  timed restic --repo "$work/r-$w" restore latest --target "$to_r"
  r[$w.restore.r]="$secs s, $mib MiB, $(find "$to_r" -type f -not -path '*/.git/*' | wc -l) files"
  rm -rf "$to_g" "$to_r"
}

# $1: the repository of (a). N_SNAPSHOTS rounds of one small edit + one snapshot per tool, then
# the listing next to one `git status`.
listing() {
  local repo="$1" g="$work/g-a" rr="$work/r-a" i t0 g_total=0 r_total=0
  echo "## (a) $n_snapshots edits + snapshots each" >&2
  local edited
  mapfile -t edited < <(git -C "$repo" ls-files | awk -v n="$n_snapshots" 'NR <= n')
  add() { awk -v t="$1" -v a="$2" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", t + b - a }'; }
  for ((i = 0; i < n_snapshots; i++)); do
    ((i % 10)) || echo "   round $i" >&2
    echo "edit $i" >>"$repo/${edited[i % ${#edited[@]}]}"
    g_snap "$repo" "$g"; t0="$EPOCHREALTIME"; run "${cmd[@]}"; g_total="$(add "$g_total" "$t0")"
    r_snap "$repo" "$rr"; t0="$EPOCHREALTIME"; run "${cmd[@]}"; r_total="$(add "$r_total" "$t0")"
  done
  r[a.rounds.g]="$(awk -v t="$g_total" -v n="$n_snapshots" 'BEGIN { printf "%.2f s", t / n }')"
  r[a.rounds.r]="$(awk -v t="$r_total" -v n="$n_snapshots" 'BEGIN { printf "%.2f s", t / n }')"
  r[a.rounds.size.g]="$(size "$g")"; r[a.rounds.size.r]="$(size "$rr")"
  r[a.count.g]="$("$gitkit" snapshots --store "$g" --workspace bench --json | python3 -c 'import json, sys; print(len(json.load(sys.stdin)))')"
  r[a.count.r]="$(restic --repo "$rr" snapshots --json | python3 -c 'import json, sys; print(len(json.load(sys.stdin)))')"
  echo "## (a) listing" >&2
  settle "$repo"
  hyperfine -N --style basic --warmup 1 --runs "$runs" --export-json "$out/store-a-listing.json" \
    -n "git status --porcelain" "git -C $repo status --porcelain" \
    -n "gitkit snapshots" "$gitkit snapshots --store $g --workspace bench" \
    -n "restic snapshots" "restic --repo $rr snapshots" >&2
  read -r git_s g_s r_s < <(medians "$out/store-a-listing.json")
  timed "$gitkit" snapshots --store "$g" --workspace bench; r[a.list.g]="$g_s s, $mib MiB"
  timed restic --repo "$rr" snapshots; r[a.list.r]="$r_s s, $mib MiB"
  r[a.list.git]="$git_s s"
}

echo "## (a) generating $n_folders x $n_files files" >&2
make_generated "$work/a"
measure a "$work/a"
listing "$work/a"
restore a "$work/a"
rm -rf "$work/a" "$work/g-a" "$work/r-a"

echo "## (b) copying $src_files files of $src_dirs" >&2
make_source "$work/b" >/dev/null
measure b "$work/b"
restore b "$work/b"

# --- the table ------------------------------------------------------------------------------
{
  echo "### bench/store.sh, $(date -u '+%Y-%m-%d %H:%M UTC'), $("$gitkit" --version), $(restic version | cut -d' ' -f1,2), $(git --version)"
  echo
  echo "(a) ${r[a.files]} tracked files, $(mb "${r[a.bytes]}") with .git (packed); (b) ${r[b.files]} tracked files, $(mb "${r[b.bytes]}") with .git (loose objects)."
  echo "Times: one run (first, restore) or the median of $runs (nothing changed, listing); memory: peak RSS of one run."
  echo
  echo "| measure | gitkit | restic | git |"
  echo "| --- | --- | --- | --- |"
  for w in a b; do
    echo "| ($w) first snapshot | ${r[$w.first.g]} | ${r[$w.first.r]} | |"
    echo "| ($w) store size after it | $(mb "${r[$w.size.g]}") | $(mb "${r[$w.size.r]}") | |"
    echo "| ($w) nothing changed | ${r[$w.same.g]} | ${r[$w.same.r]} | \`git status --porcelain\` ${r[$w.same.git]} |"
    echo "| ($w) store growth, one file edited | ${r[$w.edit.g]} | ${r[$w.edit.r]} | |"
    if [ "$w" = a ]; then
      echo "| (a) snapshot after a one-line edit (mean of $n_snapshots) | ${r[a.rounds.g]} | ${r[a.rounds.r]} | |"
      echo "| (a) store size after them | $(mb "${r[a.rounds.size.g]}") | $(mb "${r[a.rounds.size.r]}") | |"
      echo "| (a) listing (${r[a.count.g]} / ${r[a.count.r]} snapshots) | ${r[a.list.g]} | ${r[a.list.r]} | \`git status --porcelain\` ${r[a.list.git]} |"
    fi
    echo "| ($w) full restore | ${r[$w.restore.g]} | ${r[$w.restore.r]} | |"
  done
  echo
} | tee -a "$out/store-$(date -u +%Y-%m-%d).md"
