#!/usr/bin/env bash
# One command on a fresh machine: install what is missing, then tell a story on the G4 target
# (PowerBook G4, AltiVec) under QEMU with the bundled stories260K model.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/ppc-llm run-qemu --target g4 -i "Once upon a time" "$@"
