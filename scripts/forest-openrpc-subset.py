#!/usr/bin/env python3
"""Cuts tests/data/forest-openrpc-v1-subset.json from Forest's OpenRPC snapshot.

usage: scripts/forest-openrpc-subset.py FOREST_GIT_DIR > tests/data/forest-openrpc-v1-subset.json

Reads src/rpc/snapshots/forest__rpc__tests__rpc__v1.snap (YAML, needs PyYAML) as committed at
HEAD of a clone of https://github.com/ChainSafe/forest (a work tree or a bare repository)
and keeps the methods seal-sched calls with every schema they reach through `$ref`, unchanged.
Only for refreshing the test data; the tests read the JSON.
"""
import json
import subprocess
import sys

import yaml

METHODS = """ChainHead GasEstimateMessageGas MpoolPushMessage StateGetNetworkParams
StateGetRandomnessDigestFromBeacon StateGetRandomnessDigestFromTickets
StateGetRandomnessFromBeacon StateGetRandomnessFromTickets StateMinerAvailableBalance
StateMinerInfo StateMinerInitialPledgeForSector StateMinerPreCommitDepositForPower
StateMinerProvingDeadline StateMinerSectorAllocated StateNetworkName StateNetworkVersion
StateSearchMsg StateSectorPartition StateSectorPreCommitInfo Version WalletBalance""".split()

checkout = sys.argv[1]
path = "src/rpc/snapshots/forest__rpc__tests__rpc__v1.snap"


def git(*args):
    return subprocess.run(["git", "-C", checkout, *args], capture_output=True, text=True, check=True).stdout


text = git("show", f"HEAD:{path}")
# An insta snapshot: a YAML header, then the document.
doc = yaml.safe_load(text.split("---\n", 2)[2])
by_name = {m["name"]: m for m in doc["methods"]}
schemas = doc["components"]["schemas"]
reached = set()


def walk(x):
    if isinstance(x, dict):
        for k, v in x.items():
            if k == "$ref":
                name = v.rsplit("/", 1)[1]
                if name not in reached:
                    reached.add(name)
                    walk(schemas[name])
            else:
                walk(v)
    elif isinstance(x, list):
        for v in x:
            walk(v)


methods = [by_name["Filecoin." + m] for m in METHODS]
walk(methods)
out = {
    "_source": f"ChainSafe/forest {path} at {git('rev-parse', 'HEAD').strip()} ({git('log', '-1', '--format=%cs').strip()}), "
    f"Forest {doc['info']['version']}: the methods seal-sched calls and the schemas they reach",
    "methods": methods,
    "components": {"schemas": {k: schemas[k] for k in sorted(reached)}},
}
json.dump(out, sys.stdout, indent=1)
print()
