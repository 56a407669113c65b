#!/usr/bin/env bash
# Real services for ferroflow's developers, tests and CI, on 127.0.0.1 with fixed ports.
#
#   scripts/services.sh up     [SERVICE ...]   start (default: kafka opensearch)
#   scripts/services.sh down   [SERVICE ...]   stop  (default: all four)
#   scripts/services.sh status [SERVICE ...]   what runs (default: all four)
#   scripts/services.sh clean  [SERVICE ...]   stop, then delete data and logs
#   scripts/services.sh env                    print the endpoints as shell exports
#   scripts/services.sh kill   MEMBER          SIGKILL one member of the cluster (failover tests)
# SERVICE: kafka, opensearch, tansu, opensearch-tls (OpenSearch with the security plugin), or
# cluster: three Kafka brokers kafka-c1..c3 (KRaft, each also a controller) and a two-node
# OpenSearch cluster opensearch-c1 (cluster manager + data) and opensearch-c2 (data), on their
# own ports (below) and state dirs; topics with 9 partitions, replication factor 3,
# min.insync.replicas 2. Members can be named alone (kafka-c2). `down`/`status`/`clean` without
# names leave the cluster alone; `down cluster` stops only the cluster.
#
# Ports (FERROFLOW_*_PORT overrides them): Kafka 9092 (controller 9093, SSL 9095, SASL_SSL
# 9096), OpenSearch HTTP 9200 (transport 9300), opensearch-tls HTTPS 9201 (transport 9301),
# Tansu 9094. Cluster: Kafka 19092, 19192, 19292 (controllers 19093, 19193, 19293), OpenSearch
# HTTP 19200, 19201 (transport 19300, 19301). Test CA and certificates (made once with openssl): <state>/pki/.
# State:  <repo>/.cache/services/<name>/ (server.log, data, pid), jars in <repo>/.cache/maven/.
# `up` is idempotent: a healthy running service is left alone; it returns when every service
# asked for is healthy (Kafka: topics netflow, ipfix, sflow exist), or fails with the tail of the
# server log. `status NAME...` exits 3 when one of the named services does not run.
# Environment overrides and timings: docs/services.md.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$SCRIPT_DIR/.." && pwd)
CACHE=${FERROFLOW_CACHE_DIR:-$ROOT/.cache}
SVC=${FERROFLOW_SERVICES_DIR:-$CACHE/services}
MVN_CACHE=${FERROFLOW_MAVEN_CACHE_DIR:-$CACHE/maven}
PKI=$SVC/pki
DEFS=$SCRIPT_DIR/services

HOST=127.0.0.1
KAFKA_PORT=${FERROFLOW_KAFKA_PORT:-9092}
KAFKA_CONTROLLER_PORT=${FERROFLOW_KAFKA_CONTROLLER_PORT:-9093}
KAFKA_SSL_PORT=${FERROFLOW_KAFKA_SSL_PORT:-9095}
KAFKA_SASL_SSL_PORT=${FERROFLOW_KAFKA_SASL_SSL_PORT:-9096}
OPENSEARCH_PORT=${FERROFLOW_OPENSEARCH_PORT:-9200}
OPENSEARCH_TRANSPORT_PORT=${FERROFLOW_OPENSEARCH_TRANSPORT_PORT:-9300}
OPENSEARCH_TLS_PORT=${FERROFLOW_OPENSEARCH_TLS_PORT:-9201}
OPENSEARCH_TLS_TRANSPORT_PORT=${FERROFLOW_OPENSEARCH_TLS_TRANSPORT_PORT:-9301}
TANSU_PORT=${FERROFLOW_TANSU_PORT:-9094}
# SASL_SSL listener's SCRAM-SHA-512 user, and the secured OpenSearch's basic-auth user
KAFKA_SASL_USER=${FERROFLOW_KAFKA_SASL_USER:-ferroflow}
KAFKA_SASL_PASSWORD=${FERROFLOW_KAFKA_SASL_PASSWORD:-ferroflow-secret}
OPENSEARCH_TLS_USER=${FERROFLOW_OPENSEARCH_TLS_USER:-ferroflow}
OPENSEARCH_TLS_PASSWORD=${FERROFLOW_OPENSEARCH_TLS_PASSWORD:-ferroflow-secret}

KAFKA_PARTITIONS=${FERROFLOW_KAFKA_PARTITIONS:-4}
KAFKA_RETENTION_MS=${FERROFLOW_KAFKA_RETENTION_MS:-86400000}
read -r -a KAFKA_TOPICS <<<"${FERROFLOW_KAFKA_TOPICS:-netflow ipfix sflow}"
KAFKA_HEAP=${FERROFLOW_KAFKA_HEAP:-768m}
OPENSEARCH_HEAP=${FERROFLOW_OPENSEARCH_HEAP:-1g}
OPENSEARCH_TLS_HEAP=${FERROFLOW_OPENSEARCH_TLS_HEAP:-512m}
START_TIMEOUT=${FERROFLOW_SERVICES_START_TIMEOUT:-180}
STOP_TIMEOUT=${FERROFLOW_SERVICES_STOP_TIMEOUT:-30}
LOCK_TIMEOUT=${FERROFLOW_SERVICES_LOCK_TIMEOUT:-600}
TANSU_VERSION=${FERROFLOW_TANSU_VERSION:-0.6.0}
TANSU_STORAGE=${FERROFLOW_TANSU_STORAGE:-memory://tansu/}
TANSU_BUILD_TIMEOUT=${FERROFLOW_TANSU_BUILD_TIMEOUT:-3600}
# memory:// (and s3://) storage needs the crate feature dynostore; sqlite:// needs libsql
TANSU_FEATURES=${FERROFLOW_TANSU_FEATURES:-dynostore}
read -r -a MVN_EXTRA <<<"${FERROFLOW_MVN_OPTS:-}"

# the cluster (`up cluster`): broker i (1..3) listens on CLUSTER_KAFKA_PORT + 100*(i-1), its
# controller one port higher; OpenSearch node i on CLUSTER_OPENSEARCH_PORT + i-1 (transport
# CLUSTER_OPENSEARCH_TRANSPORT_PORT + i-1)
CLUSTER_KAFKA_PORT=${FERROFLOW_CLUSTER_KAFKA_PORT:-19092}
CLUSTER_OPENSEARCH_PORT=${FERROFLOW_CLUSTER_OPENSEARCH_PORT:-19200}
CLUSTER_OPENSEARCH_TRANSPORT_PORT=${FERROFLOW_CLUSTER_OPENSEARCH_TRANSPORT_PORT:-19300}
CLUSTER_PARTITIONS=${FERROFLOW_CLUSTER_PARTITIONS:-9}
CLUSTER_RF=${FERROFLOW_CLUSTER_REPLICATION_FACTOR:-3}
CLUSTER_MIN_ISR=${FERROFLOW_CLUSTER_MIN_INSYNC:-2}
read -r -a CLUSTER_TOPICS <<<"${FERROFLOW_CLUSTER_TOPICS:-netflow ipfix sflow}"
CLUSTER_KAFKA_HEAP=${FERROFLOW_CLUSTER_KAFKA_HEAP:-384m}
CLUSTER_OPENSEARCH_HEAP=${FERROFLOW_CLUSTER_OPENSEARCH_HEAP:-512m}
# seconds the topic set-up of an already running cluster waits for enough live brokers
CLUSTER_TOPICS_TIMEOUT=${FERROFLOW_CLUSTER_TOPICS_TIMEOUT:-30}
CLUSTER_KAFKA=(kafka-c1 kafka-c2 kafka-c3)
CLUSTER_OPENSEARCH=(opensearch-c1 opensearch-c2)
CLUSTER_MEMBERS=("${CLUSTER_KAFKA[@]}" "${CLUSTER_OPENSEARCH[@]}")

if [[ -n ${FERROFLOW_JAVA_HOME:-} ]]; then
  JAVA_BIN=$FERROFLOW_JAVA_HOME/bin
elif [[ -n ${JAVA_HOME:-} && -x ${JAVA_HOME}/bin/java ]]; then
  JAVA_BIN=$JAVA_HOME/bin
else
  JAVA_BIN=$(dirname "$(readlink -f "$(command -v java || echo /usr/bin/java)")")
fi
JAVA=$JAVA_BIN/java
JAVAC=$JAVA_BIN/javac

ALL_SERVICES=(kafka opensearch tansu opensearch-tls)
DEFAULT_UP=(kafka opensearch)
declare -A DEADLINE=() STARTED=()

# ---------------------------------------------------------------------------------------- helpers

log() { printf '[services] %s\n' "$*" >&2; }
die() { printf '[services] error: %s\n' "$*" >&2; exit 1; }
now() { date +%s; }

need() {
  local cmd
  for cmd in "$@"; do
    command -v "$cmd" >/dev/null 2>&1 || die "'$cmd' not found; run scripts/install-deps.sh"
  done
}

check_java() {
  [[ -x $JAVA && -x $JAVAC ]] || die "no JDK at $JAVA_BIN (set JAVA_HOME or FERROFLOW_JAVA_HOME; run scripts/install-deps.sh)"
  local v
  v=$("$JAVA" -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1)
  [[ -n $v && $v -ge 17 ]] || die "Java 17 or newer needed, $JAVA is ${v:-unknown}"
}

# Marker on each server's command line, so a PID file is trusted only for our own process.
marker() {
  case $1 in
    tansu) echo "tcp://$HOST:$TANSU_PORT" ;;   # its listener URL
    *) echo "-Dferroflow.service=$1" ;;
  esac
}

