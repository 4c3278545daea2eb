#!/usr/bin/env bash
# Install the test dependencies and run every test. The tests start their own Redis,
# PostgreSQL, SMTP servers, Celery workers and Chromium, on loopback, in temporary dirs.
# Extra arguments go to pytest (e.g. scripts/test.sh tests/unit -x --backend sqlite).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_debian_packages python3-venv redis-server postgresql chromium postfix dovecot-imapd wrk libmail-dkim-perl \
  spamassassin
ensure_venv test
compile_catalogs
echo "== lint"
.venv/bin/ruff check .
.venv/bin/lint-imports --no-cache >/dev/null && echo "import contracts kept"
.venv/bin/clarion i18n check
echo "== tests"
exec .venv/bin/python -m pytest "$@"
