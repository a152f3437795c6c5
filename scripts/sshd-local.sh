#!/usr/bin/env bash
# An OpenSSH server on 127.0.0.1 for Geode's SSH-submission tests, with a host key and a client key made
# for the test (nothing of the user's own is read or changed).
#   scripts/sshd-local.sh start    (installs openssh-server if needed) keys, config, sshd on port $GEODE_SSHD_PORT
#   scripts/sshd-local.sh stop
# Everything lives in $GEODE_SSHD_DIR (default /tmp/geode-sshd):
#   ssh_config     `Host geode-test` → 127.0.0.1, the client key, known_hosts below (ssh -F ssh_config geode-test)
#   known_hosts    empty at start: the tests decide what the client knows
#   host_key.pub   the server's key, to add to known_hosts
# Must run as root (sshd; the test logs in as the current user).
set -euo pipefail
dir="${GEODE_SSHD_DIR:-/tmp/geode-sshd}"
port="${GEODE_SSHD_PORT:-2222}"

start() {
  [ "$(id -u)" = 0 ] || { echo "sshd-local.sh: must run as root" >&2; exit 1; }
  if [ ! -x /usr/sbin/sshd ] || ! command -v ssh >/dev/null; then
    apt-get update -qq >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openssh-server openssh-client >/dev/null
  fi
  mkdir -p "$dir" /run/sshd
  chmod 700 "$dir"
  [ -f "$dir/host_key" ] || ssh-keygen -q -t ed25519 -N '' -C geode-test-host -f "$dir/host_key"
  [ -f "$dir/client_key" ] || ssh-keygen -q -t ed25519 -N '' -C geode-test-client -f "$dir/client_key"
  cp "$dir/client_key.pub" "$dir/authorized_keys"
  touch "$dir/known_hosts"
  cat >"$dir/sshd_config" <<CONF
Port $port
ListenAddress 127.0.0.1
HostKey $dir/host_key
PidFile $dir/sshd.pid
AuthorizedKeysFile $dir/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
StrictModes no
AcceptEnv LANG LC_*
Subsystem sftp internal-sftp
CONF
  cat >"$dir/ssh_config" <<CONF
Host geode-test
  HostName 127.0.0.1
  Port $port
  User $(id -un)
  IdentityFile $dir/client_key
  IdentitiesOnly yes
  UserKnownHostsFile $dir/known_hosts
  GlobalKnownHostsFile /dev/null
  LogLevel ERROR
CONF
  if [ -f "$dir/sshd.pid" ] && kill -0 "$(cat "$dir/sshd.pid")" 2>/dev/null; then
    echo "sshd: running on 127.0.0.1:$port"; return
  fi
  /usr/sbin/sshd -f "$dir/sshd_config" -E "$dir/sshd.log"
  for _ in $(seq 50); do
    ssh-keyscan -T 2 -p "$port" 127.0.0.1 >/dev/null 2>&1 && { echo "sshd: running on 127.0.0.1:$port, config $dir/ssh_config"; return; }
    sleep 0.1
  done
  echo "sshd-local.sh: sshd did not answer on 127.0.0.1:$port" >&2; cat "$dir/sshd.log" >&2 || true; exit 1
}

stop() {
  if [ -f "$dir/sshd.pid" ]; then kill "$(cat "$dir/sshd.pid")" 2>/dev/null || true; rm -f "$dir/sshd.pid"; fi
  echo "sshd: stopped"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: scripts/sshd-local.sh start|stop" >&2; exit 2 ;;
esac