# Prints the PID of service $1 if it runs (PID file + live process with our marker).
service_pid() {
  local name=$1 pidfile=$SVC/$1/pid pid
  [[ -f $pidfile ]] || return 1
  pid=$(<"$pidfile")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  [[ -r /proc/$pid/cmdline ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$(marker "$name")" || return 1
  echo "$pid"
}

port_open() {
  timeout 2 bash -c "exec 3<>/dev/tcp/$HOST/$1" 2>/dev/null
}

# start_detached NAME LOG CMD... : runs CMD in its own session, detached from the caller, with
# stdout and stderr appended to LOG; the process writes its own PID file before it execs CMD.
start_detached() {
  local name=$1 logf=$2 pidfile=$SVC/$1/pid i
  shift 2
  rm -f "$pidfile"
  # shellcheck disable=SC2016  # $$ and $@ belong to the inner shell
  # 9>&-: the server must not inherit the lock of services.sh (see with_lock)
  setsid bash -c 'echo $$ >"$0"; exec "$@"' "$pidfile" "$@" >>"$logf" 2>&1 </dev/null 9>&- &
  for ((i = 0; i < 50; i++)); do
    [[ -s $pidfile ]] && return 0
    sleep 0.1
  done
  die "$name: no PID file after 5 s"
}

# Prints the last lines of a service's log and stops it; exits 1.
fail_start() {
  local name=$1 msg=$2
  printf '[services] error: %s: %s\n' "$name" "$msg" >&2
  printf '[services] ---- last 40 lines of %s ----\n' "$SVC/$name/server.log" >&2
  tail -n 40 "$SVC/$name/server.log" >&2 || true
  printf '[services] ----\n' >&2
  stop_service "$name" >/dev/null 2>&1 || true
  exit 1
}

# stop_service NAME [PID]: SIGTERM, wait up to STOP_TIMEOUT s, then SIGKILL. With PID: that
# process of NAME was sent SIGTERM already (stop_services); only the wait is left.
stop_service() {
  local name=$1 pid=${2:-} i steps
  if [[ -z $pid ]] && ! pid=$(service_pid "$name"); then
    if [[ -f $SVC/$name/pid ]]; then
      rm -f "$SVC/$name/pid"
      log "$name: not running (removed stale PID file)"
    else
      log "$name: not running"
    fi
    return 0
  fi
  log "$name: stopping (pid $pid, SIGTERM)"
  [[ -n ${2:-} ]] || kill -TERM "$pid" 2>/dev/null || true
  steps=$((STOP_TIMEOUT * 5))
  for ((i = 0; i < steps; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "$name: still running after ${STOP_TIMEOUT}s, SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && die "$name: pid $pid survives SIGKILL"
  fi
  rm -f "$SVC/$name/pid"
  log "$name: stopped"
}

# stop_services NAME...: SIGTERM to all first, then waits for each as stop_service does. The
# cluster's brokers must go down together: stopped one by one, the last one has lost its KRaft
# quorum and waits out its controlled shutdown until the SIGKILL.
stop_services() {
  local name pid
  local -A sent=()
  for name in "$@"; do
    if pid=$(service_pid "$name"); then
      kill -TERM "$pid" 2>/dev/null || true
      sent[$name]=$pid
    fi
  done
  for name in "$@"; do stop_service "$name" "${sent[$name]:-}"; done
}

# wait_port NAME PORT DEADLINE: waits until PORT accepts connections while the service lives.
wait_port() {
  local name=$1 port=$2 deadline=$3
  while :; do
    service_pid "$name" >/dev/null || fail_start "$name" "process exited during start-up"
    port_open "$port" && return 0
    (($(now) < deadline)) || fail_start "$name" "port $port not open after ${START_TIMEOUT}s"
    sleep 0.5
  done
}

# Refuses to start when another process (not ours) holds one of the ports.
check_ports_free() {
  local name=$1 port
  shift
  for port in "$@"; do
    if port_open "$port"; then
      die "$name: port $HOST:$port is in use by a process that services.sh did not start; stop it first"
    fi
  done
}

# fetch_jars NAME: mvn dependency:copy-dependencies of scripts/services/NAME/pom.xml into
# .cache/maven/NAME/libs; skipped while the jars there came from the same pom.
fetch_jars() {
  local name=$1 pom=$DEFS/$1/pom.xml dir=$MVN_CACHE/$1 stamp sum
  stamp=$dir/libs/.pom.sha256
  sum=$(sha256sum "$pom" | cut -d' ' -f1)
  if [[ -f $stamp && $(<"$stamp") == "$sum" ]]; then
    return 0
  fi
  need mvn
  log "$name: fetching jars from Maven Central (mvn dependency:copy-dependencies)"
  mkdir -p "$dir"
  rm -rf "$dir/libs.tmp"
  if ! mvn -B -q -f "$pom" "${MVN_EXTRA[@]}" dependency:copy-dependencies \
      -DoutputDirectory="$dir/libs.tmp" >"$dir/mvn.log" 2>&1; then
    tail -n 40 "$dir/mvn.log" >&2
    die "$name: mvn failed (full log: $dir/mvn.log)"
  fi
  rm -rf "$dir/libs" "$dir/classes"
  mv "$dir/libs.tmp" "$dir/libs"
  echo "$sum" >"$stamp"
  log "$name: $(find "$dir/libs" -name '*.jar' | wc -l) jars, $(du -sh "$dir/libs" | cut -f1)"
}

# compile_helper NAME SOURCE: javac SOURCE into .cache/maven/NAME/classes when it changed.
compile_helper() {
  local name=$1 src=$DEFS/$1/$2 dir=$MVN_CACHE/$1 cls
  cls=$dir/classes/$(basename "$2" .java).class
  if [[ -f $cls && $cls -nt $src ]]; then
    return 0
  fi
  log "$name: compiling $2"
  mkdir -p "$dir/classes"
  "$JAVAC" -proc:none -nowarn -d "$dir/classes" -cp "$dir/libs/*" "$src" \
    || die "$name: javac $2 failed"
}

rotate_log() {
  local f=$SVC/$1/server.log
  if [[ -f $f ]]; then
    mv -f "$f" "$f.prev"
  fi
}

# -------------------------------------------------------------------------------------------- pki

# The test PKI in $PKI, made once with openssl and kept (also across `clean`; delete the folder
# to make new ones):
#   ca.pem / ca.key           the test CA (clients trust ca.pem)
#   server.pem / server.key   server certificate for IP 127.0.0.1 and DNS localhost, signed by
#                             the CA (key: unencrypted PKCS#8 PEM); server-chain.pem = both certs
#   server.p12                the same key and chain as PKCS#12, password $PKI_PASSWORD (Kafka)
#   admin.pem / admin.key     a client certificate (CN=ferroflow-admin) signed by the CA
#   other-ca.pem              an unrelated CA, for the "wrong CA" tests
PKI_PASSWORD=ferroflow

pki_ensure() {
  local f ok=1 tmp
  for f in ca.pem server.pem server.key server-chain.pem server.p12 admin.pem admin.key \
      other-ca.pem; do
    [[ -s $PKI/$f ]] || ok=0
  done
  ((ok)) && return 0
  need openssl
  tmp=$PKI.tmp.$$
  rm -rf "$tmp"
  mkdir -p "$tmp"
  log "pki: generating the test CA and certificates for 127.0.0.1/localhost in $PKI"
  (
    cd "$tmp"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 3650 \
      -subj "/O=ferroflow test/CN=ferroflow test CA" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout other-ca.key -out other-ca.pem -days 3650 \
      -subj "/O=somebody else/CN=unrelated test CA" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
    printf '%s\n' 'subjectAltName=IP:127.0.0.1,DNS:localhost' 'basicConstraints=CA:FALSE' \
      'keyUsage=critical,digitalSignature,keyEncipherment' \
      'extendedKeyUsage=serverAuth,clientAuth' >server.ext
    openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr \
      -subj "/O=ferroflow test/CN=localhost"
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 3650 \
      -extfile server.ext -out server.pem
    printf '%s\n' 'basicConstraints=CA:FALSE' 'keyUsage=critical,digitalSignature' \
      'extendedKeyUsage=clientAuth' >admin.ext
    openssl req -newkey rsa:2048 -nodes -keyout admin.key -out admin.csr \
      -subj "/O=ferroflow test/CN=ferroflow-admin"
    openssl x509 -req -in admin.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 3650 \
      -extfile admin.ext -out admin.pem
    cat server.pem ca.pem >server-chain.pem
    openssl pkcs12 -export -in server.pem -inkey server.key -certfile ca.pem -name server \
      -out server.p12 -passout "pass:$PKI_PASSWORD"
    rm -f ./*.csr ./*.ext ./*.srl other-ca.key
    chmod 600 ./*.key server.p12
  ) >"$tmp.log" 2>&1 || { cat "$tmp.log" >&2; rm -rf "$tmp" "$tmp.log"; die "pki: openssl failed"; }
  rm -f "$tmp.log"
  rm -rf "$PKI"
  mv "$tmp" "$PKI"
}

# ------------------------------------------------------------------------------------------ kafka

kafka_cp() { echo "$MVN_CACHE/kafka/libs/*:$MVN_CACHE/kafka/classes"; }

kafka_admin() {
  "$JAVA" -Xmx128m -XX:TieredStopAtLevel=1 -Xshare:auto \
    -Dlog4j2.configurationFile="${ADMIN_LOG4J:-$SVC/kafka/tools-log4j2.properties}" \
    -cp "$(kafka_cp)" KafkaAdmin "$@"
}

kafka_write_config() {
  local d=$SVC/kafka
  mkdir -p "$d/data"
  cat >"$d/server.properties" <<EOF
# Written by scripts/services.sh at every 'up'; edit the script, not this file.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$HOST:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://$HOST:$KAFKA_PORT,CONTROLLER://$HOST:$KAFKA_CONTROLLER_PORT,SSL://$HOST:$KAFKA_SSL_PORT,SASL_SSL://$HOST:$KAFKA_SASL_SSL_PORT
advertised.listeners=PLAINTEXT://$HOST:$KAFKA_PORT,SSL://$HOST:$KAFKA_SSL_PORT,SASL_SSL://$HOST:$KAFKA_SASL_SSL_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_SSL:SASL_SSL
# SSL and SASL_SSL: server certificate of the test CA ($PKI/ca.pem), no client certificates;
# SASL_SSL authenticates SCRAM-SHA-512 users (created by KafkaAdmin ensure --scram=...)
ssl.keystore.type=PKCS12
ssl.keystore.location=$PKI/server.p12
ssl.keystore.password=$PKI_PASSWORD
ssl.key.password=$PKI_PASSWORD
ssl.client.auth=none
sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
log.dirs=$d/data
# one broker: every internal topic has one replica
num.partitions=$KAFKA_PARTITIONS
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
log.retention.ms=$KAFKA_RETENTION_MS
log.segment.bytes=268435456
# small machine
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
EOF
  kafka_write_log4j "$d"
}

# log4j2.properties (server) and tools-log4j2.properties (admin tools) in dir $1.
kafka_write_log4j() {
  local d=$1
  cat >"$d/log4j2.properties" <<'EOF'
status = warn
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRefs = stdout
rootLogger.appenderRef.stdout.ref = STDOUT
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.statechange.name = state.change.logger
logger.statechange.level = WARN
logger.kafka.name = org.apache.kafka
logger.kafka.level = INFO
EOF
  cat >"$d/tools-log4j2.properties" <<'EOF'
status = warn
appender.stderr.type = Console
appender.stderr.name = STDERR
appender.stderr.target = SYSTEM_ERR
appender.stderr.layout.type = PatternLayout
appender.stderr.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = ERROR
rootLogger.appenderRef.stderr.ref = STDERR
EOF
}

kafka_start() {
  local d=$SVC/kafka pid cluster_id
  mkdir -p "$d"
  if pid=$(service_pid kafka); then
    log "kafka: already running (pid $pid)"
    STARTED[kafka]=0
    return 0
  fi
  check_java
  check_ports_free kafka "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT" "$KAFKA_SSL_PORT" \
    "$KAFKA_SASL_SSL_PORT"
  pki_ensure
  fetch_jars kafka
  compile_helper kafka KafkaAdmin.java
  kafka_write_config
  rotate_log kafka

  if [[ ! -f $d/data/meta.properties ]]; then
    if [[ ! -s $d/cluster.id ]]; then
      "$JAVA" -Dlog4j2.configurationFile="$d/tools-log4j2.properties" -cp "$(kafka_cp)" \
        kafka.tools.StorageTool random-uuid >"$d/cluster.id"
    fi
    cluster_id=$(<"$d/cluster.id")
    log "kafka: formatting storage (cluster $cluster_id)"
    "$JAVA" -Dlog4j2.configurationFile="$d/tools-log4j2.properties" -cp "$(kafka_cp)" \
      kafka.tools.StorageTool format --cluster-id "$cluster_id" --config "$d/server.properties" \
      --ignore-formatted >>"$d/server.log" 2>&1 || fail_start kafka "kafka-storage format failed"
  fi

  log "kafka: starting on $HOST:$KAFKA_PORT (controller $KAFKA_CONTROLLER_PORT, SSL $KAFKA_SSL_PORT," \
    "SASL_SSL $KAFKA_SASL_SSL_PORT, heap $KAFKA_HEAP)"
  DEADLINE[kafka]=$(($(now) + START_TIMEOUT))
  STARTED[kafka]=1
  # shellcheck disable=SC2086  # FERROFLOW_KAFKA_JAVA_OPTS is a list of words
  start_detached kafka "$d/server.log" "$JAVA" "$(marker kafka)" \
    -Xms256m -Xmx"$KAFKA_HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$d/log4j2.properties" -Dkafka.logs.dir="$d" \
    ${FERROFLOW_KAFKA_JAVA_OPTS:-} \
    -cp "$(kafka_cp)" kafka.Kafka "$d/server.properties"
}

# Waits for the broker, then creates/aligns the topics (also when it was already running).
kafka_wait() {
  local left=30
  if ((STARTED[kafka])); then
    wait_port kafka "$KAFKA_PORT" "${DEADLINE[kafka]}"
    left=$((DEADLINE[kafka] - $(now)))
    ((left > 5)) || left=5
  fi
  kafka_admin ensure "$HOST:$KAFKA_PORT" "$left" "$KAFKA_PARTITIONS" "$KAFKA_RETENTION_MS" \
    "${KAFKA_TOPICS[@]}" "--scram=$KAFKA_SASL_USER:$KAFKA_SASL_PASSWORD" \
    || fail_start kafka "broker not ready, topics or SCRAM user could not be created"
  if ! port_open "$KAFKA_SSL_PORT" || ! port_open "$KAFKA_SASL_SSL_PORT"; then
    log "kafka: warning: no SSL ($KAFKA_SSL_PORT) / SASL_SSL ($KAFKA_SASL_SSL_PORT) listener:" \
      "the broker was started by an older services.sh; 'down kafka' then 'up kafka' adds them"
  fi
  log "kafka: up (pid $(service_pid kafka))"
}

# ------------------------------------------------------------------------------------- opensearch

opensearch_write_config() {
  local d=$SVC/opensearch
  mkdir -p "$d/home/plugins" "$d/home/modules" "$d/config" "$d/data" "$d/logs"
  cat >"$d/config/opensearch.yml" <<EOF
# Written by scripts/services.sh at every 'up'; edit the script, not this file.
cluster.name: ferroflow
node.name: ferroflow-1
path.data: $d/data
path.logs: $d/logs
network.host: $HOST
http.port: $OPENSEARCH_PORT
transport.port: $OPENSEARCH_TRANSPORT_PORT
discovery.type: single-node
# a full developer disk must not turn the test indices read-only
cluster.routing.allocation.disk.threshold_enabled: false
action.auto_create_index: true
# the node runs with no security plugin at all: plain HTTP, no users
EOF
  opensearch_write_log4j "$d/config"
}

# log4j2.properties of a node in config dir $1.
opensearch_write_log4j() {
  local d=$1
  cat >"$d/log4j2.properties" <<'EOF'
status = error
appender.console.type = Console
appender.console.name = console
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d{ISO8601}][%-5p][%-25c{1.}] [%node_name]%marker %m%n
rootLogger.level = info
rootLogger.appenderRef.console.ref = console
logger.deprecation.name = org.opensearch.deprecation
logger.deprecation.level = error
EOF
}

opensearch_healthy() {
  local body
  body=$(curl -fsS --max-time 3 \
    "http://$HOST:$OPENSEARCH_PORT/_cluster/health?wait_for_status=yellow&timeout=2s" 2>/dev/null) \
    || return 1
  [[ $body == *'"status":"green"'* || $body == *'"status":"yellow"'* ]]
}

opensearch_start() {
  local d=$SVC/opensearch pid libs=$MVN_CACHE/opensearch
  mkdir -p "$d"
  need curl
  if pid=$(service_pid opensearch); then
    log "opensearch: already running (pid $pid)"
    STARTED[opensearch]=0
    return 0
  fi
  check_java
  check_ports_free opensearch "$OPENSEARCH_PORT" "$OPENSEARCH_TRANSPORT_PORT"
  fetch_jars opensearch
  compile_helper opensearch Launcher.java
  opensearch_write_config
  rotate_log opensearch

  log "opensearch: starting on $HOST:$OPENSEARCH_PORT (heap $OPENSEARCH_HEAP)"
  DEADLINE[opensearch]=$(($(now) + START_TIMEOUT))
  STARTED[opensearch]=1
  # JVM flags as in the distribution's jvm.options, minus what needs its Bootstrap.
  # shellcheck disable=SC2086  # FERROFLOW_OPENSEARCH_JAVA_OPTS is a list of words
  start_detached opensearch "$d/server.log" "$JAVA" "$(marker opensearch)" \
    -Xms"$OPENSEARCH_HEAP" -Xmx"$OPENSEARCH_HEAP" -XX:+UseG1GC \
    -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true -Dfile.encoding=UTF-8 \
    -Dio.netty.noUnsafe=true -Dio.netty.noKeySetOptimization=true \
    -Dio.netty.recycler.maxCapacityPerThread=0 \
    -Dlog4j.shutdownHookEnabled=false -Dlog4j2.disable.jmx=true \
    -Djava.locale.providers=SPI,COMPAT -Djava.io.tmpdir="$d/home" \
    ${FERROFLOW_OPENSEARCH_JAVA_OPTS:-} \
    -cp "$libs/libs/*:$libs/classes" Launcher "$d/home" "$d/config"
}

opensearch_wait() {
  local deadline
  if ((STARTED[opensearch] == 0)); then
    opensearch_healthy || fail_start opensearch "running but not healthy"
    log "opensearch: up (pid $(service_pid opensearch))"
    return 0
  fi
  deadline=${DEADLINE[opensearch]}
  wait_port opensearch "$OPENSEARCH_PORT" "$deadline"
  until opensearch_healthy; do
    service_pid opensearch >/dev/null || fail_start opensearch "process exited during start-up"
    (($(now) < deadline)) || fail_start opensearch "cluster not yellow/green after ${START_TIMEOUT}s"
    sleep 0.5
  done
  log "opensearch: up (pid $(service_pid opensearch))"
}

# --------------------------------------------------------------------------------- opensearch-tls
# A second OpenSearch node (same jars and Launcher) with the real OpenSearch security plugin:
# HTTPS on $OPENSEARCH_TLS_PORT with the test CA's server certificate, TLS on the transport port,
# basic auth against the plugin's internal users ($OPENSEARCH_TLS_USER, role all_access).

OSTLS_PLUGIN=$MVN_CACHE/opensearch-security/plugin

# Unpacks the plugin zip once: drops the jars the server class path already has (the node runs
# from a flat class path, so they would be "jar hell"), patches opensearch.version to 2.19.6.
ostls_plugin() {
  local zip stamp=$OSTLS_PLUGIN/.from j base
  fetch_jars opensearch-security
  zip=$(find "$MVN_CACHE/opensearch-security/libs" -name 'opensearch-security-*.zip' | head -1)
  [[ -n $zip ]] || die "opensearch-tls: no opensearch-security zip after mvn"
  if [[ -f $stamp && $(<"$stamp") == "$zip" ]]; then
    return 0
  fi
  need unzip
  rm -rf "$OSTLS_PLUGIN"
  mkdir -p "$OSTLS_PLUGIN"
  unzip -q "$zip" -d "$OSTLS_PLUGIN" || die "opensearch-tls: unzip $zip failed"
  for j in "$OSTLS_PLUGIN"/*.jar; do
    base=$(basename "$j" | sed -E 's/-[0-9][0-9A-Za-z.\-]*\.jar$//')
    if compgen -G "$MVN_CACHE/opensearch/libs/$base-[0-9]*.jar" >/dev/null; then
      rm -f "$j"
    fi
  done
  sed -i -E 's/^opensearch\.version=.*/opensearch.version=2.19.6/' \
    "$OSTLS_PLUGIN/plugin-descriptor.properties"
  echo "$zip" >"$stamp"
}

# bcrypt hash of $OPENSEARCH_TLS_PASSWORD by the plugin's own Hasher (cached per password).
ostls_hash() {
  local d=$SVC/opensearch-tls f sum
  sum=$(printf '%s' "$OPENSEARCH_TLS_PASSWORD" | sha256sum | cut -d' ' -f1)
  f=$d/hash.$sum
  if [[ ! -s $f ]]; then
    rm -f "$d"/hash.*
    "$JAVA" -Xmx128m -cp "$OSTLS_PLUGIN/*:$MVN_CACHE/opensearch/libs/*" \
      org.opensearch.security.tools.Hasher -p "$OPENSEARCH_TLS_PASSWORD" 2>"$d/hasher.log" \
      | tail -1 >"$f.tmp"
    [[ -s $f.tmp ]] || { cat "$d/hasher.log" >&2; die "opensearch-tls: Hasher failed"; }
    mv "$f.tmp" "$f"
  fi
  cat "$f"
}

ostls_write_config() {
  local d=$SVC/opensearch-tls c s hash
  c=$d/config
  s=$c/opensearch-security
  mkdir -p "$d/home/plugins" "$d/home/modules" "$s" "$d/data" "$d/logs"
  ln -sfn "$OSTLS_PLUGIN" "$d/home/plugins/opensearch-security"
  cp -f "$PKI/ca.pem" "$PKI/server.pem" "$PKI/server.key" "$c/"
  hash=$(ostls_hash)
  cat >"$c/opensearch.yml" <<YML
# Written by scripts/services.sh at every 'up'; edit the script, not this file.
cluster.name: ferroflow-tls
node.name: ferroflow-tls-1
path.data: $d/data
path.logs: $d/logs
network.host: $HOST
http.port: $OPENSEARCH_TLS_PORT
transport.port: $OPENSEARCH_TLS_TRANSPORT_PORT
discovery.type: single-node
cluster.routing.allocation.disk.threshold_enabled: false
action.auto_create_index: true
plugins.security.ssl.transport.pemcert_filepath: server.pem
plugins.security.ssl.transport.pemkey_filepath: server.key
plugins.security.ssl.transport.pemtrustedcas_filepath: ca.pem
plugins.security.ssl.transport.enforce_hostname_verification: false
plugins.security.ssl.http.enabled: true
plugins.security.ssl.http.pemcert_filepath: server.pem
plugins.security.ssl.http.pemkey_filepath: server.key
plugins.security.ssl.http.pemtrustedcas_filepath: ca.pem
plugins.security.allow_default_init_securityindex: true
plugins.security.authcz.admin_dn: ["CN=ferroflow-admin,O=ferroflow test"]
plugins.security.nodes_dn: ["CN=localhost,O=ferroflow test"]
plugins.security.audit.type: noop
plugins.security.restapi.roles_enabled: ["all_access"]
YML
  cat >"$c/log4j2.properties" <<'YML'
status = error
appender.console.type = Console
appender.console.name = console
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d{ISO8601}][%-5p][%-25c{1.}] [%node_name]%marker %m%n
rootLogger.level = info
rootLogger.appenderRef.console.ref = console
logger.deprecation.name = org.opensearch.deprecation
logger.deprecation.level = error
YML
  cp -f "$OSTLS_PLUGIN"/config/{action_groups,allowlist,audit,nodes_dn,roles,tenants,whitelist}.yml "$s/"
  cat >"$s/config.yml" <<'YML'
_meta:
  type: "config"
  config_version: 2
config:
  dynamic:
    http:
      anonymous_auth_enabled: false
    authc:
      basic_internal_auth_domain:
        description: "HTTP basic auth against the internal users"
        http_enabled: true
        transport_enabled: true
        order: 0
        http_authenticator:
          type: basic
          challenge: true
        authentication_backend:
          type: intern
YML
  cat >"$s/internal_users.yml" <<YML
_meta:
  type: "internalusers"
  config_version: 2
$OPENSEARCH_TLS_USER:
  hash: "$hash"
  reserved: false
  backend_roles: ["admin"]
  description: "ferroflow tests (scripts/services.sh)"
YML
  cat >"$s/roles_mapping.yml" <<YML
_meta:
  type: "rolesmapping"
  config_version: 2
all_access:
  reserved: false
  backend_roles: ["admin"]
  users: ["$OPENSEARCH_TLS_USER"]
YML
}

ostls_healthy() {
  local body
  body=$(curl -fsS --max-time 3 --cacert "$PKI/ca.pem" \
    -u "$OPENSEARCH_TLS_USER:$OPENSEARCH_TLS_PASSWORD" \
    "https://$HOST:$OPENSEARCH_TLS_PORT/_cluster/health?wait_for_status=yellow&timeout=2s" \
    2>/dev/null) || return 1
  [[ $body == *'"status":"green"'* || $body == *'"status":"yellow"'* ]]
}

opensearch_tls_start() {
  local d=$SVC/opensearch-tls pid libs=$MVN_CACHE/opensearch
  mkdir -p "$d"
  need curl
  if pid=$(service_pid opensearch-tls); then
    log "opensearch-tls: already running (pid $pid)"
    STARTED[opensearch-tls]=0
    return 0
  fi
  check_java
  check_ports_free opensearch-tls "$OPENSEARCH_TLS_PORT" "$OPENSEARCH_TLS_TRANSPORT_PORT"
  pki_ensure
  fetch_jars opensearch
  compile_helper opensearch Launcher.java
  ostls_plugin
  ostls_write_config
  rotate_log opensearch-tls

  log "opensearch-tls: starting on https://$HOST:$OPENSEARCH_TLS_PORT (security plugin," \
    "heap $OPENSEARCH_TLS_HEAP)"
  DEADLINE[opensearch-tls]=$(($(now) + START_TIMEOUT))
  STARTED[opensearch-tls]=1
  # shellcheck disable=SC2086  # FERROFLOW_OPENSEARCH_JAVA_OPTS is a list of words
  start_detached opensearch-tls "$d/server.log" "$JAVA" "$(marker opensearch-tls)" \
    -Xms"$OPENSEARCH_TLS_HEAP" -Xmx"$OPENSEARCH_TLS_HEAP" -XX:+UseG1GC \
    -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true -Dfile.encoding=UTF-8 \
    -Dio.netty.noUnsafe=true -Dio.netty.noKeySetOptimization=true \
    -Dio.netty.recycler.maxCapacityPerThread=0 \
    -Dlog4j.shutdownHookEnabled=false -Dlog4j2.disable.jmx=true \
    -Djava.locale.providers=SPI,COMPAT -Djava.io.tmpdir="$d/home" \
    ${FERROFLOW_OPENSEARCH_JAVA_OPTS:-} \
    -cp "$libs/libs/*:$libs/classes:$MVN_CACHE/opensearch-security/libs/*" \
    Launcher "$d/home" "$d/config"
}

opensearch_tls_wait() {
  local deadline
  if ((STARTED[opensearch-tls] == 0)); then
    ostls_healthy || fail_start opensearch-tls "running but not healthy"
    log "opensearch-tls: up (pid $(service_pid opensearch-tls))"
    return 0
  fi
  deadline=${DEADLINE[opensearch-tls]}
  wait_port opensearch-tls "$OPENSEARCH_TLS_PORT" "$deadline"
  until ostls_healthy; do
    service_pid opensearch-tls >/dev/null \
      || fail_start opensearch-tls "process exited during start-up"
    (($(now) < deadline)) || fail_start opensearch-tls \
      "not yellow/green for $OPENSEARCH_TLS_USER over HTTPS after ${START_TIMEOUT}s"
    sleep 0.5
  done
  log "opensearch-tls: up (pid $(service_pid opensearch-tls))"
}

# ------------------------------------------------------------------------------------------ tansu

tansu_bin() {
  if [[ -n ${FERROFLOW_TANSU_BIN:-} ]]; then
    echo "$FERROFLOW_TANSU_BIN"
  elif [[ -x $CACHE/tools/tansu/bin/tansu ]]; then
    echo "$CACHE/tools/tansu/bin/tansu"
  elif command -v tansu >/dev/null 2>&1; then
    command -v tansu
  else
    return 1
  fi
}

tansu_build() {
  local d=$SVC/tansu t0
  need cargo
  mkdir -p "$d" "$CACHE/tools/tansu"
  log "tansu: not installed; building tansu $TANSU_VERSION ($TANSU_FEATURES) with cargo install (takes long:" \
      "see docs/services.md; log: $d/build.log; bounded by ${TANSU_BUILD_TIMEOUT}s)"
  t0=$(now)
  if ! timeout "$TANSU_BUILD_TIMEOUT" nice -n 10 cargo install tansu --locked \
      --version "$TANSU_VERSION" --features "$TANSU_FEATURES" --root "$CACHE/tools/tansu" \
      --target-dir "$CACHE/cargo-target/tansu" >"$d/build.log" 2>&1; then
    tail -n 30 "$d/build.log" >&2
    die "tansu: cargo install failed or took more than ${TANSU_BUILD_TIMEOUT}s (log: $d/build.log)"
  fi
  log "tansu: built in $(($(now) - t0))s"
  # the binary is installed; the 1.4 GB build folder (kept until now so that a build cut off by
  # the time-out resumes where it stopped) is no longer needed
  rm -rf "$CACHE/cargo-target/tansu"
}

tansu_start() {
  local d=$SVC/tansu pid bin
  mkdir -p "$d"
  if pid=$(service_pid tansu); then
    log "tansu: already running (pid $pid)"
    STARTED[tansu]=0
    return 0
  fi
  check_ports_free tansu "$TANSU_PORT"
  check_java
  fetch_jars kafka
  compile_helper kafka KafkaAdmin.java
  [[ -f $SVC/kafka/tools-log4j2.properties ]] || kafka_write_config
  # the 3.9 Java client of the smoke test (Tansu 0.6.0 takes no produce from the 4.x producer)
  fetch_jars kafka-client
  compile_helper kafka-client ProduceConsume.java
  bin=$(tansu_bin) || { tansu_build; bin=$(tansu_bin) || die "tansu: no binary after build"; }
  rotate_log tansu

  log "tansu: starting on $HOST:$TANSU_PORT (storage $TANSU_STORAGE)"
  DEADLINE[tansu]=$(($(now) + START_TIMEOUT))
  STARTED[tansu]=1
  start_detached tansu "$d/server.log" env RUST_LOG="${RUST_LOG:-warn}" "$bin" broker \
    --listener-url "tcp://$HOST:$TANSU_PORT" \
    --advertised-listener-url "tcp://$HOST:$TANSU_PORT" \
    --storage-engine "$TANSU_STORAGE" \
    --cluster-id ferroflow
}

tansu_wait() {
  local deadline=$(($(now) + 30))
  if ((STARTED[tansu])); then
    deadline=${DEADLINE[tansu]}
    wait_port tansu "$TANSU_PORT" "$deadline"
  fi
  # Readiness and topics through the Java Admin client: kcat 1.7.1 (librdkafka 2.0.2, Debian)
  # cannot parse Tansu 0.6.0's ApiVersions v3 response (docs/services.md).
  local left=$((deadline - $(now)))
  ((left > 5)) || left=5
  if [[ ${FERROFLOW_TANSU_TOPICS:-1} == 1 ]]; then
    kafka_admin ensure "$HOST:$TANSU_PORT" "$left" "$KAFKA_PARTITIONS" "$KAFKA_RETENTION_MS" \
      "${KAFKA_TOPICS[@]}" || fail_start tansu "not ready or topics could not be created"
  else
    kafka_admin ready "$HOST:$TANSU_PORT" "$left" || fail_start tansu "not ready"
  fi
  log "tansu: up (pid $(service_pid tansu))"
}

# ---------------------------------------------------------------------------------------- cluster
# The seed's layout at its real size: three Kafka brokers in KRaft (each broker + controller, a
# quorum of three voters), topics with 9 partitions, replication factor 3, min.insync.replicas 2;
# a two-node OpenSearch cluster (node 1 cluster manager + data, node 2 data only: killing node 2
# leaves the cluster a manager). Same jars as the single-node services, other ports and dirs.

member_index() { echo "${1##*-c}"; }
ckafka_port() { echo $((CLUSTER_KAFKA_PORT + 100 * ($(member_index "$1") - 1))); }
ckafka_controller_port() { echo $(($(ckafka_port "$1") + 1)); }
cos_port() { echo $((CLUSTER_OPENSEARCH_PORT + $(member_index "$1") - 1)); }
cos_transport_port() { echo $((CLUSTER_OPENSEARCH_TRANSPORT_PORT + $(member_index "$1") - 1)); }

cluster_brokers() {
  local n out=()
  for n in "${CLUSTER_KAFKA[@]}"; do out+=("$HOST:$(ckafka_port "$n")"); done
  (IFS=,; echo "${out[*]}")
}

ckafka_write_config() {
  local name=$1 d=$SVC/$1 i voters=() n
  i=$(member_index "$name")
  for n in "${CLUSTER_KAFKA[@]}"; do
    voters+=("$(member_index "$n")@$HOST:$(ckafka_controller_port "$n")")
  done
  mkdir -p "$d/data"
  cat >"$d/server.properties" <<CFG
# Written by scripts/services.sh at every 'up'; edit the script, not this file.
process.roles=broker,controller
node.id=$i
controller.quorum.voters=$(IFS=,; echo "${voters[*]}")
listeners=PLAINTEXT://$HOST:$(ckafka_port "$name"),CONTROLLER://$HOST:$(ckafka_controller_port "$name")
advertised.listeners=PLAINTEXT://$HOST:$(ckafka_port "$name")
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$d/data
num.partitions=$CLUSTER_PARTITIONS
default.replication.factor=$CLUSTER_RF
min.insync.replicas=$CLUSTER_MIN_ISR
unclean.leader.election.enable=false
offsets.topic.replication.factor=$CLUSTER_RF
offsets.topic.num.partitions=9
transaction.state.log.replication.factor=$CLUSTER_RF
transaction.state.log.min.isr=$CLUSTER_MIN_ISR
transaction.state.log.num.partitions=3
share.coordinator.state.topic.replication.factor=$CLUSTER_RF
share.coordinator.state.topic.min.isr=$CLUSTER_MIN_ISR
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
log.retention.ms=$KAFKA_RETENTION_MS
log.segment.bytes=268435456
# small machine
num.network.threads=2
num.io.threads=2
num.recovery.threads.per.data.dir=1
num.replica.fetchers=1
CFG
  kafka_write_log4j "$d"
}

ckafka_start() {
  local name=$1 d=$SVC/$1 pid cid=$SVC/cluster.id
  mkdir -p "$d"
  if pid=$(service_pid "$name"); then
    log "$name: already running (pid $pid)"
    STARTED[$name]=0
    return 0
  fi
  check_java
  check_ports_free "$name" "$(ckafka_port "$name")" "$(ckafka_controller_port "$name")"
  fetch_jars kafka
  compile_helper kafka KafkaAdmin.java
  ckafka_write_config "$name"
  rotate_log "$name"
  if [[ ! -s $cid ]]; then
    "$JAVA" -Dlog4j2.configurationFile="$d/tools-log4j2.properties" -cp "$(kafka_cp)" \
      kafka.tools.StorageTool random-uuid >"$cid.tmp"
    mv "$cid.tmp" "$cid"
  fi
  if [[ ! -f $d/data/meta.properties ]]; then
    log "$name: formatting storage (cluster $(<"$cid"))"
    "$JAVA" -Dlog4j2.configurationFile="$d/tools-log4j2.properties" -cp "$(kafka_cp)" \
      kafka.tools.StorageTool format --cluster-id "$(<"$cid")" --config "$d/server.properties" \
      --ignore-formatted >>"$d/server.log" 2>&1 || fail_start "$name" "kafka-storage format failed"
  fi
  log "$name: starting on $HOST:$(ckafka_port "$name") (controller" \
    "$(ckafka_controller_port "$name"), heap $CLUSTER_KAFKA_HEAP)"
  DEADLINE[$name]=$(($(now) + START_TIMEOUT))
  STARTED[$name]=1
  # shellcheck disable=SC2086  # FERROFLOW_KAFKA_JAVA_OPTS is a list of words
  start_detached "$name" "$d/server.log" "$JAVA" "$(marker "$name")" \
    -Xms128m -Xmx"$CLUSTER_KAFKA_HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -XX:+ExitOnOutOfMemoryError -XX:TieredStopAtLevel=1 -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$d/log4j2.properties" -Dkafka.logs.dir="$d" \
    ${FERROFLOW_KAFKA_JAVA_OPTS:-} \
    -cp "$(kafka_cp)" kafka.Kafka "$d/server.properties"
}

ckafka_wait() {
  local name=$1
  if ((STARTED[$name])); then
    wait_port "$name" "$(ckafka_port "$name")" "${DEADLINE[$name]}"
  fi
  log "$name: up (pid $(service_pid "$name"))"
}

# Topics of the cluster, once every broker asked for answers. Fails (without stopping anything)
# when fewer brokers are live than the replication factor, naming both numbers.
cluster_topics() {
  local left=$CLUSTER_TOPICS_TIMEOUT n
  for n in "${CLUSTER_KAFKA[@]}"; do
    if [[ -n ${DEADLINE[$n]:-} ]] && ((DEADLINE[$n] - $(now) > left)); then
      left=$((DEADLINE[$n] - $(now)))
    fi
  done
  ADMIN_LOG4J=$SVC/kafka-c1/tools-log4j2.properties kafka_admin ensure "$(cluster_brokers)" "$left" "$CLUSTER_PARTITIONS" "$KAFKA_RETENTION_MS" \
    "--replication-factor=$CLUSTER_RF" "--min-insync=$CLUSTER_MIN_ISR" "${CLUSTER_TOPICS[@]}" \
    || die "cluster: topics not set up (brokers $(cluster_brokers); logs: $SVC/kafka-c*/server.log)"
}

cos_write_config() {
  local name=$1 d=$SVC/$1 i seeds=() n roles
  i=$(member_index "$name")
  for n in "${CLUSTER_OPENSEARCH[@]}"; do seeds+=("\"$HOST:$(cos_transport_port "$n")\""); done
  if ((i == 1)); then roles='[cluster_manager, data, ingest]'; else roles='[data, ingest]'; fi
  mkdir -p "$d/home/plugins" "$d/home/modules" "$d/config" "$d/data" "$d/logs"
  cat >"$d/config/opensearch.yml" <<CFG
# Written by scripts/services.sh at every 'up'; edit the script, not this file.
cluster.name: ferroflow-cluster
node.name: ferroflow-c$i
node.roles: $roles
path.data: $d/data
path.logs: $d/logs
network.host: $HOST
http.port: $(cos_port "$name")
transport.port: $(cos_transport_port "$name")
discovery.seed_hosts: [$(IFS=,; echo "${seeds[*]}")]
cluster.initial_cluster_manager_nodes: [ferroflow-c1]
cluster.routing.allocation.disk.threshold_enabled: false
action.auto_create_index: true
CFG
  opensearch_write_log4j "$d/config"
}

cos_healthy() {
  local body
  body=$(curl -fsS --max-time 3 "http://$HOST:$(cos_port "$1")/_cluster/health?wait_for_status=yellow&wait_for_nodes=$2&timeout=2s" \
    2>/dev/null) || return 1
  [[ $body == *'"status":"green"'* || $body == *'"status":"yellow"'* ]] \
    && [[ $body != *'"timed_out":true'* ]]
}

cos_start() {
  local name=$1 d=$SVC/$1 pid libs=$MVN_CACHE/opensearch
  mkdir -p "$d"
  need curl
  if pid=$(service_pid "$name"); then
    log "$name: already running (pid $pid)"
    STARTED[$name]=0
    return 0
  fi
  check_java
  check_ports_free "$name" "$(cos_port "$name")" "$(cos_transport_port "$name")"
  fetch_jars opensearch
  compile_helper opensearch Launcher.java
  cos_write_config "$name"
  rotate_log "$name"
  log "$name: starting on $HOST:$(cos_port "$name") (transport $(cos_transport_port "$name")," \
    "heap $CLUSTER_OPENSEARCH_HEAP)"
  DEADLINE[$name]=$(($(now) + START_TIMEOUT))
  STARTED[$name]=1
  # shellcheck disable=SC2086  # FERROFLOW_OPENSEARCH_JAVA_OPTS is a list of words
  start_detached "$name" "$d/server.log" "$JAVA" "$(marker "$name")" \
    -Xms"$CLUSTER_OPENSEARCH_HEAP" -Xmx"$CLUSTER_OPENSEARCH_HEAP" -XX:+UseG1GC \
    -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true -Dfile.encoding=UTF-8 \
    -Dio.netty.noUnsafe=true -Dio.netty.noKeySetOptimization=true \
    -Dio.netty.recycler.maxCapacityPerThread=0 \
    -Dlog4j.shutdownHookEnabled=false -Dlog4j2.disable.jmx=true \
    -Djava.locale.providers=SPI,COMPAT -Djava.io.tmpdir="$d/home" \
    ${FERROFLOW_OPENSEARCH_JAVA_OPTS:-} \
    -cp "$libs/libs/*:$libs/classes" Launcher "$d/home" "$d/config"
}

# Waits until the node answers and the cluster, seen from it, has as many nodes as run now.
cos_wait() {
  local name=$1 deadline nodes=0 n
  for n in "${CLUSTER_OPENSEARCH[@]}"; do
    if service_pid "$n" >/dev/null; then nodes=$((nodes + 1)); fi
  done
  deadline=${DEADLINE[$name]:-$(($(now) + 30))}
  if ((STARTED[$name])); then
    wait_port "$name" "$(cos_port "$name")" "$deadline"
  fi
  until cos_healthy "$name" "$nodes"; do
    service_pid "$name" >/dev/null || fail_start "$name" "process exited during start-up"
    (($(now) < deadline)) || fail_start "$name" \
      "cluster not yellow/green with $nodes node(s) after ${START_TIMEOUT}s"
    sleep 0.5
  done
  log "$name: up (pid $(service_pid "$name")), cluster of $nodes node(s)"
}

# kill MEMBER: SIGKILL (no clean shutdown), for the failover tests; only cluster members.
kill_member() {
  local name=$1 pid i
  [[ " ${CLUSTER_MEMBERS[*]} " == *" $name "* ]] \
    || die "kill: '$name' is not a cluster member (${CLUSTER_MEMBERS[*]})"
  pid=$(service_pid "$name") || die "kill: $name does not run"
  kill -KILL "$pid"
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$pid" 2>/dev/null && die "kill: $name (pid $pid) survives SIGKILL"
  rm -f "$SVC/$name/pid"
  log "$name: SIGKILLed (pid $pid)"
}

# ----------------------------------------------------------------------------------------- status

service_port() {
  case $1 in
    kafka-c*) ckafka_port "$1" ;;
    opensearch-c*) cos_port "$1" ;;
    kafka) echo "$KAFKA_PORT" ;;
    opensearch) echo "$OPENSEARCH_PORT" ;;
    opensearch-tls) echo "$OPENSEARCH_TLS_PORT" ;;
    tansu) echo "$TANSU_PORT" ;;
  esac
}

