#!/usr/bin/env bash
# The checks CI runs, in order: the linter, the type check, then the tests (arguments go to pytest).
#   bash scripts/check.sh --lint-only    ruff + mypy only (seconds to a minute; what a contributor runs before committing)
#   bash scripts/check.sh [PYTEST ARGS]  ruff + mypy, then pytest
# Configured in pyproject.toml ([tool.ruff], [tool.mypy]). `.venv/bin/ruff check --fix .` applies the safe fixes.
set -euo pipefail
cd "$(dirname "$0")/.."

.venv/bin/ruff check .
.venv/bin/python -m mypy
if [[ "${1:-}" == "--lint-only" ]]; then
  exit 0
fi
.venv/bin/python -m pytest "$@"
