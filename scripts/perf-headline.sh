#!/usr/bin/env bash
# Reproduces the headline table of docs/performance.md: for each protocol, the highest
# offered rate with <= 0.01 % loss (`ferroflow bench --search`) of ferroflow and of each peer
# (goflow2, pmacct's nfacctd/sfacctd, nfdump's nfcapd/sfcapd), run alternately in the same
# run, REPEATS times, each collector pinned to core 0 and the generator to core 1; prints the
# medians as a markdown table and keeps every report under $OUT. The generator sends distinct
# flows (`ferroflow bench`'s default: every record gets a source address of its own), so
# aggregating collectors (pmacct) cannot fold repeated flows together; pmacct writes one JSON
# line per flow (see docs/performance.md, "How each peer is configured and counted").
#
#   scripts/perf-headline.sh                       # everything (long: two to three hours)
#   PROTOCOLS="netflow5 ipfix" REPEATS=3 scripts/perf-headline.sh
#
# Environment: PROTOCOLS, SUBJECTS (ferroflow goflow2 pmacct nfcapd), REPEATS, DURATION
# (seconds per trial), MAX_STEPS (trials per search), OUT (report directory).
# SUMMARY_ONLY=1 OUT=<dir> prints the table of the reports already in <dir> (an interrupted
# run: medians of the repeats that finished) and runs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

PROTOCOLS="${PROTOCOLS:-netflow5 netflow9 ipfix sflow}"
SUBJECTS="${SUBJECTS:-ferroflow goflow2 pmacct nfcapd}"
REPEATS="${REPEATS:-3}"
DURATION="${DURATION:-4}"
MAX_STEPS="${MAX_STEPS:-9}"
OUT="${OUT:-target/perf/headline-$(date +%Y%m%d-%H%M%S)}"
COLLECTOR_CORE="${COLLECTOR_CORE:-0}"
GEN_CORE="${GEN_CORE:-1}"

if [ "${SUMMARY_ONLY:-0}" != 1 ]; then
perf/peers/install.sh goflow2 pmacct nfdump tools >&2
command -v jq >/dev/null || { echo "perf-headline: jq is needed (apt-get install jq)" >&2; exit 1; }
cargo build --release --locked --bin ferroflow >&2
FF=target/release/ferroflow
mkdir -p "$OUT"

run() { # subject protocol repeat
    local subj=$1 proto=$2 r=$3 args=()
    case "$subj" in
    ferroflow) args=(--start-rate 4000) ;;
    pmacct) args=(--peer "$([ "$proto" = sflow ] && echo sfacctd || echo nfacctd)" --start-rate 500) ;;
    nfcapd)
        if [ "$proto" = sflow ] && ! command -v sfcapd >/dev/null; then
            echo "== $proto-$subj-$r: skipped (no sfcapd: Debian's nfdump is built without sFlow)" >&2
            return 0
        fi
        args=(--peer nfcapd --start-rate 500)
        ;;
    *) args=(--peer "$subj" --start-rate 500) ;;
    esac
    local name="$proto-$subj-$r"
    echo "== $name ($(date +%T), load $(cut -d' ' -f1 /proc/loadavg))" >&2
    if "$FF" bench --protocol "$proto" --search --duration "$DURATION" --max-steps "$MAX_STEPS" \
        --collector-cores "$COLLECTOR_CORE" --gen-pin "$GEN_CORE" --exporters 4 \
        --json --out-dir "$OUT/$name" "${args[@]}" >"$OUT/$name.json" 2>"$OUT/$name.log"; then
        jq -r '"   \(.indexed_flows_per_s|floor) flows/s at \(.loss_fraction*100) % loss, \(.flows_per_cpu_second|floor) flows per CPU-s"' "$OUT/$name.json" >&2
    else
        echo "   failed: $(tail -1 "$OUT/$name.log")" >&2
        rm -f "$OUT/$name.json"
    fi
}

# alternate: every repeat runs each subject once per protocol, the order rotated
subjects=($SUBJECTS)
for r in $(seq 1 "$REPEATS"); do
    for proto in $PROTOCOLS; do
        n=${#subjects[@]}
        for i in $(seq 0 $((n - 1))); do
            run "${subjects[$(((i + r - 1) % n))]}" "$proto" "$r"
        done
    done
done
fi

# medians per protocol and subject
jq -s -r --arg repeats "$REPEATS" '
  def median: sort | if length == 0 then null elif length % 2 == 1 then .[length/2|floor]
              else (.[length/2-1] + .[length/2]) / 2 end;
  def fmt: if . == null then "-" else (. | floor | tostring) end;
  def fmt2: if . == null then "-" else ((. * 100 | round) / 100 | tostring) end;
  group_by(.protocol) | map(
    . as $p | ($p[0].protocol) as $proto |
    (group_by(.subject) | map({
        subject: .[0].subject, version: .[0].subject_version, runs: length,
        fps: (map(.indexed_flows_per_s) | median),
        fpc: (map(.flows_per_cpu_second) | median),
        cpm: (map(.collector_cpu_s_per_million_flows) | median)
    })) as $rows |
    ($rows | map(select(.subject == "ferroflow"))[0].fpc) as $ff |
    $rows | map("| \($proto) | \(.subject) | \(.runs) | \(.fps|fmt) | \(.cpm|fmt2) | \(.fpc|fmt) | \(if $ff and .fpc and .fpc > 0 then ($ff / .fpc * 10 | round / 10 | tostring) + "x" else "-" end) | \(.version) |")[]
  ) | (["| protocol | collector | runs | flows/s at <= 0.01 % loss (median) | CPU s per million flows (median) | flows per CPU-second (median) | ferroflow per-core advantage | version |",
        "|---|---|---:|---:|---:|---:|---:|---|"] + .) | .[]
' "$OUT"/*.json | tee "$OUT/headline.md"
echo "reports: $OUT" >&2
