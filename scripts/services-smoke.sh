#!/usr/bin/env bash
# shellcheck disable=SC2016  # jq programs are in single quotes on purpose
# Smoke test of the running services (start them first: scripts/services.sh up [tansu]).
#
#   scripts/services-smoke.sh [kafka|opensearch|tansu ...]     (default: kafka opensearch)
#
# kafka/tansu: the topics netflow, ipfix, sflow exist; one message produced to netflow is
#              consumed back (kcat when installed, else Kafka's Java console tools; for tansu
#              the Kafka 3.9 Java client, see docs/services.md).
# opensearch:  composable _index_template (ip/keyword/long/date mappings + settings), _bulk with
#              create actions (and a 409 for a repeated _id), term search on an ip field, a CIDR
#              term query, _count, and a data stream. Everything it creates is deleted at the end.
# Prints one line per check and closes with 'N passed, N failed'; exit 1 if any failed.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$SCRIPT_DIR/.." && pwd)
CACHE=${FERROFLOW_CACHE_DIR:-$ROOT/.cache}
HOST=127.0.0.1
ES=http://$HOST:9200
JSON='Content-Type: application/json'
NDJSON='Content-Type: application/x-ndjson'
RUN_ID=$$-$(date +%s)

passed=0
failed=0
ok() { passed=$((passed + 1)); printf 'ok    %s\n' "$*"; }
bad() { failed=$((failed + 1)); printf 'FAIL  %s\n' "$*"; }
jqe() { jq -e "$@" >/dev/null; }
# kcat when installed, unless FERROFLOW_SMOKE_NO_KCAT=1 (then Kafka's own Java console tools)
use_kcat() { [[ ${FERROFLOW_SMOKE_NO_KCAT:-0} != 1 ]] && command -v kcat >/dev/null 2>&1; }
# check NAME COMMAND...: runs COMMAND, counts the result
check() {
  local name=$1
  shift
  if "$@"; then ok "$name"; else bad "$name"; fi
}

for cmd in curl jq timeout; do
  command -v "$cmd" >/dev/null || { echo "missing $cmd: run scripts/install-deps.sh" >&2; exit 1; }
done

# ------------------------------------------------------------------------------------------ kafka

java_bin() {
  if [[ -n ${JAVA_HOME:-} && -x $JAVA_HOME/bin/java ]]; then echo "$JAVA_HOME/bin/java"; else echo java; fi
}

# produce_consume BOOTSTRAP TOPIC PAYLOAD: produces PAYLOAD with key "smoke", then reads the topic
# from the beginning until PAYLOAD shows up (bounded: 30 s, at most 10000 messages).
produce_consume() {
  local bs=$1 topic=$2 payload=$3 out
  if use_kcat; then
    printf 'smoke\t%s\n' "$payload" | timeout 30 kcat -b "$bs" -P -t "$topic" -K $'\t' -p 0 || return 1
    out=$(timeout 30 kcat -b "$bs" -C -t "$topic" -p 0 -o beginning -e -c 10000 -q -f '%k=%s\n' 2>/dev/null) \
      || return 1
  else
    local cp="$CACHE/maven/kafka/libs/*" log4j=$CACHE/services/kafka/tools-log4j2.properties
    printf 'smoke\t%s\n' "$payload" | timeout 60 "$(java_bin)" -Xmx128m \
      -Dlog4j2.configurationFile="$log4j" -cp "$cp" org.apache.kafka.tools.ConsoleProducer \
      --bootstrap-server "$bs" --topic "$topic" \
      --reader-property parse.key=true --reader-property key.separator=$'\t' >/dev/null || return 1
    out=$(timeout 60 "$(java_bin)" -Xmx128m -Dlog4j2.configurationFile="$log4j" -cp "$cp" \
      org.apache.kafka.tools.consumer.ConsoleConsumer --bootstrap-server "$bs" --topic "$topic" \
      --from-beginning --timeout-ms 10000 --max-messages 10000 \
      --formatter-property print.key=true --formatter-property key.separator== 2>/dev/null) || true
  fi
  grep -qxF "smoke=$payload" <<<"$out"
}