status_one() {
  local name=$1 pid port rss etime
  port=$(service_port "$name")
  if pid=$(service_pid "$name"); then
    rss=$(ps -o rss= -p "$pid" | tr -d ' ')
    etime=$(ps -o etime= -p "$pid" | tr -d ' ')
    local health=up
    port_open "$port" || health="port $port closed"
    printf '%-14s running  pid %-7s %s:%-5s up %-10s rss %s MiB  (%s)\n' \
      "$name" "$pid" "$HOST" "$port" "$etime" "$((rss / 1024))" "$health"
    return 0
  fi
  if [[ -f $SVC/$name/pid ]]; then
    printf '%-14s stopped  (stale PID file)\n' "$name"
  elif port_open "$port"; then
    printf '%-14s stopped  (but %s:%s is taken by another process)\n' "$name" "$HOST" "$port"
  else
    printf '%-14s stopped\n' "$name"
  fi
  return 3
}

# ------------------------------------------------------------------------------------------- main

usage() { sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//'; }

validate() {
  local n
  for n in "$@"; do
    case $n in
      kafka|opensearch|tansu|opensearch-tls|cluster) ;;
      kafka-c[1-3]|opensearch-c[1-2]) ;;
      *) die "unknown service '$n' (kafka, opensearch, tansu, opensearch-tls, cluster," \
        "or a cluster member: ${CLUSTER_MEMBERS[*]})" ;;
    esac
  done
}

