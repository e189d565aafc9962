#!/usr/bin/env bash
# Prepare a Debian machine for Relances: the system libraries WeasyPrint
# needs (Pango, HarfBuzz's subsetter, fonts), the real servers the tests
# talk to (CUPS with the cups-pdf printer, HylaFAX, PostgreSQL client
# tools, Chromium for the web screen's browser tests), then a virtual
# environment in .venv with the project installed.
#
#   scripts/setup.sh            runtime only
#   scripts/setup.sh --test     also the test extras
set -euo pipefail
cd "$(dirname "$0")/.."

extras=""
[[ "${1:-}" == "--test" ]] && extras="[test]"

SYSTEM_PACKAGES=(
    python3-venv
    libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz0b libharfbuzz-subset0
    fonts-dejavu-core fonts-liberation2
    poppler-utils
)
TEST_PACKAGES=(
    cups cups-client cups-bsd cups-ipp-utils printer-driver-cups-pdf
    hylafax-server hylafax-client
    dovecot-imapd
    postgresql-client
    zbar-tools
    chromium
)

missing() {
    local p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"
    done
}

want=("${SYSTEM_PACKAGES[@]}")
[[ -n "$extras" ]] && want+=("${TEST_PACKAGES[@]}")
mapfile -t todo < <(missing "${want[@]}")
if (( ${#todo[@]} )); then
    SUDO=""
    [[ $(id -u) -ne 0 ]] && SUDO="sudo"
    echo "setup: installing ${todo[*]}" >&2
    $SUDO apt-get update -qq
    # HylaFAX's init script breaks unless USE_FAXGETTY is set before it runs.
    if printf '%s\n' "${todo[@]}" | grep -q hylafax-server; then
        $SUDO mkdir -p /etc/default
        grep -qs '^USE_FAXGETTY=' /etc/default/hylafax \
            || echo 'USE_FAXGETTY=no' | $SUDO tee -a /etc/default/hylafax >/dev/null
    fi
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
        -o Dpkg::Options::=--force-confold "${todo[@]}" >/dev/null
fi

PYTHON="${PYTHON:-python3}"
if [[ ! -x .venv/bin/python ]]; then
    "$PYTHON" -m venv .venv
fi
# Nothing to do when this very project file was installed with these extras.
stamp=".venv/.relances-installed"
want_stamp="$(sha256sum pyproject.toml | cut -d' ' -f1) ${extras}"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want_stamp" ]] \
   || [[ -f "$stamp" && -z "$extras" && "$(cut -d' ' -f1 "$stamp")" == "${want_stamp% }" ]]; then
    exit 0
fi

# pip and its build backend talk a lot; show what they said only when they fail.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! { .venv/bin/python -m pip install -q --upgrade pip "setuptools>=77" wheel \
       && .venv/bin/python -m pip install -q -e ".${extras}"; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "setup: pip install failed" >&2
    exit 1
fi
echo "$want_stamp" > "$stamp"
