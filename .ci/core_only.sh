#!/usr/bin/env bash
# CI, after `make test`: the core package alone, installed as a user would install it (not editable,
# no extras) into a fresh environment, then checked by .ci/core_only_check.py. `make test` runs in
# the environment with every extra, so it cannot see a core module that imports an extra's package,
# a runtime that slipped back into the core dependencies, or a torch range that drifted.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
PYTHON=${PYTHON:-python3}
start=$SECONDS
work=$(mktemp -d)
trap '[ -n "${KEEP_CORE_VENV:-}" ] || rm -rf "$work"' EXIT
# The checkout's files (tracked, and untracked but not ignored), without build/ or egg-info left by an
# earlier build, which setuptools would package again.
mkdir "$work/src"
git ls-files -z --cached --others --exclude-standard \
    | tar --null --files-from=- --ignore-failed-read -cf - | tar -xf - -C "$work/src"
"$PYTHON" -m venv "$work/venv"
bin=$work/venv/bin
"$bin/pip" install --quiet --upgrade pip==26.3
"$bin/pip" install --quiet torch==2.13.0  # first, alone: the CPU build (a bare torch is a multi-GB CUDA build)
"$bin/pip" install --quiet -c constraints.txt "$work/src"
installed=$SECONDS
# Run outside the checkout, so that what is imported is the installed package.
(cd "$work" && "$bin/python" "$root/.ci/core_only_check.py" "$root")
echo "core-only install: $(du -sh "$work/venv" | cut -f1) venv, $((installed - start)) s to install," \
    "$((SECONDS - start)) s in all"
