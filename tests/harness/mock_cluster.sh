# mock_cluster.sh: shell helpers to run seg_mock_cluster in a test.
#
# Why: shell integration tests need one Kafka-protocol cluster shared by
# segd, kcat and kafka-python, faults injected on cue, and no process left
# behind when a test fails halfway. Source this file, then:
#
#   mc_start "$WORK" --topic events:6 --topic transitions:3   # sets MC_BOOTSTRAP
#   trap 'mc_stop' EXIT            # or call mc_stop from your own trap
#   mc_cmd "broker_down 2"         # prints the text after OK; fails on ERR
#   leader=$(mc_leader events 0)
#   mc_stop
#
# The harness reads commands from a FIFO that this shell holds open on fd
# $MC_FD and writes one answer line per command to $MC_DIR/mc.out (the
# first line there is BOOTSTRAP). Its librdkafka log is $MC_DIR/mc.err.
# The count of commands sent is kept in $MC_DIR/mc.n, not in a variable,
# so mc_cmd works inside $(...) and other subshells too (one at a time).
# It exits by itself if this shell dies (it watches its parent), and every
# wait here is bounded (MC_TIMEOUT seconds, default 15).
#
# Binary: $SEG_MOCK_CLUSTER, else $SEG_BUILD/tests/harness/seg_mock_cluster,
# else it is compiled with cc into $MC_DIR (needs librdkafka-dev).

MC_PID=
MC_FD=
MC_DIR=
MC_BOOTSTRAP=
MC_TIMEOUT=${MC_TIMEOUT:-15}
MC_HARNESS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

mc_binary() {  # prints the harness binary path, building it if needed
  local b=${SEG_MOCK_CLUSTER:-}
  if [ -z "$b" ] && [ -n "${SEG_BUILD:-}" ] && [ -x "$SEG_BUILD/tests/harness/seg_mock_cluster" ]; then
    b=$SEG_BUILD/tests/harness/seg_mock_cluster
  fi
  if [ -z "$b" ]; then
    b=$MC_DIR/seg_mock_cluster
    if [ ! -x "$b" ]; then
      cc -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -o "$b" \
        "$MC_HARNESS_DIR/seg_mock_cluster.c" -lrdkafka >&2 || return 1
    fi
  fi
  echo "$b"
}

# mc_start DIR [seg_mock_cluster args...]: starts the cluster, waits for
# BOOTSTRAP, sets MC_BOOTSTRAP, MC_PID, MC_FD, MC_DIR. Returns 1 on failure.
mc_start() {
  MC_DIR=$1
  shift
  mkdir -p "$MC_DIR"
  local bin
  bin=$(mc_binary) || { echo "mc_start: no seg_mock_cluster binary" >&2; return 1; }
  rm -f "$MC_DIR/mc.ctl" "$MC_DIR/mc.out"
  mkfifo "$MC_DIR/mc.ctl"
  : >"$MC_DIR/mc.out"
  echo 0 >"$MC_DIR/mc.n"
  # The child blocks opening the FIFO until we open its write end below.
  "$bin" "$@" <"$MC_DIR/mc.ctl" >"$MC_DIR/mc.out" 2>"$MC_DIR/mc.err" &
  MC_PID=$!
  exec {MC_FD}>"$MC_DIR/mc.ctl"
  local i line
  for ((i = 0; i < MC_TIMEOUT * 20; i++)); do
    line=$(head -n1 "$MC_DIR/mc.out")
    case $line in
      "BOOTSTRAP "*) MC_BOOTSTRAP=${line#BOOTSTRAP }; return 0 ;;
    esac
    kill -0 "$MC_PID" 2>/dev/null || break
    sleep 0.05
  done
  echo "mc_start: seg_mock_cluster did not come up; its log:" >&2
  cat "$MC_DIR/mc.err" >&2
  mc_stop
  return 1
}

# mc_cmd "COMMAND ARGS": prints the answer's text after "OK" and returns 0;
# on "ERR ..." prints it to stderr and returns 1; 2 if no answer in time.
mc_cmd() {
  [ -n "$MC_FD" ] || { echo "mc_cmd: cluster not started" >&2; return 2; }
  # Writing to a FIFO nobody reads would kill this shell with SIGPIPE.
  kill -0 "$MC_PID" 2>/dev/null || { echo "mc_cmd '$*': harness exited" >&2; return 2; }
  local n
  n=$(($(cat "$MC_DIR/mc.n") + 1))
  echo "$n" >"$MC_DIR/mc.n"
  echo "$*" >&"$MC_FD" || { echo "mc_cmd: harness gone" >&2; return 2; }
  local want=$((n + 1)) i ans
  for ((i = 0; i < MC_TIMEOUT * 50; i++)); do
    if [ "$(wc -l <"$MC_DIR/mc.out")" -ge "$want" ]; then
      ans=$(sed -n "${want}p" "$MC_DIR/mc.out")
      case $ans in
        OK) return 0 ;;
        "OK "*) echo "${ans#OK }"; return 0 ;;
        *) echo "mc_cmd '$*': $ans" >&2; return 1 ;;
      esac
    fi
    kill -0 "$MC_PID" 2>/dev/null || { echo "mc_cmd '$*': harness exited" >&2; return 2; }
    sleep 0.02
  done
  echo "mc_cmd '$*': no answer in ${MC_TIMEOUT}s" >&2
  return 2
}

# mc_leader TOPIC PARTITION: prints the partition's leader broker id.
mc_leader() {
  local md w
  md=$(mc_cmd "metadata $1") || return 1
  for w in $md; do
    case $w in "$2":*) echo "${w#*:}"; return 0 ;; esac
  done
  echo "mc_leader: no partition $2 in: $md" >&2
  return 1
}

# mc_stop: quit, then TERM, then KILL; bounded; safe to call twice.
# Returns the harness's exit status (0 when it quit cleanly).
mc_stop() {
  local rc=0 i
  if [ -n "$MC_PID" ]; then
    if [ -n "$MC_FD" ]; then
      echo quit >&"$MC_FD" 2>/dev/null
      exec {MC_FD}>&-
      MC_FD=
    fi
    for ((i = 0; i < 100; i++)); do
      kill -0 "$MC_PID" 2>/dev/null || break
      sleep 0.05
    done
    if kill -0 "$MC_PID" 2>/dev/null; then
      kill -TERM "$MC_PID" 2>/dev/null
      sleep 1
      kill -KILL "$MC_PID" 2>/dev/null
    fi
    wait "$MC_PID" 2>/dev/null
    rc=$?
    MC_PID=
  fi
  return $rc
}
