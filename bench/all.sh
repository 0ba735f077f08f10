#!/usr/bin/env bash
# Every benchmark, one after the other: credential helper, commit hook, snapshots, stores,
# retention, memory as the workspace grows.
set -euo pipefail
cd "$(dirname "$0")"
./credential.sh
./hooks.sh
./snapshot.sh
./store.sh
./retention.sh
./memory.sh
