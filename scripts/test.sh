#!/usr/bin/env bash
# Set Relances up with its test extras and the real servers the tests talk
# to (PostgreSQL, CUPS with cups-pdf, HylaFAX, started by the tests'
# fixtures), check that imports run one way (docs/architecture.md), then
# run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh --test
scripts/services.sh

# An upward import between the stages fails here, naming the modules and the line.
.venv/bin/lint-imports --no-cache --no-logo

set +e
.venv/bin/python -m pytest "$@"
status=$?
set -e
if [[ $status -eq 5 ]]; then
    echo "test: pytest collected no tests" >&2
    exit 1
fi
exit $status
