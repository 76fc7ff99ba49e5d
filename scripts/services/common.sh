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
