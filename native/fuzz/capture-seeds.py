#!/usr/bin/env python3
"""Capture real kernel replies of the netfilter and sock_diag protocols as fuzz seeds.

The rtnetlink seeds come from test/fixtures/rtnl.json; this script adds what that file
lacks: nf_tables dumps (tables, chains, rules with their expression lists, sets, set
elements, the generation), conntrack entries and statistics, and sock_diag replies.
Like test/fixtures/capture-rtnl.py it uses no nsnet code, only the Python standard library
(socket.AF_NETLINK + struct) and the `nft` / `conntrack` commands to make the objects.

It changes the firewall and conntrack table of the namespace it runs in, so it refuses to
run outside nsnet's test sandbox. Regenerate with (as root, from the repository root):

    node scripts/sandbox.js -- python3 native/fuzz/capture-seeds.py

Output: native/fuzz/seeds/kernel.json (or the path given as the first argument):
    { "kernel", "captured", "seeds": [ { "protocol", "name", "hex" } ] }
where each `hex` is one whole netlink message (nlmsghdr + payload) as the kernel sent it.
"""

import datetime
import json
import os
import platform
import socket
import struct
import subprocess
import sys

NETLINK_SOCK_DIAG = 4
NETLINK_NETFILTER = 12
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_ACK, NLM_F_DUMP = 0x1, 0x4, 0x300

NFNL_SUBSYS_CTNETLINK, NFNL_SUBSYS_NFTABLES = 1, 10
NFT_MSG_GETTABLE, NFT_MSG_GETCHAIN, NFT_MSG_GETRULE = 1, 4, 7
NFT_MSG_GETSET, NFT_MSG_GETSETELEM, NFT_MSG_GETGEN = 10, 13, 16
NFTA_SET_NAME, NFTA_SET_TABLE = 2, 1
NFTA_SET_ELEM_LIST_TABLE, NFTA_SET_ELEM_LIST_SET = 1, 2
IPCTNL_MSG_CT_GET, IPCTNL_MSG_CT_GET_STATS_CPU, IPCTNL_MSG_CT_GET_STATS = 1, 4, 5
SOCK_DIAG_BY_FAMILY = 20
NFPROTO_UNSPEC = 0

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))

# Objects beyond test/fixtures/ruleset.nft: anonymous sets, expressions nsnet has no table for
# (exthdr, quota, numgen, hash, ...), so the decoder's raw-bytes paths get real inputs too.
EXTRA_RULESET = """
table inet fuzzextra {
    counter hits { packets 7 bytes 700 }
    quota q1 { over 25 mbytes }
    chain c {
        type filter hook input priority 50; policy accept;
        tcp dport { 22, 80, 443 } accept
        tcp option maxseg size 1400 counter
        ip saddr 10.1.0.0/16 quota over 10 mbytes drop
        numgen inc mod 4 0 counter
        jhash ip saddr mod 8 seed 0xdeadbeef 3 accept
        ip6 nexthdr icmpv6 icmpv6 type { echo-request, echo-reply } accept
        meta skuid 0 meta cpu 1 counter
        ct helper set "ftp"
        counter name "hits"
        tcp flags & (fin|syn) == fin|syn drop
        ip ttl 1-5 drop
        notrack
    }
    ct helper ftp { type "ftp" protocol tcp; }
}
"""


def in_sandbox():
    ino = str(os.stat('/proc/self/ns/net').st_ino)
    try:
        with open('/run/nsnet-sandbox') as f:
            marker = f.read().strip()
    except OSError:
        return False
    return os.environ.get('NSNET_SANDBOX') == ino and marker == ino


def msg(mtype, flags, payload, seq):
    return struct.pack('=IHHII', 16 + len(payload), mtype, flags, seq, 0) + payload


def attr(atype, data):
    n = 4 + len(data)
    return struct.pack('=HH', n, atype) + data + b'\0' * ((4 - n % 4) % 4)


def nfgen(family=NFPROTO_UNSPEC, res_id=0):
    return struct.pack('=BBH', family, 0, socket.htons(res_id))


def transact(proto, request):
    """Sends one request, returns every reply message (bytes) up to DONE or the ACK."""
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, proto)
    s.bind((0, 0))
    s.settimeout(10)  # a request that gets no DONE/ACK must not hang the capture
    s.send(request)
    out = []
    while True:
        data = s.recv(1 << 20)
        off = 0
        while off + 16 <= len(data):
            length, mtype = struct.unpack_from('=IH', data, off)
            if length < 16:
                raise SystemExit('malformed reply')
            m = data[off:off + length]
            off += (length + 3) & ~3
            if mtype == NLMSG_DONE:
                s.close()
                return out
            if mtype == NLMSG_ERROR:
                err = struct.unpack_from('=i', m, 16)[0]
                s.close()
                if err != 0:
                    raise SystemExit(f'request failed: errno {-err}')
                return out
            out.append(m)


def dump(proto, mtype, payload, seq):
    return transact(proto, msg(mtype, NLM_F_REQUEST | NLM_F_DUMP, payload, seq))


def nft(t):
    return NFNL_SUBSYS_NFTABLES << 8 | t


def strz(s):
    return s.encode() + b'\0'


def parse_attrs(b):
    out, off = {}, 0
    while off + 4 <= len(b):
        n, t = struct.unpack_from('=HH', b, off)
        out[t & 0x3fff] = b[off + 4:off + n]
        off += (n + 3) & ~3
    return out


