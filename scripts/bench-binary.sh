#!/usr/bin/env bash
# Build the decode bench (release) of the tree DIR (default: this checkout) and print the path of
# its executable: what scripts/bench-instructions.sh and scripts/bench-compare.sh run.
#
#   scripts/bench-binary.sh            # this checkout
#   scripts/bench-binary.sh /tmp/wt    # another worktree (its own target directory)
set -euo pipefail
dir="${1:-$(dirname "$0")/..}"
cd "$dir"
exe=$(cargo bench --bench decode --no-run --message-format=json 2>/dev/null |
  python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "decode":
        print(m["executable"])' | tail -n 1)
[ -n "$exe" ] || { echo "could not build the decode bench in $dir" >&2; exit 1; }
echo "$exe"
