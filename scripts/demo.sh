#!/usr/bin/env bash
# Install and run the demo on its embedded defaults: in-process broker, SQLite, simulated site.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/facility demo "$@"
