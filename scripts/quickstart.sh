#!/usr/bin/env bash
# Set Relances up and run one whole reminder pass on the embedded default:
# a SQLite database in ./data, the sample customers and invoices (the two
# rows of the ERP's screen and a few more), escalation as of today, and the
# reminder letters written as PDFs into ./data/letters; and a first account,
# admin, for the web screen.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh

relances() { .venv/bin/relances --config settings.yaml "$@"; }

# The sample invoices' own PDFs, joined to the formal notices (level 3).
mkdir -p invoices
cp -n daemon/sample/invoices/*.pdf invoices/ 2>/dev/null || true

relances check-config
relances init
relances import customers daemon/sample/customers.csv
relances import invoices daemon/sample/seed.tsv
relances import invoices daemon/sample/invoices.tsv
relances escalate
relances send
echo
relances list
echo
echo "Letters written to $(pwd)/data/letters:"
ls -1 data/letters

# A first account for the web screen, once: its password is kept in data/.
if ! relances user list | grep -q $'^admin\t'; then
    (umask 077; .venv/bin/python -c 'import secrets; print(secrets.token_urlsafe(12))' \
        > data/web-admin-password)
    relances user add admin --role admin < data/web-admin-password
fi
echo
echo "Web screen: run .venv/bin/relances web, open http://127.0.0.1:8080/relances and log in"
echo "as admin with the password in $(pwd)/data/web-admin-password"
