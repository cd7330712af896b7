#!/usr/bin/env bash
# README command 1: install (CPU torch first, from the local wheel) and start the service on the embedded demo data.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install -q torch==2.13.0
python -m pip install -q -e .
exec chainmatch serve "$@"
