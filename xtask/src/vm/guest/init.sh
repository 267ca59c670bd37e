#!/bin/sh
# /init of the `cargo xtask vm` initramfs: busybox ash as PID 1 (see xtask/src/vm/guest.rs).
# Loads the modules, puts a tmpfs overlay on the host's / (9p, read-only), switches to it and
# runs stage2.sh there. The kernel command line selects e2e.cg=v1|v2 and
# e2e.fault=hang|panic|lockup:SECS.
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo "E2E-MARK init uptime=$(cut -d' ' -f1 /proc/uptime)"

# Reports $1 on the console and through isa-debug-exit (QEMU exits with 2*($1+1)+1), then
# powers off, in case the exit device is missing.
finish() {
    echo "E2E-RESULT rc=$1 uptime=$(cut -d' ' -f1 /proc/uptime)"
    printf "\\$(printf %o $(($1 + 1)))" | dd of=/dev/port bs=1 seek=244 count=1 2>/dev/null
    poweroff -f
}
fail() {
    echo "E2E-ERROR $2"
    finish "$1"
}
# The value of e2e.$1= on the kernel command line, else $2. Read before /proc moves.
arg() {
    for word in $(cat /proc/cmdline); do
        case "$word" in "e2e.$1="*) echo "${word#*=}"; return ;; esac
    done
    echo "$2"
}
CG=$(arg cg v2)
case "$(arg fault none)" in
hang)
    echo "E2E-MARK fault=hang: init sleeps and never reports"
    while :; do sleep 3600; done
    ;;
panic)
    echo "E2E-MARK fault=panic: init exits, the kernel panics"
    exit 1
    ;;
lockup:*)
    echo "E2E-MARK fault=lockup: init reports a soft lockup and sleeps"
    echo "watchdog: BUG: soft lockup - CPU#0 stuck for $(arg fault x | cut -d: -f2)s! [init:1]"
    while :; do sleep 3600; done
    ;;
esac

for m in $(cat /lib/modules/order); do
    insmod "/lib/modules/$m.ko" || fail 110 "insmod $m failed"
done
mkdir -p /lower /rw /newroot
mount -t 9p -o trans=virtio,version=9p2000.L,msize=524288,cache=loose,ro hostroot /lower ||
    fail 111 "cannot mount the host's / (9p tag hostroot)"
mount -t tmpfs -o mode=0755,size=1g tmpfs /rw || fail 112 "cannot mount the overlay's tmpfs"
mkdir -p /rw/upper /rw/work
mount -t overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work overlay /newroot ||
    fail 113 "cannot mount the overlay on the host's /"
mount -t tmpfs -o mode=0755 tmpfs /newroot/run || fail 114 "cannot mount a tmpfs on /run"
mkdir /newroot/run/e2e && cp /bin/busybox /e2e/stage2.sh /e2e/plan.sh /newroot/run/e2e/ ||
    fail 115 "cannot copy the stage 2 files"
for d in proc sys dev; do
    mount --move "/$d" "/newroot/$d" || fail 116 "cannot move /$d to the new root"
done
exec switch_root /newroot /run/e2e/busybox sh /run/e2e/stage2.sh "$CG"
