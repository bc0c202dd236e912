#!/usr/bin/env bash
# Set up cnnlab from nothing: a virtual environment in .venv, the dependencies, and the data.
# Safe to run again: each step is skipped when it is already done.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '[setup] %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi; }
apt_updated=
apt_install() {
  command -v apt-get >/dev/null || return 1
  if [ -z "$apt_updated" ]; then as_root apt-get update -q >/dev/null || return 1; apt_updated=1; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null
}

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  say "creating .venv with $($PYTHON --version)"
  if ! $PYTHON -m venv .venv 2>/dev/null; then
    rm -rf .venv
    say "python3 -m venv failed; installing Debian's python3-venv"
    apt_install python3-venv && $PYTHON -m venv .venv
  fi
fi
PIP=(.venv/bin/python -m pip install -q --disable-pip-version-check)

# torch is pinned here, not in pyproject.toml: 2.13.0 is the CPU wheel; an open range would pull
# a multi-GB CUDA build. pyproject keeps a range so cnnlab installs beside other torch versions.
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  say "installing torch==2.13.0"
  "${PIP[@]}" torch==2.13.0
fi
if ! .venv/bin/python -c "import cnnlab, cloudpickle, onnxruntime, pytest, hypothesis, nbclient, tensorboard" 2>/dev/null \
   || [ pyproject.toml -nt .venv/.cnnlab-installed ]; then
  say "installing cnnlab and its dependencies"
  "${PIP[@]}" -e ".[test,export,tensorboard]"
  touch .venv/.cnnlab-installed
fi

# The data: already somewhere cnnlab looks, else the official mirrors, else Debian's package.
if ! .venv/bin/cnnlab data where >/dev/null 2>&1; then
  say "fetching Fashion-MNIST"
  if ! .venv/bin/cnnlab data download --retries 2 --timeout 20; then
    say "the mirrors are unreachable; trying Debian's dataset-fashion-mnist package"
    apt_install dataset-fashion-mnist || say "could not install dataset-fashion-mnist (needs root and apt-get)"
  fi
fi
.venv/bin/cnnlab data where >&2 || say "no data: real-data tests will be skipped and \`cnnlab train\` will fail"
