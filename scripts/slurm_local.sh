#!/usr/bin/env bash
# A throw-away single-node SLURM cluster (munge, slurmctld, slurmd from the distribution's packages) in one folder.
#
# Usage:
#   scripts/slurm_local.sh start DIR   write DIR/slurm.conf and a munge key, start the three daemons on free
#                                      local ports, wait until the node takes jobs; prints the line
#                                      `export SLURM_CONF=DIR/slurm.conf` for sbatch, squeue and sacct.
#   scripts/slurm_local.sh stop DIR    stop the daemons started in DIR (by their pid files); safe to repeat.
#
# Nothing outside DIR is written: configuration, state, spool, logs, sockets and pid files all live there, so
# it runs beside (and never touches) a system SLURM. Packages (Debian): munge slurmctld slurmd slurm-client.
# Exit codes: 0 ok, 2 bad usage (or already running in DIR), 3 the cluster cannot start here (the reason is on stderr; the daemons that did
# start are stopped again).
#
# Environment: SLURM_LOCAL_TIMEOUT_S  how long to wait for each daemon (default 30).
set -euo pipefail

usage() {
    sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

cmd=${1:-}
dir=${2:-}
[[ -n $cmd && -n $dir ]] || usage
timeout_s=${SLURM_LOCAL_TIMEOUT_S:-30}

stop_daemons() {
    local name pid
    for name in slurmd slurmctld munged; do
        [[ -f $dir/$name.pid ]] || continue
        pid=$(cat "$dir/$name.pid" 2>/dev/null || true)
        if [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
            for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
        fi
        rm -f "$dir/$name.pid"
    done
}

cannot() {
    # One line naming why, the last lines of the daemons' logs for the curious, then everything stopped again.
    echo "error: the local SLURM cannot start: $*" >&2
    local log
    for log in "$dir"/munged.log "$dir"/slurmctld.log "$dir"/slurmd.log; do
        [[ -s $log ]] && { echo "--- tail of $log" >&2; tail -n 5 "$log" >&2; }
    done
    stop_daemons
    exit 3
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

wait_for() {
    # wait_for WHAT COMMAND...: run COMMAND until it succeeds or the timeout passes.
    local what=$1 deadline=$((SECONDS + timeout_s))
    shift
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || cannot "$what did not come up within ${timeout_s} s"
        sleep 0.2
    done
}

case $cmd in
    stop)
        [[ -d $dir ]] && stop_daemons
        exit 0
        ;;
    start) ;;
    *) usage ;;
esac

for tool in munged slurmctld slurmd sbatch scontrol python3; do
    command -v "$tool" >/dev/null 2>&1 || PATH=$PATH:/usr/sbin:/sbin
    command -v "$tool" >/dev/null 2>&1 ||
        cannot "$tool is not installed (Debian: apt-get install munge slurmctld slurmd slurm-client)"
done

mkdir -p "$dir" 2>/dev/null || { echo "error: the local SLURM cannot start: cannot create $dir" >&2; exit 3; }
dir=$(cd "$dir" && pwd)
for name in munged slurmctld slurmd; do
    pid=$(cat "$dir/$name.pid" 2>/dev/null || true)
    if [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null; then
        echo "error: a local SLURM already runs in $dir ($name, pid $pid); stop it first: $0 stop $dir" >&2
        exit 2
    fi
done
mkdir -p "$dir/state" "$dir/spool" "$dir/munge" 2>/dev/null || cannot "cannot create its folders in $dir"
chmod 0700 "$dir/munge"
user=$(id -un)
node=mlee-node
cpus=$(nproc)
ctld_port=$(free_port)
slurmd_port=$(free_port)
while [[ $slurmd_port == "$ctld_port" ]]; do slurmd_port=$(free_port); done

# munge: a fresh key and a private socket. --force: munged refuses keys and sockets under a world-writable
# folder such as /tmp unless forced; the folder it uses is 0700 and ours alone.
dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
chmod 0400 "$dir/munge/munge.key"
munged --force --socket="$dir/munge/munge.socket" --key-file="$dir/munge/munge.key" \
    --pid-file="$dir/munged.pid" --log-file="$dir/munged.log" --seed-file="$dir/munge/munged.seed" \
    >>"$dir/munged.log" 2>&1 || cannot "munged exited with code $?"
wait_for munged test -S "$dir/munge/munge.socket"

# Memory in MB as slurmd reports it would be checked against RealMemory: claim little, so the node never drains.
cat >"$dir/slurm.conf" <<EOF
# Written by scripts/slurm_local.sh: a one-node test cluster living in $dir.
ClusterName=mlee-local
SlurmctldHost=$(hostname -s)(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=$user
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool/%n
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SwitchType=switch/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
MinJobAge=300
NodeName=$node NodeHostname=$(hostname -s) NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=100 State=UNKNOWN
PartitionName=local Nodes=$node Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
EOF
if [[ $user != root ]]; then
    sed -i 's/^SlurmdUser=root$/SlurmdUser='"$user"'/' "$dir/slurm.conf"
fi
export SLURM_CONF=$dir/slurm.conf

slurmctld -f "$SLURM_CONF" -i >>"$dir/slurmctld.log" 2>&1 || cannot "slurmctld exited with code $?"
wait_for slurmctld scontrol ping
slurmd -f "$SLURM_CONF" -N "$node" >>"$dir/slurmd.log" 2>&1 || cannot "slurmd exited with code $?"

node_ready() {
    local state
    state=$(scontrol show node "$node" -o 2>/dev/null | sed -n 's/.* State=\([^ ]*\).*/\1/p')
    [[ $state == IDLE* || $state == MIXED* || $state == ALLOCATED* ]]
}
wait_for "the node $node" node_ready
echo "export SLURM_CONF=$SLURM_CONF"
