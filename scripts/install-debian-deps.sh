#!/usr/bin/env bash
# Installs the Debian packages tests and benchmarks use, if missing. Idempotent; needs
# root (or sudo). Usage: scripts/install-debian-deps.sh [test|bench|browser|all]
set -euo pipefail

profile="${1:-test}"
case "$profile" in
  test) packages=(curl nginx-light wrk chromium) ;;
  bench) packages=(curl nginx-light libnginx-mod-stream haproxy wrk nghttp2-client util-linux) ;;
  browser) packages=(chromium chromium-driver) ;;
  all) packages=(curl nginx-light libnginx-mod-stream haproxy wrk nghttp2-client prometheus chromium chromium-driver iproute2 iptables tshark) ;;
  *) echo "unknown profile: $profile" >&2; exit 2 ;;
esac
# The metrics tests scrape sidecars and the control plane with a real Prometheus server.
[ "$profile" = test ] && packages+=(prometheus)

missing=()
# The dashboard's libraries come from npm (make web); a node already on the PATH will do.
[[ "$profile" == bench ]] || command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian starts nginx on install; the tests run their own instances.
if [[ " ${missing[*]} " == *" nginx-light "* ]] && command -v systemctl >/dev/null; then
  "${sudo_cmd[@]}" systemctl stop nginx 2>/dev/null || true
fi
