#!/usr/bin/env python3
"""A shaped point-to-point IP link between two TUN devices, in user space.

Used by bench/pull-vs-ostree.sh --link wan on kernels without the netem
qdisc (sch_netem): packets written by one side's kernel into its TUN device
are read here and handed to the other side's TUN device after

  * serialisation at RATE bits/s (a FIFO link: each packet departs when the
    previous one has left, then takes len*8/RATE seconds),
  * a one-way DELAY,
  * random LOSS (each packet independently), and
  * drop-tail when more than LIMIT packets wait (netem's default 1000),

independently per direction. This is what netem's `delay D rate R loss L`
does, at packet level, so TCP sees the real RTT, rate and losses.

Written by hand because no packaged tool does this without netem; it only
moves bytes between two file descriptors.

Usage: linkemu.py TUN_A TUN_B DELAY_MS RATE_MBIT LOSS_PERCENT [SEED]
Creates both TUN devices (IFF_TUN, no packet info) in the current network
namespace, prints "ready" on stdout once they exist, and runs until killed.
The caller moves one device into another namespace and configures both.
"""
import fcntl
import heapq
import os
import random
import select
import struct
import sys
import time

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
LIMIT = 1000
MTU_READ = 65536


def open_tun(name):
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    return fd


class Direction:
    """One way of the link: src TUN -> dst TUN."""

    def __init__(self, dst, delay, rate_bps, loss):
        self.dst = dst
        self.delay = delay
        self.rate = rate_bps
        self.loss = loss
        self.free_at = 0.0  # when the link has sent what it holds
        self.waiting = 0  # packets queued and not yet delivered
        self.sent = self.dropped = self.lost = 0

    def enqueue(self, now, pkt, heap, seq):
        if random.random() < self.loss:
            self.lost += 1
            return
        if self.waiting >= LIMIT:
            self.dropped += 1
            return
        start = max(now, self.free_at)
        self.free_at = start + len(pkt) * 8 / self.rate
        self.waiting += 1
        heapq.heappush(heap, (self.free_at + self.delay, seq, self, pkt))


def main():
    a_name, b_name = sys.argv[1], sys.argv[2]
    delay = float(sys.argv[3]) / 1000.0
    rate = float(sys.argv[4]) * 1e6
    loss = float(sys.argv[5]) / 100.0
    random.seed(int(sys.argv[6]) if len(sys.argv) > 6 else 1)
    a, b = open_tun(a_name), open_tun(b_name)
    ways = {a: Direction(b, delay, rate, loss), b: Direction(a, delay, rate, loss)}
    print("ready", flush=True)
    heap = []
    seq = 0
    while True:
        now = time.monotonic()
        while heap and heap[0][0] <= now:
            _, _, way, pkt = heapq.heappop(heap)
            way.waiting -= 1
            try:
                os.write(way.dst, pkt)
                way.sent += 1
            except (BlockingIOError, OSError):
                way.dropped += 1
        timeout = max(0.0, heap[0][0] - now) if heap else None
        ready, _, _ = select.select([a, b], [], [], timeout)
        now = time.monotonic()
        for fd in ready:
            while True:
                try:
                    pkt = os.read(fd, MTU_READ)
                except BlockingIOError:
                    break
                seq += 1
                ways[fd].enqueue(now, pkt, heap, seq)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
