#!/usr/bin/env bash
# Fuzz the codecs: seed corpora from the fixture captures, then every cargo-fuzz target of
# codecs/fuzz for SECONDS_PER_TARGET seconds (default 60), one summary line per target.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET]
#
# Exits non-zero when a target crashed (panic, sanitizer report, timeout, out of memory); the
# input is saved under codecs/fuzz/artifacts/<target>/ and the command to replay it is printed.
# Total time is bounded: about 5 x SECONDS_PER_TARGET plus the build, each run also killed if it
# overstays by 2 minutes.
#
# Toolchain: cargo-fuzz needs nightly-only compiler flags. With a nightly toolchain installed
# (rustup) it is used; otherwise the stable toolchain is told to accept them with
# RUSTC_BOOTSTRAP=1 (this script says so). FERROFLOW_FUZZ_TOOLCHAIN=nightly|bootstrap forces
# one. cargo-fuzz is installed (cargo install --locked cargo-fuzz) when missing; libFuzzer is
# built from source by libfuzzer-sys, which needs a C++ compiler (Debian: build-essential).
#
# Environment: FUZZ_TARGETS="decode_any sflow" runs a subset; FUZZ_ARGS adds libFuzzer flags.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
secs=${1:-60}
case $secs in '' | *[!0-9]*)
    echo "usage: $0 [SECONDS_PER_TARGET]" >&2
    exit 2
    ;;
esac

fuzz_dir=codecs/fuzz
manifest=$fuzz_dir/Cargo.toml
all_targets="decode_any netflow_v5 netflow_v9_sequence ipfix_sequence sflow"
targets=${FUZZ_TARGETS:-$all_targets}

# --- toolchain -------------------------------------------------------------------------------
mode=${FERROFLOW_FUZZ_TOOLCHAIN:-auto}
why="forced by FERROFLOW_FUZZ_TOOLCHAIN"
if [ "$mode" = auto ]; then
    why="no nightly toolchain found"
    if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
        mode=nightly
    elif rustc --version 2>/dev/null | grep -q nightly; then
        mode=default-nightly
    else
        mode=bootstrap
    fi
fi
case $mode in
nightly) cargo=(cargo +nightly) ;;
default-nightly) cargo=(cargo) ;;
bootstrap)
    # RUSTC_BOOTSTRAP=1 lets a stable compiler take the -Z flags cargo-fuzz passes (sanitizer,
    # coverage instrumentation). Not for release builds; fine for fuzzing.
    echo "fuzz: $why: using $(rustc --version) with RUSTC_BOOTSTRAP=1"
    export RUSTC_BOOTSTRAP=1
    cargo=(cargo)
    ;;
*)
    echo "fuzz: FERROFLOW_FUZZ_TOOLCHAIN must be nightly or bootstrap, not '$mode'" >&2
    exit 2
    ;;
esac
echo "fuzz: toolchain: $("${cargo[@]}" --version) ($mode)"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz"
    cargo install --locked cargo-fuzz
fi
echo "fuzz: $(cargo fuzz --version)"

# --- seeds and build -------------------------------------------------------------------------
echo "fuzz: seeding corpora from tests/fixtures/corpus"
"${cargo[@]}" run --quiet --manifest-path "$manifest" --example seed

echo "fuzz: building targets"
(cd "$fuzz_dir" && "${cargo[@]}" fuzz build)

# --- run -------------------------------------------------------------------------------------
mkdir -p "$fuzz_dir/artifacts"
read -r -a extra <<<"${FUZZ_ARGS:-}"
failed=()
summaries=()
for t in $targets; do
    # several datagrams / one datagram (IPFIX and sFlow may fill 64 KB; v5 holds 30 records)
    case $t in
    *_sequence) max_len=65536 ;;
    netflow_v5) max_len=4096 ;;
    *) max_len=16384 ;;
    esac
    log=$fuzz_dir/artifacts/$t.log
    mkdir -p "$fuzz_dir/artifacts/$t"
    echo "fuzz: $t for $secs s (log: $log)"
    set +e
    (cd "$fuzz_dir" && timeout --kill-after=10 $((secs + 120)) "${cargo[@]}" fuzz run "$t" -- \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len="$max_len" \
        -print_final_stats=1 "${extra[@]}") >"$log" 2>&1
    rc=$?
    set -e
    # the last status line: "#N  DONE cov: C ft: F corp: K/SIZE ..."
    last=$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
    corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9A-Za-z]*\).*/\1/p' <<<"$last")
    [ -n "$runs" ] || runs=$(sed -n 's/^#\([0-9]*\).*/\1/p' <<<"$last")
    if [ $rc -eq 0 ]; then
        status=ok
    else
        status="CRASH (exit $rc)"
        failed+=("$t")
    fi
    line=$(printf '%-20s %-16s %5ss  execs=%-9s (%s/s)  cov=%-5s ft=%-6s corpus=%s' \
        "$t" "$status" "$secs" "${runs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}")
    summaries+=("$line")
    echo "fuzz: $line"
    if [ $rc -ne 0 ]; then
        grep -E 'panicked at|ERROR: |SUMMARY: |Test unit written to' "$log" | head -n 8 | sed 's/^/    /'
        artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
        if [ -n "$artifact" ]; then
            case $artifact in /*) ;; *) artifact=$root/$fuzz_dir/$artifact ;; esac
            echo "    replay:  (cd $fuzz_dir && ${cargo[*]} fuzz run $t $artifact)"
            echo "    keep it: cp $artifact $fuzz_dir/regressions/$t/   # replayed by cargo test"
        fi
    fi
done

echo "== fuzz summary ($secs s per target, $mode toolchain)"
printf '%s\n' "${summaries[@]}"
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: FAILED: ${failed[*]} (logs and inputs under $root/$fuzz_dir/artifacts/)"
    exit 1
fi
echo "fuzz: no crash"
