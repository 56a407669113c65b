#!/usr/bin/env bash
# ferroflow's container image and Kubernetes manifests, with podman, without a registry.
#
#   scripts/container.sh build [BINARY]   image localhost/ferroflow:dev FROM scratch: BINARY
#                                         (default target/release/ferroflow, else
#                                         target/debug/ferroflow) and the libraries it links
#   scripts/container.sh test             the image under `podman run`, then
#                                         packaging/kube/ferroflow.yaml under `podman kube play`
#                                         against the cluster of `scripts/services.sh up cluster`:
#                                         generated flows -> collector pod -> Kafka -> indexer
#                                         pod -> OpenSearch, every acknowledged flow indexed once
#
# FERROFLOW_PODMAN_WRAP=1: run podman through .cache/container/oci/ (a containers.conf with
# the cgroupfs manager and a crun wrapper that drops the spec's rlimits and runs crun without the
# cgroup2 mount): needed on the VM this was written on, where crun's setrlimit is refused
# (no CAP_SYS_RESOURCE) and /sys/fs/cgroup is a v1/v2 hybrid crun refuses. See docs/deploy.md.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${FERROFLOW_CACHE_DIR:-$ROOT/.cache}
WORK=$CACHE/container
IMAGE=${FERROFLOW_IMAGE:-localhost/ferroflow:dev}
PODMAN=(podman)

log() { printf '[container] %s\n' "$*" >&2; }
die() { printf '[container] error: %s\n' "$*" >&2; exit 1; }

