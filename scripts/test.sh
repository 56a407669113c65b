#!/usr/bin/env bash
# The project's test command (README, .ci/run): format check, clippy -D warnings, all tests.
# On a clean machine it installs what the build and the tests need (Debian packages via
# scripts/install-deps.sh) and starts the real services the tests talk to (Apache Kafka on
# 127.0.0.1:9092 and OpenSearch on 127.0.0.1:9200, scripts/services.sh). The services are left
# running (scripts/services.sh down stops them).
#
#   scripts/test.sh                 everything
#   FERROFLOW_NO_SERVICES=1 scripts/test.sh
#                                   no services: tests that need them skip and say so
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== install-deps"
scripts/install-deps.sh

services_pid=
if [[ -z ${FERROFLOW_NO_SERVICES:-} ]]; then
  # start the services while the build runs; the tests that need them fail (not skip) when
  # they are missing
  echo "== services up (background, log .cache/services-up.log)"
  mkdir -p .cache
  # opensearch-tls (OpenSearch + security plugin, for tests/tls.rs) starts beside the others,
  # in the shadow of the build
  scripts/services.sh up kafka opensearch opensearch-tls >.cache/services-up.log 2>&1 &
  services_pid=$!
  export FERROFLOW_REQUIRE_SERVICES=1
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test (build)"
cargo test --workspace --all-targets --locked --no-run

if [[ -n $services_pid ]]; then
  if ! wait "$services_pid"; then
    echo "services failed to start:" >&2
    tail -n 40 .cache/services-up.log >&2
    exit 1
  fi
  tail -n 3 .cache/services-up.log
fi

echo "== cargo test"
cargo test --workspace --all-targets --locked
