#include "server/sbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool reserve(sbuf *b, size_t extra)
{
    if (b->len + extra + 1 <= b->cap) return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1)
        cap *= 2;
    char *d = realloc(b->data, cap);
    if (!d) return false;
    b->data = d;
    b->cap = cap;
    return true;
}

bool sbuf_add(sbuf *b, const char *s, size_t n)
{
    if (!reserve(b, n)) return false;
    if (n) memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = 0;
    return true;
}

bool sbuf_str(sbuf *b, const char *s) { return sbuf_add(b, s, strlen(s)); }

bool sbuf_printf(sbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !reserve(b, (size_t)n)) return false;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return true;
}

size_t sbuf_take(sbuf *b, char *dst, size_t max)
{
    size_t n = sbuf_avail(b);
    if (n > max) n = max;
    memcpy(dst, b->data + b->off, n);
    b->off += n;
    if (b->off == b->len) b->off = b->len = 0;
    return n;
}

void sbuf_clear(sbuf *b) { b->len = b->off = 0; }

void sbuf_free(sbuf *b)
{
    free(b->data);
    *b = (sbuf){0};
}
