#!/usr/bin/env bash
# Builds the Debian package, installs it on this machine and checks it (.ci/run runs it after
# scripts/test.sh; docs/deploy.md):
#
#   1. cargo-deb (pinned) and systemd-analyze are installed when missing;
#   2. `cargo deb` builds target/debian/ferroflow_*.deb (release build);
#   3. `dpkg -i`: binary, conffiles, the system user, /var/lib/ferroflow;
#   4. `systemd-analyze verify` accepts the installed units (offline: systemd need not run),
#      with and without the af_xdp drop-in, and rejects a deliberately broken copy;
#   5. the collector runs as the unit would run it (its ExecStart, its User=, no capabilities,
#      no new privileges, its UMask, the packaged config) since systemd is not PID 1 here: one
#      NetFlow v5 datagram on 127.0.0.1 must appear in /var/lib/ferroflow/flows.json, the
#      metrics endpoint must answer, SIGTERM must end it with status 0;
#   6. `dpkg -i` over itself keeps an edited conffile; `dpkg -r` then `dpkg -P` remove it all
#      (binary and units, then config, data, user).
#
# Needs root. The package is purged at the end whatever happens. Every wait on the collector
# is bounded (start 20 s, documents 20 s, stop: the unit's TimeoutStopSec).
#   scripts/package-test.sh            build + test
#   FERROFLOW_PKG_NO_BUILD=1 scripts/package-test.sh   test the .deb already in <target>/debian
#   FERROFLOW_PKG_PROFILE=dev scripts/package-test.sh  package the debug build (.ci/run: the
#       binary `cargo test` already built, so CI does not spend a release build with LTO on a
#       package it throws away; what is checked is the packaging, the same either way)
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_DEB_VERSION=3.8.0
UNIT_DIR=/usr/lib/systemd/system
CONF=/etc/ferroflow/ferroflow.toml
STATE=/var/lib/ferroflow
start_time=$(date +%s)
work=$(mktemp -d /tmp/ferroflow-pkgtest.XXXXXX)
collector_pid=

say() { echo "== package-test: $*"; }
fail() {
  echo "package-test: FAIL: $*" >&2
  exit 1
}

