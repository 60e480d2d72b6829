#!/bin/sh
# Install the tsforge edge runtime into a virtual environment and verify a bundle.
#
#   deploy/edge/install.sh BUNDLE [PREFIX]
#
# BUNDLE  a folder written by `tsforge export ... --bundle BUNDLE`
# PREFIX  where the virtual environment goes (default /opt/tsforge); the runtime is
#         then PREFIX/venv/bin/tsforge-edge
#
# Environment:
#   PYTHON       interpreter that creates the venv (default python3, >= 3.10)
#   TSFORGE_SRC  what to install as tsforge: a wheel or a source folder (default: the
#                source tree this script belongs to); installed with --no-deps, so only
#                the bundle's requirements (numpy, onnxruntime) are pulled in
#   PIP_ARGS     extra pip arguments, e.g. "--no-index --find-links /media/wheels" on a
#                box without internet
set -eu

if [ $# -lt 1 ]; then
    echo "usage: $0 BUNDLE [PREFIX]" >&2
    exit 64
fi
BUNDLE=$1
PREFIX=${2:-/opt/tsforge}
PYTHON=${PYTHON:-python3}
HERE=$(cd "$(dirname "$0")" && pwd)
TSFORGE_SRC=${TSFORGE_SRC:-$(cd "$HERE/../.." && pwd)}
PIP_ARGS=${PIP_ARGS:-}

if [ ! -f "$BUNDLE/bundle.json" ] || [ ! -f "$BUNDLE/requirements.txt" ]; then
    echo "error: $BUNDLE is not a tsforge bundle (bundle.json and requirements.txt expected);" \
         "export one with: tsforge export DATA.csv --bundle $BUNDLE" >&2
    exit 65
fi

"$PYTHON" -m venv "$PREFIX/venv"
# shellcheck disable=SC2086  # PIP_ARGS is a list of arguments
"$PREFIX/venv/bin/python" -m pip install --quiet --disable-pip-version-check $PIP_ARGS \
    -r "$BUNDLE/requirements.txt"
# shellcheck disable=SC2086
"$PREFIX/venv/bin/python" -m pip install --quiet --disable-pip-version-check $PIP_ARGS \
    --no-deps "$TSFORGE_SRC"
"$PREFIX/venv/bin/tsforge-edge" verify "$BUNDLE"
echo "installed: $PREFIX/venv/bin/tsforge-edge run $BUNDLE"
