#!/usr/bin/env bash
# README command 2: install the exact locked versions (CPU torch from the local wheel) and run the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install -q torch==2.13.0 -c requirements/lock.txt
python -m pip install -q -e ".[dev,milvus,postgres]" -c requirements/lock.txt
python -m pytest -q "$@"
