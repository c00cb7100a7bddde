#!/usr/bin/env python3
"""The reference peer: the plain integration script Tally replaces.

It reads a DHIS2 data value set, maps data element codes through a table of code rules
(a "source,target" CSV), and posts the values in chunks of 1000 to a DHIS2
/api/dataValueSets, one request at a time, with no durability, no retries and no record of
what was sent. It prints one JSON line: the wall-clock time it started reading the file
(Unix seconds), the values it sent and the seconds it took until the last answer. With
--startup-only it stops once the interpreter and its imports are up, so that the harness can
subtract that CPU time from a run's. Standard library only.
"""
import argparse
import base64
import http.client
import json
import sys
import time
import urllib.parse


def rules(path):
    table = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                source, target = line.split(",", 1)
                table[source] = target
    return table


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--file", required=True)
    ap.add_argument("--url", required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--rules-file", required=True)
    ap.add_argument("--chunk", type=int, default=1000)
    ap.add_argument("--startup-only", action="store_true")
    a = ap.parse_args()
    if a.startup_only:
        print(json.dumps({"start": time.time(), "sent": 0, "seconds": 0}))
        return 0

    table = rules(a.rules_file)
    u = urllib.parse.urlsplit(a.url)
    path = u.path.rstrip("/") + "/api/dataValueSets?dataElementIdScheme=CODE&orgUnitIdScheme=CODE&categoryOptionComboIdScheme=CODE"
    auth = "Basic " + base64.b64encode(("%s:%s" % (a.user, a.password)).encode()).decode()
    conn = http.client.HTTPConnection(u.hostname, u.port or 80)

    wall = time.time()
    start = time.perf_counter()
    with open(a.file) as f:
        dvs = json.load(f)
    values = []
    for v in dvs["dataValues"]:
        de = table.get(v["dataElement"])
        if de is None:
            continue
        v["dataElement"] = de
        values.append(v)
    sent = 0
    for i in range(0, len(values), a.chunk):
        body = json.dumps({"dataValues": values[i:i + a.chunk]})
        conn.request("POST", path, body, {"Content-Type": "application/json", "Authorization": auth})
        resp = conn.getresponse()
        resp.read()
        if resp.status >= 300:
            print("HTTP %d" % resp.status, file=sys.stderr)
            return 1
        sent += min(a.chunk, len(values) - i)
    took = time.perf_counter() - start
    print(json.dumps({"start": wall, "sent": sent, "seconds": took}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
