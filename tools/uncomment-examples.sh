#!/bin/sh
# uncomment-examples.sh [IN]: prints IN (default config/segd.yaml) with the
# commented example blocks switched on: every line between a
# "# >>> example ..." and its "# <<< example ..." marker loses its "# ".
#
# A line ending in "# <<< example off" is commented out instead (the
# default an example replaces).
#
# Why a tool: the shipped config must load to the built-in defaults (a unit
# test checks it), yet its examples must stay valid; `make demo` runs segd
# on this output, and tests/integration/test_cli.sh checks it with
# `segd check-config`, so an example that rots fails the build.
awk '
  /# <<< example off$/ { match($0, /^ */); print substr($0, 1, RLENGTH) "# " substr($0, RLENGTH + 1); next }
  /^ *# >>> example/ { on = 1; print; next }
  /^ *# <<< example/ { on = 0; print; next }
  on { sub(/# ?/, ""); print; next }
  { print }
' "${1:-config/segd.yaml}"
