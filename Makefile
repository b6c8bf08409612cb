# Thin wrappers; the scripts are the source of truth (README, CI).
.PHONY: demo test test-fast lint type fmt dev
dev:
	bash scripts/bootstrap.sh dev
demo:
	bash scripts/demo.sh
test:
	bash scripts/test.sh
# Unit tests and the profile catalogue: no services started, about half a minute.
test-fast: dev
	.venv/bin/pytest -q tests/unit tests/profiles
lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/lint-imports
type:
	.venv/bin/mypy
fmt:
	.venv/bin/ruff format . && .venv/bin/ruff check --fix .
