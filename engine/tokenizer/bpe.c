/* Byte-level BPE encoding (GPT-2 family: Llama-3, Qwen2/3): NFC where declared, the
 * pre-tokenizer's split regex (PCRE2, UTF + UCP + JIT), then rank-ordered merges on each
 * piece's bytes. Pieces are looked up by their raw bytes, so the byte-to-unicode text is
 * never materialized; a word cache skips the merge loop for words seen before. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "tokenizer/tok_internal.h"

/* ------------------------------------------------------------ regex */

/* White_Space as Rust's and Oniguruma's \s define it; PCRE2's UCP \s also takes U+180E. */
static const char k_ws_class[] = "\\t-\\r \\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}"
                                 "\\x{205F}\\x{3000}";

/* Rewrites \s and \S so PCRE2 matches exactly the White_Space set. */
static char *rewrite_ws(const char *pat)
{
    size_t n = strlen(pat), cap = n * 8 + 64, o = 0;
    char *out = malloc(cap);
    if (!out) return NULL;
    bool in_class = false;
    for (size_t i = 0; i < n; i++) {
        char c = pat[i];
        if (c == '\\' && i + 1 < n) {
            char d = pat[i + 1];
            if (d == 's' || d == 'S') {
                if (in_class && d == 's')
                    o += (size_t)sprintf(out + o, "%s", k_ws_class);
                else if (!in_class)
                    o += (size_t)sprintf(out + o, d == 's' ? "[%s]" : "[^%s]", k_ws_class);
                else {
                    free(out); /* \S inside a class: keep PCRE2's meaning */
                    return strdup(pat);
                }
                i++;
                continue;
            }
            out[o++] = c;
            out[o++] = d;
            i++;
            continue;
        }
        if (c == '[' && !in_class)
            in_class = true;
        else if (c == ']' && in_class)
            in_class = false;
        out[o++] = c;
    }
    out[o] = 0;
    return out;
}

ignis_status ig_bpe_compile_regex(ignis_tokenizer *t, const char *pattern, const char *where)
{
    char *pat = rewrite_ws(pattern);
    if (!pat) return ig_err(IGNIS_E_NOMEM, "tokenizer: out of memory");
    int err;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED,
                                   PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &err, &off, NULL);
    free(pat);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        return ig_err(IGNIS_E_FORMAT, "%s: pre-tokenizer regex does not compile at offset %zu: %s", where, (size_t)off,
                      (char *)msg);
    }
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* falls back to the interpreter if JIT is unavailable */
    if (t->re_code) pcre2_code_free((pcre2_code *)t->re_code);
    t->re_code = re;
    return IGNIS_OK;
}

void ig_bpe_free_regex(ignis_tokenizer *t)
{
    if (t->re_code) pcre2_code_free((pcre2_code *)t->re_code);
    t->re_code = NULL;
}

/* ------------------------------------------------------------ merges */

struct wcand {
    int32_t rank;
    int pos;
};
typedef struct wcand wcand;

static inline bool wc_before(wcand a, wcand b) { return a.rank < b.rank || (a.rank == b.rank && a.pos < b.pos); }

typedef ig_bpe_scratch wscratch;

bool ig_bpe_ensure(void **p, int *cap, int need, size_t elem)
{
    if (need <= *cap) return true;
    int c = *cap ? *cap : 64;
    while (c < need)
        c *= 2;
    void *np = realloc(*p, (size_t)c * elem);
    if (!np) return false;
    *p = np;
    *cap = c;
    return true;
}

static void hpush(wcand *h, int *n, wcand c)
{
    int i = (*n)++;
    while (i > 0) {
        int par = (i - 1) / 2;
        if (!wc_before(c, h[par])) break;
        h[i] = h[par];
        i = par;
    }
    h[i] = c;
}

static wcand hpop(wcand *h, int *n)
{
    wcand top = h[0], last = h[--*n];
    int i = 0;
    for (;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        wcand best = last;
        if (l < *n && wc_before(h[l], best)) m = l, best = h[l];
        if (r < *n && wc_before(h[r], best)) m = r;
        if (m == i) break;
        h[i] = h[m];
        i = m;
    }
    if (*n) h[i] = last;
    return top;
}

