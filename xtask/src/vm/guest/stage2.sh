# Stage 2 of the `cargo xtask vm` guest: PID 1 (busybox ash) on the host's / (9p, read-only,
# under a tmpfs overlay), started by /init with the cgroup version as $1. Mounts /tmp and the
# cgroup hierarchy, runs the test binaries of plan.sh in $E2E_LANES lanes (each lane takes
# the next binary in the plan's order when its last one ends), reports on the console
# (protocol in xtask/src/vm/console.rs) and through isa-debug-exit, and powers off.
set -o pipefail
B=/run/e2e/busybox
CG=$1

finish() {
    echo "E2E-RESULT rc=$1 uptime=$($B cut -d' ' -f1 /proc/uptime)"
    $B printf "\\$($B printf %o $(($1 + 1)))" | $B dd of=/dev/port bs=1 seek=244 count=1 2>/dev/null
    $B poweroff -f
}
fail() {
    echo "E2E-ERROR $2"
    finish "$1"
}

. /run/e2e/plan.sh || fail 124 "cannot read the plan"
# The plan's keep_paths names the host directories below /tmp that the tests need (a workspace
# cloned there): they are set aside before the guest's own /tmp covers them, then put back.
i=0
keep() {
    $B mkdir -p "/run/e2e/keep/$i" && $B mount --bind "$1" "/run/e2e/keep/$i" ||
        fail 120 "cannot set $1 aside"
    i=$((i + 1))
}
keep_paths
$B mount -t tmpfs -o mode=1777 tmpfs /tmp || fail 120 "cannot mount a tmpfs on /tmp"
i=0
keep() {
    $B mkdir -p "$1" && $B mount --move "/run/e2e/keep/$i" "$1" || fail 120 "cannot put $1 back"
    i=$((i + 1))
}
keep_paths
$B mkdir -p /dev/shm /dev/pts /dev/mqueue
$B mount -t tmpfs -o mode=1777 tmpfs /dev/shm || fail 120 "cannot mount a tmpfs on /dev/shm"
$B mount -t devpts -o newinstance,ptmxmode=0666 devpts /dev/pts || fail 120 "cannot mount devpts"

case "$CG" in
v2)
    $B mount -t cgroup2 cgroup2 /sys/fs/cgroup || fail 121 "cannot mount cgroup2"
    for c in $($B cat /sys/fs/cgroup/cgroup.controllers); do
        echo "+$c" >/sys/fs/cgroup/cgroup.subtree_control ||
            fail 121 "cannot enable the $c controller"
    done
    echo "E2E-MARK cgroup v2: $($B cat /sys/fs/cgroup/cgroup.subtree_control)"
    ;;
v1)
    $B mount -t tmpfs -o mode=0755 cgroup /sys/fs/cgroup || fail 122 "cannot mount /sys/fs/cgroup"
    for c in cpu,cpuacct cpuset memory devices freezer blkio pids net_cls,net_prio perf_event hugetlb; do
        $B mkdir "/sys/fs/cgroup/$c" && $B mount -t cgroup -o "$c" cgroup "/sys/fs/cgroup/$c" ||
            fail 122 "cannot mount the v1 hierarchy $c"
    done
    for pair in cpu:cpu,cpuacct cpuacct:cpu,cpuacct net_cls:net_cls,net_prio net_prio:net_cls,net_prio; do
        $B ln -s "${pair#*:}" "/sys/fs/cgroup/${pair%%:*}" || fail 122 "cannot link ${pair%%:*}"
    done
    $B mkdir /sys/fs/cgroup/systemd && $B mount -t cgroup -o none,name=systemd cgroup /sys/fs/cgroup/systemd ||
        fail 122 "cannot mount the name=systemd hierarchy"
    echo "E2E-MARK cgroup v1: $($B ls /sys/fs/cgroup | $B tr '\n' ' ')"
    ;;
*)
    fail 123 "unknown cgroup version '$CG'"
    ;;
esac

# Prefixes each output line of a test binary with "E2E-OUT SUITE " and adds an
# "E2E-TEST SUITE::NAME RESULT" line after each libtest result line.
AWK='{
    print "E2E-OUT " suite " " $0
    if ($0 ~ /^test .* \.\.\. (ok|FAILED|ignored)/) {
        line = substr($0, 6)
        i = index(line, " ... ")
        result = substr(line, i + 5)
        sub(/[ ,].*/, "", result)
        print "E2E-TEST " suite "::" substr(line, 1, i - 1) " " result
    }
    fflush()
}'
# run_suite NAME COMMAND [ARGS...]: runs one test binary in $E2E_CWD, as cargo test would,
# and marks the run failed when it fails.
run_suite() {
    name=$1
    shift
    start=$($B cut -d' ' -f1 /proc/uptime)
    echo "E2E-MARK suite $name uptime=$start"
    (cd "$E2E_CWD" && exec "$@") </dev/null 2>&1 | $B awk -v suite="$name" "$AWK"
    rc=$?
    end=$($B cut -d' ' -f1 /proc/uptime)
    echo "E2E-SUITE $name rc=$rc secs=$($B awk "BEGIN { print $end - $start }")"
    [ "$rc" = 0 ] || : >/run/e2e/failed
}
# The index of the next suite to run (a counter under a mkdir lock, shared by the lanes).
next_suite() {
    until $B mkdir /run/e2e/lock 2>/dev/null; do $B usleep 20000; done
    n=$($B cat /run/e2e/next)
    echo $((n + 1)) >/run/e2e/next
    $B rmdir /run/e2e/lock
    echo "$n"
}
# One lane: runs suites, in the plan's order, until none is left.
lane() {
    while n=$(next_suite) && [ "$n" -lt "$E2E_SUITES" ]; do
        "suite_$n"
    done
}

export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
unset TERM
# The host's NOFILE and NPROC limits (the kernel's defaults for PID 1 are lower).
set -- $E2E_LIMITS
while [ $# -ge 3 ]; do
    ulimit -"$1" "$3" && ulimit -S"$1" "$2" || fail 125 "cannot set ulimit -$1 to $2 (hard $3)"
    shift 3
done
export OCIRUN_E2E_CGROUP="$CG" OCIRUN_E2E_VM=1
# local_copy NAME: copies the directory named by $NAME into the guest's memory and points
# NAME at the copy, so that the tests read it from tmpfs instead of through 9p.
local_copy() {
    eval "src=\$$1"
    dst=/run/e2e/local/$1
    $B mkdir -p /run/e2e/local && cp -a "$src" "$dst" || fail 126 "cannot copy $1 ($src) into the guest"
    export "$1=$dst"
}
local_copies
cd /
echo 0 >/run/e2e/next
lanes=0
while [ "$lanes" -lt "$E2E_LANES" ]; do
    lane &
    lanes=$((lanes + 1))
done
wait
if [ -e /run/e2e/failed ]; then finish 1; else finish 0; fi