podman_setup() {
  command -v podman >/dev/null || die "podman not installed (apt-get install podman)"
  PODMAN=(podman --storage-driver "${FERROFLOW_PODMAN_STORAGE:-vfs}")
  [[ ${FERROFLOW_PODMAN_WRAP:-0} == 1 ]] || return 0
  local d=$WORK/oci
  mkdir -p "$d/bin"
  cat >"$d/bin/crun" <<'EOF'
#!/bin/bash
# crun without the OCI spec's rlimits and cgroups, outside the cgroup2 mount (scripts/container.sh)
args=("$@"); bundle=""
for ((i = 0; i < ${#args[@]}; i++)); do
  case ${args[$i]} in
    --bundle | -b) bundle=${args[$((i + 1))]} ;;
    --bundle=*) bundle=${args[$i]#--bundle=} ;;
  esac
done
if [[ -n $bundle && -f $bundle/config.json ]]; then
  python3 - "$bundle/config.json" <<'PY'
import json, sys
p = sys.argv[1]
c = json.load(open(p))
c.get("process", {}).pop("rlimits", None)
l = c.setdefault("linux", {})
l.pop("cgroupsPath", None)
l.pop("resources", None)
l["namespaces"] = [n for n in l.get("namespaces", []) if n.get("type") != "cgroup"]
json.dump(c, open(p, "w"))
PY
fi
exec unshare -m --propagation private sh -c \
  'umount /sys/fs/cgroup/unified 2>/dev/null; exec /usr/bin/crun "$@"' crun "$@"
EOF
  chmod +x "$d/bin/crun"
  cat >"$d/containers.conf" <<EOF
[engine]
cgroup_manager = "cgroupfs"
runtime = "crun"
[engine.runtimes]
crun = ["$d/bin/crun"]
EOF
  export CONTAINERS_CONF=$d/containers.conf
}

build() {
  local bin=${1:-} lib rootfs=$WORK/rootfs
  if [[ -z $bin ]]; then
    bin=$ROOT/target/release/ferroflow
    [[ -x $bin ]] || bin=$ROOT/target/debug/ferroflow
  fi
  [[ -x $bin ]] || die "no binary at $bin (cargo build first)"
  podman_setup
  rm -rf "$rootfs"
  mkdir -p "$rootfs/usr/bin" "$rootfs/etc/ferroflow" "$rootfs/etc/ssl/certs" "$rootfs/tmp" \
    "$rootfs/var/lib/ferroflow"
  chmod 1777 "$rootfs/tmp"
  chown 65534:65534 "$rootfs/var/lib/ferroflow"
  # debug info off: the debug build is 160 MB with it
  objcopy --strip-debug "$bin" "$rootfs/usr/bin/ferroflow"
  # the glibc binary's libraries, at the paths the loader looks for them
  while read -r lib; do
    mkdir -p "$rootfs$(dirname "$lib")"
    cp -L "$lib" "$rootfs$lib"
  done < <(ldd "$bin" | grep -oE '/[^ ]+\.so[^ ]*' | sort -u)
  cp -L /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/" 2>/dev/null || true
  printf 'root:x:0:0:root:/:/nonexistent\nferroflow:x:65534:65534:ferroflow:/var/lib/ferroflow:/nonexistent\n' \
    >"$rootfs/etc/passwd"
  printf 'root:x:0:\nferroflow:x:65534:\n' >"$rootfs/etc/group"
  cp "$ROOT/packaging/container/Containerfile" "$WORK/Containerfile"
  log "building $IMAGE from $bin ($(du -sh "$rootfs" | cut -f1) root file system)"
  "${PODMAN[@]}" build -q -t "$IMAGE" -f "$WORK/Containerfile" "$WORK" >/dev/null
  "${PODMAN[@]}" image ls "$IMAGE"
}

# Sum of one metric over its labels at http://ADDR/metrics.
metric() {
  curl -fsS --max-time 5 "http://$1/metrics" 2>/dev/null \
    | awk -v m="$2" '$1 == m || index($1, m "{") == 1 { s += $NF } END { printf "%d\n", s }'
}

test_kube() {
  podman_setup
  local brokers=127.0.0.1:19092,127.0.0.1:19192,127.0.0.1:19292 es=http://127.0.0.1:19200
  local tag=ffpod$$ port mport sent delivered got i t0 running
  yaml=$WORK/kube-test.yaml
  "${PODMAN[@]}" image exists "$IMAGE" || die "no image $IMAGE: scripts/container.sh build"
  curl -fsS --max-time 5 "$es" >/dev/null || die "no cluster: scripts/services.sh up cluster"

  log "podman run $IMAGE --version"
  "${PODMAN[@]}" run --rm --network host "$IMAGE" --version

  # the test's topics: 9 partitions, RF 3, min ISR 2, made by the services script
  FERROFLOW_CLUSTER_TOPICS="$tag-netflow $tag-ipfix $tag-sflow" "$ROOT/scripts/services.sh" \
    up kafka-c1 >/dev/null 2>&1 || die "creating topics $tag-* failed"
  port=$((20000 + RANDOM % 10000)); mport=$((port + 1))
  # the manifests, pointed at the loopback cluster; podman's pods reach 127.0.0.1 only on the
  # host network, so the indexers get hostNetwork here too (and no metrics listener: nine of
  # them on one address would collide); podman 4.3's kube play ignores a DaemonSet, so the
  # collector's is played as a Deployment of one pod with the same pod template
  sed -e "s|\"kafka-0.kafka:9092\", \"kafka-1.kafka:9092\", \"kafka-2.kafka:9092\"|\"${brokers//,/\", \"}\"|" \
      -e "s|kafka-0.kafka:9092,kafka-1.kafka:9092,kafka-2.kafka:9092|$brokers|" \
      -e "s|http://opensearch:9200|$es|" \
      -e "s|listen = \\[\"0.0.0.0:2055\", \"0.0.0.0:4739\", \"0.0.0.0:6343\"\\]|listen = [\"127.0.0.1:$port\"]|" \
      -e "s|0.0.0.0:9102|127.0.0.1:$mport|; s|\"0.0.0.0:9103\"|\"off\"|" \
      -e "s|netflow_v5 = \"netflow\"|netflow_v5 = \"$tag-netflow\"|; s|netflow_v9 = \"netflow\"|netflow_v9 = \"$tag-netflow\"|" \
      -e "s|ipfix = \"ipfix\"|ipfix = \"$tag-ipfix\"|; s|sflow = \"sflow\"|sflow = \"$tag-sflow\"|" \
      -e "s|\"netflow,ipfix,sflow\"|\"$tag-netflow,$tag-ipfix,$tag-sflow\"|" \
      -e "s|FERROFLOW_INDEX_GROUP: \"ferroflow-index\"|FERROFLOW_INDEX_GROUP: \"$tag\"|" \
      -e "s|FERROFLOW_INDEX_PREFIX: \"ferroflow\"|FERROFLOW_INDEX_PREFIX: \"$tag\"|" \
      "$ROOT/packaging/kube/ferroflow.yaml" >"$yaml"
  python3 - "$yaml" <<'PY'
import sys
p = sys.argv[1]
s = open(p).read()
head, idx = s.split("kind: Deployment", 1)
idx = idx.replace("    spec:\n      terminationGracePeriodSeconds", "    spec:\n      hostNetwork: true\n      terminationGracePeriodSeconds", 1)
head = head.replace("kind: DaemonSet", "kind: Deployment").replace(
    "  selector:\n    matchLabels:\n      app: ferroflow-collect", "  replicas: 1\n  selector:\n    matchLabels:\n      app: ferroflow-collect", 1)
open(p, "w").write(head + "kind: Deployment" + idx)
PY
  if ! grep -q "$tag-ipfix" "$yaml" || ! grep -q "127.0.0.1:$port" "$yaml"; then
    die "manifest rewrite failed"
  fi

  # pods left by an interrupted run
  "${PODMAN[@]}" pod ps -q --filter name=ferroflow- | xargs -r "${PODMAN[@]}" pod rm -f >/dev/null
  trap '"${PODMAN[@]}" kube down "$yaml" >/dev/null 2>&1 || true' EXIT
  log "podman kube play (collector DaemonSet, indexer Deployment, ConfigMaps)"
  "${PODMAN[@]}" kube play "$yaml"
  "${PODMAN[@]}" pod ps
  t0=$(date +%s)
  until curl -fsS --max-time 2 "http://127.0.0.1:$mport/readyz" >/dev/null 2>&1; do
    (($(date +%s) - t0 < 60)) || { "${PODMAN[@]}" logs --tail 30 "$("${PODMAN[@]}" ps -q | head -1)" || true; die "collector pod not ready in 60 s"; }
    sleep 1
  done
  sent=$("$ROOT/target/debug/ferroflow" generate --protocol ipfix --to "127.0.0.1:$port" \
    --flow-rate 2000 --duration 5 --exporters 2 --distinct-flows --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["flows"])')
  t0=$(date +%s)
  delivered=0
  while (($(date +%s) - t0 < 60)); do
    delivered=$(metric "127.0.0.1:$mport" ferroflow_sink_delivered_total)
    ((delivered >= sent)) && break
    sleep 1
  done
  log "generated $sent flows; the collector pod delivered $delivered to Kafka"
  got=0
  for ((i = 0; i < 180; i++)); do
    curl -fsS -XPOST "$es/$tag-*/_refresh" >/dev/null 2>&1 || true
    got=$(curl -fsS "$es/$tag-*/_count" 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["count"])' 2>/dev/null || echo 0)
    ((got >= delivered && delivered > 0)) && break
    sleep 1
  done
  sleep 3
  curl -fsS -XPOST "$es/$tag-*/_refresh" >/dev/null 2>&1 || true
  got=$(curl -fsS "$es/$tag-*/_count" | python3 -c 'import json,sys; print(json.load(sys.stdin)["count"])')
  running=$("${PODMAN[@]}" pod ps --filter name=ferroflow-index --filter status=running -q | wc -l)
  "${PODMAN[@]}" pod ps
  log "the indexer pods ($running running) indexed $got"
  "${PODMAN[@]}" kube down "$yaml" >/dev/null
  trap - EXIT
  curl -fsS -XDELETE "$es/$tag-*" >/dev/null 2>&1 || true
  ((delivered == sent)) || die "collector pod: $delivered of $sent flows delivered"
  ((got == delivered)) || die "indexer pods: $got documents for $delivered flows"
  ((running == 9)) || die "$running indexer pods of 9 running"
  log "ok: $sent flows generated, delivered and indexed once through the pods"
}

case ${1:-} in
  build) shift; build "$@" ;;
  test) test_kube ;;
  *) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