/* Merges one pre-token (raw bytes) into ids appended to out. */
static ignis_status merge_word(const ignis_tokenizer *t, const unsigned char *w, size_t n, wscratch *sc, ig_ids *out)
{
    if (t->ignore_merges) {
        int32_t id = ig_strmap_get(&t->raw_map, (const char *)w, n);
        if (id >= 0) return ig_ids_push(out, id);
    }
    if (!ig_bpe_ensure((void **)&sc->sy, &sc->cap_sy, (int)n + 1, sizeof *sc->sy))
        return ig_err(IGNIS_E_NOMEM, "tokenizer: out of memory");
    int ns = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t id = t->byte_id[w[i]];
        if (id < 0) continue; /* a byte the vocabulary lacks: dropped, as HF does without unk */
        sc->sy[ns++].id = id;
    }
    return ig_bpe_merge_syms(t, sc, ns, out);
}

ignis_status ig_bpe_merge_syms(const ignis_tokenizer *t, ig_bpe_scratch *sc, int ns, ig_ids *out)
{
    ig_bpe_sym *sy = sc->sy;
    if (ns == 0) return IGNIS_OK;
    for (int i = 0; i < ns; i++) {
        sy[i].prev = i - 1;
        sy[i].next = i + 1;
    }
    sy[ns - 1].next = -1;
    if (ns <= 24) {
        /* short words: scanning for the best pair beats a heap */
        int head = 0;
        for (;;) {
            int32_t best_rank = INT32_MAX, best_merged = -1;
            int best = -1;
            for (int i = head; i >= 0 && sy[i].next >= 0; i = sy[i].next) {
                const struct ig_pair_slot *m = ig_pairmap_get(&t->merges, sy[i].id, sy[sy[i].next].id);
                if (m && m->rank < best_rank) {
                    best_rank = m->rank;
                    best = i;
                    best_merged = m->merged;
                }
            }
            if (best < 0) break;
            int r = sy[best].next;
            sy[best].id = best_merged;
            sy[best].next = sy[r].next;
            if (sy[r].next >= 0) sy[sy[r].next].prev = best;
        }
        for (int i = head; i >= 0; i = sy[i].next)
            IG_TRY(ig_ids_push(out, sy[i].id));
        return IGNIS_OK;
    }
    if (!ig_bpe_ensure((void **)&sc->h, &sc->cap_h, ns * 2 + 8, sizeof *sc->h))
        return ig_err(IGNIS_E_NOMEM, "tokenizer: out of memory");
    int hn = 0;
    for (int i = 0; i + 1 < ns; i++) {
        const struct ig_pair_slot *m = ig_pairmap_get(&t->merges, sy[i].id, sy[i + 1].id);
        if (m) hpush(sc->h, &hn, (wcand){m->rank, i});
    }
    while (hn > 0) {
        wcand c = hpop(sc->h, &hn);
        int r = sy[c.pos].next;
        if (sy[c.pos].id < 0 || r < 0) continue;
        const struct ig_pair_slot *m = ig_pairmap_get(&t->merges, sy[c.pos].id, sy[r].id);
        if (!m || m->rank != c.rank) continue; /* stale */
        sy[c.pos].id = m->merged;
        sy[c.pos].next = sy[r].next;
        sy[r].id = -1;
        if (sy[r].next >= 0) sy[sy[r].next].prev = c.pos;
        if (!ig_bpe_ensure((void **)&sc->h, &sc->cap_h, hn + 2, sizeof *sc->h))
            return ig_err(IGNIS_E_NOMEM, "tokenizer: out of memory");
        int p = sy[c.pos].prev;
        if (p >= 0) {
            const struct ig_pair_slot *pm = ig_pairmap_get(&t->merges, sy[p].id, sy[c.pos].id);
            if (pm) hpush(sc->h, &hn, (wcand){pm->rank, p});
        }
        int nx = sy[c.pos].next;
        if (nx >= 0) {
            const struct ig_pair_slot *nm = ig_pairmap_get(&t->merges, sy[c.pos].id, sy[nx].id);
            if (nm) hpush(sc->h, &hn, (wcand){nm->rank, c.pos});
        }
    }
    for (int i = 0; i >= 0; i = sy[i].next)
        IG_TRY(ig_ids_push(out, sy[i].id));
    return IGNIS_OK;
}

static ignis_status encode_word(const ignis_tokenizer *t, const char *w, size_t n, wscratch *sc, ig_ids *out,
                                ig_word_cache *cache)
{
    if (!cache || n > IG_CACHE_MAX_WORD) return merge_word(t, (const unsigned char *)w, n, sc, out);
    uint64_t h = ig_hash_bytes(w, n) | 1;
    int k;
    const int32_t *ids = ig_word_cache_get(cache, w, n, h, &k);
    if (ids) return ig_ids_append(out, ids, k);
    int before = out->n;
    IG_TRY(merge_word(t, (const unsigned char *)w, n, sc, out));
    ig_word_cache_put(cache, w, n, h, out->p + before, out->n - before);
    return IGNIS_OK;
}

