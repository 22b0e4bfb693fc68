#!/bin/sh
# bench/run.sh BUILD_DIR: the `make bench` suite, now bench/run.py (Python, one module per case).
exec /usr/bin/python3 "$(dirname "$0")/run.py" "$@"
