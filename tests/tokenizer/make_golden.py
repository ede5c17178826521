#!/usr/bin/env python3
"""Golden token ids for ignis' tokenizer parity tests, made with the reference libraries:
HF `tokenizers` (tokenizer.json, and the vocab/merges conversion transformers does for Qwen2)
and `sentencepiece` (tokenizer.model).

    pip install tokenizers sentencepiece transformers protobuf
    python3 tests/tokenizer/make_golden.py --out build/golden [--assets DIR]

Writes to OUT:
  manifest.json        library versions, families, text counts
  texts.jsonl          one {"set": name, "text": str} per line (the inputs, shared)
  <family>.jsonl       per text, same order: {"ids": [...]} plus "decoded" when the
                       reference decode of those ids differs from the text
Families (tests/test_tokenizer_golden.c knows the same list):
  llama2-spm   sentencepiece, tokenizers/llama2/tokenizer.model, plain text
  llama2-hf    tokenizers with Llama-2's published tokenizer.json layout (Prepend + Replace
               normalizer, BPE with byte fallback, merges as transformers 4 derived them),
               special tokens parsed; the tokenizer.json is saved as OUT/_llama2_hf/ and ignis
               is tested on it too (the layout real Llama-2 HF directories ship)
  llama2-metaspace  tokenizer.json that transformers 5 makes from Llama-2's tokenizer.model
               (Metaspace prepend_scheme "first", re-derived merges), saved as
               OUT/_llama2_metaspace/, special tokens parsed
  internlm2-metaspace  the same for InternLM2's tokenizer.model (a NUL piece, no dummy
               prefix in the original), saved as OUT/_internlm2_metaspace/
  stories260K  sentencepiece, models/stories260K/hf/tokenizer.model
  spm-userdef  sentencepiece, a 600-piece BPE model trained by this script on sonnet.txt with
               user-defined symbols and whitespace collapsing (OUT/_spm_userdef/)
  internlm2    sentencepiece, tokenizers/internlm2/tokenizer.model (chat tokens decoded by name)
  llama3       tokenizers, tokenizers/llama3/tokenizer.json, special tokens parsed
               (OUT/_llama3_tiktoken/ links Llama-3's tiktoken tokenizer.model alone; ignis is
               tested on it against the same ids)
  qwen2        transformers AutoTokenizer (vocab.json + merges.txt -> tokenizers), special parsed
  qwen3        tokenizers, tokenizers/qwen3/tokenizer.json, special tokens parsed
  qwen-tiktoken  the `tiktoken` package on OUT/_qwen_tiktoken/qwen.tiktoken, Qwen (v1)'s rank
               file made from Qwen2's vocab.json (the two share the 151643 ranks), with
               tokenization_qwen.py's pattern and special tokens, all special tokens allowed
"""
import argparse
import json
import os
import random
import sys
import time
import unicodedata

SPECIAL_TEXTS = [
    "<s>Hello</s>",
    "Hello <s> world </s> again",
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi there!<|im_end|>\n<|im_start|>assistant\n",
    "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
    "<think>\nreasoning here\n</think>\n\nanswer",
    "text<|endoftext|>more text",
    "[UNUSED_TOKEN_146]user\nhello[UNUSED_TOKEN_145]",
    "<|im_start|><|im_start|><|im_end|>x<|im_end|>",
    "< s> <|im_start |> <|im_start|",
    "  <s>  leading and trailing  </s>  ",
    "<tool>call</tool> @@x@@ <tool <toolbox> \u03a9mega theeee @@@",
]

EDGE_TEXTS = [
    "", " ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", " \n \n ", "Hello world", " Hello world", "Hello World!",
    "ied 4 ½ months", "Führer", "  leading", "trailing  ", "a  b   c    d", "I'm he's they're we've I'll she'd",
    "I'M HE'S THEY'RE", "3.14159 1,000,000 12345678901234567890", "e\u0301 vs \u00e9 (NFC)", "\u1100\u1161\u11a8",
    "ｆｕｌｌｗｉｄｔｈ", "ﬁ ligature", "\u00a0non-breaking\u00a0spaces\u2003em", "zero\u200bwidth\ufeffbom",
    "\x00nul\x01ctl\x7fdel", "line\u2028sep\u2029para\x85nel", "mongolian\u180evowel", "tab\tsep\tvalues\t",
    "👨‍👩‍👧‍👦 👍🏽 🇫🇷 ❤️ 🏳️‍🌈", "こんにちは世界", "안녕하세요", "Привет мир", "مرحبا بالعالم", "שלום עולם",
    "नमस्ते दुनिया", "สวัสดีชาวโลก", "ᏣᎳᎩ ᎦᏬᏂᎯᏍᏗ", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝕞𝕒𝕥𝕙", "\u0301combining first",
    "a" * 1000, " " * 500, "\n" * 300, "9" * 700, "ab" * 400, "🙂" * 100,
]

