#!/usr/bin/env bash
# A real single-node Slurm cluster on this machine (slurmctld + slurmd + munge), for the Slurm tests and
# for trying the sbatch scripts before using a real cluster. Needs root, slurm-wlm and munge.
#   slurm/local-cluster.sh start DIR   start the daemons with their state under DIR; prints the SLURM_CONF line
#   slurm/local-cluster.sh stop DIR    stop only the daemons this script started (by their pid files)
# Ports 16817/16818 (override with POPCODE_SLURM_PORT) keep clear of a system Slurm.
set -euo pipefail
action=${1:?usage: local-cluster.sh start|stop DIR}
dir=$(realpath -m "${2:?usage: local-cluster.sh start|stop DIR}")
port=${POPCODE_SLURM_PORT:-16817}

stop() {
  for name in slurmd slurmctld munged; do
    local pidfile="$dir/run/$name.pid"
    [[ -f "$pidfile" ]] || continue
    local pid
    pid=$(cat "$pidfile")
    if kill "$pid" 2>/dev/null; then
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -f "$pidfile"
  done
}

start() {
  command -v slurmctld >/dev/null && command -v munged >/dev/null || { echo "slurm-wlm and munge are not installed" >&2; return 1; }
  mkdir -p "$dir"/{state,spool,log,run}
  local host cpus
  host=$(hostname -s)
  cpus=$(nproc)
  # munge: reuse a running daemon, else start one as user munge and remember its pid.
  if ! pgrep -x munged >/dev/null; then
    [[ -f /etc/munge/munge.key ]] || mungekey -c >/dev/null 2>&1 || dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 2>/dev/null
    chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
    mkdir -p /run/munge /var/log/munge /var/lib/munge && chown munge:munge /run/munge /var/log/munge /var/lib/munge
    runuser -u munge -- /usr/sbin/munged --pid-file="$dir/run/munged.pid" 2>/dev/null ||
      runuser -u munge -- /usr/sbin/munged
    sleep 0.5
    [[ -f "$dir/run/munged.pid" ]] || pgrep -xn munged > "$dir/run/munged.pid"
    chmod 644 "$dir/run/munged.pid" 2>/dev/null || true
  fi
  cat > "$dir/slurm.conf" <<CONF
ClusterName=popcodelocal
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
SlurmctldPort=$port
SlurmdPort=$((port + 1))
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ReturnToService=2
SchedulerType=sched/backfill
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
NodeName=$host CPUs=$cpus RealMemory=20000 State=UNKNOWN
PartitionName=local Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
  slurmctld -f "$dir/slurm.conf"
  slurmd -f "$dir/slurm.conf"
  export SLURM_CONF="$dir/slurm.conf"
  for _ in $(seq 60); do
    if sinfo -h -o '%T' 2>/dev/null | grep -qE 'idle|mixed'; then
      echo "export SLURM_CONF=$dir/slurm.conf"
      return 0
    fi
    sleep 0.5
  done
  echo "Slurm did not come up; logs in $dir/log" >&2
  return 1
}

case "$action" in
  start) start || { stop; exit 1; } ;;
  stop) stop ;;
  *) echo "usage: local-cluster.sh start|stop DIR" >&2; exit 2 ;;
esac
