#!/usr/bin/env python3
"""How big does the timer job's state get on a busy server?

Writes a synthetic Debian mail.log (rsyslog's RFC 3339 stamps) of a server that greylists about
1M times a week, runs `postgrey-advisor run` over it once with a fresh state, and prints the
sizes of state.json and summary.json (raw and gzipped), a breakdown of the state by part, and
the run time. Issue 4 asks for a state of at most 10 MB for such a server.

The traffic is deterministic for a given --seed; only the dates move: the log ends at 00:00 UTC
of --end (default today), because `run` prunes by retention (--keep, 8 weeks) and pair memory
relative to now.

The week: --groups sender organisations with Zipf-distributed greylisting counts (exponent
--zipf). The biggest are cloud senders with dozens of /24 networks (some IPv6) whose retries
come from another server (the multi-server signature); the middle are ordinary MTAs with a few
servers and some dynamic-address pools; the tail are one-off domains and unresolved clients
(grouped by /24) that mostly never retry. With --weeks N the head senders repeat every week and
the tail is new each week (the steady state of an 8-week retention).

    cargo build --release && scripts/state-size.py            # one week
    scripts/state-size.py --weeks 8 --keep-files /tmp/size    # steady state; keep log and state
"""

import argparse
import datetime as dt
import gzip
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import time

DAY_S = 86_400
LOCAL_DOMAIN = "example.org"

TLDS = [
    ("com", 50), ("net", 10), ("de", 8), ("org", 5), ("co.uk", 5), ("fr", 4), ("nl", 3),
    ("io", 3), ("com.br", 3), ("ru", 3), ("pl", 2), ("info", 2), ("jp", 1), ("it", 1),
]
SYLLABLES = [
    "ka", "lo", "mi", "ne", "ra", "to", "shi", "ver", "tex", "mail", "net", "sys", "on", "bel",
    "dor", "fin", "gra", "hub", "ix", "jet", "kor", "lux", "mar", "nova", "pro", "qua", "ros",
    "sol", "tri", "uni", "vex", "wave", "zen", "blue", "shop", "news", "cloud", "data", "web",
]
FIRST = ["anna", "ben", "carla", "dirk", "eva", "felix", "gina", "hans", "ida", "jan", "kim",
         "lena", "max", "nina", "otto", "paula", "rene", "sara", "tom", "uwe", "vera", "wim"]
LAST = ["mueller", "schmidt", "meyer", "weber", "wagner", "becker", "hoffmann", "koch",
        "richter", "klein", "wolf", "neumann", "braun", "zimmer", "krause", "lang"]
REGIONS = ["eu-west-1", "eu-central-1", "us-east-1", "us-west-2", "ap-south-1", "eur03",
           "nam12", "fra1", "ams2", "lon5"]

# /8s that are not public unicast (private, loopback, link-local, multicast, shared…).
NOT_PUBLIC_V4 = {0, 10, 100, 127, 169, 172, 192, 198, 203} | set(range(224, 256))


class World:
    """Names and addresses, each handed out once."""

    def __init__(self, rng):
        self.rng = rng
        self.domains = set()
        self.nets = set()

    def word(self, lo=2, hi=3):
        return "".join(self.rng.choice(SYLLABLES) for _ in range(self.rng.randint(lo, hi)))

    def domain(self):
        tlds, weights = zip(*TLDS)
        while True:
            name = self.word()
            if self.rng.random() < 0.3:
                name += str(self.rng.randint(1, 99))
            name += "." + self.rng.choices(tlds, weights)[0]
            if name not in self.domains:
                self.domains.add(name)
                return name

    def net_v4(self):
        """A fresh /24: its first three octets."""
        while True:
            a = self.rng.randint(1, 223)
            if a in NOT_PUBLIC_V4:
                continue
            net = (a, self.rng.randint(0, 255), self.rng.randint(0, 255))
            if net not in self.nets:
                self.nets.add(net)
                return net

    def net_v6(self):
        while True:
            net = "2a01:%x:%x:%x" % (self.rng.randint(0x100, 0xfff), self.rng.randint(0, 0xffff),
                                     self.rng.randint(0, 0xffff))
            if net not in self.nets:
                self.nets.add(net)
                return net


