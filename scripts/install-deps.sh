#!/usr/bin/env bash
# Installs, from Debian's packages, what scripts/services.sh, scripts/services-smoke.sh and the
# tests that use the services need. Idempotent: installs only what is missing, and runs
# `apt-get update` once, only when something is missing. Non-interactive (CI-safe).
#
#   scripts/install-deps.sh            # install what is missing
#   scripts/install-deps.sh --check    # only report what is missing (exit 1 if anything is)
#
# Not handled here: tshark and the peer collectors (other scripts own them), Rust (rustup), and
# Tansu (scripts/services.sh builds it with cargo on `up tansu`).
set -euo pipefail

check_only=0
case "${1:-}" in
  --check) check_only=1 ;;
  "") ;;
  -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "install-deps.sh: unknown argument: $1" >&2; exit 2 ;;
esac

# command -> Debian package that provides it
declare -A wanted=(
  [curl]=curl          # health checks, smoke test, ES API calls from tests
  [jq]=jq              # JSON in scripts and tests
  [kcat]=kcat          # produce/consume from the shell (smoke test, tests)
  [java]=openjdk-17-jdk-headless   # Kafka and OpenSearch run on Java 17
  [javac]=openjdk-17-jdk-headless  # compiles the small launchers at the first `up`
  [mvn]=maven          # fetches the Kafka and OpenSearch jars from Maven Central
  [setsid]=util-linux  # detaches the servers from the caller's session
  [ps]=procps          # status
  [shellcheck]=shellcheck  # lints these scripts
  [openssl]=openssl    # services.sh: the test CA and certificates (TLS listeners, opensearch-tls)
  [unzip]=unzip        # services.sh: unpacks the OpenSearch security plugin zip
  [cmake]=cmake        # builds the bundled librdkafka (rdkafka-sys, cmake-build)
  [pkg-config]=pkg-config
  [make]=make
  [ip]=iproute2        # tests/bypass.rs: network namespaces and the veth pair (af_packet, af_xdp)
  [taskset]=util-linux # the bypass benchmark pins the collector to a core
  [podman]=podman      # scripts/container.sh (CI): the image and the Kubernetes manifests
  [buildah]=buildah
  [catatonit]=catatonit  # podman's pause/init process
)

# header -> Debian package (librdkafka's build: TLS, compression)
declare -A headers=(
  [/usr/include/openssl/ssl.h]=libssl-dev
  [/usr/include/zlib.h]=zlib1g-dev
)

missing=()
for cmd in "${!wanted[@]}"; do
  if ! command -v "$cmd" >/dev/null 2>&1; then
    pkg=${wanted[$cmd]}
    # add each package once
    if [[ " ${missing[*]-} " != *" $pkg "* ]]; then
      missing+=("$pkg")
    fi
  fi
done

for h in "${!headers[@]}"; do
  if [[ ! -e $h ]]; then
    pkg=${headers[$h]}
    if [[ " ${missing[*]-} " != *" $pkg "* ]]; then
      missing+=("$pkg")
    fi
  fi
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all present (${!wanted[*]})"
  exit 0
fi

echo "install-deps: missing packages: ${missing[*]}"
if ((check_only)); then
  exit 1
fi

if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
  else
    echo "install-deps: not root and no sudo; install as root: apt-get install ${missing[*]}" >&2
    exit 1
  fi
else
  SUDO=()
fi

export DEBIAN_FRONTEND=noninteractive
apt_opts=(-y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold
          --no-install-recommends)
"${SUDO[@]}" apt-get update -q
"${SUDO[@]}" apt-get install "${apt_opts[@]}" "${missing[@]}"

for cmd in "${!wanted[@]}"; do
  if ! command -v "$cmd" >/dev/null 2>&1; then
    echo "install-deps: '$cmd' still missing after installing ${wanted[$cmd]}" >&2
    exit 1
  fi
done
echo "install-deps: installed ${missing[*]}"