# topics_exist BOOTSTRAP: metadata lists netflow, ipfix and sflow
topics_exist() {
  local bs=$1 meta t
  if use_kcat; then
    meta=$(timeout 20 kcat -b "$bs" -L -J 2>/dev/null) || return 1
    for t in netflow ipfix sflow; do
      jqe --arg t "$t" '.topics[] | select(.topic == $t) | (.partitions | length) > 0' \
        <<<"$meta" >/dev/null || return 1
    done
  else
    meta=$(timeout 60 "$(java_bin)" -Xmx128m \
      -Dlog4j2.configurationFile="$CACHE/services/kafka/tools-log4j2.properties" \
      -cp "$CACHE/maven/kafka/libs/*:$CACHE/maven/kafka/classes" KafkaAdmin list "$bs") || return 1
    for t in netflow ipfix sflow; do grep -q "^$t " <<<"$meta" || return 1; done
  fi
}

smoke_kafka() {
  local name=$1 bs=$2
  check "$name: topics netflow, ipfix, sflow exist at $bs" topics_exist "$bs"
  check "$name: produce + consume one message on netflow" \
    produce_consume "$bs" netflow "{\"smoke\":\"$RUN_ID\",\"source.ip\":\"192.0.2.1\"}"
}

# Tansu 0.6.0 answers neither kcat 1.7.1 (librdkafka 2.0.2) nor the 4.x Java producer; the 3.9
# Java client (prepared by `services.sh up tansu`) produces and consumes.
smoke_tansu() {
  local bs=$HOST:9094 d=$CACHE/maven/kafka-client
  FERROFLOW_SMOKE_NO_KCAT=1 check "tansu: topics netflow, ipfix, sflow exist at $bs" topics_exist "$bs"
  check "tansu: produce + consume one message on netflow (Java client 3.9)" \
    timeout 90 "$(java_bin)" -Xmx128m -cp "$d/libs/*:$d/classes" ProduceConsume "$bs" netflow \
    smoke "{\"smoke\":\"$RUN_ID\"}"
}

# ------------------------------------------------------------------------------------- opensearch

es() { # es METHOD PATH [curl args...]: prints the response body
  local method=$1 path=$2
  shift 2
  curl -sS --max-time 30 -X "$method" "$ES$path" "$@"
}

