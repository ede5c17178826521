#!/usr/bin/env python3
"""Writes a llama2-7b-shaped GGUF with random fp16 weights, for comparing `ignis` with
llama.cpp's `llama-server` on the same model shape (`synthetic:llama2-7b` has random
weights too; neither answers sensibly, both do the same work per token):

    python3 -m venv /tmp/gg && /tmp/gg/bin/pip install gguf==0.19.0
    /tmp/gg/bin/python workloads/random_gguf.py \\
        ../shared/assets/llama.cpp-vocab/ggml-vocab-llama-spm.gguf llama2-7b-random.gguf
    llama-server -m llama2-7b-random.gguf -ngl 99 -c 65536 -np 64 --port 8080 --metrics

The metadata (architecture, shape, tokenizer) is copied from the vocab-only GGUF that
ships with llama.cpp's tests (in the assets): it describes Llama-2-7B with the Llama-2
SentencePiece vocabulary. --layers N writes fewer layers (a quick check of the file).
Weights are N(0, 0.02) from numpy's PCG64 seeded with --seed (a pool of 2^26 draws, each
tensor read from it at a random offset); norms are 1 (fp32).
About 13.5 GB for the full shape; tensors are written one at a time (little memory).
"""
import argparse
import sys

import numpy as np
import gguf


def field_value(f):
    """A reader field's value, in the form GGUFWriter.add_key_value takes."""
    return f.contents()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("vocab_gguf")
    ap.add_argument("out")
    ap.add_argument("--layers", type=int, default=0, help="override llama.block_count")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()

    r = gguf.GGUFReader(a.vocab_gguf)
    arch = field_value(r.fields["general.architecture"])
    if arch != "llama":
        sys.exit(f"random_gguf: {a.vocab_gguf} is a '{arch}' file; expected llama")
    kv = {k: f for k, f in r.fields.items() if not k.startswith("GGUF.")}
    n_layer = a.layers or field_value(kv["llama.block_count"])
    d = field_value(kv["llama.embedding_length"])
    ff = field_value(kv["llama.feed_forward_length"])
    heads = field_value(kv["llama.attention.head_count"])
    kv_heads = field_value(kv["llama.attention.head_count_kv"])
    vocab = len(kv["tokenizer.ggml.tokens"].data)
    hd = d // heads

    w = gguf.GGUFWriter(a.out, arch)
    for k, f in kv.items():
        if k == "general.architecture":
            continue  # written by the constructor
        val = field_value(f)
        if k == "llama.block_count":
            val = n_layer
        vt = f.types[0]
        if vt == gguf.GGUFValueType.ARRAY:
            w.add_key_value(k, val, vt, sub_type=f.types[-1])
        else:
            w.add_key_value(k, val, vt)

    # (name, numpy shape as (rows, cols) like PyTorch's, dtype)
    shapes = [("token_embd.weight", (vocab, d), np.float16)]
    for i in range(n_layer):
        p = f"blk.{i}."
        shapes += [(p + "attn_norm.weight", (d,), np.float32),
                   (p + "attn_q.weight", (d, d), np.float16),
                   (p + "attn_k.weight", (kv_heads * hd, d), np.float16),
                   (p + "attn_v.weight", (kv_heads * hd, d), np.float16),
                   (p + "attn_output.weight", (d, d), np.float16),
                   (p + "ffn_norm.weight", (d,), np.float32),
                   (p + "ffn_gate.weight", (ff, d), np.float16),
                   (p + "ffn_up.weight", (ff, d), np.float16),
                   (p + "ffn_down.weight", (d, ff), np.float16)]
    shapes += [("output_norm.weight", (d,), np.float32), ("output.weight", (vocab, d), np.float16)]
    for name, shape, dt in shapes:
        w.add_tensor_info(name, shape, np.dtype(dt), int(np.prod(shape)) * np.dtype(dt).itemsize)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    # Drawing 6.7e9 normals takes minutes; a pool of 2^26 draws, read from a random offset
    # (wrapping) per tensor, writes the same bytes per token at disk speed.
    rng = np.random.Generator(np.random.PCG64(a.seed))
    pool = (rng.standard_normal(1 << 26, dtype=np.float32) * 0.02).astype(np.float16)
    total = 0
    for name, shape, dt in shapes:
        if len(shape) == 1:
            t = np.ones(shape, dtype=dt)
        else:
            n = int(np.prod(shape))
            off = int(rng.integers(pool.size))
            reps = (off + n + pool.size - 1) // pool.size
            t = np.tile(pool, reps)[off:off + n].reshape(shape).astype(dt, copy=False)
        w.write_tensor_data(t)
        total += t.nbytes
    w.close()
    print(f"{a.out}: {len(shapes)} tensors, {total / 1e9:.2f} GB, {n_layer} layers, d={d}, ff={ff}, "
          f"heads={heads}/{kv_heads}, vocab={vocab}", file=sys.stderr)


if __name__ == "__main__":
    main()
