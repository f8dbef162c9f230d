#!/usr/bin/env bash
# The project's test command: installs what the tests need, then runs every test tier that exists
# (unit, integration against the embedded store and a real etcd started by the tests).
set -euo pipefail
cd "$(dirname "$0")/.."

deploy/install-deps.sh
echo "test: building the workspace and its tests"
cargo build --workspace --all-targets --locked
echo "test: running the tests"
cargo test --workspace --locked --lib --tests
