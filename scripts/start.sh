#!/usr/bin/env bash
# Install everything, set up the embedded SQLite database, an owner and a demo, and start
# web, worker, beat, Redis and the local mail catcher. Ctrl-C stops them all.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_debian_packages python3-venv redis-server
ensure_venv
compile_catalogs
exec .venv/bin/clarion up "$@"
