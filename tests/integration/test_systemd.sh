#!/usr/bin/env bash
# systemd/segd.service: it must verify cleanly against the real binary, and
# its hardening must keep `systemd-analyze security` exposure at or below
# MAX_EXPOSURE (1.2 when written; 10 is unprotected). Also the packaging
# that cannot run here: docker/compose.yaml is parsed by docker-compose.
set -uo pipefail
MAX_EXPOSURE=${MAX_EXPOSURE:-2.0}
pass=0 fail=0
ok()  { pass=$((pass + 1)); echo "ok   $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
unit="$SEG_SRC/systemd/segd.service"
# verify resolves ExecStart; point it at the binary under test.
sed "s#/usr/bin/segd#$SEGD#" "$unit" > "$tmp/segd.service"

if out=$(systemd-analyze verify "$tmp/segd.service" 2>&1) && [ -z "$out" ]; then
  ok "systemd-analyze verify is clean"
else
  bad "systemd-analyze verify: $out"
fi

sec=$(systemd-analyze security --offline=yes "$tmp/segd.service" 2>&1)
score=$(printf '%s\n' "$sec" | sed -n 's/.*Overall exposure level for segd.service: \([0-9.]*\).*/\1/p')
if [ -n "$score" ] && awk -v s="$score" -v m="$MAX_EXPOSURE" 'BEGIN{exit !(s <= m)}'; then
  ok "security exposure $score <= $MAX_EXPOSURE"
else
  bad "security exposure '${score:-?}' above $MAX_EXPOSURE"; printf '%s\n' "$sec" | tail -20
fi

for key in Type=notify WatchdogSec= DynamicUser=yes StateDirectory=segd ProtectSystem=strict \
           NoNewPrivileges=yes EnvironmentFile=; do
  grep -q "^$key" "$unit" && ok "has $key" || bad "missing $key"
done

# The unit's TimeoutStopSec must exceed segd's default shutdown_timeout.
stop=$(sed -n 's/^TimeoutStopSec=\([0-9]*\)s/\1/p' "$unit")
st=$(sed -n 's/^ *shutdown_timeout: *\([0-9]*\)s.*/\1/p' "$SEG_SRC/config/segd.yaml")
[ -n "$stop" ] && [ -n "$st" ] && [ "$stop" -gt "$st" ] && ok "TimeoutStopSec $stop > shutdown_timeout $st" \
  || bad "TimeoutStopSec '$stop' vs shutdown_timeout '$st'"

# docker/compose.yaml cannot run here (no Docker engine), but it can be
# parsed and resolved: docker-compose config (Debian docker-compose).
if command -v docker-compose >/dev/null; then
  if out=$(cd "$SEG_SRC" && docker-compose -f docker/compose.yaml config 2>&1) &&
     printf '%s\n' "$out" | grep -q '^  segd:' && printf '%s\n' "$out" | grep -q 'dockerfile: docker/Dockerfile'; then
    ok "docker-compose config parses and resolves docker/compose.yaml (segd, kafka, generator)"
  else
    bad "docker-compose config on docker/compose.yaml: $(printf '%s\n' "$out" | tail -5)"
  fi
else
  bad "docker-compose is not installed (scripts/install-deps.sh installs it)"
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