def dashed(ip):
    return ip.replace(".", "-").replace(":", "-")


class Group:
    """One sender organisation: its servers (host name, address) and how it sends."""

    def __init__(self, world, rank, rng):
        self.rng = rng
        self.retries_elsewhere = 0.0
        self.gives_up = 0.05
        self.senders = None
        if rank < 60:
            self.cloud(world)
        elif rank < 2500 and rng.random() < 0.12:
            self.pool(world)
        elif rank < 2500:
            self.mta(world, rng.randint(1, 8))
        elif rng.random() < 0.65:
            self.mta(world, 1 if rng.random() < 0.9 else 2)
        else:
            self.unresolved(world)

    def cloud(self, world):
        self.domain = world.domain()
        region = self.rng.choice(REGIONS)
        style = self.rng.randrange(3)
        self.servers = []
        for _ in range(self.rng.randint(8, 48)):
            net = world.net_v4()
            for _ in range(self.rng.randint(2, 12)):
                ip = "%d.%d.%d.%d" % (net + (self.rng.randint(1, 254),))
                if style == 0:
                    host = "a%s.smtp-out.%s.%s" % (dashed(ip)[len(str(net[0])):], region,
                                                   self.domain)
                elif style == 1:
                    host = "mail-%s%s.outbound.protection.%s" % (
                        region.replace("-", ""), dashed(ip).split("-", 2)[2], self.domain)
                else:
                    host = "o%d.ptr%d.%s" % (self.rng.randint(1, 999), self.rng.randint(1, 9999),
                                             self.domain)
                self.servers.append((host, ip))
        if self.rng.random() < 0.4:
            for _ in range(self.rng.randint(2, 8)):
                net = world.net_v6()
                ip = "%s::%x" % (net, self.rng.randint(1, 0xffff))
                self.servers.append(("mail-%s.%s" % (dashed(ip)[-4:], self.domain), ip))
        self.retries_elsewhere = self.rng.uniform(0.4, 0.8)
        self.senders = "verp"

    def mta(self, world, servers):
        self.domain = world.domain()
        nets = [world.net_v4() for _ in range(1 + (servers - 1) // 3)]
        self.servers = []
        for i in range(servers):
            net = nets[i % len(nets)]
            ip = "%d.%d.%d.%d" % (net + (self.rng.randint(1, 254),))
            if servers == 1:
                host = self.rng.choice(["mail", "smtp", "mx", "mx1", "mail1", "out", None])
                host = self.domain if host is None else host + "." + self.domain
            else:
                host = "%s%d.%s" % (self.rng.choice(["mx", "smtp", "out", "mta"]), i + 1,
                                    self.domain)
            self.servers.append((host, ip))
        if len(nets) > 1:
            self.retries_elsewhere = 0.3
        self.senders = [self.local_part() for _ in range(self.rng.randint(1, 30))]

    def pool(self, world):
        """Dynamic addresses of an ISP: a new address and name almost every time."""
        self.domain = world.domain()
        nets = [world.net_v4() for _ in range(self.rng.randint(20, 200))]
        self.servers = []
        for _ in range(min(4000, len(nets) * 20)):
            ip = "%d.%d.%d.%d" % (self.rng.choice(nets) + (self.rng.randint(1, 254),))
            self.servers.append(("dyn-%s.%s.pool.%s" % (dashed(ip), self.rng.choice(REGIONS),
                                                        self.domain), ip))
        self.gives_up = 0.8
        self.senders = "random"

    def unresolved(self, world):
        self.domain = None
        net = world.net_v4()
        self.servers = [("unknown", "%d.%d.%d.%d" % (net + (self.rng.randint(1, 254),)))
                        for _ in range(self.rng.randint(1, 3))]
        self.gives_up = 0.85
        self.senders = "random"

    def local_part(self):
        return "%s.%s" % (self.rng.choice(FIRST), self.rng.choice(LAST))

    def sender(self):
        if self.senders == "verp":
            return "0102018c%016x-%08x-000000@%s" % (self.rng.getrandbits(64),
                                                     self.rng.getrandbits(32), self.domain)
        if self.senders == "random":
            domain = self.domain or "%s.%s" % (
                "".join(self.rng.choice("bcdfghklmnprstvz") for _ in range(7)), "com")
            return "%s%d@%s" % (self.rng.choice(FIRST), self.rng.randint(1, 9999), domain)
        return "%s@%s" % (self.rng.choice(self.senders), self.domain)


def recipient(rng):
    # A few hundred local users, some much more popular than others.
    k = int(rng.paretovariate(1.2)) % 600
    return "%s.%s%d@%s" % (FIRST[k % len(FIRST)], LAST[k % len(LAST)], k, LOCAL_DOMAIN)


def zipf_sizes(total, groups, exponent, rng):
    weights = [1.0 / (r + 1) ** exponent for r in range(groups)]
    scale = total / sum(weights)
    sizes = []
    for w in weights:
        x = w * scale
        n = int(x) + (1 if rng.random() < x - int(x) else 0)
        sizes.append(max(1, n))
    return sizes


def decision(action, reason, host, ip, sender, rcpt):
    return "action=%s, reason=%s, client_name=%s, client_address=%s, sender=%s, recipient=%s" % (
        action, reason, host, ip, sender, rcpt)


def mail_attempts(group, start_s, rng):
    """The postgrey decisions of one mail: (seconds, line, greylisted?)."""
    sender = group.sender()
    rcpt = recipient(rng)
    host, ip = rng.choice(group.servers)
    out = [(start_s, decision("greylist", "new", host, ip, sender, rcpt), True)]
    if rng.random() < group.gives_up:
        return out
    first_s = start_s
    at = start_s
    seen = [(host, ip)]
    while len(seen) < 3 and rng.random() < group.retries_elsewhere:
        at += rng.randint(300, 4000)
        host, ip = rng.choice(group.servers)
        if (host, ip) in seen:
            break
        seen.append((host, ip))
        out.append((at, decision("greylist", "new", host, ip, sender, rcpt), True))
    host, ip = rng.choice(seen)
    if rng.random() < 0.06:
        early = rng.randint(20, 280)
        out.append((first_s + early, decision("greylist", "early-retry (%ds missing)" % (300 - early),
                                              host, ip, sender, rcpt), True))
        at = max(at, first_s + early)
    at += rng.randint(300, 4000)
    # The retry passes from whichever server first met the triplet on that network.
    out.append((at, decision("pass", "triplet found, delay=%d" % (at - first_s), host, ip,
                             sender, rcpt), False))
    return out


def write_log(path, args, start_day_s):
    rng = random.Random(args.seed)
    world = World(rng)
    sizes = zipf_sizes(args.greylistings, args.groups, args.zipf, rng)
    head = [Group(world, rank, rng) for rank in range(min(args.groups, args.head))]
    lines = 0
    greylistings = 0
    with open(path, "w") as log:
        for week in range(args.weeks):
            tail = [Group(world, rank, rng) for rank in range(len(head), args.groups)]
            events = []
            week_s = start_day_s + week * 7 * DAY_S
            for size, group in zip(sizes, head + tail):
                budget = size
                while budget > 0:
                    start = week_s + rng.random() * (7 * DAY_S - 6 * 4000)
                    for at, line, grey in mail_attempts(group, start, rng):
                        events.append((at, line))
                        budget -= grey
                        greylistings += grey
                # Mail of known triplets and auto-whitelisted clients, not greylisted.
                for _ in range(int(size * rng.uniform(0.0, 0.6))):
                    host, ip = rng.choice(group.servers)
                    reason = "client AWL" if rng.random() < 0.5 else "triplet found"
                    events.append((week_s + rng.random() * 7 * DAY_S,
                                   decision("pass", reason, host, ip, group.sender(),
                                            recipient(rng))))
            events.sort(key=lambda e: e[0])
            for at, line in events:
                stamp = dt.datetime.fromtimestamp(at, dt.timezone.utc)
                log.write("%s+00:00 mx1 postgrey[1337]: %s\n"
                          % (stamp.strftime("%Y-%m-%dT%H:%M:%S.%f"), line))
            lines += len(events)
    return lines, greylistings


def gz_size(data):
    return len(gzip.compress(data, 6))


def mb(n):
    return "%.2f MB" % (n / 1e6)


def compact_len(value):
    return len(json.dumps(value, separators=(",", ":")))


def breakdown(state):
    """Bytes of the serialised state by part: per-group fields summed over groups."""
    tally = state.get("tally", {})
    parts = {}
    groups = tally.get("groups", {})
    for key, group in groups.items():
        parts["group keys"] = parts.get("group keys", 0) + len(json.dumps(key)) + 2
        fields = group.items() if isinstance(group, dict) else [("(value)", group)]
        for name, value in fields:
            label = "groups.*.%s" % name
            parts[label] = parts.get(label, 0) + compact_len(value)
            if isinstance(value, dict) and all(isinstance(v, dict) for v in value.values()):
                # Day buckets: which of their fields take the room.
                for inner in value.values():
                    parts[label + " (count)"] = parts.get(label + " (count)", 0) + 1
                    for field, v in inner.items():
                        sub = "  %s.*.%s" % (label, field)
                        parts[sub] = parts.get(sub, 0) + len(json.dumps(field)) + 1 + compact_len(v)
    for name, value in tally.items():
        if name != "groups":
            parts["tally.%s" % name] = compact_len(value)
    return len(groups), parts


def by_name(summary):
    return {g.get("domain") or g.get("network"): g
            for part in ("groups", "unresolved") for g in summary[part]}


def compare(args, command, state, summary, limited):
    """What the size limit changed: the same run without one, summaries side by side."""
    unlimited_state = state + ".unlimited"
    if os.path.exists(unlimited_state):
        os.remove(unlimited_state)
    command = [a if a != state else unlimited_state for a in command]
    if "--max-state-size" in command:
        command[command.index("--max-state-size") + 1] = "1TB"
    else:
        command += ["--max-state-size", "1TB"]
    subprocess.run(command, stdout=subprocess.DEVNULL, check=True, env=dict(os.environ, TZ="UTC"))
    full = by_name(json.load(open(summary)))
    kept = by_name(limited)
    os.remove(unlimited_state)
    candidates = {k: g for k, g in full.items() if g.get("verdict")}
    lost = [k for k in candidates if k not in kept]
    print("compare:  without a limit: summary %s, groups in the window %d, kept %d; candidates %d, kept %d"
          % (mb(os.path.getsize(summary)), len(full), len(kept), len(candidates),
             len(candidates) - len(lost)))
    exact = ("new", "early_retry", "passed_after_delay", "retried_from_other_net", "status",
             "first_seen", "last_seen")
    for field in exact + ("verdict", "suggestion", "distinct_ips", "distinct_hosts",
                          "median_delay_s"):
        differ = [k for k in candidates if k in kept and candidates[k].get(field) != kept[k].get(field)]
        print("  %-24s differs for %d candidates%s" % (field, len(differ),
                                                       (": " + ", ".join(differ[:3])) if differ else ""))
    errors = sorted(abs(kept[k]["median_delay_s"] - g["median_delay_s"]) / g["median_delay_s"]
                    for k, g in candidates.items()
                    if k in kept and g.get("median_delay_s") and kept[k].get("median_delay_s"))
    if errors:
        print("  median wait: relative error p50 %.3f, p99 %.3f, max %.3f"
              % (errors[len(errors) // 2], errors[int(len(errors) * 0.99)], errors[-1]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--binary", default="target/release/postgrey-advisor")
    parser.add_argument("--greylistings", type=int, default=1_000_000, help="per week")
    parser.add_argument("--groups", type=int, default=47_000)
    parser.add_argument("--head", type=int, default=2_500,
                        help="groups that send every week (the rest is new each week)")
    parser.add_argument("--zipf", type=float, default=1.0)
    parser.add_argument("--weeks", type=int, default=1)
    parser.add_argument("--seed", type=int, default=20261121)
    parser.add_argument("--end", help="the log ends at 00:00 UTC of this day (default today)")
    parser.add_argument("--keep-files", metavar="DIR",
                        help="write log and state here and keep them (default: a temporary dir)")
    parser.add_argument("--window", default="7d", help="run's --window (the detail kept longest)")
    parser.add_argument("--max-state-size", help="run's --max-state-size (default: its default)")
    parser.add_argument("--compare", action="store_true",
                        help="run again without a size limit and compare the two summaries")
    parser.add_argument("--reuse-log", action="store_true",
                        help="with --keep-files: measure the log written there before")
    args = parser.parse_args()

    end = dt.date.fromisoformat(args.end) if args.end else dt.datetime.now(dt.timezone.utc).date()
    end_s = int(dt.datetime(end.year, end.month, end.day, tzinfo=dt.timezone.utc).timestamp())
    start_s = end_s - args.weeks * 7 * DAY_S

    if args.keep_files:
        os.makedirs(args.keep_files, exist_ok=True)
        work = args.keep_files
        cleanup = None
    else:
        cleanup = tempfile.TemporaryDirectory(prefix="state-size.")
        work = cleanup.name
    log = os.path.join(work, "mail.log")
    state = os.path.join(work, "state.json")
    summary = os.path.join(work, "summary.json")
    for stale in (state, summary):
        if os.path.exists(stale):
            os.remove(stale)

    if args.reuse_log and os.path.exists(log):
        print("log:      %s, reused" % mb(os.path.getsize(log)))
    else:
        began = time.monotonic()
        lines, greylistings = write_log(log, args, start_s)
        print("log:      %d lines, %d greylistings, %s, written in %.1f s (%s .. %s)"
              % (lines, greylistings, mb(os.path.getsize(log)), time.monotonic() - began,
                 dt.date.fromtimestamp(start_s), end))

    command = [args.binary, "run", "--file", log, "--state", state, "--initial-since", "@0",
               "--window", args.window, "--whitelist-clients", "/dev/null",
               "--ignore-file", "/dev/null", "--format", "json"]
    if args.max_state_size:
        command += ["--max-state-size", args.max_state_size]
    began = time.monotonic()
    report = subprocess.run(command, stdout=subprocess.PIPE, check=True,
                            env=dict(os.environ, TZ="UTC")).stdout
    took = time.monotonic() - began
    for note in json.loads(report).get("notes", []):
        print("note:     %s" % note)

    state_bytes = open(state, "rb").read()
    summary_bytes = open(summary, "rb").read()
    print("run:      %.1f s" % took)
    print("state:    %s raw, %s gzipped" % (mb(len(state_bytes)), mb(gz_size(state_bytes))))
    print("summary:  %s raw, %s gzipped" % (mb(len(summary_bytes)), mb(gz_size(summary_bytes))))
    groups, parts = breakdown(json.loads(state_bytes))
    print("state by part (%d groups):" % groups)
    for name, size in sorted(parts.items(), key=lambda p: -p[1]):
        if name.endswith("(count)"):
            print("  %-36s %d" % (name, size))
        else:
            print("  %-36s %s" % (name, mb(size)))
    if args.compare:
        compare(args, command, state, summary, json.loads(summary_bytes))
    if cleanup:
        cleanup.cleanup()


if __name__ == "__main__":
    sys.exit(main())
