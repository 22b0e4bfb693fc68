#!/usr/bin/env bash
# Installs what segd needs to build, test and demo on Debian bookworm, from
# Debian's own packages. Idempotent: with --check it only reports whether
# anything is missing (exit 1 if so), and `make` calls apt-get only then.
set -euo pipefail

PKGS=(
  build-essential cmake pkg-config clang libclang-rt-14-dev
  libyaml-dev libmsgpack-dev libcjson-dev libsimdjson-dev libcmocka-dev
  librdkafka-dev libmicrohttpd-dev libsystemd-dev zlib1g-dev libgsl-dev systemd
  python3 python3-kafka python3-msgpack python3-yaml python3-scipy python3-mpmath kcat procps
  chromium prometheus docker-compose
)

# What each package provides that we can test for without dpkg-query races.
have_all() {
  local h
  for h in yaml.h msgpack.h cjson/cJSON.h simdjson.h cmocka.h librdkafka/rdkafka.h \
           librdkafka/rdkafka_mock.h microhttpd.h systemd/sd-daemon.h zlib.h \
           gsl/gsl_sf_hyperg.h gsl/gsl_multimin.h; do
    [ -e "/usr/include/$h" ] || { echo "missing header: $h"; return 1; }
  done
  local t
  # chromium: the live page's test (a real browser); prometheus: promtool,
  # which checks and unit-tests docs/prometheus/segd-rules.yaml
  for t in cmake pkg-config cc c++ clang clang++ kcat systemd-analyze chromium promtool docker-compose; do
    command -v "$t" >/dev/null 2>&1 || { echo "missing tool: $t"; return 1; }
  done
  [ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import kafka, msgpack, yaml, scipy, mpmath' 2>/dev/null \
    || { echo "missing: python3-kafka, python3-msgpack, python3-yaml, python3-scipy or python3-mpmath"; return 1; }
  # libFuzzer runtime ships in libclang-rt-14-dev
  ls /usr/lib/llvm-14/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1 \
    || { echo "missing: libclang-rt-14-dev"; return 1; }
  return 0
}

if [ "${1:-}" = "--check" ]; then
  have_all
  exit $?
fi

if have_all >/dev/null; then
  exit 0
fi

if [ "$(id -u)" != 0 ]; then
  SUDO=sudo
  command -v sudo >/dev/null || { echo "install-deps: not root and no sudo; install: ${PKGS[*]}" >&2; exit 1; }
else
  SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${PKGS[@]}"
have_all