def main():
    if not in_sandbox():
        raise SystemExit('refusing to run outside the nsnet sandbox: node scripts/sandbox.js -- python3 ' + sys.argv[0])
    dest = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), 'seeds', 'kernel.json')
    subprocess.run(['nft', 'flush', 'ruleset'], check=True)
    subprocess.run(['nft', '-f', os.path.join(ROOT, 'test', 'fixtures', 'ruleset.nft')], check=True)
    subprocess.run(['nft', '-f', '-'], input=EXTRA_RULESET.encode(), check=True)
    for args in (['-p', 'tcp', '--sport', '40000', '--dport', '80', '--state', 'ESTABLISHED', '-u', 'ASSURED', '-m', '7'],
                 ['-p', 'udp', '--sport', '5353', '--dport', '53'],
                 ['-p', 'icmp', '--icmp-type', '8', '--icmp-code', '0', '--icmp-id', '77']):
        subprocess.run(['conntrack', '-I', '-s', '198.51.100.5', '-d', '203.0.113.9', '-t', '300', *args],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    subprocess.run(['conntrack', '-I', '-s', '2001:db8::1', '-d', '2001:db8::2', '-t', '300', '-p', 'tcp',
                    '--sport', '1234', '--dport', '443', '--state', 'SYN_SENT'],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    seeds = []

    def keep(proto, name, msgs, limit):
        for i, m in enumerate(msgs[:limit]):
            seeds.append({'protocol': proto, 'name': f'{name}-{i}', 'hex': m.hex()})

    seq = 1
    for t, name, limit in ((NFT_MSG_GETTABLE, 'nft-table', 8), (NFT_MSG_GETCHAIN, 'nft-chain', 8),
                           (NFT_MSG_GETRULE, 'nft-rule', 200), (NFT_MSG_GETSET, 'nft-set', 40)):
        keep(NETLINK_NETFILTER, name, dump(NETLINK_NETFILTER, nft(t), nfgen(), seq), limit)
        seq += 1
    # Set elements are dumped per set.
    for s in dump(NETLINK_NETFILTER, nft(NFT_MSG_GETSET), nfgen(), seq):
        seq += 1
        a = parse_attrs(s[20:])
        family = s[16]
        req = nfgen(family) + attr(NFTA_SET_ELEM_LIST_TABLE, a[NFTA_SET_TABLE]) + attr(NFTA_SET_ELEM_LIST_SET, a[NFTA_SET_NAME])
        name = a[NFTA_SET_NAME].rstrip(b'\0').decode()
        keep(NETLINK_NETFILTER, f'nft-setelem-{name}', dump(NETLINK_NETFILTER, nft(NFT_MSG_GETSETELEM), req, seq), 4)
    seq += 1
    gen = transact(NETLINK_NETFILTER, msg(nft(NFT_MSG_GETGEN), NLM_F_REQUEST | NLM_F_ACK, nfgen(), seq))
    keep(NETLINK_NETFILTER, 'nft-gen', gen, 1)
    for t, name in ((IPCTNL_MSG_CT_GET, 'ct'), (IPCTNL_MSG_CT_GET_STATS_CPU, 'ct-stats-cpu')):
        seq += 1
        keep(NETLINK_NETFILTER, name, dump(NETLINK_NETFILTER, NFNL_SUBSYS_CTNETLINK << 8 | t, nfgen(), seq), 8)
    seq += 1
    keep(NETLINK_NETFILTER, 'ct-stats',
         transact(NETLINK_NETFILTER, msg(NFNL_SUBSYS_CTNETLINK << 8 | IPCTNL_MSG_CT_GET_STATS, NLM_F_REQUEST | NLM_F_ACK, nfgen(), seq)), 1)

    # sock_diag: listening and connected sockets of this process, with extensions (attributes).
    listeners = []
    for fam, addr, kind in ((socket.AF_INET, '127.0.0.1', socket.SOCK_STREAM), (socket.AF_INET6, '::1', socket.SOCK_STREAM),
                            (socket.AF_INET, '127.0.0.1', socket.SOCK_DGRAM)):
        s = socket.socket(fam, kind)
        s.bind((addr, 0))
        if kind == socket.SOCK_STREAM:
            s.listen()
        listeners.append(s)
    client = socket.create_connection(('127.0.0.1', listeners[0].getsockname()[1]))
    for fam, proto, name in ((socket.AF_INET, socket.IPPROTO_TCP, 'diag-tcp4'), (socket.AF_INET6, socket.IPPROTO_TCP, 'diag-tcp6'),
                             (socket.AF_INET, socket.IPPROTO_UDP, 'diag-udp4')):
        seq += 1
        # struct inet_diag_req_v2: family, protocol, ext (all INET_DIAG_* extensions), pad,
        # states (all), then a zeroed inet_diag_sockid (48 bytes).
        req = struct.pack('=BBBBI', fam, proto, 0xff, 0, 0xffffffff) + b'\0' * 48
        keep(NETLINK_SOCK_DIAG, name, dump(NETLINK_SOCK_DIAG, SOCK_DIAG_BY_FAMILY, req, seq), 4)
    client.close()
    for s in listeners:
        s.close()

    doc = {
        'kernel': platform.release(),
        'captured': datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat(),
        'generator': 'native/fuzz/capture-seeds.py',
        'seeds': seeds,
    }
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    with open(dest, 'w') as f:
        json.dump(doc, f, indent=1)
        f.write('\n')
    print(f'{len(seeds)} seeds, {sum(len(s["hex"]) // 2 for s in seeds)} bytes -> {os.path.relpath(dest, ROOT)}')


if __name__ == '__main__':
    main()
