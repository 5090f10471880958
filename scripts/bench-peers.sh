#!/bin/sh
# Installs what `npm run bench` compares nsnet with, if missing. Idempotent. Needs root (apt-get)
# and the network, so it runs before the bench enters its sandbox (which has no network).
# Debian packages:
#   iproute2         -> ip, ip -batch, ip -json (rtnetlink; setup everywhere)
#   python3-pyroute2 -> pyroute2 for the Debian /usr/bin/python3 (rtnetlink)
#   nftables         -> nft -f, nft list (nft)
#   containernetworking-plugins -> /usr/lib/cni/{bridge,host-local,portmap} (bridge, ports, dataplane)
#   netavark         -> /usr/lib/podman/netavark (bridge, ports)
#   aardvark-dns     -> /usr/lib/podman/aardvark-dns (dns)
#   iptables         -> iptables-nft, which both of those run to program the firewall
#   iperf3           -> TCP throughput (dataplane)
# npm, into bench/.peers (git-ignored; not a dependency of nsnet, and node_modules may be shared):
#   netlink@0.3.0    -> the npm `netlink` package (rtnetlink)
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)

need=""
command -v ip >/dev/null 2>&1 || need="$need iproute2"
command -v nft >/dev/null 2>&1 || need="$need nftables"
/usr/bin/python3 -c 'import pyroute2' >/dev/null 2>&1 || need="$need python3-pyroute2"
[ -x /usr/lib/cni/portmap ] || need="$need containernetworking-plugins"
[ -x /usr/lib/podman/netavark ] || need="$need netavark"
[ -x /usr/lib/podman/aardvark-dns ] || need="$need aardvark-dns"
command -v iptables-save >/dev/null 2>&1 || need="$need iptables"
command -v iperf3 >/dev/null 2>&1 || need="$need iperf3"

if [ -n "$need" ]; then
  export DEBIAN_FRONTEND=noninteractive
  echo "bench-peers: installing$need" >&2
  # Update the package lists only if the install fails with the ones we have.
  if ! apt-get install -y --no-install-recommends $need >&2; then
    apt-get update >&2
    apt-get install -y --no-install-recommends $need >&2
  fi
  /usr/bin/python3 -c 'import pyroute2' >/dev/null
fi

peers="$root/bench/.peers"
if [ ! -f "$peers/node_modules/netlink/package.json" ]; then
  echo "bench-peers: installing the npm netlink package into $peers" >&2
  mkdir -p "$peers"
  # Its own package.json, so npm installs here and not into an enclosing project.
  [ -f "$peers/package.json" ] || echo '{ "name": "nsnet-bench-peers", "private": true }' > "$peers/package.json"
  (cd "$peers" && npm install --no-save --no-audit --no-fund --no-package-lock netlink@0.3.0 >&2)
fi
