#!/usr/bin/env python3
"""Merges the raw truth logs of one capture (one per process) into
NAME.truth.jsonl: sorted by connection, then by time of send; within one
process, ties keep the order in which the records were written.

usage: merge_truth.py OUT.truth.jsonl RAW.jsonl [RAW.jsonl ...]
Prints a one-line summary of counts by direction and opcode.
"""
import collections
import json
import sys


def main():
    out, raws = sys.argv[1], sys.argv[2:]
    records = []
    for file_index, path in enumerate(raws):
        with open(path, encoding="utf-8") as f:
            for line_index, line in enumerate(f):
                rec = json.loads(line)
                records.append(((rec["conn"], rec.pop("t"), file_index, line_index), rec))
    records.sort(key=lambda r: r[0])
    counts = collections.Counter()
    with open(out, "w", encoding="utf-8") as f:
        for _, rec in records:
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
            counts[f"{rec['dir']}.{rec['opcode']}"] += 1
    conns = len({rec["conn"] for _, rec in records})
    summary = " ".join(f"{k}={v}" for k, v in sorted(counts.items()))
    print(f"{out.rsplit('/', 1)[-1]}: conns={conns} {summary}")


if __name__ == "__main__":
    main()
