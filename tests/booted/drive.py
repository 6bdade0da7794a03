#!/usr/bin/python3
"""Mail from one multi-server sender, as postgrey sees it: Postfix's policy-delegation requests
to the postgrey on 127.0.0.1:10023 of the system this runs on.

usage: drive.py DOMAIN MAILS TAG

Each of MAILS mails (sender bounce-TAG-mN@DOMAIN, recipient bob@mx.pga-test.example) is
first tried from three servers of DOMAIN in three /24 networks, each greylisted as a new
triplet, then retried from the first server; postgrey's policy_test_time attribute makes that
retry 1900 s later, so it passes with delay=1900. Prints one JSON line: the requests sent and
postgrey's answers by kind, for the caller to compare with what postgrey logged.
"""
import json
import socket
import sys
import time

NETWORKS = ("198.51.100", "203.0.113", "192.0.2")


def ask(stream, reader, attributes):
    stream.sendall("".join(f"{k}={v}\n" for k, v in attributes.items()).encode() + b"\n")
    reply = []
    while True:
        line = reader.readline()
        if not line:
            sys.exit("postgrey closed the connection")
        line = line.decode().rstrip("\r\n")
        if not line:
            return reply[0] if reply else ""
        reply.append(line)


def main():
    domain, mails, tag = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    stream = socket.create_connection(("127.0.0.1", 10023), timeout=30)
    reader = stream.makefile("rb")
    answers = {}
    requests = 0
    now = int(time.time())
    for mail in range(mails):
        # A bounce address per mail that postgrey keys apart: it replaces a number standing
        # alone (bounce-r1-3 would be bounce-r1-#, one triplet for every mail), not one inside
        # a word.
        sender = f"bounce-{tag}-m{mail}@{domain}"
        servers = [
            (f"o{mail}-{i}.out.{domain}", f"{net}.{10 + mail}")
            for i, net in enumerate(NETWORKS)
        ]
        tries = [(name, ip, None) for name, ip in servers]
        tries.append((servers[0][0], servers[0][1], now + 1900))
        for name, ip, test_time in tries:
            attributes = {
                "request": "smtpd_access_policy",
                "protocol_state": "RCPT",
                "protocol_name": "ESMTP",
                "client_address": ip,
                "client_name": name,
                "reverse_client_name": name,
                "helo_name": name,
                "sender": sender,
                "recipient": "bob@mx.pga-test.example",
                "instance": f"{tag}.{mail}.{requests}",
            }
            if test_time is not None:
                attributes["policy_test_time"] = str(test_time)
            answer = ask(stream, reader, attributes)
            kind = answer.split()[0] if answer else "?"
            answers[kind] = answers.get(kind, 0) + 1
            requests += 1
    stream.close()
    print(json.dumps({"requests": requests, "answers": answers}, sort_keys=True))


main()
