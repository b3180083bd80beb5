#!/bin/sh
# PID 1 of a myseal lab host (started by myseal.sandbox.host under unshare --mount --uts --ipc
# --net --pid --fork --mount-proc): private mounts over the machine's own paths, a /dev of its
# own with a syslog listening on /dev/log, loopback up; then it reaps orphaned processes (the
# service scripts' daemons) until the host is stopped. Every mount lives and dies with the
# host's mount namespace: nothing of the machine changes.
#   init.sh ROOT NAME      ROOT/fs holds the private trees, NAME becomes the host name
set -eu
root=$1
name=$2
fs=$root/fs

# A private /dev: the usual nodes bound from the machine's, fresh pts and shm.
mkdir -p "$root/hostdev"
mount --bind /dev "$root/hostdev"
mount -t tmpfs -o mode=0755,size=1m,nosuid lab-dev /dev
for n in null zero full random urandom tty; do
  : > "/dev/$n"
  mount --bind "$root/hostdev/$n" "/dev/$n"
done
umount -l "$root/hostdev"
mkdir /dev/pts /dev/shm
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 lab-pts /dev/pts
ln -s pts/ptmx /dev/ptmx
mount -t tmpfs -o mode=1777,nosuid,nodev lab-shm /dev/shm
ln -s /proc/self/fd /dev/fd
ln -s /proc/self/fd/0 /dev/stdin
ln -s /proc/self/fd/1 /dev/stdout
ln -s /proc/self/fd/2 /dev/stderr

# The host's own trees over the machine's (each was prepared under ROOT/fs). Sources are
# relative to ROOT/fs, the working directory: ROOT may lie under a path bound here (/tmp, /root).
cd "$fs"
for path in /etc/mysql /etc/init.d /etc/default /etc/tomcat10 /etc/ssh /etc/hosts /etc/hostname \
            /var/lib/mysql /var/lib/tomcat10 /var/cache/tomcat10 /var/log /var/tmp /root /run /tmp; do
  if [ -e ".$path" ]; then
    mount --bind ".$path" "$path"
  fi
done

hostname "$name"
ip link set lo up

# The host's syslog: what mysqld_safe and the init scripts send to /dev/log, in /var/log/syslog.
busybox syslogd -n -O /var/log/syslog &
i=0
while [ ! -S /dev/log ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done

: > /run/myseal-lab/ready
trap 'exit 0' TERM INT
while :; do
  sleep 1 &
  wait $! || :
done
