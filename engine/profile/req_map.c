/* Open addressing with linear probing and backward-shift deletion (req_map.h). */
#include "profile/req_map.h"

#include <stdint.h>
#include <stdlib.h>

static size_t slot_of(const ig_req_map *m, const void *req)
{
    uint64_t h = (uint64_t)(uintptr_t)req;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull; /* a 64-bit finaliser: pointers differ in few low bits */
    h ^= h >> 33;
    return (size_t)h & (m->cap - 1);
}

static bool grow(ig_req_map *m)
{
    size_t cap = m->cap ? m->cap * 2 : 256;
    ig_req_acc *old = m->slots;
    size_t old_cap = m->cap;
    ig_req_acc *s = calloc(cap, sizeof *s);
    if (!s) return false;
    m->slots = s;
    m->cap = cap;
    for (size_t i = 0; i < old_cap; i++) {
        if (!old[i].req) continue;
        size_t j = slot_of(m, old[i].req);
        while (s[j].req)
            j = (j + 1) & (cap - 1);
        s[j] = old[i];
    }
    free(old);
    return true;
}

ig_req_acc *ig_req_map_get(ig_req_map *m, const void *req)
{
    if ((m->n + 1) * 4 > m->cap * 3 && !grow(m)) return NULL;
    size_t j = slot_of(m, req);
    while (m->slots[j].req && m->slots[j].req != req)
        j = (j + 1) & (m->cap - 1);
    if (!m->slots[j].req) {
        m->slots[j] = (ig_req_acc){req, 0, 0, 0};
        m->n++;
    }
    return &m->slots[j];
}

bool ig_req_map_take(ig_req_map *m, const void *req, ig_req_acc *out)
{
    if (!m->cap) return false;
    size_t mask = m->cap - 1, j = slot_of(m, req);
    while (m->slots[j].req && m->slots[j].req != req)
        j = (j + 1) & mask;
    if (!m->slots[j].req) return false;
    *out = m->slots[j];
    /* backward shift: move later members of the probe run into the hole */
    size_t hole = j;
    for (size_t k = (j + 1) & mask; m->slots[k].req; k = (k + 1) & mask) {
        size_t home = slot_of(m, m->slots[k].req);
        /* k's entry may fill the hole when its home is not cyclically in (hole, k] */
        bool in_between = hole <= k ? (home > hole && home <= k) : (home > hole || home <= k);
        if (!in_between) {
            m->slots[hole] = m->slots[k];
            hole = k;
        }
    }
    m->slots[hole].req = NULL;
    m->n--;
    return true;
}

void ig_req_map_free(ig_req_map *m)
{
    free(m->slots);
    m->slots = NULL;
    m->cap = m->n = 0;
}