/* ------------------------------------------------------------ NFC */

static bool all_ascii(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] & 0x80) return false;
    return true;
}

/* NFC of the valid UTF-8 runs; invalid bytes are kept as they are. */
static ignis_status nfc(const unsigned char *s, size_t n, ig_buf *out)
{
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n) {
            int l = s[j] < 0x80 ? 1 : ig_utf8_valid_len(s + j, n - j);
            if (!l) break;
            j += (size_t)l;
        }
        if (j > i) {
            utf8proc_uint8_t *dst = NULL;
            utf8proc_ssize_t k =
                utf8proc_map(s + i, (utf8proc_ssize_t)(j - i), &dst, UTF8PROC_STABLE | UTF8PROC_COMPOSE);
            if (k < 0) {
                free(dst);
                IG_TRY(ig_buf_put(out, s + i, j - i));
            } else {
                ignis_status st = ig_buf_put(out, dst, (size_t)k);
                free(dst);
                IG_TRY(st);
            }
        }
        if (j < n) {
            int bad = ig_utf8_invalid_len(s + j, n - j);
            IG_TRY(ig_buf_put(out, s + j, (size_t)bad));
            j += (size_t)bad;
        }
        i = j;
    }
    return IGNIS_OK;
}

/* ------------------------------------------------------------ encode */

ignis_status ig_bpe_encode(const ignis_tokenizer *t, const char *text, size_t len, ig_ids *out, ig_word_cache *cache)
{
    ig_buf norm = {0}, pre = {0};
    ignis_status st = IGNIS_OK;
    const char *s = text;
    size_t n = len;
    if (t->nfc && !all_ascii((const unsigned char *)s, n)) {
        if ((st = nfc((const unsigned char *)s, n, &norm)) != IGNIS_OK) goto done;
        s = norm.p ? norm.p : "";
        n = norm.n;
    }
    if (t->bl_add_prefix_space && n > 0 && s[0] != ' ') {
        if ((st = ig_buf_put(&pre, " ", 1)) != IGNIS_OK || (st = ig_buf_put(&pre, s, n)) != IGNIS_OK) goto done;
        s = pre.p;
        n = pre.n;
    }
    wscratch sc = {0};
    if (!t->re_code) {
        st = encode_word(t, s, n, &sc, out, cache);
    } else {
        pcre2_code *re = (pcre2_code *)t->re_code;
        pcre2_match_data *md = pcre2_match_data_create(1, NULL);
        if (!md) {
            st = ig_err(IGNIS_E_NOMEM, "tokenizer: out of memory");
            goto done_sc;
        }
        size_t pos = 0;
        while (pos < n && st == IGNIS_OK) {
            int rc = pcre2_match(re, (PCRE2_SPTR)s, n, pos, 0, md, NULL);
            if (rc == PCRE2_ERROR_JIT_STACKLIMIT) /* pathological run: the interpreter has no such limit */
                rc = pcre2_match(re, (PCRE2_SPTR)s, n, pos, PCRE2_NO_JIT, md, NULL);
            if (rc == PCRE2_ERROR_NOMATCH) {
                st = encode_word(t, s + pos, n - pos, &sc, out, cache);
                break;
            }
            if (rc < 0) {
                PCRE2_UCHAR msg[128];
                pcre2_get_error_message(rc, msg, sizeof msg);
                st = ig_err(IGNIS_E_INTERNAL, "tokenizer: pre-tokenizer regex failed: %s", (char *)msg);
                break;
            }
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
            size_t ms = ov[0], me = ov[1];
            if (ms > pos) st = encode_word(t, s + pos, ms - pos, &sc, out, cache); /* unmatched gap */
            if (st != IGNIS_OK) break;
            if (me == ms) { /* empty match: step one character to make progress */
                size_t step = 1;
                while (ms + step < n && ((unsigned char)s[ms + step] & 0xC0) == 0x80)
                    step++;
                st = encode_word(t, s + ms, step, &sc, out, cache);
                pos = ms + step;
                continue;
            }
            st = encode_word(t, s + ms, me - ms, &sc, out, cache);
            pos = me;
        }
        pcre2_match_data_free(md);
    }
done_sc:
    free(sc.sy);
    free(sc.h);
done:
    free(norm.p);
    free(pre.p);
    return st;
}
