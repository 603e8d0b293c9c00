#!/bin/sh
# Runs as the first process of a lab node, inside its network namespace and a
# fresh mount + UTS namespace (ip netns exec NS unshare --mount --uts ...).
# Gives the node its hostname, copy-on-write views of /etc /usr /var /opt
# /root, a private /run, and then becomes the node's sshd.
#   node-init.sh NODE_DIR NAME [IMAGE_DIR]
# With IMAGE_DIR (the lab's node image: a cluster node's packages already
# installed), the image is a read-only layer between the machine's
# directories and the node's own.
set -eu
dir=$1
name=$2
image=${3:-}
hostname "$name"
for d in etc usr var opt root; do
  lower=/$d
  if [ -n "$image" ]; then lower=$image/$d:/$d; fi
  mount -t overlay overlay -o "lowerdir=$lower,upperdir=$dir/upper/$d,workdir=$dir/work/$d" "/$d"
done
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p /run/sshd /run/lab
# the node's own boot id (the kernel is the machine's): a lab reboot
# changes it
cat /proc/sys/kernel/random/uuid > /run/lab/boot_id
mount --bind /run/lab/boot_id /proc/sys/kernel/random/boot_id
echo "$name" > /etc/hostname
printf '127.0.0.1 localhost\n%s %s\n' "$(cat "$dir/ip")" "$name" > /etc/hosts
if [ -z "$image" ]; then
  . "$(dirname "$0")/node-fresh.sh"
fi
exec /usr/sbin/sshd -D -e -f "$dir/sshd_config"
