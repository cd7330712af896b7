#!/usr/bin/env bash
# README command 1: install the exact locked versions (CPU torch from the local wheel) and start the service on the
# embedded demo data.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install -q torch==2.13.0 -c requirements/lock.txt
python -m pip install -q -e . -c requirements/lock.txt
exec chainmatch serve "$@"
