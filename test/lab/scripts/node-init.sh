#!/bin/sh
# Runs as the first process of a lab node, inside its network namespace and a
# fresh mount + UTS namespace (ip netns exec NS unshare --mount --uts ...).
# Gives the node its hostname, copy-on-write views of /etc /usr /var /opt
# /root, a private /run, and then becomes the node's sshd.
#   node-init.sh NODE_DIR NAME
set -eu
dir=$1
name=$2
hostname "$name"
for d in etc usr var opt root; do
  mount -t overlay overlay -o "lowerdir=/$d,upperdir=$dir/upper/$d,workdir=$dir/work/$d" "/$d"
done
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p /run/sshd /run/lab
# the node's own boot id (the kernel is the machine's): a lab reboot
# changes it
cat /proc/sys/kernel/random/uuid > /run/lab/boot_id
mount --bind /run/lab/boot_id /proc/sys/kernel/random/boot_id
echo "$name" > /etc/hostname
printf '127.0.0.1 localhost\n%s %s\n' "$(cat "$dir/ip")" "$name" > /etc/hosts
# no DNS server is reachable from the bridge: point the resolver at the
# node's own loopback, where the refusal is immediate (the machine's
# resolver address would make every lookup, such as apt's SRV queries, wait
# for its timeout). /etc/hosts names the lab's hosts.
rm -f /etc/resolv.conf
echo 'nameserver 127.0.0.1' > /etc/resolv.conf
# a fresh node's root account: the runner machine's own shell setup (seen
# through the overlay) is not the node's, and bash sources ~/.bashrc for
# every command sshd runs
cp /etc/skel/.bashrc /root/.bashrc 2>/dev/null || : > /root/.bashrc
cp /etc/skel/.profile /root/.profile 2>/dev/null || : > /root/.profile
# a node reaches nothing but the lab bridge: keep apt from trying the network
rm -f /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources
exec /usr/sbin/sshd -D -e -f "$dir/sshd_config"
