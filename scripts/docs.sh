#!/usr/bin/env bash
# The documentation site (MkDocs, mkdocs-material, mkdocstrings, mkdocs-jupyter; mkdocs.yml).
#   bash scripts/docs.sh          serve it at http://127.0.0.1:8000/, rebuilt as pages change
#   bash scripts/docs.sh build    build it into build/site with --strict, as CI does: a broken link,
#                                 a missing page or a docstring that does not parse fails the build
# Either sets cnnlab up first (scripts/setup.sh) and installs the `docs` extra into .venv. The
# tutorial page is the notebook run with small settings (docs/hooks/tutorial.py); a build always
# runs it afresh, a server reuses its last run while the notebook is unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
if ! .venv/bin/python -c "import mkdocs, material, mkdocstrings_handlers.python, mkdocs_jupyter" 2>/dev/null \
   || [ pyproject.toml -nt .venv/.cnnlab-docs-installed ]; then
  echo "[docs] installing the docs extra" >&2
  .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[docs]"
  touch .venv/.cnnlab-docs-installed
fi

case "${1:-serve}" in
  serve) exec .venv/bin/mkdocs serve ;;
  build)
    rm -rf build/docs-tutorial
    exec .venv/bin/mkdocs build --strict ;;
  *) echo "usage: bash scripts/docs.sh [serve|build]" >&2; exit 2 ;;
esac
