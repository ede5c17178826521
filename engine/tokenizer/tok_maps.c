/* Open-addressing hash maps and growable arrays used by the tokenizers: vocabularies of
 * 150K pieces and 280K merges are probed millions of times per megabyte of text. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"

static size_t pow2_for(size_t expected)
{
    size_t cap = 16;
    while (cap < expected * 2 + 16)
        cap <<= 1;
    return cap;
}

ignis_status ig_strmap_init(ig_strmap *m, size_t expected)
{
    size_t cap = pow2_for(expected);
    m->slots = calloc(cap, sizeof *m->slots);
    m->keys = calloc(cap, sizeof *m->keys);
    if (!m->slots || !m->keys) {
        free(m->slots);
        free(m->keys);
        m->slots = NULL;
        m->keys = NULL;
        return ig_err(IGNIS_E_NOMEM, "tokenizer: out of memory for a %zu-entry map", expected);
    }
    m->mask = cap - 1;
    m->count = 0;
    return IGNIS_OK;
}

void ig_strmap_free(ig_strmap *m)
{
    free(m->slots);
    free(m->keys);
    m->slots = NULL;
    m->keys = NULL;
    m->mask = m->count = 0;
}

static bool strmap_grow(ig_strmap *m)
{
    size_t cap = (m->mask + 1) * 2;
    struct ig_strmap_slot *ns = calloc(cap, sizeof *ns);
    struct ig_strmap_key *nk = calloc(cap, sizeof *nk);
    if (!ns || !nk) {
        free(ns);
        free(nk);
        return false;
    }
    for (size_t i = 0; i <= m->mask; i++) {
        if (!m->slots[i].hash) continue;
        size_t j = (m->slots[i].hash >> 4) & (cap - 1);
        while (ns[j].hash)
            j = (j + 1) & (cap - 1);
        ns[j] = m->slots[i];
        nk[j] = m->keys[i];
    }
    free(m->slots);
    free(m->keys);
    m->slots = ns;
    m->keys = nk;
    m->mask = cap - 1;
    return true;
}

static inline uint32_t slot_hash(const char *key, size_t len) { return (uint32_t)ig_hash_bytes(key, len) | 1u; }

bool ig_strmap_put(ig_strmap *m, const char *key, size_t len, int32_t val, bool replace)
{
    if ((m->count + 1) * 4 > (m->mask + 1) * 3 && !strmap_grow(m)) return false;
    uint32_t h = slot_hash(key, len);
    size_t i = (h >> 4) & m->mask;
    for (;;) {
        struct ig_strmap_slot *s = &m->slots[i];
        if (!s->hash) {
            s->hash = h;
            s->val = val;
            m->keys[i] = (struct ig_strmap_key){key, (uint32_t)len};
            m->count++;
            return true;
        }
        if (s->hash == h && m->keys[i].len == len && memcmp(m->keys[i].key, key, len) == 0) {
            if (!replace) return false;
            m->keys[i].key = key;
            s->val = val;
            return true;
        }
        i = (i + 1) & m->mask;
    }
}

int32_t ig_strmap_get(const ig_strmap *m, const char *key, size_t len)
{
    if (!m->slots) return -1;
    uint32_t h = slot_hash(key, len);
    size_t i = (h >> 4) & m->mask;
    for (;;) {
        const struct ig_strmap_slot *s = &m->slots[i];
        if (!s->hash) return -1;
        if (s->hash == h && m->keys[i].len == len && memcmp(m->keys[i].key, key, len) == 0) return s->val;
        i = (i + 1) & m->mask;
    }
}

ignis_status ig_pairmap_init(ig_pairmap *m, size_t expected)
{
    size_t cap = pow2_for(expected);
    m->slots = malloc(cap * sizeof *m->slots);
    if (!m->slots) return ig_err(IGNIS_E_NOMEM, "tokenizer: out of memory for %zu merges", expected);
    for (size_t i = 0; i < cap; i++)
        m->slots[i].key = UINT64_MAX;
    m->mask = cap - 1;
    m->count = 0;
    return IGNIS_OK;
}

void ig_pairmap_free(ig_pairmap *m)
{
    free(m->slots);
    m->slots = NULL;
    m->mask = m->count = 0;
}

/* The map is sized for all merges up front, so it never grows; a later duplicate keeps the
 * first (lowest) rank as HF does. */
