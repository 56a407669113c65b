#!/usr/bin/env bash
# Installs the peer collectors that `ferroflow bench --peer X` runs side by side with ferroflow:
#   goflow2 (go install, pinned version) -> $GOBIN or ~/go/bin/goflow2
#   pmacct  (nfacctd, sfacctd)           -> Debian package
#   nfdump  (nfcapd, sfcapd, nfdump)     -> Debian package
# and prints their versions. Idempotent; needs root for apt-get (as on the project's machines).
#
#   perf/peers/install.sh            # all
#   perf/peers/install.sh goflow2    # one of: goflow2 pmacct nfdump tools
set -euo pipefail

GOFLOW2_VERSION="${GOFLOW2_VERSION:-v2.2.6}"
want="${*:-goflow2 pmacct nfdump}"

apt_install() {
    if ! dpkg -s "$@" >/dev/null 2>&1; then
        if [ "$(id -u)" -ne 0 ]; then
            echo "install.sh: $* missing and not root: apt-get install $*" >&2
            return 1
        fi
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
    fi
}

for p in $want; do
    case "$p" in
    goflow2)
        if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
            export PATH="/usr/local/go/bin:$PATH"
        fi
        bin="$(go env GOPATH)/bin/goflow2"
        if [ ! -x "$bin" ] || ! "$bin" -v 2>&1 | grep -q "${GOFLOW2_VERSION#v}"; then
            go install "github.com/netsampler/goflow2/v2/cmd/goflow2@${GOFLOW2_VERSION}"
        fi
        echo "goflow2: $bin ($("$bin" -v 2>&1 | head -1))"
        ;;
    pmacct)
        apt_install pmacct
        echo "nfacctd: $(command -v nfacctd) ($(nfacctd -V 2>&1 | head -1))"
        echo "sfacctd: $(command -v sfacctd) ($(sfacctd -V 2>&1 | head -1))"
        ;;
    nfdump)
        apt_install nfdump
        echo "nfcapd: $(command -v nfcapd) ($(nfcapd -V 2>&1 | head -1))"
        ;;
    tools)
        # the PNG plot's labels (DejaVu Sans; without it no plot is drawn), jq for
        # scripts/perf-headline.sh, taskset (util-linux) to pin peers
        apt_install fonts-dejavu-core jq util-linux
        ;;
    *)
        echo "install.sh: unknown peer $p (goflow2 pmacct nfdump tools)" >&2
        exit 2
        ;;
    esac
done
