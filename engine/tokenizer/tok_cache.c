/* Word -> ids cache: text repeats its words, so most pre-tokens skip the merge loop.
 * Each entry is one 64-byte cache line holding the word and its ids, so a lookup costs one
 * memory access; two-way (a line and its neighbour), newest wins. Words longer than the
 * line holds are merged every time. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"

#define LINES (1u << 17) /* 8 MB */
#define KEY_MAX 22
#define IDS_MAX 9

struct line {
    uint32_t hash; /* 0: empty */
    uint8_t klen, nids;
    char key[KEY_MAX];
    int32_t ids[IDS_MAX];
};
_Static_assert(sizeof(struct line) == 64, "cache line layout");

struct ig_word_cache {
    struct line *lines;
};

ig_word_cache *ig_word_cache_new(void)
{
    ig_word_cache *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    if (posix_memalign((void **)&c->lines, 64, LINES * sizeof *c->lines) != 0) {
        free(c);
        return NULL;
    }
    memset(c->lines, 0, LINES * sizeof *c->lines);
    return c;
}

void ig_word_cache_free(ig_word_cache *c)
{
    if (!c) return;
    free(c->lines);
    free(c);
}

const int32_t *ig_word_cache_get(const ig_word_cache *c, const char *w, size_t n, uint64_t h, int *k)
{
    if (n > KEY_MAX) return NULL;
    uint32_t h32 = (uint32_t)(h >> 32) | 1;
    size_t i = (size_t)h & (LINES - 1);
    for (int way = 0; way < 2; way++, i ^= 1) {
        const struct line *l = &c->lines[i];
        if (l->hash == h32 && l->klen == n && memcmp(l->key, w, n) == 0) {
            *k = l->nids;
            return l->ids;
        }
    }
    return NULL;
}

void ig_word_cache_put(ig_word_cache *c, const char *w, size_t n, uint64_t h, const int32_t *ids, int k)
{
    if (n > KEY_MAX || k > IDS_MAX) return;
    size_t i = (size_t)h & (LINES - 1);
    struct line *l = &c->lines[i];
    if (l->hash) { /* keep the older entry in the neighbour line */
        c->lines[i ^ 1] = *l;
    }
    l->hash = (uint32_t)(h >> 32) | 1;
    l->klen = (uint8_t)n;
    l->nids = (uint8_t)k;
    memcpy(l->key, w, n);
    memcpy(l->ids, ids, (size_t)k * sizeof *ids);
}
