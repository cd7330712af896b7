#!/usr/bin/env bash
# README command 2: install (CPU torch first, from the local wheel) and run the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install -q torch==2.13.0
python -m pip install -q -e ".[dev,milvus]"
python -m pytest -q "$@"
