#!/usr/bin/env bash
# One command for the whole test suite (unit and integration: real cross-gcc and real QEMU).
# Installs what is missing first. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest "$@"
