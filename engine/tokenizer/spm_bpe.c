/* SentencePiece BPE encoding, as sentencepiece's bpe_model.cc does it: normalize (dummy
 * prefix, whitespace escaping, optional whitespace collapsing, U+FFFD for each invalid
 * byte), split into characters with user-defined symbols frozen, then repeatedly merge the
 * adjacent pair whose concatenation is the highest-scoring piece (leftmost on ties).
 * Unknown results fall back to <0xNN> byte pieces. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"

static const char k_ws[] = "\xE2\x96\x81"; /* U+2581, SentencePiece's visible space */

static ignis_status normalize(const ignis_tokenizer *t, const unsigned char *s, size_t n, ig_buf *out)
{
    size_t i = 0;
    if (t->remove_extra_ws)
        while (i < n && s[i] == ' ')
            i++;
    if (i == n) return IGNIS_OK;
    IG_TRY(ig_buf_reserve(out, (n - i) * 3 + 8));
    if (t->add_dummy_prefix) IG_TRY(ig_buf_put(out, k_ws, 3));
    bool prev_space = t->remove_extra_ws;
    while (i < n) {
        unsigned c = s[i];
        if (c == ' ') {
            if (!(t->remove_extra_ws && prev_space)) {
                if (t->escape_ws)
                    IG_TRY(ig_buf_put(out, k_ws, 3));
                else
                    IG_TRY(ig_buf_put(out, " ", 1));
            }
            prev_space = true;
            i++;
            continue;
        }
        prev_space = false;
        int l = c < 0x80 ? 1 : ig_utf8_valid_len(s + i, n - i);
        if (l == 0) {
            IG_TRY(ig_buf_put(out, "\xEF\xBF\xBD", 3)); /* one replacement per invalid byte */
            i++;
            continue;
        }
        IG_TRY(ig_buf_put(out, s + i, (size_t)l));
        i += (size_t)l;
    }
    if (t->remove_extra_ws) {
        const char *sp = t->escape_ws ? k_ws : " ";
        size_t sl = t->escape_ws ? 3 : 1;
        while (out->n >= sl && memcmp(out->p + out->n - sl, sp, sl) == 0)
            out->n -= sl;
    }
    return IGNIS_OK;
}

typedef struct sym {
    int start, len, prev, next;
    bool freeze;
} sym;

typedef struct cand {
    float score;
    int left, right, size;
} cand;