cleanup() {
  local rc=$?
  if [[ -n $collector_pid ]] && kill -0 "$collector_pid" 2>/dev/null; then
    kill -KILL "$collector_pid" 2>/dev/null || true
  fi
  rm -rf /etc/systemd/system/ferroflow.service.d/package-test-af_xdp.conf
  rmdir /etc/systemd/system/ferroflow.service.d 2>/dev/null || true
  if dpkg-query -W -f='${Status}' ferroflow 2>/dev/null | grep -q 'installed\|config-files'; then
    dpkg -P ferroflow >/dev/null 2>&1 || true
  fi
  if [[ $rc -ne 0 && -f $work/collector.log ]]; then
    echo "--- collector log (last 30 lines)" >&2
    tail -n 30 "$work/collector.log" >&2
  fi
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT

[[ $(id -u) -eq 0 ]] || fail "run as root (dpkg -i, a system user)"

# --- 1. tools -------------------------------------------------------------------------------
if ! cargo deb --version 2>/dev/null | grep -qx "cargo-deb $CARGO_DEB_VERSION"; then
  say "installing cargo-deb $CARGO_DEB_VERSION (crates.io)"
  cargo install --locked cargo-deb --version "$CARGO_DEB_VERSION"
fi
missing=()
command -v systemd-analyze >/dev/null || missing+=(systemd)
command -v setpriv >/dev/null || missing+=(util-linux)
command -v adduser >/dev/null || missing+=(adduser)
command -v deb-systemd-helper >/dev/null || missing+=(init-system-helpers)
command -v jq >/dev/null || missing+=(jq)
command -v ss >/dev/null || missing+=(iproute2)
command -v ps >/dev/null || missing+=(procps)
if ((${#missing[@]})); then
  # Installing the systemd package in a container where systemd is not PID 1 starts nothing:
  # its maintainer scripts only create users and files. It brings systemd-analyze.
  say "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- 2. build -------------------------------------------------------------------------------
if [[ -z ${FERROFLOW_PKG_NO_BUILD:-} ]]; then
  profile=${FERROFLOW_PKG_PROFILE:-release}
  say "cargo deb ($profile build)"
  t=$(date +%s)
  # --fast: quicker, larger compression (the test's package is thrown away; see
  # docs/deploy.md for building the one you ship)
  cargo deb --locked --fast --strip --profile "$profile" -p ferroflow 2>&1 | tail -n 3
  say "built in $(($(date +%s) - t)) s"
fi
meta=$(cargo metadata --no-deps --format-version 1 --locked)
version=$(jq -r '.packages[] | select(.name == "ferroflow") | .version' <<<"$meta")
target_dir=$(jq -r '.target_directory' <<<"$meta") # honours CARGO_TARGET_DIR, as cargo deb does
# shellcheck disable=SC2012 # newest first; the names are ours
deb=$(ls -t "$target_dir"/debian/ferroflow_"${version}"-*_*.deb 2>/dev/null | head -n 1)
[[ -n $deb && -f $deb ]] || fail "no $target_dir/debian/ferroflow_${version}-*.deb"
say "package $deb ($(du -h "$deb" | cut -f1))"
dpkg-deb --info "$deb" | sed -n 's/^ \(Package\|Version\|Depends\|Recommends\):/   \1:/p'

# --- 3. install -----------------------------------------------------------------------------
if dpkg-query -W -f='${Status}' ferroflow 2>/dev/null | grep -q 'installed\|config-files'; then
  say "purging a ferroflow package left installed"
  dpkg -P ferroflow >/dev/null
fi
say "dpkg -i"
dpkg -i "$deb" >"$work/dpkg-i.log" 2>&1 || {
  cat "$work/dpkg-i.log" >&2
  fail "dpkg -i $deb"
}
for f in /usr/bin/ferroflow "$CONF" /etc/ferroflow/index.env /etc/logrotate.d/ferroflow \
  "$UNIT_DIR/ferroflow.service" "$UNIT_DIR/ferroflow-index.service" \
  /usr/lib/sysctl.d/60-ferroflow.conf /usr/share/doc/ferroflow/deploy.md \
  /usr/share/doc/ferroflow/examples/af_xdp.conf; do
  [[ -f $f ]] || fail "not installed: $f"
done
conffiles=$(dpkg-query -W -f='${Conffiles}\n' ferroflow)
for f in "$CONF" /etc/ferroflow/index.env /etc/logrotate.d/ferroflow; do
  grep -q " $f " <<<"$conffiles" || fail "$f is not a conffile"
done
getent passwd ferroflow >/dev/null || fail "postinst did not create the user ferroflow"
[[ $(getent passwd ferroflow | cut -d: -f7) == */nologin ]] || fail "user ferroflow has a login shell"
[[ $(stat -c '%U:%G %a' "$STATE") == "ferroflow:ferroflow 750" ]] ||
  fail "$STATE is $(stat -c '%U:%G %a' "$STATE"), want ferroflow:ferroflow 750"
[[ $(stat -c '%U:%G %a' /etc/ferroflow/index.env) == "root:ferroflow 640" ]] ||
  fail "/etc/ferroflow/index.env is $(stat -c '%U:%G %a' /etc/ferroflow/index.env)"
/usr/bin/ferroflow --version
say "installed: binary, conffiles, user ferroflow, $STATE"

# --- 4. systemd-analyze verify (offline) -------------------------------------------------------
if [[ -d /run/systemd/system ]]; then
  say "systemd is running here"
else
  say "systemd is not PID 1 here: verifying the unit files offline"
fi
verify() { SYSTEMD_LOG_LEVEL=notice SYSTEMD_LOG_COLOR=0 systemd-analyze verify --man=no "$@" 2>&1; }
for u in ferroflow.service ferroflow-index.service; do
  out=$(verify "$UNIT_DIR/$u") || fail "systemd-analyze verify $u: $out"
  # unknown or misspelt directives are only warnings for systemd: count them as failures
  [[ -z $out ]] || fail "systemd-analyze verify $u said: $out"
  say "systemd-analyze verify $u: ok"
done
mkdir -p /etc/systemd/system/ferroflow.service.d
cp /usr/share/doc/ferroflow/examples/af_xdp.conf \
  /etc/systemd/system/ferroflow.service.d/package-test-af_xdp.conf
out=$(verify "$UNIT_DIR/ferroflow.service") || fail "verify with the af_xdp drop-in: $out"
[[ -z $out ]] || fail "verify with the af_xdp drop-in said: $out"
rm -f /etc/systemd/system/ferroflow.service.d/package-test-af_xdp.conf
rmdir /etc/systemd/system/ferroflow.service.d 2>/dev/null || true
say "systemd-analyze verify ferroflow.service + examples/af_xdp.conf drop-in: ok"
# the check must be able to fail: a copy with a bad value and a misspelt key
mkdir -p "$work/broken"
sed -e 's/^ProtectSystem=strict/ProtectSystem=very/' -e 's/^ExecStart=/ExecStrat=/' \
  "$UNIT_DIR/ferroflow.service" >"$work/broken/ferroflow.service"
if out=$(verify "$work/broken/ferroflow.service") && [[ -z $out ]]; then
  fail "systemd-analyze verify accepted a broken unit"
fi
say "systemd-analyze verify rejects a broken copy: ok ($(grep -c . <<<"$out") complaints)"

# --- 5. run the collector as the unit does --------------------------------------------------
unit_value() { sed -n "s/^$1=//p" "$UNIT_DIR/ferroflow.service" | tail -n 1; }
exec_start=$(unit_value ExecStart)
user=$(unit_value User)
group=$(unit_value Group)
umask_value=$(unit_value UMask)
[[ -n $exec_start && -n $user && -n $group && -n $umask_value ]] ||
  fail "ferroflow.service lacks ExecStart/User/Group/UMask"
[[ $exec_start == *"--config $CONF"* ]] || fail "ExecStart does not use $CONF: $exec_start"
[[ -z $(unit_value CapabilityBoundingSet) ]] || fail "the unit grants capabilities"
read -r -a argv <<<"$exec_start"
# The packaged ports, unless something on this machine holds one of them: then the same
# config with the listen / metrics addresses moved, as a drop-in's Environment= would.
env_override=()
busy=$({
  ss -Hlun 2>/dev/null | awk '{print $4}' | grep -E ':(2055|4739|6343)$'
  ss -Hltn 2>/dev/null | awk '{print $4}' | grep -E ':9102$'
} | tr '\n' ' ' || true)
port=2055
metrics=127.0.0.1:9102
if [[ -n $busy ]]; then
  port=$((20000 + RANDOM % 20000))
  metrics=127.0.0.1:$((port + 1))
  env_override=(FERROFLOW_COLLECTOR_LISTEN="127.0.0.1:$port" FERROFLOW_METRICS_LISTEN="$metrics")
  say "packaged ports in use here (${busy% }): listening on 127.0.0.1:$port instead"
fi
: >"$work/collector.log"
say "starting as the unit would: setpriv --reuid $user --regid $group (no caps, no_new_privs, umask $umask_value) $exec_start"
(
  cd /
  umask "$umask_value"
  exec env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "${env_override[@]}" \
    setpriv --reuid "$user" --regid "$group" --init-groups --no-new-privs \
    --inh-caps=-all --ambient-caps=-all --bounding-set=-all \
    "${argv[@]}"
) </dev/null >>"$work/collector.log" 2>&1 &
collector_pid=$!
for _ in $(seq 1 100); do
  grep -q "metrics on http" "$work/collector.log" && break
  kill -0 "$collector_pid" 2>/dev/null || fail "the collector exited at start"
  sleep 0.2
done
grep -q "metrics on http" "$work/collector.log" || fail "the collector did not start within 20 s"
proc_user=$(ps -o user= -p "$collector_pid")
[[ $proc_user == "$user" ]] || fail "collector runs as $proc_user, not $user"
cap_eff=$(sed -n 's/^CapEff:\s*//p' "/proc/$collector_pid/status")
[[ $cap_eff =~ ^0+$ ]] || fail "collector has capabilities: CapEff $cap_eff"
grep -E "listening on|core plan: workers" "$work/collector.log" | sed 's/^/   /' | head -n 4

say "sending one NetFlow v5 datagram to 127.0.0.1:$port"
/usr/bin/ferroflow generate --protocol netflow5 --to "127.0.0.1:$port" --count 1 \
  --flows-per-packet 2 >"$work/generate.log" 2>&1 || {
  cat "$work/generate.log" >&2
  fail "ferroflow generate"
}
out_path=$(sed -n 's/^path *= *"\(.*\)"/\1/p' "$CONF" | head -n 1)
[[ -n $out_path ]] || fail "no output path in $CONF"
for _ in $(seq 1 100); do
  [[ -s $out_path ]] && [[ $(grep -c . "$out_path") -ge 2 ]] && break
  sleep 0.2
done
[[ -s $out_path ]] || fail "no document in $out_path within 20 s"
docs=$(grep -c . "$out_path")
[[ $docs -eq 2 ]] || fail "$out_path has $docs documents, want 2"
[[ $(jq -r '.flow.protocol' "$out_path" | sort -u) == netflow_v5 ]] || fail "the documents in $out_path are not NetFlow v5 JSON"
[[ $(stat -c '%U %a' "$out_path") == "$user 640" ]] ||
  fail "$out_path is $(stat -c '%U %a' "$out_path"), want $user 640"
say "2 NetFlow v5 documents in $out_path (owner $user, mode 640)"

exec 3<>"/dev/tcp/${metrics%:*}/${metrics##*:}" || fail "metrics endpoint $metrics"
printf 'GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3
timeout 10 cat <&3 >"$work/metrics.txt" || true
exec 3>&-
grep -q "^HTTP/1.[01] 200" "$work/metrics.txt" || fail "GET http://$metrics/metrics: $(head -n 1 "$work/metrics.txt")"
say "metrics on http://$metrics/metrics: $(grep -c '^ferroflow_' "$work/metrics.txt") samples"

say "SIGTERM"
kill -TERM "$collector_pid"
t=$(date +%s)
stop_timeout=$(unit_value TimeoutStopSec)
status=
for _ in $(seq 1 $((${stop_timeout:-90} * 5))); do
  if ! kill -0 "$collector_pid" 2>/dev/null; then
    status=0
    wait "$collector_pid" || status=$?
    break
  fi
  sleep 0.2
done
[[ -n $status ]] || fail "the collector did not stop within TimeoutStopSec=${stop_timeout:-90} s"
collector_pid=
[[ $status -eq 0 ]] || fail "the collector exited with status $status after SIGTERM"
grep -q "stopped: packets=1 " "$work/collector.log" || fail "no 'stopped: packets=1' in the log"
grep -o "stopped: .*" "$work/collector.log" | cut -c1-100 | sed 's/^/   /'
say "clean exit (status 0) $(($(date +%s) - t)) s after SIGTERM"

# --- 6. upgrade path, remove, purge -----------------------------------------------------------
echo "# package-test: a local edit" >>"$CONF"
say "dpkg -i over the installed package, with an edited conffile"
dpkg -i --force-confdef --force-confold "$deb" </dev/null >"$work/dpkg-i2.log" 2>&1 || {
  cat "$work/dpkg-i2.log" >&2
  fail "dpkg -i over the installed package"
}
grep -q "^# package-test: a local edit" "$CONF" || fail "reinstall lost the edit to $CONF"
[[ -s $out_path ]] || fail "reinstall lost $out_path"
say "dpkg -r"
dpkg -r ferroflow >"$work/dpkg-r.log" 2>&1 || {
  cat "$work/dpkg-r.log" >&2
  fail "dpkg -r"
}
[[ ! -e /usr/bin/ferroflow ]] || fail "/usr/bin/ferroflow left after dpkg -r"
[[ ! -e $UNIT_DIR/ferroflow.service ]] || fail "ferroflow.service left after dpkg -r"
[[ -f $CONF ]] || fail "dpkg -r removed the conffile $CONF (only purge should)"
say "dpkg -P"
dpkg -P ferroflow >"$work/dpkg-p.log" 2>&1 || {
  cat "$work/dpkg-p.log" >&2
  fail "dpkg -P"
}
for f in /etc/ferroflow /etc/logrotate.d/ferroflow "$STATE" /usr/share/doc/ferroflow; do
  [[ ! -e $f ]] || fail "$f left after purge"
done
! getent passwd ferroflow >/dev/null || fail "user ferroflow left after purge"
! getent group ferroflow >/dev/null || fail "group ferroflow left after purge"
! dpkg-query -W ferroflow >/dev/null 2>&1 || fail "dpkg still knows ferroflow after purge"
say "removed and purged: no files, no user left"

say "passed in $(($(date +%s) - start_time)) s"
