# Sourced with the node's overlays mounted: what makes the runner machine's
# system, seen through them, a fresh node's. node-init.sh runs it for a
# node of its own; the node image (image.go) has it run once for every
# cluster node.
# No DNS server is reachable from the bridge: point the resolver at the
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
