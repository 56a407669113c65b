#!/usr/bin/env bash
# Side-by-side throughput of the decode bench at two (or more) commits: the builds run in
# alternating rounds on one pinned core, so the neighbours' load falls on all of them alike, and
# the medians over the rounds are printed with each one's ratio to the first.
#
#   scripts/bench-compare.sh 'fixed_30x_ipv4_basic/decode_json$' 0a7e398 HEAD
#   ROUNDS=5 scripts/bench-compare.sh '/decode$|/decode_json$' old-bench-binary HEAD
#
# Each argument after the filter is a bench binary (an executable file) or a git revision,
# whose decode bench is built (release, in a temporary worktree with its own target directory:
# some 3 minutes each) and removed afterwards. The filter is criterion's (a regex over case
# names). Settings: CPU-time clock (FERROFLOW_BENCH_CLOCK=cpu), warm-up 1 s, measurement 3 s,
# pinned to the last core (CORE=n to choose). ROUNDS (default 3) rounds; every round runs each
# build once over all the cases. Throughput is records per second, as the bench reports it.
set -euo pipefail
cd "$(dirname "$0")/.."

filter="${1:?usage: $0 FILTER REV_OR_BIN REV_OR_BIN...}"
shift
[ $# -ge 1 ] || { echo "usage: $0 FILTER REV_OR_BIN REV_OR_BIN..." >&2; exit 2; }
rounds="${ROUNDS:-3}"
core="${CORE:-$(($(nproc) - 1))}"

work=$(mktemp -d)
cleanup() {
  for wt in "$work"/wt-*; do
    [ -d "$wt" ] && git worktree remove --force "$wt" >/dev/null 2>&1 || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

bins=()
names=()
i=0
for arg in "$@"; do
  i=$((i + 1))
  if [ -f "$arg" ] && [ -x "$arg" ]; then
    bins+=("$arg")
    names+=("$(basename "$arg")")
    continue
  fi
  rev=$(git rev-parse --short "$arg^{commit}") || { echo "not a binary or a revision: $arg" >&2; exit 2; }
  wt="$work/wt-$i"
  echo "building the decode bench of $rev (in $wt)" >&2
  git worktree add --detach "$wt" "$rev" >/dev/null 2>&1
  exe=$(scripts/bench-binary.sh "$wt") || { echo "could not build the decode bench of $rev" >&2; exit 1; }
  cp "$exe" "$work/bench-$i"
  bins+=("$work/bench-$i")
  names+=("$rev")
done

results="$work/results"
: >"$results"
for r in $(seq 1 "$rounds"); do
  for j in "${!bins[@]}"; do
    echo "round $r/$rounds: ${names[$j]}" >&2
    FERROFLOW_BENCH_CLOCK=cpu taskset -c "$core" "${bins[$j]}" --bench "$filter" \
      --measurement-time 3 --warm-up-time 1 --noplot 2>/dev/null |
      awk -v r="$r" -v b="$j" '
        /^(decode|json)\// { c = $1 }
        /thrpt:/ && $3 ~ /elem/ {
          v = $4
          if ($5 ~ /^Kelem/) v = v / 1000
          if ($5 ~ /^elem/) v = v / 1000000
          if ($5 ~ /^Gelem/) v = v * 1000
          printf "%d %d %s %.4f\n", r, b, c, v
        }' >>"$results"
  done
done

python3 - "$results" "${names[@]}" <<'EOF'
import statistics, sys
path, names = sys.argv[1], sys.argv[2:]
rows = {}
for line in open(path):
    r, b, case, v = line.split()
    rows.setdefault(case, {}).setdefault(int(b), []).append(float(v))
print(f"M records/s, median of the rounds (single rounds in brackets); ratio to {names[0]}")
head = f"{'case':58}" + "".join(f"{n:>16}" for n in names) + "".join(f"{'x ' + n:>14}" for n in names[1:])
print(head)
for case, per in rows.items():
    meds = [statistics.median(per[b]) if b in per else float("nan") for b in range(len(names))]
    line = f"{case:58}" + "".join(f"{m:16.3f}" for m in meds)
    line += "".join(f"{meds[b] / meds[0]:14.2f}" for b in range(1, len(names)))
    print(line)
    print(f"{'':58}" + "".join(f"{'[' + ' '.join(f'{x:.2f}' for x in per.get(b, [])) + ']':>16}" for b in range(len(names))))
EOF
