/* Ids back to text, whole or streamed. Each id becomes raw bytes (byte pieces and
 * byte-level characters resolved, ▁ turned back into a space, the dummy-prefix space of the
 * first piece dropped); the bytes are then released as valid UTF-8 only, invalid sequences
 * replaced by U+FFFD the way Rust's from_utf8_lossy (HF tokenizers) does. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"

struct ignis_detok_stream {
    const ignis_tokenizer *t;
    bool skip_special;
    bool started;   /* some piece produced bytes already (dummy-prefix rule) */
    ig_buf pending; /* raw bytes not yet released */
    ig_buf out;     /* what the last call returned */
};

/* Appends the raw bytes of one id. */
static ignis_status piece_bytes(const ignis_tokenizer *t, int32_t id, bool skip_special, bool *started, ig_buf *b)
{
    if (id < 0 || id >= t->n_vocab)
        return ig_err(IGNIS_E_ARG, "detokenize: id %d is out of range (vocabulary of %d)", id, t->n_vocab);
    if (t->is_special[id]) {
        if (skip_special) return IGNIS_OK;
        const char *c = t->alias[id] ? t->alias[id] : t->piece[id];
        size_t n = strlen(c);
        if (n) *started = true;
        return ig_buf_put(b, c, n);
    }
    if (t->alias[id]) { /* non-special added token with its own text */
        size_t n = strlen(t->alias[id]);
        if (n) *started = true;
        return ig_buf_put(b, t->alias[id], n);
    }
    const char *p = t->piece[id];
    size_t n = t->piece_len[id];
    if (t->kind == IG_TOK_SPM) {
        if (t->type[id] == IG_PIECE_BYTE) { /* "<0xNN>", checked at load */
            if (n != 6) return IGNIS_OK;
            char hx[3] = {p[3], p[4], 0}, *end;
            unsigned long v = strtoul(hx, &end, 16);
            if (*end) return IGNIS_OK;
            unsigned char c = (unsigned char)v;
            *started = true;
            return ig_buf_put(b, &c, 1);
        }
        if (t->type[id] == IG_PIECE_CONTROL) return IGNIS_OK;
        IG_TRY(ig_buf_reserve(b, n));
        size_t i = 0;
        if (!*started && t->add_dummy_prefix && n >= 3 && memcmp(p, "\xE2\x96\x81", 3) == 0) i = 3;
        for (; i < n;) {
            if (i + 3 <= n && memcmp(p + i, "\xE2\x96\x81", 3) == 0) {
                b->p[b->n++] = ' ';
                i += 3;
            } else {
                b->p[b->n++] = p[i++];
            }
        }
        b->p[b->n] = 0;
        if (n) *started = true;
        return IGNIS_OK;
    }
    /* byte-level: raw bytes precomputed at load */
    if (t->raw && t->raw[id]) {
        if (t->raw_len[id]) *started = true;
        return ig_buf_put(b, t->raw[id], t->raw_len[id]);
    }
    if (n) *started = true;
    return ig_buf_put(b, p, n);
}

/* Moves the complete part of src[0..n) to dst as valid UTF-8. With `final`, an incomplete
 * tail is replaced too; otherwise it is left. Returns the bytes consumed. */
static ignis_status release_utf8(const unsigned char *src, size_t n, bool final, ig_buf *dst, size_t *consumed)
{
    size_t i = 0;
    IG_TRY(ig_buf_reserve(dst, n * 3 + 4));
    while (i < n) {
        unsigned c = src[i];
        if (c < 0x80) {
            dst->p[dst->n++] = (char)c;
            i++;
            continue;
        }
        int l = ig_utf8_valid_len(src + i, n - i);
        if (l) {
            memcpy(dst->p + dst->n, src + i, (size_t)l);
            dst->n += (size_t)l;
            i += (size_t)l;
            continue;
        }
        int bad = ig_utf8_invalid_len(src + i, n - i);
        if (!final && i + (size_t)bad == n) {
            /* could still be completed by the next piece: hold it if it is a valid prefix */
            int need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
            if (c >= 0xC2 && c <= 0xF4 && bad < need) break;
        }
        memcpy(dst->p + dst->n, "\xEF\xBF\xBD", 3);
        dst->n += 3;
        i += (size_t)bad;
    }
    dst->p[dst->n] = 0;
    *consumed = i;
    return IGNIS_OK;
}

ignis_status ignis_detokenize(const ignis_tokenizer *t, const int32_t *ids, int n, bool skip_special, char **text,
                              size_t *len)
{
    if (!t || !text || (!ids && n > 0) || n < 0) return ig_err(IGNIS_E_ARG, "ignis_detokenize: bad argument");
    *text = NULL;
    if (len) *len = 0;
    ig_buf raw = {0}, out = {0};
    bool started = false;
    ignis_status st = IGNIS_OK;
    for (int i = 0; i < n && st == IGNIS_OK; i++)
        st = piece_bytes(t, ids[i], skip_special, &started, &raw);
    size_t used;
    if (st == IGNIS_OK) st = release_utf8((const unsigned char *)raw.p, raw.n, true, &out, &used);
    if (st == IGNIS_OK && !out.p) st = ig_buf_reserve(&out, 1);
    free(raw.p);
    if (st != IGNIS_OK) {
        free(out.p);
        return st;
    }
    out.p[out.n] = 0;
    *text = out.p;
    if (len) *len = out.n;
    return IGNIS_OK;
}

ignis_status ignis_detok_stream_create(const ignis_tokenizer *t, bool skip_special, ignis_detok_stream **out)
{
    if (!t || !out) return ig_err(IGNIS_E_ARG, "ignis_detok_stream_create: NULL argument");
    ignis_detok_stream *s = calloc(1, sizeof *s);
    if (!s) return ig_err(IGNIS_E_NOMEM, "detokenizer: out of memory");
    s->t = t;
    s->skip_special = skip_special;
    *out = s;
    return IGNIS_OK;
}

static ignis_status stream_release(ignis_detok_stream *s, bool final, const char **piece, size_t *len)
{
    s->out.n = 0;
    size_t used = 0;
    IG_TRY(release_utf8((const unsigned char *)s->pending.p, s->pending.n, final, &s->out, &used));
    memmove(s->pending.p, s->pending.p + used, s->pending.n - used);
    s->pending.n -= used;
    *piece = s->out.p ? s->out.p : "";
    *len = s->out.n;
    return IGNIS_OK;
}

ignis_status ignis_detok_stream_push(ignis_detok_stream *s, int32_t id, const char **piece, size_t *len)
{
    if (!s || !piece || !len) return ig_err(IGNIS_E_ARG, "ignis_detok_stream_push: NULL argument");
    *piece = "";
    *len = 0;
    IG_TRY(ig_buf_reserve(&s->pending, 16));
    IG_TRY(piece_bytes(s->t, id, s->skip_special, &s->started, &s->pending));
    return stream_release(s, false, piece, len);
}

ignis_status ignis_detok_stream_flush(ignis_detok_stream *s, const char **piece, size_t *len)
{
    if (!s || !piece || !len) return ig_err(IGNIS_E_ARG, "ignis_detok_stream_flush: NULL argument");
    IG_TRY(ig_buf_reserve(&s->pending, 1));
    return stream_release(s, true, piece, len);
}

void ignis_detok_stream_free(ignis_detok_stream *s)
{
    if (!s) return;
    free(s->pending.p);
    free(s->out.p);
    free(s);
}
