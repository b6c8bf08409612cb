#!/usr/bin/env bash
# Install, only when missing, the Debian packages the tests start as real services:
#   mosquitto, mosquitto-clients   MQTT broker (+ mosquitto_passwd, mosquitto_pub/sub)
#   postgresql                     server binaries under /usr/lib/postgresql/*/bin
#   victoria-metrics               line-protocol time-series store (InfluxDB v1/v2 write API)
#   influxdb                       Debian's InfluxDB 1.6 (InfluxQL on /query)
#   chromium, chromium-driver      headless browser for the web UI tests
#   poppler-utils, poppler-data    pdftotext/pdftoppm read back the cold-chain report PDF
#                                  (poppler-data: the CMaps of its Chinese CID font)
#   fonts-noto-cjk                 CJK glyphs: STSong-Light when pdftoppm renders the report, and
#                                  Chinese in the web UI tests' Chromium screenshots (not boxes)
#   systemd                        systemd-analyze verify checks deploy/systemd/*.service
#   postgresql-client              psql applies deploy/postgres/roles.sql in the tests
#   rabbitmq-server                partitioned server workers (MQTT + consistent-hash plugins)
#   iproute2                       ip netns / tc for the multi-gateway network tests
#   nftables                       nft: random packet loss on a test link where the kernel has
#                                  no sch_netem (tests/harness/netns.py)
# The tests start their own instances on free loopback ports; the system services that the
# packages' postinst scripts would start are not used, so a policy-rc.d that denies starting
# daemons is in place during the install (removed afterwards if we created it).
# Not root and no sudo: prints the missing packages and exits 1.
set -euo pipefail

PACKAGES=(mosquitto mosquitto-clients postgresql victoria-metrics influxdb chromium chromium-driver
  poppler-utils poppler-data fonts-noto-cjk systemd postgresql-client rabbitmq-server iproute2
  nftables)

# A command that proves the package's payload is there even where dpkg does not know it
# (e.g. a developer machine that is not Debian but has the programs).
have_program() {
  case "$1" in
    mosquitto) command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] ;;
    mosquitto-clients) command -v mosquitto_pub >/dev/null 2>&1 ;;
    postgresql)
      compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null 2>&1 \
        || { command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; }
      ;;
    victoria-metrics) command -v victoria-metrics >/dev/null 2>&1 ;;
    influxdb) command -v influxd >/dev/null 2>&1 ;;
    chromium) command -v chromium >/dev/null 2>&1 ;;
    chromium-driver) command -v chromedriver >/dev/null 2>&1 ;;
    poppler-utils) command -v pdftotext >/dev/null 2>&1 && command -v pdftoppm >/dev/null 2>&1 ;;
    poppler-data) [ -d /usr/share/poppler/cMap ] ;;
    fonts-noto-cjk) fc-list :lang=zh 2>/dev/null | grep -q . ;;
    systemd) command -v systemd-analyze >/dev/null 2>&1 ;;
    postgresql-client)
      command -v psql >/dev/null 2>&1 || compgen -G '/usr/lib/postgresql/*/bin/psql' >/dev/null 2>&1
      ;;
    rabbitmq-server) [ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || command -v rabbitmq-server >/dev/null 2>&1 ;;
    iproute2) command -v ip >/dev/null 2>&1 && command -v tc >/dev/null 2>&1 ;;
    nftables) command -v nft >/dev/null 2>&1 || [ -x /usr/sbin/nft ] ;;
    *) return 1 ;;
  esac
}

have_package() {
  if command -v dpkg-query >/dev/null 2>&1 \
    && [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" = "install ok installed" ]; then
    # Installed per dpkg; still require the program (a half-removed package does not count).
    have_program "$1"
    return
  fi
  have_program "$1"
}

missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! have_package "$pkg"; then
    missing+=("$pkg")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-system-deps: all present (${PACKAGES[*]})"
  exit 0
fi

echo "install-system-deps: missing: ${missing[*]}"

if ! command -v apt-get >/dev/null 2>&1; then
  echo "error: apt-get not found; install these Debian packages (or their equivalents):" >&2
  echo "  ${missing[*]}" >&2
  exit 1
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
  else
    echo "error: not root and sudo is not available; as root run:" >&2
    echo "  apt-get update && apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
  fi
fi

POLICY=/usr/sbin/policy-rc.d
created_policy=0
cleanup() {
  if [ "$created_policy" -eq 1 ]; then
    "${SUDO[@]}" rm -f "$POLICY" || true
  fi
}
trap cleanup EXIT

if [ ! -e "$POLICY" ]; then
  # 101 = "action forbidden": invoke-rc.d / deb-systemd-invoke start no daemon.
  printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$POLICY" >/dev/null
  "${SUDO[@]}" chmod 0755 "$POLICY"
  created_policy=1
fi

export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
  "${missing[@]}"

still=()
for pkg in "${missing[@]}"; do
  if ! have_package "$pkg"; then
    still+=("$pkg")
  fi
done
if [ "${#still[@]}" -ne 0 ]; then
  echo "error: installed, but their programs are still not found: ${still[*]}" >&2
  exit 1
fi
echo "install-system-deps: installed ${missing[*]}"
