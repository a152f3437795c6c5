#!/usr/bin/env bash
# A one-node Slurm cluster on 127.0.0.1 for Geode's tests and CI: munge, slurmctld and slurmd from Debian's
# slurm-wlm, this machine's cores, one partition `debug`.
#   scripts/slurm-local.sh install   apt packages (slurm-wlm, munge), once per machine
#   scripts/slurm-local.sh start     (installs if needed) configure and start; waits until the node is idle
#   scripts/slurm-local.sh stop      stop the daemons (state under $GEODE_SLURM_DIR is kept)
#   scripts/slurm-local.sh status
# Configuration and state live in $GEODE_SLURM_DIR (default /tmp/geode-slurm). The commands (sbatch, squeue,
# scontrol, scancel) find it through /etc/slurm/slurm.conf, a link this script makes only where no other
# configuration is installed. Must run as root (slurmd starts jobs as their user). No slurmdbd: `sacct` has no
# accounting store here, so Geode reads finished jobs' states from `scontrol show job` (MinJobAge 1 h).
set -euo pipefail
dir="${GEODE_SLURM_DIR:-/tmp/geode-slurm}"
conf="$dir/slurm.conf"
marker="# geode one-node cluster"

need_root() { [ "$(id -u)" = 0 ] || { echo "slurm-local.sh: must run as root (slurmd and munged)" >&2; exit 1; }; }

install() {
  need_root
  if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    echo "installing slurm-wlm and munge" >&2
    apt-get update -qq >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
    # Where the package started its own daemons (with its default configuration), stop them.
    pkill -x slurmctld 2>/dev/null || true
    pkill -x slurmd 2>/dev/null || true
    for _ in $(seq 50); do { pgrep -x slurmd || pgrep -x slurmctld; } >/dev/null || break; sleep 0.1; done
  fi
}

# Writes the configuration; answers 0 when it changed (running daemons must then restart).
configure() {
  mkdir -p "$dir"/{state,spool,log}
  local host cpus
  host=$(hostname -s)
  # The machine's cores (nproc alone follows OMP_NUM_THREADS, which tests set to 1).
  cpus=$(getconf _NPROCESSORS_ONLN)
  cat >"$conf.new" <<EOF
$marker (scripts/slurm-local.sh)
ClusterName=geode
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=6817
SlurmdPort=6818
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
MinJobAge=3600
MaxArraySize=100001
MaxJobCount=100000
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
MailProg=/bin/true
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
  local changed=1
  if cmp -s "$conf.new" "$conf"; then changed=0; rm -f "$conf.new"; else mv "$conf.new" "$conf"; fi
  mkdir -p /etc/slurm
  if [ -e /etc/slurm/slurm.conf ] && ! grep -q "$marker" /etc/slurm/slurm.conf; then
    echo "slurm-local.sh: /etc/slurm/slurm.conf belongs to another cluster; set SLURM_CONF=$conf to use this one" >&2
  else
    ln -sfn "$conf" /etc/slurm/slurm.conf
  fi
  # cgroup.conf is read by slurmd even with task/none on some builds; an empty one keeps it quiet.
  [ -e /etc/slurm/cgroup.conf ] || echo "CgroupPlugin=disabled" >/etc/slurm/cgroup.conf
  [ "$changed" = 1 ]
}

start_munge() {
  if ! pgrep -x munged >/dev/null; then
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    [ -s /etc/munge/munge.key ] || { dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null; }
    chown -R munge:munge /etc/munge /run/munge /var/log/munge /var/lib/munge 2>/dev/null || true
    chmod 0400 /etc/munge/munge.key
    if id munge >/dev/null 2>&1; then
      runuser -u munge -- /usr/sbin/munged
    else
      /usr/sbin/munged --force
    fi
  fi
  for _ in $(seq 50); do munge -n </dev/null >/dev/null 2>&1 && return; sleep 0.1; done
  echo "slurm-local.sh: munged did not answer" >&2
  exit 1
}

start() {
  need_root
  install
  if configure; then stop >/dev/null; fi
  start_munge
  export SLURM_CONF="$conf"
  pgrep -x slurmctld >/dev/null || slurmctld -f "$conf"
  pgrep -x slurmd >/dev/null || slurmd -f "$conf"
  local host state=""
  host=$(hostname -s)
  for _ in $(seq 150); do
    state=$(sinfo -h -n "$host" -o %t 2>/dev/null || true)
    case "$state" in
      idle|mix|alloc) echo "slurm: node $host $state, partition debug, SLURM_CONF=$conf"; return ;;
      down*|drain*|inval*) scontrol update nodename="$host" state=resume >/dev/null 2>&1 || true ;;
    esac
    sleep 0.2
  done
  echo "slurm-local.sh: node $host did not become idle (state '$state'); logs in $dir/log" >&2
  tail -n 20 "$dir/log/slurmctld.log" "$dir/log/slurmd.log" >&2 || true
  exit 1
}

stop() {
  pkill -x slurmd 2>/dev/null || true
  pkill -x slurmctld 2>/dev/null || true
  for _ in $(seq 50); do { pgrep -x slurmd || pgrep -x slurmctld; } >/dev/null || break; sleep 0.1; done
  echo "slurm: stopped"
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  status) SLURM_CONF="$conf" sinfo; SLURM_CONF="$conf" squeue ;;
  *) echo "usage: scripts/slurm-local.sh install|start|stop|status" >&2; exit 2 ;;
esac
