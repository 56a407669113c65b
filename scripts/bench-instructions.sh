#!/usr/bin/env bash
# Instructions executed per iteration (and per record) of decode bench cases, counted by
# callgrind: a figure that does not move with the neighbours of a shared machine, where the
# criterion throughput of one binary swings 7-13 M records/s from one minute to the next. Use it
# to compare two builds of a change; quote throughput from criterion (docs/benchmarks.md).
#
#   scripts/bench-instructions.sh 'ipfix/fixed_30x_ipv4_basic/decode$'
#   scripts/bench-instructions.sh 'fixed_30x_ipv4_basic/decode$' old-bench-binary new-bench-binary
#
# The filter is criterion's (a regex over case names); every case it matches is counted on its
# own. Without binaries, the decode bench is built (release) and counted. Installs valgrind
# (Debian) when it is missing. Only the measured routine is counted (callgrind's collection is
# switched on inside criterion's `Bencher::iter`), warm-up iterations included: they run the
# same code. callgrind counts the calls of `Decoder::decode` (one per datagram), not
# iterations: the datagrams and records of one iteration come from the bench's own report on
# stderr ("<case>: ... D datagrams, ... N records per iteration"), so `decode/*` cases get a
# figure per iteration and per record; other cases print Ir per datagram. valgrind's CPU has no SHA extensions, so the
# community id's SHA-1 runs the portable code there: about 1 400 instructions of a decode+JSON
# record that the real CPU (sha_ni) spends far fewer on.
set -euo pipefail
cd "$(dirname "$0")/.."

filter="${1:?usage: $0 FILTER [BENCH_BINARY...]}"
shift
bins=("$@")

if ! command -v valgrind >/dev/null; then
  echo "installing valgrind" >&2
  if ! sudo -n true 2>/dev/null && [ "$(id -u)" != 0 ]; then
    echo "valgrind is missing and apt-get needs root: apt-get install valgrind" >&2
    exit 1
  fi
  SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
  $SUDO apt-get install -y valgrind >/dev/null || { $SUDO apt-get update >/dev/null && $SUDO apt-get install -y valgrind >/dev/null; }
fi

if [ ${#bins[@]} -eq 0 ]; then
  bin=$(scripts/bench-binary.sh) || { echo "could not build the decode bench" >&2; exit 1; }
  bins=("$bin")
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# the case names the filter matches, from the first binary
mapfile -t cases < <("${bins[0]}" --bench --list "$filter" 2>/dev/null | sed -n 's/: benchmark$//p')
[ ${#cases[@]} -gt 0 ] || { echo "no bench case matches '$filter'" >&2; exit 1; }

printf '%-48s %-28s %14s %10s %12s\n' case binary "Ir/iteration" records "Ir/record"
for case in "${cases[@]}"; do
  # an exact filter for this case alone
  exact="^$(printf '%s' "$case" | sed 's/[][\.*^$+?(){}|]/\\&/g')\$"
  for b in "${bins[@]}"; do
    out="$work/cg.out"
    valgrind --tool=callgrind --toggle-collect='criterion::bencher::Bencher*::iter*' \
      --callgrind-out-file="$out" "$b" --bench --profile-time 1 "$exact" \
      >/dev/null 2>"$work/stderr" || { echo "valgrind failed on $case ($b)" >&2; continue; }
    # from /: in the source tree, callgrind_annotate merges the relative and absolute source
    # paths differently and the caller lines of Decoder::decode go missing
    (cd / && callgrind_annotate --tree=caller --threshold=100 --auto=no "$out") >"$work/tree" 2>/dev/null
    python3 - "$work/tree" "$work/stderr" "$case" "$(basename "$b")" <<'PY'
import re, sys
tree, stderr, case, binary = sys.argv[1:5]
txt = open(tree).read()
# the block of Decoder::decode in the caller tree: its callers ("<" lines) above its own
# ("*") line; the caller Bencher::iter gives (inclusive Ir, call count) of the measured calls
calls = []
for block in txt.split("\n\n"):
    if not re.search(r"\*\s+\S*decoder::Decoder::decode( \[|$)", block, re.M):
        continue
    calls += [(int(a.replace(",", "")), int(b.replace(",", "")))
              for a, b in re.findall(r"([\d,]+) \([^)]*\)\s+< \S*Bencher<M>::iter \(([\d,]+)x\)", block)]
if not calls:
    print(f"{case:48} {binary:28} {'?':>14} (no iteration found in the profile)")
    sys.exit(0)
ir, n = max(calls)
per_call = ir / n
group = case.rsplit("/", 1)[0]
records = datagrams = None
for line in open(stderr, errors="replace"):
    m = re.match(r"(.+?): .* (\d+) datagrams, .* (\d+) records per iteration", line)
    if m and "decode/" + m.group(1).split(" (")[0] == group:
        datagrams, records = int(m.group(2)), int(m.group(3))
if not records:
    print(f"{case:48} {binary:28} {per_call:14.0f} {'?':>10} {'?':>12} (Ir per datagram)")
    sys.exit(0)
# n counts Decoder::decode calls: one per datagram, `datagrams` of them an iteration
per_iter = per_call * datagrams
print(f"{case:48} {binary:28} {per_iter:14.0f} {records:>10} {per_iter / records:12.0f}")
PY
  done
done