void ig_pairmap_put(ig_pairmap *m, int32_t a, int32_t b, int32_t rank, int32_t merged)
{
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    uint64_t h = key * 0x9e3779b97f4a7c15ull;
    size_t i = (size_t)(h >> 20) & m->mask;
    for (;;) {
        struct ig_pair_slot *s = &m->slots[i];
        if (s->key == key) return;
        if (s->key == UINT64_MAX) {
            s->key = key;
            s->rank = rank;
            s->merged = merged;
            m->count++;
            return;
        }
        i = (i + 1) & m->mask;
    }
}

bool ig_pairmap_put_grow(ig_pairmap *m, int32_t a, int32_t b, int32_t rank, int32_t merged)
{
    if ((m->count + 1) * 4 > (m->mask + 1) * 3) {
        size_t cap = (m->mask + 1) * 2;
        struct ig_pair_slot *ns = malloc(cap * sizeof *ns);
        if (!ns) return false;
        for (size_t i = 0; i < cap; i++)
            ns[i].key = UINT64_MAX;
        struct ig_pair_slot *old = m->slots;
        size_t old_cap = m->mask + 1;
        m->slots = ns;
        m->mask = cap - 1;
        m->count = 0;
        for (size_t i = 0; i < old_cap; i++)
            if (old[i].key != UINT64_MAX)
                ig_pairmap_put(m, (int32_t)(old[i].key >> 32), (int32_t)(uint32_t)old[i].key, old[i].rank,
                               old[i].merged);
        free(old);
    }
    ig_pairmap_put(m, a, b, rank, merged);
    return true;
}

ignis_status ig_buf_reserve(ig_buf *b, size_t extra)
{
    if (b->n + extra < b->cap) return IGNIS_OK; /* one byte stays free for the NUL */
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->n + extra + 1)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) return ig_err(IGNIS_E_NOMEM, "tokenizer: out of memory (%zu bytes)", cap);
    b->p = p;
    b->cap = cap;
    return IGNIS_OK;
}

ignis_status ig_buf_put(ig_buf *b, const void *p, size_t n)
{
    IG_TRY(ig_buf_reserve(b, n));
    memcpy(b->p + b->n, p, n);
    b->n += n;
    b->p[b->n] = 0;
    return IGNIS_OK;
}

ignis_status ig_ids_push(ig_ids *v, int32_t id)
{
    if (v->n == v->cap) {
        int cap = v->cap ? v->cap * 2 : 64;
        int32_t *p = realloc(v->p, (size_t)cap * sizeof *p);
        if (!p) return ig_err(IGNIS_E_NOMEM, "tokenizer: out of memory for %d ids", cap);
        v->p = p;
        v->cap = cap;
    }
    v->p[v->n++] = id;
    return IGNIS_OK;
}

ignis_status ig_ids_append(ig_ids *v, const int32_t *ids, int k)
{
    if (v->n + k > v->cap) {
        int cap = v->cap ? v->cap : 64;
        while (cap < v->n + k)
            cap *= 2;
        int32_t *p = realloc(v->p, (size_t)cap * sizeof *p);
        if (!p) return ig_err(IGNIS_E_NOMEM, "tokenizer: out of memory for %d ids", cap);
        v->p = p;
        v->cap = cap;
    }
    memcpy(v->p + v->n, ids, (size_t)k * sizeof *ids);
    v->n += k;
    return IGNIS_OK;
}
