#!/usr/bin/env bash
# The GPU check in one go (bench/gpu_check.py says what it measures). On the GPU machine, from the
# repository root, with torch installed and the four Fashion-MNIST .gz files in DIR:
#     bash bench/gpu_check.sh --data-dir DIR
# Anywhere, in a minute on the CPU (the tests run it so):
#     bash bench/gpu_check.sh --smoke
set -euo pipefail
cd "$(dirname "$0")/.."
python=python3
if [ -x .venv/bin/python ]; then python=.venv/bin/python; fi
# The checkout's own cnnlab, installed or not (a GPU machine may have torch but no cnnlab).
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
exec "$python" bench/gpu_check.py "$@"
