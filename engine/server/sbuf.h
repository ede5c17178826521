/* A growable byte buffer (appends, printf, consume from the front). */
#ifndef IG_SERVER_SBUF_H
#define IG_SERVER_SBUF_H

#include <stdbool.h>
#include <stddef.h>

typedef struct sbuf {
    char *data; /* NUL-terminated when len > 0 */
    size_t len, cap;
    size_t off; /* bytes already consumed from the front */
} sbuf;

/* Each returns false on allocation failure (the buffer is left as it was). */
bool sbuf_add(sbuf *b, const char *s, size_t n);
bool sbuf_str(sbuf *b, const char *s);
bool sbuf_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Bytes not yet consumed. */
static inline size_t sbuf_avail(const sbuf *b) { return b->len - b->off; }
/* Copies up to max unconsumed bytes into dst and consumes them. */
size_t sbuf_take(sbuf *b, char *dst, size_t max);
void sbuf_clear(sbuf *b);
void sbuf_free(sbuf *b);

#endif