# The names with `cluster` replaced by its members, each once.
expand() {
  local n m out=() seen=" " one=()
  for n in "$@"; do
    if [[ $n == cluster ]]; then one=("${CLUSTER_MEMBERS[@]}"); else one=("$n"); fi
    for m in "${one[@]}"; do
      [[ $seen == *" $m "* ]] && continue
      seen+="$m "
      out+=("$m")
    done
  done
  printf '%s\n' "${out[@]}"
}

svc_fn() {
  case $1 in
    kafka-c*) echo ckafka ;;
    opensearch-c*) echo cos ;;
    *) echo "${1//-/_}" ;;
  esac
}

with_lock() {
  mkdir -p "$SVC"
  exec 9>"$SVC/.lock"
  flock -w "$LOCK_TIMEOUT" 9 \
    || die "another services.sh has held $SVC/.lock for more than ${LOCK_TIMEOUT}s"
}

main() {
  local cmd=${1:-} rc=0 n
  [[ -n $cmd ]] || { usage; exit 2; }
  shift
  [[ $cmd == kill ]] || validate "$@"
  if (($#)); then mapfile -t names < <(expand "$@"); set -- "${names[@]}"; fi
  case $cmd in
    up)
      (($#)) || set -- "${DEFAULT_UP[@]}"
      with_lock
      local t0 f kafka_members=0
      t0=$(now)
      # start all, then wait for each: the JVMs start side by side
      for n in "$@"; do f=$(svc_fn "$n"); "${f}_start" "$n"; done
      for n in "$@"; do f=$(svc_fn "$n"); "${f}_wait" "$n"; done
      for n in "$@"; do [[ $n == kafka-c* ]] && kafka_members=1; done
      ((kafka_members == 0)) || cluster_topics
      log "up: $* ready in $(($(now) - t0))s"
      ;;
    kill)
      (($# == 1)) || die "kill wants one cluster member (${CLUSTER_MEMBERS[*]})"
      with_lock
      kill_member "$1"
      ;;
    down)
      (($#)) || set -- "${ALL_SERVICES[@]}"
      with_lock
      stop_services "$@"
      ;;
    status)
      local named=$#
      (($#)) || set -- "${ALL_SERVICES[@]}"
      for n in "$@"; do status_one "$n" || rc=$?; done
      ((named)) || rc=0
      return "$rc"
      ;;
    clean)
      (($#)) || set -- "${ALL_SERVICES[@]}"
      with_lock
      stop_services "$@"
      for n in "$@"; do
        rm -rf "${SVC:?}/$n"
        log "$n: data and logs removed"
      done
      ;;
    env)
      cat <<EOF
export FERROFLOW_CLUSTER_KAFKA_BROKERS=$(cluster_brokers)
export FERROFLOW_CLUSTER_ES_URL=http://$HOST:$CLUSTER_OPENSEARCH_PORT
export FERROFLOW_KAFKA_BROKERS=$HOST:$KAFKA_PORT
export FERROFLOW_TANSU_BROKERS=$HOST:$TANSU_PORT
export FERROFLOW_ES_URL=http://$HOST:$OPENSEARCH_PORT
export FERROFLOW_KAFKA_SSL_BROKERS=$HOST:$KAFKA_SSL_PORT
export FERROFLOW_KAFKA_SASL_SSL_BROKERS=$HOST:$KAFKA_SASL_SSL_PORT
export FERROFLOW_KAFKA_SASL_USER=$KAFKA_SASL_USER
export FERROFLOW_KAFKA_SASL_PASSWORD=$KAFKA_SASL_PASSWORD
export FERROFLOW_ES_TLS_URL=https://$HOST:$OPENSEARCH_TLS_PORT
export FERROFLOW_ES_TLS_USER=$OPENSEARCH_TLS_USER
export FERROFLOW_ES_TLS_PASSWORD=$OPENSEARCH_TLS_PASSWORD
export FERROFLOW_TEST_CA=$PKI/ca.pem
export FERROFLOW_TEST_OTHER_CA=$PKI/other-ca.pem
EOF
      ;;
    -h|--help|help) usage ;;
    *) usage; exit 2 ;;
  esac
}

main "$@"
