#!/usr/bin/env python3
"""Reference side of ignis_tokbench: HF tokenizers (Rust) and sentencepiece (C++) encoding
war-and-peace in ~4 KB chunks, one call per chunk, one thread (TOKENIZERS_PARALLELISM=false,
no batch API), MB/s as the median of N runs.

    python3 bench/tokenizer_bench_hf.py [--assets DIR] [--runs 5] [--chunk 4096]
"""
import argparse
import os
import statistics
import sys
import time

os.environ["TOKENIZERS_PARALLELISM"] = "false"
os.environ.setdefault("RAYON_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../tests/tokenizer"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--assets", default=os.environ.get("IGNIS_ASSETS") or os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "../../shared/assets"))
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--chunk", type=int, default=4096)
    args = ap.parse_args()
    import sentencepiece as spm
    import tokenizers
    from tokenizers import Tokenizer
    from make_golden import chunks, llama2_hf_tokenizer
    A = args.assets
    with open(os.path.join(A, "workloads/war-and-peace.txt"), "rb") as f:
        data = f.read()
    parts = chunks(data, args.chunk)
    mb = len(data) / 1e6
    print(f"text war-and-peace: {mb:.2f} MB in {len(parts)} chunks; median of {args.runs} runs, 1 thread; "
          f"tokenizers {tokenizers.__version__}, sentencepiece {spm.__version__}")
    print(f"{'family':<18} {'MB/s':>10} {'cold MB/s':>10} {'tokens':>12}")

    def hf(tok):
        return lambda s: tok.encode(s, add_special_tokens=False).ids

    def qwen2():
        from transformers import AutoTokenizer
        return hf(AutoTokenizer.from_pretrained(os.path.join(A, "tokenizers/qwen2")).backend_tokenizer)

    def sp(path):
        p = spm.SentencePieceProcessor(model_file=os.path.join(A, path))
        return p.encode

    fams = [
        ("llama2 (sp)", lambda: sp("tokenizers/llama2/tokenizer.model")),
        ("llama2 (hf)", lambda: hf(llama2_hf_tokenizer(A, "/tmp/ignis-tokbench-hf"))),
        ("llama3", lambda: hf(Tokenizer.from_file(os.path.join(A, "tokenizers/llama3/tokenizer.json")))),
        ("qwen2", qwen2),
        ("qwen3", lambda: hf(Tokenizer.from_file(os.path.join(A, "tokenizers/qwen3/tokenizer.json")))),
        ("internlm2 (sp)", lambda: sp("tokenizers/internlm2/tokenizer.model")),
    ]
    for name, make in fams:
        enc = make()
        times, ntok = [], 0
        for _ in range(args.runs):
            t0 = time.perf_counter()
            ntok = sum(len(enc(p)) for p in parts)
            times.append(time.perf_counter() - t0)
        print(f"{name:<18} {mb / statistics.median(times):>10.2f} {mb / times[0]:>10.2f} {ntok:>12}", flush=True)


if __name__ == "__main__":
    main()
