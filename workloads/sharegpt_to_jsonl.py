#!/usr/bin/env python3
"""Turns a ShareGPT JSON file into request lines for `ignis generate MODEL --batch`.

    workloads/sharegpt_to_jsonl.py [--ignis BIN] [--tokenizer DIR] [--output-len N |
        --output-range LO:HI] [--seed S] [--max-prompt-len N] [--limit N]
        IN.json > OUT.jsonl

Input: a ShareGPT file (a JSON list of {"id", "conversations": [{"from", "value"}, ...]}),
e.g. $IGNIS_ASSETS/workloads/ShareGPT_V3_filtered_1000.json.

Each entry becomes one line, in file order:
    {"id": "<sharegpt id>", "prompt_ids": [...], "max_new_tokens": L, "ignore_eos": true}

Prompt rule: the first human turn, tokenized with ignis' own tokenizer (`ignis tokenize
--add-special`, so BOS is prepended as the tokenizer's config says; default tokenizer:
$IGNIS_ASSETS/tokenizers/llama2, the vocabulary of synthetic:llama2-7b). Ids rather than
text are written so the workload also runs on synthetic models, which have no tokenizer.
Prompts longer than --max-prompt-len tokens (default 1024) keep their first tokens.
Entries without a human turn are skipped (reported on stderr).

Output-length rule: the filtered ShareGPT files shipped with the assets hold the human
turns only, so the completion length of the original conversation is not available. The
length is therefore set here, identically for every engine compared:
  - default: --output-len 256 (every request generates exactly 256 tokens, ignore_eos);
  - --output-range LO:HI: a length drawn uniformly from [LO, HI] per request, from a
    splitmix64 stream seeded by --seed (default 0) and the entry's index, so the same
    file, seed and range always give the same lengths.
ignore_eos is always true: a benchmark must generate the lengths it asks for.

A summary (requests, prompt tokens min/mean/max, output tokens in all) goes to stderr.
"""
import argparse
import json
import os
import subprocess
import sys

MASK = (1 << 64) - 1


def splitmix64(x):
    x = (x + 0x9E3779B97F4A7C15) & MASK
    z = x
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def main():
    assets = os.environ.get("IGNIS_ASSETS") or os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                            "..", "..", "shared", "assets")
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("input")
    ap.add_argument("--ignis", default=os.environ.get("IGNIS_BIN", "ignis"), help="the ignis binary")
    ap.add_argument("--tokenizer", default=os.path.join(assets, "tokenizers", "llama2"))
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--output-len", type=int, default=256)
    g.add_argument("--output-range", default=None, help="LO:HI")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-prompt-len", type=int, default=1024)
    ap.add_argument("--limit", type=int, default=0, help="first N entries only")
    a = ap.parse_args()

    try:
        with open(a.input, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        sys.exit(f"sharegpt_to_jsonl: {a.input}: {e}")
    if not isinstance(data, list):
        sys.exit(f"sharegpt_to_jsonl: {a.input}: expected a JSON list of conversations")
    lo = hi = a.output_len
    if a.output_range:
        try:
            lo, hi = (int(v) for v in a.output_range.split(":"))
        except ValueError:
            sys.exit(f"sharegpt_to_jsonl: --output-range expects LO:HI, got '{a.output_range}'")
    if lo < 1 or hi < lo:
        sys.exit(f"sharegpt_to_jsonl: output lengths must satisfy 1 <= LO <= HI (got {lo}:{hi})")

    entries = []
    for i, e in enumerate(data):
        conv = e.get("conversations") if isinstance(e, dict) else None
        human = next((c.get("value") for c in conv or [] if c.get("from") == "human"), None)
        if not isinstance(human, str) or not human:
            print(f"sharegpt_to_jsonl: entry {i} has no human turn: skipped", file=sys.stderr)
            continue
        entries.append((i, e.get("id", str(i)), human))
        if a.limit and len(entries) == a.limit:
            break

    feed = "".join(json.dumps({"text": h}) + "\n" for _, _, h in entries)
    r = subprocess.run([a.ignis, "tokenize", a.tokenizer, "--jsonl", "--add-special"], input=feed.encode(),
                       capture_output=True)
    if r.returncode != 0:
        sys.exit(f"sharegpt_to_jsonl: {a.ignis} tokenize failed: {r.stderr.decode(errors='replace').strip()}")
    lines = r.stdout.decode().splitlines()
    if len(lines) != len(entries):
        sys.exit(f"sharegpt_to_jsonl: tokenizer returned {len(lines)} lines for {len(entries)} prompts")

    plens, total_out = [], 0
    out = sys.stdout
    for (i, sid, _), line in zip(entries, lines):
        ids = json.loads(line)["ids"][: a.max_prompt_len]
        n_out = lo if lo == hi else lo + splitmix64((a.seed << 32) ^ i) % (hi - lo + 1)
        out.write(json.dumps({"id": sid, "prompt_ids": ids, "max_new_tokens": n_out, "ignore_eos": True},
                             separators=(",", ":")) + "\n")
        plens.append(len(ids))
        total_out += n_out
    if plens:
        print(f"sharegpt_to_jsonl: {len(plens)} requests; prompt tokens min {min(plens)} mean "
              f"{sum(plens) / len(plens):.1f} max {max(plens)} (total {sum(plens)}); output tokens {total_out}",
              file=sys.stderr)


if __name__ == "__main__":
    main()
