#!/usr/bin/env bash
# The head's MLflow server (127.0.0.1:5000, SQLite store ~/mlflow/mlflow.db), owned through
# its pid file ~/mlflow/server.pid: only the server this script started is ever stopped.
#   bash ~/dnt_rllib/cluster/mlflow_server.sh start ARTIFACTS   # head_start_ray_commands
#   bash ~/dnt_rllib/cluster/mlflow_server.sh stop              # you, before `ray down`
# `start` stops the server of an earlier `ray up`, starts one (ARTIFACTS: a folder or
# s3://bucket/prefix) and returns once it answers, so it is listening when `ray up` returns.
set -euo pipefail
dir="$HOME/mlflow"
pidfile="$dir/server.pid"
health=http://127.0.0.1:5000/health

stop() {
  local pid
  pid=$(cat "$pidfile" 2>/dev/null) || return 0
  # The server and its workers form one process group (setsid below). Stop that group, and
  # only while its leader is still an MLflow process (a stale file may name a reused pid).
  if grep -qs mlflow "/proc/$pid/cmdline"; then
    kill -TERM -- "-$pid" 2>/dev/null || true
    for _ in $(seq 30); do
      kill -0 -- "-$pid" 2>/dev/null || break
      sleep 1
    done
    kill -KILL -- "-$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}

start() {
  local pid
  stop
  mkdir -p "$dir"
  setsid mlflow server --host 127.0.0.1 --port 5000 \
    --backend-store-uri "sqlite:///$dir/mlflow.db" --artifacts-destination "$1" \
    </dev/null >"$dir/server.log" 2>&1 &
  pid=$!
  echo "$pid" >"$pidfile"
  for _ in $(seq 120); do
    if python -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' \
      "$health" 2>/dev/null; then
      echo "MLflow server (pid $pid) listens on 127.0.0.1:5000"
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 1
  done
  echo "MLflow did not answer on 127.0.0.1:5000; the end of $dir/server.log:" >&2
  tail -n 20 "$dir/server.log" >&2
  stop
  return 1
}

case "${1:-}" in
  start) start "${2:?usage: mlflow_server.sh start ARTIFACTS_DESTINATION}" ;;
  stop) stop ;;
  *)
    echo "usage: mlflow_server.sh start ARTIFACTS_DESTINATION | stop" >&2
    exit 2
    ;;
esac
