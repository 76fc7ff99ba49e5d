# Shared by the service scripts (sourced, not run). Each script defines log() first.

# Prints the first port in FROM..TO that nothing on loopback listens on.
free_port() {
  local from="$1" to="$2" port
  for port in $(seq "$from" "$to"); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return 0
    fi
  done
  log "no free port between $from and $to"
  exit 1
}

# Stops the process a `start` recorded in RECORD ("PID DIR"), with its children (spark-submit
# runs the JVM as one), and deletes DIR and the record.
stop_recorded() {
  local record="$1" pid dir
  [ -f "$record" ] || return 0
  read -r pid dir < "$record"
  if kill -0 "$pid" 2>/dev/null; then
    pkill -TERM -P "$pid" 2>/dev/null || true
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    pkill -KILL -P "$pid" 2>/dev/null || true
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -rf "$dir" "$record"
  log "stopped"
}