smoke_opensearch() {
  local idx="ff-smoke-netflow-$RUN_ID" tpl="ff-smoke-$RUN_ID" ds="ffds-smoke-$RUN_ID" r
  r=$(curl -fsS --max-time 10 "$ES" || true)
  check "opensearch: root answers with a version" jqe '.version.number' <<<"$r"

  r=$(es PUT "/_index_template/$tpl" -H "$JSON" -d @- <<EOF
{
  "index_patterns": ["ff-smoke-*-$RUN_ID"],
  "priority": 500,
  "template": {
    "settings": {"number_of_shards": 1, "number_of_replicas": 0, "refresh_interval": "1s"},
    "mappings": {
      "dynamic_templates": [{"strings": {"match_mapping_type": "string", "mapping": {"type": "keyword"}}}],
      "properties": {
        "@timestamp": {"type": "date"},
        "source": {"properties": {"ip": {"type": "ip"}, "port": {"type": "long"}}},
        "destination": {"properties": {"ip": {"type": "ip"}, "port": {"type": "long"}}},
        "network": {"properties": {"transport": {"type": "keyword"}, "bytes": {"type": "long"}}}
      }
    }
  }
}
EOF
)
  check "opensearch: PUT _index_template (composable, ip/keyword/long/date)" \
    jqe '.acknowledged == true' <<<"$r"

  local body
  body=$(
    for i in 1 2 3; do
      printf '{"create":{"_index":"%s","_id":"netflow-0-%d"}}\n' "$idx" "$i"
      printf '{"@timestamp":"2026-01-01T00:00:0%dZ","source":{"ip":"10.0.0.%d","port":%d},' "$i" "$i" "$((40000 + i))"
      printf '"destination":{"ip":"2001:db8::%d","port":443},"network":{"transport":"tcp","bytes":%d}}\n' "$i" "$((i * 100))"
    done
    # the same _id again: must be a 409 for that item, not a duplicate
    printf '{"create":{"_index":"%s","_id":"netflow-0-1"}}\n' "$idx"
    printf '{"@timestamp":"2026-01-01T00:00:01Z","source":{"ip":"10.0.0.1"}}\n'
  )
  r=$(es POST "/_bulk?refresh=wait_for" -H "$NDJSON" --data-binary "$body"$'\n')
  check "opensearch: _bulk create x3 -> 201" \
    jqe '[.items[0:3][].create.status] == [201,201,201]' <<<"$r"
  check "opensearch: _bulk create with a repeated _id -> 409" \
    jqe '.items[3].create.status == 409' <<<"$r"
  r=$(es GET "/$idx/_mapping")
  check "opensearch: template applied (source.ip is ip, network.transport keyword)" \
    jqe --arg i "$idx" '.[$i].mappings.properties.source.properties.ip.type == "ip"
      and .[$i].mappings.properties.network.properties.transport.type == "keyword"' <<<"$r"

  r=$(es POST "/ff-smoke-*-$RUN_ID/_search" -H "$JSON" \
    -d '{"query":{"term":{"source.ip":"10.0.0.2"}}}')
  check "opensearch: _search term on ip field" \
    jqe '.hits.total.value == 1 and .hits.hits[0]._id == "netflow-0-2"' <<<"$r"
  r=$(es POST "/ff-smoke-*-$RUN_ID/_search" -H "$JSON" \
    -d '{"query":{"term":{"destination.ip":"2001:db8::/64"}},"aggs":{"b":{"sum":{"field":"network.bytes"}}}}')
  check "opensearch: _search CIDR term on an IPv6 ip field + sum aggregation" \
    jqe '.hits.total.value == 3 and .aggregations.b.value == 600' <<<"$r"
  r=$(es POST "/ff-smoke-*-$RUN_ID/_count" -H "$JSON" -d '{"query":{"term":{"source.ip":"10.0.0.0/8"}}}')
  check "opensearch: _count" jqe '.count == 3' <<<"$r"

  # data stream: template with data_stream:{} and create into the stream's name
  r=$(es PUT "/_index_template/$ds" -H "$JSON" -d "{\"index_patterns\":[\"$ds\"],\"data_stream\":{},
    \"priority\":500,\"template\":{\"settings\":{\"number_of_replicas\":0},
    \"mappings\":{\"properties\":{\"@timestamp\":{\"type\":\"date\"},\"source\":{\"properties\":{\"ip\":{\"type\":\"ip\"}}}}}}}")
  check "opensearch: PUT _index_template with data_stream" jqe '.acknowledged == true' <<<"$r"
  r=$(es POST "/$ds/_bulk?refresh=wait_for" -H "$NDJSON" --data-binary \
    $'{"create":{}}\n{"@timestamp":"2026-01-01T00:00:00Z","source":{"ip":"192.0.2.7"}}\n')
  check "opensearch: _bulk create into a data stream" \
    jqe '.errors == false and (.items[0].create._index | startswith(".ds-"))' <<<"$r"
  r=$(es GET "/_data_stream/$ds")
  check "opensearch: data stream exists" jqe --arg d "$ds" '.data_streams[0].name == $d' <<<"$r"
  r=$(es POST "/$ds/_count" -H "$JSON" -d '{"query":{"term":{"source.ip":"192.0.2.7"}}}')
  check "opensearch: _count on the data stream" jqe '.count == 1' <<<"$r"

  # clean up (not counted)
  es DELETE "/_data_stream/$ds" >/dev/null || true
  es DELETE "/_index_template/$ds" >/dev/null || true
  es DELETE "/$idx" >/dev/null || true
  es DELETE "/_index_template/$tpl" >/dev/null || true
}

# ------------------------------------------------------------------------------------------- main

(($#)) || set -- kafka opensearch
for name in "$@"; do
  case $name in
    kafka) smoke_kafka kafka "$HOST:9092" ;;
    tansu) smoke_tansu ;;
    opensearch) smoke_opensearch ;;
    *) echo "unknown service '$name' (kafka, opensearch, tansu)" >&2; exit 2 ;;
  esac
done

echo "smoke: $passed passed, $failed failed"
((failed == 0))
