#!/usr/bin/python3
"""Mininet's star for tomato-hostbench: N hosts on one Linux bridge (no
controller, no Open vSwitch), timed from the first node until every host
answers a ping from h1. Prints one JSON line. Cleans up only what it made
(net.stop(): its hosts' shells by PID, its links and bridge by name)."""
import json
import sys
import time

from mininet.log import setLogLevel
from mininet.net import Mininet
from mininet.nodelib import LinuxBridge


def main():
    n, script = int(sys.argv[1]), sys.argv[2]
    setLogLevel("error")
    net = Mininet(switch=LinuxBridge, controller=None, build=False, autoSetMacs=True)
    try:
        t0 = time.monotonic()
        s1 = net.addSwitch("s1")
        for i in range(1, n + 1):
            h = net.addHost("h%d" % i, ip="10.77.%d.%d/16" % (i // 256, i % 256))
            net.addLink(h, s1)
        net.build()
        net.start()
        t_up = time.monotonic() - t0
        out = net.hosts[0].cmd("sh " + script)
        total = time.monotonic() - t0
        print(json.dumps({"seconds": total, "up": t_up, "ping": out.strip()}), flush=True)
    finally:
        net.stop()


if __name__ == "__main__":
    main()
