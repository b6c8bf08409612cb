#!/usr/bin/env bash
# Install everything the tests need (system services, venv) and run lint, types and tests.
# This is the command README.md gives and .ci/run calls.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-system-deps.sh
bash scripts/bootstrap.sh dev
echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== mypy"
.venv/bin/mypy
echo "== import boundaries"
.venv/bin/lint-imports
echo "== profiles"
.venv/bin/facility profiles check --site sites/demo/site.yaml
echo "== pytest"
.venv/bin/pytest "$@"
