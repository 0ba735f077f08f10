#!/usr/bin/env bash
# `gitkit credential get` against `aws codecommit credential-helper get`, same input, same
# environment credentials, one run. Prints a hyperfine table and each tool's peak memory.
# Needs: hyperfine, awscli (.ci/setup installs awscli; apt-get install hyperfine).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -q
mkdir -p bench/out

gitkit="$PWD/target/release/gitkit"
# The real awscli entry point, not a version manager's shim in front of it.
aws="$(pyenv which aws 2>/dev/null || command -v aws)"
home="$(mktemp -d)"
trap 'rm -rf "$home"' EXIT
input="$home/request"
printf 'protocol=https\nhost=git-codecommit.us-east-1.amazonaws.com\npath=v1/repos/demo\n\n' >"$input"

export HOME="$home" AWS_EC2_METADATA_DISABLED=true
export AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY
unset AWS_PROFILE AWS_SESSION_TOKEN

hyperfine --warmup 3 --runs "${RUNS:-40}" --export-json bench/out/credential.json \
  -n "gitkit credential get" "$gitkit credential get < $input" \
  -n "aws codecommit credential-helper get" "$aws codecommit credential-helper get < $input"

peak() { /usr/bin/time -f '%M' "$@" <"$input" 2>&1 >/dev/null | tail -n 1; }
echo
echo "peak memory (max RSS, KiB): gitkit $(peak "$gitkit" credential get), awscli $(peak "$aws" codecommit credential-helper get)"
python3 - <<'PY'
import json
r = {x["command"]: x for x in json.load(open("bench/out/credential.json"))["results"]}
g, a = r["gitkit credential get"], r["aws codecommit credential-helper get"]
print(f"median: gitkit {g['median']*1000:.2f} ms, awscli {a['median']*1000:.1f} ms, "
      f"gitkit {a['median']/g['median']:.0f}x faster")
PY
