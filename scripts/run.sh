#!/usr/bin/env bash
# run.sh [broker flags...]: install dependencies, build Release into build/, run the broker in the
# foreground with conf/switchboard.conf (data in ./data). Flags given here override the file:
#   scripts/run.sh --memory --log-level debug
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
scripts/deps.sh
BUILD_DIR=build scripts/build.sh Release
mkdir -p data
exec build/broker/switchboard --config conf/switchboard.conf "$@"