# Code point pools of long-assigned blocks (Unicode <= 13), so regex engines built on older
# Unicode tables agree on the categories.
POOLS = {
    "latin": [(0x20, 0x7E), (0xA0, 0x17F)],
    "greek_cyr": [(0x391, 0x3C9), (0x400, 0x45F)],
    "arabic_hebrew": [(0x5D0, 0x5EA), (0x621, 0x64A), (0x660, 0x669)],
    "indic_thai": [(0x905, 0x939), (0x93E, 0x94D), (0x966, 0x96F), (0xE01, 0xE3A), (0xE40, 0xE5B)],
    "cjk": [(0x3041, 0x3096), (0x30A1, 0x30FA), (0x4E00, 0x9FA5), (0xAC00, 0xD7A3), (0x3000, 0x3003), (0xFF01, 0xFF5E)],
    "combining": [(0x300, 0x36F)],
    "emoji": [(0x1F300, 0x1F5FF), (0x1F600, 0x1F64F), (0x1F680, 0x1F6C5), (0x2600, 0x26FF), (0x1F3FB, 0x1F3FF)],
    "punct": [(0x2010, 0x2027), (0x2030, 0x205E), (0x21, 0x2F), (0x3A, 0x40), (0x5B, 0x60), (0x7B, 0x7E)],
    "space": [(0x9, 0xD), (0x20, 0x20), (0xA0, 0xA0), (0x2000, 0x200A), (0x3000, 0x3000), (0x85, 0x85)],
    "control": [(0x0, 0x1F), (0x7F, 0x9F), (0x200B, 0x200F), (0xFEFF, 0xFEFF), (0x2028, 0x2029), (0x180E, 0x180E)],
    "digits": [(0x30, 0x39), (0x660, 0x669), (0x966, 0x96F), (0xFF10, 0xFF19), (0x2460, 0x2473), (0xBC, 0xBE)],
}
ZWJ_SEQS = ["👨‍👩‍👧‍👦", "👩‍💻", "🧑🏽‍🚀", "🏳️‍🌈", "👁️‍🗨️", "❤️‍🔥", "🇯🇵", "🇺🇳", "✋🏿", "#️⃣", "©️"]


def pick(rng, pool):
    lo, hi = rng.choice(POOLS[pool])
    while True:
        c = chr(rng.randint(lo, hi))
        if unicodedata.category(c) not in ("Cn", "Cs"):
            return c


def random_texts(n, seed=20261124):
    rng = random.Random(seed)
    out = []
    names = list(POOLS)
    for i in range(n):
        kind = i % 6
        parts = []
        length = rng.randint(1, 80)
        for _ in range(length):
            r = rng.random()
            if kind == 0:  # mixed scripts
                parts.append(pick(rng, rng.choice(names)))
            elif kind == 1:  # emoji heavy
                parts.append(rng.choice(ZWJ_SEQS) if r < 0.4 else pick(rng, "emoji" if r < 0.7 else rng.choice(names)))
            elif kind == 2:  # digit and whitespace runs
                if r < 0.3:
                    parts.append(pick(rng, "digits") * rng.randint(1, 60))
                elif r < 0.6:
                    parts.append("".join(pick(rng, "space") for _ in range(rng.randint(1, 40))))
                else:
                    parts.append(pick(rng, rng.choice(["latin", "punct"])))
            elif kind == 3:  # controls inside words
                parts.append(pick(rng, "control") if r < 0.3 else pick(rng, "latin"))
            elif kind == 4:  # combining marks (NFC matters) and contractions
                if r < 0.3:
                    parts.append(pick(rng, "latin") + pick(rng, "combining"))
                elif r < 0.45:
                    parts.append(rng.choice(["'s", "'S", "'ll", "'LL", "'re", "'ve", "'m", "'d", "'t", "’s"]))
                else:
                    parts.append(pick(rng, rng.choice(["latin", "greek_cyr", "space"])))
            else:  # words
                w = "".join(pick(rng, rng.choice(["latin", "cjk", "greek_cyr", "arabic_hebrew", "indic_thai"]))
                            for _ in range(rng.randint(1, 8)))
                parts.append(w + rng.choice([" ", "  ", "\n", "", ", ", ".\n\n"]))
        out.append("".join(parts))
    return out


