#!/usr/bin/env bash
# Make sure the servers the tests need outside their own fixtures are up:
# PostgreSQL on 127.0.0.1:5432 with the database "test".
set -euo pipefail

pg_ready() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }

if ! pg_ready; then
    if ! command -v pg_ctlcluster >/dev/null; then
        SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >/dev/null
    fi
    version=$(ls /etc/postgresql | sort -V | tail -1)
    pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null \
        || pg_ctlcluster "$version" main start
    for _ in $(seq 30); do pg_ready && break; sleep 1; done
fi
pg_ready || { echo "services: PostgreSQL did not start on 127.0.0.1:5432" >&2; exit 1; }
psql -h 127.0.0.1 -U postgres -d test -c 'select 1' -q -t >/dev/null 2>&1 \
    || psql -h 127.0.0.1 -U postgres -c 'create database test' -q >/dev/null