static inline bool cand_before(const cand *a, const cand *b)
{
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

typedef struct heap {
    cand *v;
    int n, cap;
} heap;

static bool heap_push(heap *h, cand c)
{
    if (h->n == h->cap) {
        int cap = h->cap ? h->cap * 2 : 256;
        cand *p = realloc(h->v, (size_t)cap * sizeof *p);
        if (!p) return false;
        h->v = p;
        h->cap = cap;
    }
    int i = h->n++;
    while (i > 0) {
        int par = (i - 1) / 2;
        if (!cand_before(&c, &h->v[par])) break;
        h->v[i] = h->v[par];
        i = par;
    }
    h->v[i] = c;
    return true;
}

static cand heap_pop(heap *h)
{
    cand top = h->v[0], last = h->v[--h->n];
    int i = 0;
    for (;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        const cand *best = &last;
        if (l < h->n && cand_before(&h->v[l], best)) m = l, best = &h->v[l];
        if (r < h->n && cand_before(&h->v[r], best)) m = r;
        if (m == i) break;
        h->v[i] = h->v[m];
        i = m;
    }
    if (h->n) h->v[i] = last;
    return top;
}

static inline bool mergeable(const ignis_tokenizer *t, int32_t id)
{
    int ty = t->type[id];
    return ty == IG_PIECE_NORMAL || ty == IG_PIECE_USER_DEFINED || ty == IG_PIECE_UNUSED;
}

/* Unused pieces may be produced by a merge but never emitted: they are split back into
 * the pair that formed them (the last pair recorded for that text), recursively. */
typedef struct rev_entry {
    int start, len, left_len; /* span in the normalized text */
} rev_entry;

typedef struct enc {
    const ignis_tokenizer *t;
    const char *s;
    sym *sy;
    heap h;
    rev_entry *rev;
    int n_rev, cap_rev;
    bool oom;
} enc;

static void maybe_add(enc *e, int left, int right)
{
    if (left < 0 || right < 0 || e->sy[left].freeze || e->sy[right].freeze) return;
    int start = e->sy[left].start, size = e->sy[left].len + e->sy[right].len;
    int32_t id = ig_strmap_get(&e->t->piece_map, e->s + start, (size_t)size);
    if (id < 0 || !mergeable(e->t, id)) return;
    if (!heap_push(&e->h, (cand){e->t->score[id], left, right, size})) e->oom = true;
    if (e->t->type[id] == IG_PIECE_UNUSED) {
        if (e->n_rev == e->cap_rev) {
            int cap = e->cap_rev ? e->cap_rev * 2 : 16;
            rev_entry *p = realloc(e->rev, (size_t)cap * sizeof *p);
            if (!p) {
                e->oom = true;
                return;
            }
            e->rev = p;
            e->cap_rev = cap;
        }
        e->rev[e->n_rev++] = (rev_entry){start, size, e->sy[left].len};
    }
}

static ignis_status emit_unknown(const ignis_tokenizer *t, const unsigned char *p, int len, ig_ids *out, bool *prev_unk)
{
    if (t->byte_fallback) {
        for (int k = 0; k < len; k++)
            IG_TRY(ig_ids_push(out, t->byte_id[p[k]]));
        *prev_unk = false;
        return IGNIS_OK;
    }
    /* sentencepiece fuses a run of unknown pieces into one <unk> */
    if (!*prev_unk) IG_TRY(ig_ids_push(out, t->unk));
    *prev_unk = true;
    return IGNIS_OK;
}

static ignis_status emit(enc *e, int start, int len, ig_ids *out, bool *prev_unk, int depth)
{
    const ignis_tokenizer *t = e->t;
    int32_t id = ig_strmap_get(&t->piece_map, e->s + start, (size_t)len);
    if (id >= 0 && t->type[id] == IG_PIECE_UNUSED && depth < 64) {
        for (int k = e->n_rev - 1; k >= 0; k--) {
            const rev_entry *r = &e->rev[k];
            if (r->len == len && memcmp(e->s + r->start, e->s + start, (size_t)len) == 0) {
                int ll = r->left_len;
                IG_TRY(emit(e, start, ll, out, prev_unk, depth + 1));
                return emit(e, start + ll, len - ll, out, prev_unk, depth + 1);
            }
        }
    }
    if (id < 0 || id == t->unk || t->type[id] == IG_PIECE_UNUSED)
        return emit_unknown(t, (const unsigned char *)e->s + start, len, out, prev_unk);
    *prev_unk = false;
    return ig_ids_push(out, id);
}

static int user_prefix(const ignis_tokenizer *t, const char *s, size_t n)
{
    if (!t->user_first[(unsigned char)s[0]]) return 0;
    int maxl = t->max_user_len < (int)n ? t->max_user_len : (int)n;
    for (int l = maxl; l >= 1; l--) {
        int32_t id = ig_strmap_get(&t->user_map, s, (size_t)l);
        if (id >= 0) return l;
    }
    return 0;
}

ignis_status ig_spm_prepare_words(ignis_tokenizer *t)
{
    t->spm_words = t->escape_ws;
    for (int id = 0; id < t->n_vocab && t->spm_words; id++) {
        if (!mergeable(t, id)) continue;
        const unsigned char *p = (const unsigned char *)t->piece[id];
        size_t n = t->piece_len[id], prev = 0;
        bool have_prev = false;
        for (size_t i = 0; i < n;) {
            int l = ig_utf8_valid_len(p + i, n - i);
            if (!l) l = 1;
            if (have_prev && l == 3 && memcmp(p + i, k_ws, 3) == 0) {
                int pl = ig_utf8_valid_len(p + prev, n - prev);
                uint32_t cp = pl ? ig_utf8_decode(p + prev, pl) : p[prev];
                if (cp < 128)
                    t->join_ascii[cp] = true;
                else {
                    int k;
                    for (k = 0; k < t->n_join_cp && t->join_cp[k] != cp; k++) {
                    }
                    if (k == t->n_join_cp) {
                        if (k == (int)(sizeof t->join_cp / sizeof *t->join_cp))
                            t->spm_words = false;
                        else
                            t->join_cp[t->n_join_cp++] = cp;
                    }
                }
            }
            have_prev = true;
            prev = i;
            i += (size_t)l;
        }
    }
    t->cache = ig_word_cache_new();
    if (!t->cache) return ig_err(IGNIS_E_NOMEM, "tokenizer: out of memory");
    pthread_mutex_init(&t->cache_lock, NULL);
    return IGNIS_OK;
}

static bool joins(const ignis_tokenizer *t, const unsigned char *p, int l)
{
    if (l == 1) return p[0] < 128 && t->join_ascii[p[0]];
    uint32_t cp = ig_utf8_decode(p, l);
    for (int k = 0; k < t->n_join_cp; k++)
        if (t->join_cp[k] == cp) return true;
    return false;
}

typedef struct spm_scratch {
    sym *sy;
    size_t cap_sy;
    heap h;
    rev_entry *rev;
    int cap_rev;
} spm_scratch;

/* BPE over one span of the normalized text. */
static ignis_status encode_span(const ignis_tokenizer *t, const char *s, size_t n, ig_ids *out, bool *prev_unk,
                                spm_scratch *sc)
{
    if (n > sc->cap_sy) {
        size_t cap = n < 256 ? 256 : n;
        sym *p = realloc(sc->sy, cap * sizeof *p);
        if (!p) return ig_err(IGNIS_E_NOMEM, "tokenizer: out of memory for %zu symbols", n);
        sc->sy = p;
        sc->cap_sy = cap;
    }
    enc e = {.t = t, .s = s, .sy = sc->sy, .h = sc->h, .rev = sc->rev, .cap_rev = sc->cap_rev};
    e.h.n = 0;
    int ns = 0;
    for (size_t i = 0; i < n;) {
        int l = 0;
        bool freeze = false;
        if (t->max_user_len) {
            l = user_prefix(t, s + i, n - i);
            freeze = l > 0;
        }
        if (!l) {
            l = ig_utf8_valid_len((const unsigned char *)s + i, n - i);
            if (!l) l = 1; /* cannot happen after normalization; stay safe */
        }
        e.sy[ns] = (sym){(int)i, l, ns - 1, (i + (size_t)l < n) ? ns + 1 : -1, freeze};
        ns++;
        i += (size_t)l;
    }
    for (int i = 1; i < ns; i++)
        maybe_add(&e, i - 1, i);
    while (e.h.n > 0 && !e.oom) {
        cand c = heap_pop(&e.h);
        sym *L = &e.sy[c.left], *R = &e.sy[c.right];
        /* stale candidates: one side was merged away or grew since */
        if (L->len == 0 || R->len == 0 || L->len + R->len != c.size || L->next != c.right) continue;
        L->len += R->len;
        R->len = 0;
        L->next = R->next;
        if (R->next >= 0) e.sy[R->next].prev = c.left;
        maybe_add(&e, L->prev, c.left);
        maybe_add(&e, c.left, L->next);
    }
    ignis_status st = IGNIS_OK;
    if (e.oom) st = ig_err(IGNIS_E_NOMEM, "tokenizer: out of memory while merging");
    for (int i = 0; st == IGNIS_OK && i >= 0 && ns > 0; i = e.sy[i].next)
        st = emit(&e, e.sy[i].start, e.sy[i].len, out, prev_unk, 0);
    sc->h = e.h;
    sc->rev = e.rev;
    sc->cap_rev = e.cap_rev;
    return st;
}

static ignis_status encode_word(const ignis_tokenizer *t, const char *s, size_t n, ig_ids *out, bool *prev_unk,
                                spm_scratch *sc, ig_word_cache *cache)
{
    if (!cache || n > IG_CACHE_MAX_WORD) return encode_span(t, s, n, out, prev_unk, sc);
    uint64_t h = ig_hash_bytes(s, n) | 1;
    int k;
    const int32_t *ids = ig_word_cache_get(cache, s, n, h, &k);
    if (!ids) {
        int before = out->n;
        bool pu = false;
        IG_TRY(encode_span(t, s, n, out, &pu, sc));
        ig_word_cache_put(cache, s, n, h, out->p + before, out->n - before);
        /* sentencepiece fuses a run of <unk> across what are words to us */
        if (out->n > before && *prev_unk && out->p[before] == t->unk) {
            memmove(out->p + before, out->p + before + 1, (size_t)(out->n - before - 1) * sizeof *out->p);
            out->n--;
        }
        if (out->n > before) *prev_unk = out->p[out->n - 1] == t->unk;
        return IGNIS_OK;
    }
    if (k > 0 && *prev_unk && ids[0] == t->unk) ids++, k--;
    if (k > 0) *prev_unk = ids[k - 1] == t->unk;
    return ig_ids_append(out, ids, k);
}

ignis_status ig_spm_encode(const ignis_tokenizer *t, const char *text, size_t len, ig_ids *out, ig_word_cache *cache)
{
    ig_buf nb = {0};
    ignis_status st = normalize(t, (const unsigned char *)text, len, &nb);
    if (st != IGNIS_OK || nb.n == 0) {
        free(nb.p);
        return st;
    }
    const char *s = nb.p;
    size_t n = nb.n;
    spm_scratch sc = {0};
    bool prev_unk = false;
    if (!t->spm_words) {
        st = encode_span(t, s, n, out, &prev_unk, &sc);
    } else {
        size_t w = 0, i = 0;
        const unsigned char *u = (const unsigned char *)s;
        int prev_len = 0;
        while (i < n && st == IGNIS_OK) {
            int l = ig_utf8_valid_len(u + i, n - i);
            if (!l) l = 1;
            if (l == 3 && i > w && memcmp(u + i, k_ws, 3) == 0 && !joins(t, u + i - prev_len, prev_len)) {
                st = encode_word(t, s + w, i - w, out, &prev_unk, &sc, cache);
                w = i;
            }
            prev_len = l;
            i += (size_t)l;
        }
        if (st == IGNIS_OK && w < n) st = encode_word(t, s + w, n - w, out, &prev_unk, &sc, cache);
    }
    free(sc.sy);
    free(sc.h.v);
    free(sc.rev);
    free(nb.p);
    return st;
}
