#!/usr/bin/env python3
"""The reference peer: the plain integration script Tally replaces.

It reads a DHIS2 data value set, maps data element codes through a table of code rules,
and posts the values in chunks of 1000 to a DHIS2 /api/dataValueSets, with no durability,
no retries and no record of what was sent. It prints the values per second it achieved,
from reading the file to the last answer. Standard library only.
"""
import argparse
import base64
import http.client
import json
import sys
import time
import urllib.parse

ELEMENTS = ["EPI_BCG", "EPI_PENTA1", "EPI_MEASLES1"]


def rules(n):
    table = {}
    for i in range(n):
        if i < len(ELEMENTS):
            table[ELEMENTS[i]] = ELEMENTS[i]
        else:
            table["PI_PAD_%03d" % i] = ELEMENTS[i % len(ELEMENTS)]
    return table


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--file", required=True)
    ap.add_argument("--url", required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--rules", type=int, default=100)
    ap.add_argument("--chunk", type=int, default=1000)
    a = ap.parse_args()

    table = rules(a.rules)
    u = urllib.parse.urlsplit(a.url)
    path = u.path.rstrip("/") + "/api/dataValueSets?dataElementIdScheme=CODE&orgUnitIdScheme=CODE&categoryOptionComboIdScheme=CODE"
    auth = "Basic " + base64.b64encode(("%s:%s" % (a.user, a.password)).encode()).decode()
    conn = http.client.HTTPConnection(u.hostname, u.port or 80)

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
    print("%.0f" % (sent / took))
    return 0


if __name__ == "__main__":
    sys.exit(main())
