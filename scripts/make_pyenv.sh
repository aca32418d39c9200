#!/usr/bin/env bash
# Make the Python environment for the peer benchmarks and the data generators: a virtual
# environment `.venv` in the repository root with the pinned packages of requirements-peers.txt
# (and, with --train, requirements-train.txt for the model-training scripts).
# Usage: scripts/make_pyenv.sh [--train]      then e.g. .venv/bin/python benches/peers/deconv.py
set -euo pipefail
cd "$(dirname "$0")/.."
req=requirements-peers.txt
[ "${1:-}" = "--train" ] && req=requirements-train.txt
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -r "$req"
echo "ready: .venv/bin/python ($(.venv/bin/python --version)) with $req"
