#!/usr/bin/env python3
"""Fixed-shape synthetic requests for `ignis generate MODEL --batch` (throughput runs such
as "128 in / 128 out, 256 requests"):

    workloads/random_jsonl.py [--n 256] [--input-len 128] [--output-len 128]
                              [--vocab 32000] [--seed 0] > OUT.jsonl

Each line: {"id": "rand-<i>", "prompt_ids": [...], "max_new_tokens": OUTPUT_LEN,
"ignore_eos": true}. Prompt ids are drawn uniformly from [3, vocab) (clear of the usual
BOS/EOS/UNK ids 0-2) by a splitmix64 stream seeded with --seed and the request index, so a
given command always writes the same file; every prompt differs, so the prefix cache does
not hit.
"""
import argparse
import json
import sys

MASK = (1 << 64) - 1


def splitmix64(x):
    x = (x + 0x9E3779B97F4A7C15) & MASK
    z = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--input-len", type=int, default=128)
    ap.add_argument("--output-len", type=int, default=128)
    ap.add_argument("--vocab", type=int, default=32000)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    if a.n < 1 or a.input_len < 1 or a.output_len < 1 or a.vocab < 4:
        sys.exit("random_jsonl: --n, --input-len and --output-len must be >= 1, --vocab >= 4")
    for i in range(a.n):
        ids = [3 + splitmix64((a.seed << 40) ^ (i << 20) ^ k) % (a.vocab - 3) for k in range(a.input_len)]
        sys.stdout.write(json.dumps({"id": f"rand-{i}", "prompt_ids": ids, "max_new_tokens": a.output_len,
                                     "ignore_eos": True}, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    main()
