#!/usr/bin/env bash
# Set up a fresh machine: a virtual environment in .venv with everything the app needs.
#   bash scripts/setup.sh          app + engine
#   bash scripts/setup.sh --tests  also Debian's Chromium for the real-browser tests (needs root or sudo)
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -r requirements.txt
.venv/bin/python -m pip install --quiet --no-deps -e .

if [[ "${1:-}" == "--tests" ]] && ! command -v chromium >/dev/null 2>&1; then
  sudo_cmd=""
  [[ "$(id -u)" != "0" ]] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq chromium >/dev/null
fi
