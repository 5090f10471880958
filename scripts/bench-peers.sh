#!/bin/sh
# Installs the peers that `npm run bench` compares nsnet with, from Debian packages.
# Idempotent: installs only what is missing. Needs root (apt-get).
#   iproute2         -> ip, ip -batch, ip -json
#   python3-pyroute2 -> pyroute2 for the Debian /usr/bin/python3
#   nftables         -> nft -f, nft list (the nft suite)
#   containernetworking-plugins -> /usr/lib/cni/{bridge,host-local,portmap} (the bridge suite)
#   netavark         -> /usr/lib/podman/netavark (the bridge suite)
#   iptables         -> iptables-nft, which both of those run to program the firewall
set -eu

need=""
command -v ip >/dev/null 2>&1 || need="$need iproute2"
command -v nft >/dev/null 2>&1 || need="$need nftables"
/usr/bin/python3 -c 'import pyroute2' >/dev/null 2>&1 || need="$need python3-pyroute2"
[ -x /usr/lib/cni/portmap ] || need="$need containernetworking-plugins"
[ -x /usr/lib/podman/netavark ] || need="$need netavark"
command -v iptables-save >/dev/null 2>&1 || need="$need iptables"
[ -z "$need" ] && exit 0

export DEBIAN_FRONTEND=noninteractive
echo "bench-peers: installing$need" >&2
# Update the package lists only if the install fails with the ones we have.
if ! apt-get install -y --no-install-recommends $need >&2; then
  apt-get update >&2
  apt-get install -y --no-install-recommends $need >&2
fi
/usr/bin/python3 -c 'import pyroute2' >/dev/null
