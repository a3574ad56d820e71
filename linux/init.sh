#!/bin/sh
# /init of the project's initramfs (built by scripts/build-initramfs.sh with mkinitramfs).
#
# Exercises the memory-management paths that make a Xen PV kernel pin and unpin page tables
# (every new mm is a pgd_alloc + pin, every exit an unpin, fork's COW write-protects L1
# entries, munmap frees L1s), then prints ONE result line and powers off:
#
#   XENKVM-INIT forks=200 tmpfs=ok mmap=ok rounds=64 pages=64 result=PASS
#
# The counts are fixed, so the same line can be compared across hypervisors (real Xen, vmm).
# Only busybox applets (links in /bin), /bin/mmap-churn and /bin/vector-state are used.
#
# With `xfsvmap=lazy|eager|refs|none` on the kernel command line it runs XFS's 2007 bug instead
# (xfs_vmap_scenario below) and prints `XENKVM-XFSVMAP variant=V ... result=...`.
export PATH=/bin
FORKS=200
# seq 1 200000 | md5sum, computed on the build host (GNU and busybox seq print the same).
SEQ_MD5=0e10426a1d5bddffcef02f1345787128

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t tmpfs -o size=32m,mode=1777 tmpfs /tmp

# XFS's lazy vunmap inside this kernel (linux/xfs-vmap/xfs_vmap.c): the module maps buffers
# with vmap(), releases them the variant's way (lazy: pages freed, alias kept for a deferred
# vunmap), then this shell forks long-lived processes until one of their pagetables lands on
# a released page (the module's `landed` parameter: "pinned-pages still-aliased"), runs the
# deferred vunmap (rmmod) and powers off. On Xen, lazy cannot get that far: the pin of the
# landing process's tables is refused, and Linux reports the failed multicall.
xfs_vmap_scenario() {
  v=$1
  echo "XENKVM-XFSVMAP start variant=$v"
  # none: the fork loop alone, without the module (a control run).
  if [ "$v" != none ] && ! insmod /lib/modules/xfs_vmap.ko "variant=$v"; then
    echo "XENKVM-XFSVMAP variant=$v result=FAIL(insmod)"
    poweroff -f
  fi
  param=/sys/module/xfs_vmap/parameters/landed
  forks=0 pids= landed=0 aliased=0
  while [ "$forks" -lt 64 ]; do
    sleep 1000 &
    pids="$pids $!"
    forks=$((forks + 1))
    # The shell's own read: no process of ours between the forks.
    [ "$v" = none ] || read -r landed aliased <$param
    [ "$landed" = 0 ] || break
  done
  echo "XENKVM-XFSVMAP variant=$v forks=$forks landed=$landed aliased=$aliased"
  result=clean
  [ "$aliased" = 0 ] || result=stale-alias-pinned
  # shellcheck disable=SC2086
  kill $pids
  wait
  [ "$v" = none ] || rmmod xfs_vmap
  echo "XENKVM-XFSVMAP variant=$v result=$result"
  poweroff -f
}
read -r cmdline </proc/cmdline
for arg in $cmdline; do
  case $arg in xfsvmap=*) xfs_vmap_scenario "${arg#xfsvmap=}" ;; esac
done
# Keep the kernel's informational messages off the console while we print (warnings stay).
echo 4 >/proc/sys/kernel/printk 2>/dev/null
echo "XENKVM-INIT start"

# 1. Short processes: per iteration a subshell that execs /bin/true (fork + exec; the full
# path makes busybox ash execve instead of running the applet in-process) and a command
# substitution that execs /bin/echo, checked.
forks=0
i=0
while [ "$i" -lt "$FORKS" ]; do
  if ( /bin/true ) && [ "$(/bin/echo "n$i")" = "n$i" ]; then
    forks=$((forks + 1))
  fi
  i=$((i + 1))
done
# A pipeline: two processes at once, one writing, one reading.
[ "$(/bin/seq 1 1000 | /bin/wc -l)" = 1000 ] || forks="$forks(pipe-FAIL)"

# 2. tmpfs: a 1.3 MB file written, copied two ways, read back and compared.
tmpfs=ok
if ! seq 1 200000 >/tmp/a; then
  tmpfs=FAIL-write
elif ! cp /tmp/a /tmp/b || ! dd if=/tmp/a of=/tmp/c bs=4096 2>/dev/null; then
  tmpfs=FAIL-copy
elif ! cmp -s /tmp/a /tmp/b || ! cmp -s /tmp/a /tmp/c; then
  tmpfs=FAIL-compare
else
  set -- $(md5sum </tmp/c)
  [ "$1" = "$SEQ_MD5" ] || tmpfs=FAIL-md5
fi
rm -f /tmp/a /tmp/b /tmp/c

# 3. mmap/fork(COW)/mprotect/mremap/munmap churn: one fresh L1 (and L2) per round.
if [ -x /bin/mmap-churn ]; then
  mmap=$(/bin/mmap-churn 64 64) || true
  [ -n "$mmap" ] || mmap="mmap=FAIL(no-output)"
else
  mmap="mmap=missing"
fi

# 4. Vector registers: processes whose SSE/AVX/AVX-512 registers must survive system calls
# and each other (a kernel switching tasks with FXSAVE while user code has AVX fails).
if [ -x /bin/vector-state ]; then
  vector=$(/bin/vector-state 4 1000) || true
  [ -n "$vector" ] || vector="vector=FAIL(no-output)"
else
  vector="vector=missing"
fi

result=FAIL
if [ "$forks" = "$FORKS" ] && [ "$tmpfs" = ok ] && [ "$vector" = vector=ok ]; then
  case $mmap in "mmap=ok "*) result=PASS ;; esac
fi
echo "XENKVM-INIT forks=$forks tmpfs=$tmpfs $mmap $vector result=$result"
sync
poweroff -f
# Not reached unless the power-off failed; init must not exit (the kernel would panic).
echo "XENKVM-INIT poweroff failed"
while :; do sleep 1000; done
