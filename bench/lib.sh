# Shared by bench/store.sh, bench/retention.sh and bench/memory.sh, sourced first; its functions but `need` use
# `work` (a temporary folder) and `log` (where every command's output goes), set by the script.
# shellcheck shell=bash
# `work` and `log` come from the script that sources this; `secs` and `mib` go back to it.
# shellcheck disable=SC2154,SC2034

# The gitkit binary to measure ($GITKIT, default the release build) into `gitkit`, and each
# tool named present; otherwise says what is missing and stops.
need() {
  gitkit="$(realpath "${GITKIT:-target/release/gitkit}")"
  [ -x "$gitkit" ] || { echo "no gitkit binary at $gitkit: cargo build --release, or set GITKIT" >&2; exit 1; }
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null || { echo "$tool is missing (see the header of $0)" >&2; exit 1; }
  done
}

# A home of its own for both tools, so that nothing of the user's is read or written.
bench_env() {
  export HOME="$work/home" XDG_CACHE_HOME="$work/home/.cache" RESTIC_CACHE_DIR="$work/restic-cache"
  export RESTIC_PASSWORD=bench GIT_CONFIG_NOSYSTEM=1 GIT_AUTHOR_NAME=bench
  export GIT_AUTHOR_EMAIL=b@example.com GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=b@example.com
  unset GITKIT_STORE GITKIT_LOG RESTIC_REPOSITORY
  mkdir -p "$HOME"
  git config --global gc.auto 0
  git config --global init.defaultBranch main
}

# Runs a command, its output to the log; on failure says which and shows the log's end.
run() { "$@" >>"$log" 2>&1 || { echo "failed ($?): $*" >&2; tail -n 20 "$log" >&2; exit 1; }; }

# Runs a command once; sets `secs` and `mib` (peak RSS) from GNU time; its stdout in $work/stdout.
timed() {
  /usr/bin/time -o "$work/time" -f '%e %M' "$@" >"$work/stdout" 2>>"$log" \
    || { echo "failed ($?): $*" >&2; tail -n 20 "$log" >&2; exit 1; }
  cat "$work/stdout" >>"$log"
  local kib
  read -r secs kib <"$work/time"
  mib="$(awk -v k="$kib" 'BEGIN { printf "%.0f", k / 1024 }')"
}

# Like timed, and also sets own: the command's own peak in MiB, without the programs it ran
# (git's listing, for gitkit), sampled by bench/peak.py.
timed_own() {
  python3 bench/peak.py "$work/peak" "$@" >"$work/stdout" 2>>"$log" \
    || { echo "failed ($?): $*" >&2; tail -n 20 "$log" >&2; exit 1; }
  cat "$work/stdout" >>"$log"
  local kib own_kib
  read -r secs kib own_kib <"$work/peak"
  mib="$(awk -v k="$kib" 'BEGIN { printf "%.0f", k / 1024 }')"
  own="$(awk -v k="$own_kib" 'BEGIN { printf "%.0f", k / 1024 }')"
}

mb() { awk -v b="$1" 'BEGIN { printf "%.1f MB", b / 1e6 }'; }

# COUNT small text files under ROOT, PER_FOLDER in each folderNNN/fileNNN.txt, from SEED.
text_files() {
  python3 - "$@" <<'PY'
import os, random, sys
root, count, per_folder, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rng = random.Random(seed)
words = ["alpha", "beta", "gamma", "delta", "model", "data", "train", "loss", "epoch", "value",
         "print", "return", "import", "numpy", "frame", "column", "result", "score", "x", "y"]
for i in range(count):
    folder = os.path.join(root, f"folder{i // per_folder:03d}")
    os.makedirs(folder, exist_ok=True)
    lines = [" ".join(rng.choices(words, k=rng.randint(3, 12))) for _ in range(rng.randint(5, 40))]
    with open(os.path.join(folder, f"file{i % per_folder:03d}.txt"), "w") as out:
        out.write("\n".join(lines) + "\n")
PY
}