def chunks(data, size):
    """Splits UTF-8 bytes at roughly `size`, moved forward to a character boundary."""
    out, i = [], 0
    while i < len(data):
        j = min(i + size, len(data))
        while j < len(data) and (data[j] & 0xC0) == 0x80:
            j += 1
        out.append(data[i:j].decode("utf-8"))
        i = j
    return out


def collect_texts(assets):
    w = os.path.join(assets, "workloads")
    texts = []
    with open(os.path.join(w, "war-and-peace.txt"), "rb") as f:
        texts += [("war-and-peace", t) for t in chunks(f.read(), 4096)]
    with open(os.path.join(w, "sonnet.txt"), "rb") as f:
        data = f.read()
    texts += [("sonnet", t) for t in chunks(data, 4096)]
    texts += [("sonnet-lines", t) for t in data.decode("utf-8").split("\n")[:300]]
    with open(os.path.join(w, "ShareGPT_V3_filtered_1000.json"), encoding="utf-8") as f:
        for conv in json.load(f):
            for turn in conv.get("conversations", []):
                if isinstance(turn.get("value"), str):
                    texts.append(("sharegpt", turn["value"]))
    with open(os.path.join(w, "mt_bench_question.jsonl"), encoding="utf-8") as f:
        for line in f:
            if line.strip():
                for t in json.loads(line).get("turns", []):
                    texts.append(("mt-bench", t))
    texts += [("edge", t) for t in EDGE_TEXTS]
    texts += [("special", t) for t in SPECIAL_TEXTS]
    texts += [("random", t) for t in random_texts(3000)]
    return texts


def llama2_hf_tokenizer(assets, out):
    """Llama-2 as Hugging Face publishes it (tokenizer.json of meta-llama/Llama-2-7b-hf, made by
    transformers 4.x's LlamaConverter): BPE with byte fallback whose merges are every split of
    a piece into two pieces, ranked by the merged piece's score; Prepend + Replace normalizer.
    transformers 5 re-derives merges differently, so the published layout is rebuilt here."""
    import sentencepiece as spm
    from tokenizers import Tokenizer
    sp = spm.SentencePieceProcessor(model_file=os.path.join(assets, "tokenizers/llama2/tokenizer.model"))
    n = sp.get_piece_size()
    vocab = {sp.id_to_piece(i): i for i in range(n)}
    merges = []
    for piece, pid in vocab.items():
        if sp.is_control(pid) or sp.is_unknown(pid) or sp.is_byte(pid):
            continue
        local = [(piece[:k], piece[k:], sp.get_score(pid)) for k in range(1, len(piece))
                 if piece[:k] in vocab and piece[k:] in vocab]
        local.sort(key=lambda x: (vocab[x[0]], vocab[x[1]]))
        merges.extend(local)
    merges.sort(key=lambda m: m[2], reverse=True)
    j = {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [{"id": i, "content": sp.id_to_piece(i), "single_word": False, "lstrip": False,
                          "rstrip": False, "normalized": False, "special": True} for i in range(3)],
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": "\u2581"},
            {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]},
        "pre_tokenizer": None,
        "post_processor": None,
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
            {"type": "ByteFallback"}, {"type": "Fuse"},
            {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
        "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True,
                  "vocab": vocab, "merges": [f"{a} {b}" for a, b, _ in merges]},
    }
    d = os.path.join(out, "_llama2_hf")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(j, f, ensure_ascii=False)
    return Tokenizer.from_str(json.dumps(j))


def metaspace_tokenizer(assets, out, model_rel, name):
    """A tokenizer.model as transformers 5 converts it to tokenizer.json: Metaspace
    pre-tokenizer (prepend_scheme "first"), merges re-derived from the vocabulary. Saved as
    OUT/_<name>/tokenizer.json for ignis to load."""
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer
    d = os.path.join(out, "_" + name + "_conv")
    os.makedirs(d, exist_ok=True)
    link = os.path.join(d, "tokenizer.model")
    if not os.path.lexists(link):
        os.symlink(os.path.abspath(os.path.join(assets, model_rel)), link)
    with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
        json.dump({"tokenizer_class": "LlamaTokenizer"}, f)
    s = AutoTokenizer.from_pretrained(d).backend_tokenizer.to_str()
    m = os.path.join(out, "_" + name)
    os.makedirs(m, exist_ok=True)
    with open(os.path.join(m, "tokenizer.json"), "w", encoding="utf-8") as f:
        f.write(s)
    return Tokenizer.from_str(s)


