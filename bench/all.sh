#!/usr/bin/env bash
# Every benchmark, one after the other: credential helper, commit hook, snapshots.
set -euo pipefail
cd "$(dirname "$0")"
./credential.sh
./hooks.sh
./snapshot.sh