def userdef_model(assets, out):
    """A small BPE SentencePiece model trained here (deterministic: one thread, fixed input)
    with user-defined symbols and whitespace collapsing, features none of the published
    models exercises. Saved as OUT/_spm_userdef/tokenizer.model."""
    import io
    import sentencepiece as spm
    m = io.BytesIO()
    spm.SentencePieceTrainer.train(
        input=os.path.join(assets, "workloads/sonnet.txt"), model_writer=m, model_type="bpe", vocab_size=600,
        byte_fallback=True, user_defined_symbols=["<tool>", "</tool>", "@@", "\u03a9", "thee", "<tool"],
        normalization_rule_name="identity", remove_extra_whitespaces=True, num_threads=1,
        character_coverage=1.0, minloglevel=2)
    d = os.path.join(out, "_spm_userdef")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "tokenizer.model"), "wb") as f:
        f.write(m.getvalue())
    sp = spm.SentencePieceProcessor(model_proto=m.getvalue())
    return (lambda batch: sp.encode(batch), lambda ids: sp.decode(ids))


# tokenization_qwen.py (Qwen v1)
QWEN_PAT = (r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"""
            r"""\s*[\r\n]+|\s+(?!\S)|\s+""")
QWEN_SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"] + ["<|extra_%d|>" % i for i in range(205)]


def qwen_tiktoken(assets, out):
    """Writes OUT/_qwen_tiktoken/qwen.tiktoken ("base64(bytes) rank" lines) from Qwen2's
    byte-level vocab.json and returns the tiktoken Encoding Qwen's tokenizer builds on it."""
    import base64
    import tiktoken
    # GPT-2's byte <-> printable-code-point table, which vocab.json's keys are written in
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\u00a1"), ord("\u00ac") + 1)) + \
        list(range(ord("\u00ae"), ord("\u00ff") + 1))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    byte_of = {chr(c): b for b, c in zip(bs, cs)}
    with open(os.path.join(assets, "tokenizers/qwen2/vocab.json"), encoding="utf-8") as f:
        vocab = json.load(f)
    ranks = {bytes(byte_of[ch] for ch in tok): r for tok, r in vocab.items()}
    d = os.path.join(out, "_qwen_tiktoken")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "qwen.tiktoken"), "w", encoding="ascii") as f:
        for b, r in sorted(ranks.items(), key=lambda kv: kv[1]):
            f.write("%s %d\n" % (base64.b64encode(b).decode(), r))
    enc = tiktoken.Encoding("qwen", pat_str=QWEN_PAT, mergeable_ranks=ranks,
                            special_tokens={t: len(ranks) + i for i, t in enumerate(QWEN_SPECIAL)})
    return (lambda batch: [enc.encode(t, allowed_special="all", disallowed_special=()) for t in batch],
            lambda ids: enc.decode(ids))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--assets", default=os.environ.get("IGNIS_ASSETS") or os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "../../../shared/assets"))
    ap.add_argument("--only", help="comma-separated families")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    import sentencepiece as spm
    import tokenizers
    from tokenizers import Tokenizer
    A = args.assets
    os.makedirs(args.out, exist_ok=True)
    t0 = time.time()
    texts = collect_texts(A)

    def sp_family(path):
        sp = spm.SentencePieceProcessor(model_file=os.path.join(A, path))
        return (lambda batch: sp.encode(batch), lambda ids: sp.decode(ids))

    def hf_family(tok):
        def enc(batch):
            return [e.ids for e in tok.encode_batch(batch, add_special_tokens=False)]
        return (enc, lambda ids: tok.decode(ids, skip_special_tokens=False))

    def internlm2():
        """sentencepiece ids; decode as HF's InternLM2 tokenizer shows them, its chat tokens
        ([UNUSED_TOKEN_141..146] in tokenizer.model) by their added names."""
        sp = spm.SentencePieceProcessor(model_file=os.path.join(A, "tokenizers/internlm2/tokenizer.model"))
        names = {92538: "<|plugin|>", 92539: "<|interpreter|>", 92540: "<|action_end|>",
                 92541: "<|action_start|>", 92542: "<|im_end|>", 92543: "<|im_start|>"}

        def dec(ids):
            out, run = [], []
            for i in ids:
                if i in names:
                    out += [sp.decode(run), names[i]]
                    run = []
                else:
                    run.append(i)
            return "".join(out + [sp.decode(run)])
        return (lambda batch: sp.encode(batch), dec)

    def qwen2():
        from transformers import AutoTokenizer
        return hf_family(AutoTokenizer.from_pretrained(os.path.join(A, "tokenizers/qwen2")).backend_tokenizer)

    families = {
        "llama2-spm": lambda: sp_family("tokenizers/llama2/tokenizer.model"),
        "llama2-hf": lambda: hf_family(llama2_hf_tokenizer(A, args.out)),
        "llama2-metaspace": lambda: hf_family(metaspace_tokenizer(A, args.out, "tokenizers/llama2/tokenizer.model",
                                                                  "llama2_metaspace")),
        "internlm2-metaspace": lambda: hf_family(metaspace_tokenizer(A, args.out, "tokenizers/internlm2/tokenizer.model",
                                                                     "internlm2_metaspace")),
        "stories260K": lambda: sp_family("models/stories260K/hf/tokenizer.model"),
        "spm-userdef": lambda: userdef_model(A, args.out),
        "internlm2": internlm2,
        "llama3": lambda: hf_family(Tokenizer.from_file(os.path.join(A, "tokenizers/llama3/tokenizer.json"))),
        "qwen2": qwen2,
        "qwen3": lambda: hf_family(Tokenizer.from_file(os.path.join(A, "tokenizers/qwen3/tokenizer.json"))),
        "qwen-tiktoken": lambda: qwen_tiktoken(A, args.out),
    }
    only = set(args.only.split(",")) if args.only else None
    # Llama-3's tiktoken tokenizer.model alone (no tokenizer.json next to it): ignis must
    # give the llama3 ids from it too
    tt = os.path.join(args.out, "_llama3_tiktoken")
    os.makedirs(tt, exist_ok=True)
    if not os.path.lexists(os.path.join(tt, "tokenizer.model")):
        os.symlink(os.path.abspath(os.path.join(A, "tokenizers/llama3/tokenizer.model")), os.path.join(tt, "tokenizer.model"))
    with open(os.path.join(args.out, "texts.jsonl.tmp"), "w", encoding="utf-8") as f:
        for s, t in texts:
            f.write(json.dumps({"set": s, "text": t}, ensure_ascii=False) + "\n")
    os.replace(os.path.join(args.out, "texts.jsonl.tmp"), os.path.join(args.out, "texts.jsonl"))
    done = []
    for name, make in families.items():
        if only and name not in only:
            continue
        t1 = time.time()
        enc, dec = make()
        batch = [t for _, t in texts]
        ids = enc(batch)
        tmp = os.path.join(args.out, name + ".jsonl.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            for text, row in zip(batch, ids):
                rec = {"ids": row}
                d = dec(row)
                if d != text:
                    rec["decoded"] = d
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")
        os.replace(tmp, os.path.join(args.out, name + ".jsonl"))
        done.append(name)
        print(f"{name}: {len(batch)} texts, {sum(map(len, ids))} ids, {time.time() - t1:.1f}s", file=sys.stderr)
    import sentencepiece
    versions = {"python": sys.version.split()[0], "tokenizers": tokenizers.__version__,
                "sentencepiece": sentencepiece.__version__}
    for mod in ("transformers", "google.protobuf", "tiktoken"):
        try:
            versions[mod.split(".")[-1]] = __import__(mod, fromlist=["__version__"]).__version__
        except ImportError:
            pass
    sets = {}
    for s, _ in texts:
        sets[s] = sets.get(s, 0) + 1
    mpath = os.path.join(args.out, "manifest.json")
    if only and os.path.exists(mpath):  # a partial run keeps the other families listed
        with open(mpath) as f:
            done = sorted(set(done) | set(json.load(f).get("families", [])))
    with open(mpath, "w") as f:
        json.dump({"versions": versions, "families": done, "sets": sets, "texts": len(texts)}, f, indent=1)
    print(f"golden sets in {args.out} ({time.time() - t0:.1f}s)", file=sys.stderr)


if __name__ == "__main__":
    main()
