/* Values of the Jinja interpreter with Python's semantics for what templates observe:
 * truthiness, equality, ordering, str()/repr() and json.dumps() output. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jinja_internal.h"

/* ------------------------------------------------------------------ arena */

void *ja_alloc(jarena *a, size_t n)
{
    n = (n + sizeof(max_align_t) - 1) & ~(sizeof(max_align_t) - 1);
    if (!n) n = sizeof(max_align_t);
    jarena_blk *h = a->head;
    if (!h || h->cap - h->used < n) {
        size_t cap = h ? h->cap * 2 : 16384;
        if (cap > (8u << 20)) cap = 8u << 20;
        if (cap < n) cap = n;
        if (a->limit && a->total + cap > a->limit) return NULL;
        jarena_blk *b = malloc(sizeof *b + cap);
        if (!b) return NULL;
        b->next = h;
        b->used = 0;
        b->cap = cap;
        a->head = b;
        a->total += cap;
        h = b;
    }
    void *p = (char *)h->data + h->used;
    h->used += n;
    return p;
}

void ja_free_all(jarena *a)
{
    jarena_blk *b = a->head;
    while (b) {
        jarena_blk *next = b->next;
        free(b);
        b = next;
    }
    a->head = NULL;
    a->total = 0;
}

void jx_fail(jctx *cx, ignis_status s, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (cx->line > 0)
        ig_err(s, "%s, line %d: %s", cx->tname, cx->line, msg);
    else
        ig_err(s, "%s: %s", cx->tname, msg);
    cx->status = s;
    longjmp(cx->jb, 1);
}

void *jx_alloc(jctx *cx, size_t n)
{
    void *p = ja_alloc(cx->arena, n);
    if (!p)
        jx_fail(cx, IGNIS_E_NOMEM, "out of memory (the template built more than %zu MB of values)",
                cx->arena->limit ? cx->arena->limit >> 20 : (size_t)0);
    return p;
}

char *jx_strdup(jctx *cx, const char *s, size_t n)
{
    char *p = jx_alloc(cx, n + 1);
    if (n) memcpy(p, s, n);
    p[n] = 0;
    return p;
}

/* ------------------------------------------------------------------ buffers */

static void jb_grow(jctx *cx, jbuf *b, size_t need)
{
    if (b->n + need <= b->cap) return;
    size_t cap = b->cap ? b->cap * 2 : 256;
    while (cap < b->n + need)
        cap *= 2;
    char *p = jx_alloc(cx, cap);
    if (b->n) memcpy(p, b->p, b->n);
    b->p = p;
    b->cap = cap;
}

void jb_put(jctx *cx, jbuf *b, const char *p, size_t n)
{
    if (!n) return;
    jb_grow(cx, b, n);
    memcpy(b->p + b->n, p, n);
    b->n += n;
}

void jb_puts(jctx *cx, jbuf *b, const char *s) { jb_put(cx, b, s, strlen(s)); }

void jb_putc(jctx *cx, jbuf *b, char c) { jb_put(cx, b, &c, 1); }

jv jb_value(jctx *cx, jbuf *b) { return jv_str(b->n ? b->p : "", b->n); }

/* ------------------------------------------------------------------ UTF-8 */

int ju_decode(const char *p, size_t n, uint32_t *cp)
{
    const unsigned char *s = (const unsigned char *)p;
    unsigned c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    int len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 0;
    if (c >= 0xF8 || len == 0 || (size_t)len > n) {
        *cp = 0xFFFD;
        return 1;
    }
    uint32_t v = c & (0x3F >> (len - 1));
    for (int i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            *cp = 0xFFFD;
            return 1;
        }
        v = (v << 6) | (s[i] & 0x3F);
    }
    *cp = v;
    return len;
}

int ju_encode(uint32_t cp, char *o)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

size_t ju_cp_count(const char *p, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        i += (size_t)ju_decode(p + i, n - i, &cp);
        k++;
    }
    return k;
}

size_t ju_cp_offset(const char *p, size_t n, size_t idx)
{
    size_t i = 0;
    while (idx-- > 0 && i < n) {
        uint32_t cp;
        i += (size_t)ju_decode(p + i, n - i, &cp);
    }
    return i;
}

/* Python's str.isspace(): the whitespace code points of the Unicode database. */
bool ju_is_space(uint32_t c)
{
    if (c < 0x80) return c == ' ' || (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x1F);
    return c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
           c == 0x202F || c == 0x205F || c == 0x3000;
}

/* ------------------------------------------------------------------ constructors */

jv jv_undef(const char *name)
{
    jv v = {.t = JV_UNDEF};
    v.u.s.p = name;
    return v;
}
jv jv_none(void) { return (jv){.t = JV_NONE}; }
jv jv_bool(bool b) { return (jv){.t = JV_BOOL, .u.b = b}; }
jv jv_int(int64_t i) { return (jv){.t = JV_INT, .u.i = i}; }
jv jv_float(double f) { return (jv){.t = JV_FLOAT, .u.f = f}; }
jv jv_str(const char *p, size_t n)
{
    jv v = {.t = JV_STR};
    v.u.s.p = p;
    v.u.s.n = n;
    return v;
}
jv jv_cstr(const char *p) { return jv_str(p, strlen(p)); }
jv jv_strdup(jctx *cx, const char *p, size_t n) { return jv_str(jx_strdup(cx, p, n), n); }

jv jv_list_new(jctx *cx, size_t cap)
{
    jlist *l = jx_alloc(cx, sizeof *l);
    l->n = 0;
    l->cap = cap;
    l->v = cap ? jx_alloc(cx, cap * sizeof(jv)) : NULL;
    return (jv){.t = JV_LIST, .u.l = l};
}

void jv_list_push(jctx *cx, jv *list, jv item)
{
    jlist *l = list->u.l;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        jv *v = jx_alloc(cx, cap * sizeof(jv));
        if (l->n) memcpy(v, l->v, l->n * sizeof(jv));
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = item;
}

jv jv_dict_new(jctx *cx, size_t cap)
{
    jdict *d = jx_alloc(cx, sizeof *d);
    d->n = 0;
    d->cap = cap;
    d->k = cap ? jx_alloc(cx, cap * sizeof(jv)) : NULL;
    d->v = cap ? jx_alloc(cx, cap * sizeof(jv)) : NULL;
    return (jv){.t = JV_DICT, .u.d = d};
}

void jv_dict_set(jctx *cx, jdict *d, jv key, jv val)
{
    for (size_t i = 0; i < d->n; i++)
        if (jv_equal(&d->k[i], &key)) {
            d->v[i] = val;
            return;
        }
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 8;
        jv *k = jx_alloc(cx, cap * sizeof(jv)), *v = jx_alloc(cx, cap * sizeof(jv));
        if (d->n) {
            memcpy(k, d->k, d->n * sizeof(jv));
            memcpy(v, d->v, d->n * sizeof(jv));
        }
        d->k = k;
        d->v = v;
        d->cap = cap;
    }
    d->k[d->n] = key;
    d->v[d->n] = val;
    d->n++;
}

bool jv_dict_get(const jdict *d, jv key, jv *out)
{
    for (size_t i = 0; i < d->n; i++)
        if (jv_equal(&d->k[i], &key)) {
            *out = d->v[i];
            return true;
        }
    return false;
}

bool jv_dict_get_str(const jdict *d, const char *key, jv *out)
{
    size_t n = strlen(key);
    for (size_t i = 0; i < d->n; i++)
        if (d->k[i].t == JV_STR && d->k[i].u.s.n == n && !memcmp(d->k[i].u.s.p, key, n)) {
            *out = d->v[i];
            return true;
        }
    return false;
}

/* ------------------------------------------------------------------ semantics */

const char *jv_type_name(const jv *v)
{
    switch ((jv_type)v->t) {
    case JV_UNDEF:
        return "Undefined";
    case JV_NONE:
        return "NoneType";
    case JV_BOOL:
        return "bool";
    case JV_INT:
        return "int";
    case JV_FLOAT:
        return "float";
    case JV_STR:
        return "str";
    case JV_LIST:
        return v->tuple ? "tuple" : "list";
    case JV_DICT:
        return "dict";
    case JV_NS:
        return "Namespace";
    case JV_LOOP:
        return "LoopContext";
    case JV_FUNC:
        return "function";
    case JV_METHOD:
        return "method";
    case JV_MACRO:
        return "Macro";
    }
    return "object";
}

bool jv_truthy(const jv *v)
{
    switch ((jv_type)v->t) {
    case JV_UNDEF:
    case JV_NONE:
        return false;
    case JV_BOOL:
        return v->u.b;
    case JV_INT:
        return v->u.i != 0;
    case JV_FLOAT:
        return v->u.f != 0.0;
    case JV_STR:
        return v->u.s.n != 0;
    case JV_LIST:
        return v->u.l->n != 0;
    case JV_DICT:
        return v->u.d->n != 0;
    default:
        return true;
    }
}

static bool is_num(const jv *v) { return v->t == JV_BOOL || v->t == JV_INT || v->t == JV_FLOAT; }
static double num_f(const jv *v) { return v->t == JV_FLOAT ? v->u.f : v->t == JV_INT ? (double)v->u.i : v->u.b; }
static int64_t num_i(const jv *v) { return v->t == JV_INT ? v->u.i : v->u.b; }

bool jv_equal(const jv *a, const jv *b)
{
    if (is_num(a) && is_num(b)) {
        if (a->t == JV_FLOAT || b->t == JV_FLOAT) return num_f(a) == num_f(b);
        return num_i(a) == num_i(b);
    }
    if (a->t != b->t) return false;
    switch ((jv_type)a->t) {
    case JV_UNDEF:
    case JV_NONE:
        return true;
    case JV_STR:
        return a->u.s.n == b->u.s.n && !memcmp(a->u.s.p, b->u.s.p, a->u.s.n);
    case JV_LIST:
        if (a->tuple != b->tuple || a->u.l->n != b->u.l->n) return false;
        for (size_t i = 0; i < a->u.l->n; i++)
            if (!jv_equal(&a->u.l->v[i], &b->u.l->v[i])) return false;
        return true;
    case JV_DICT:
        if (a->u.d->n != b->u.d->n) return false;
        for (size_t i = 0; i < a->u.d->n; i++) {
            jv o;
            if (!jv_dict_get(b->u.d, a->u.d->k[i], &o) || !jv_equal(&a->u.d->v[i], &o)) return false;
        }
        return true;
    case JV_FUNC:
        return a->u.fn == b->u.fn;
    default:
        return a->u.l == b->u.l; /* identity of the shared object */
    }
}

int jv_compare(jctx *cx, const jv *a, const jv *b)
{
    if (a->t == JV_UNDEF || b->t == JV_UNDEF) {
        const jv *u = a->t == JV_UNDEF ? a : b;
        jx_fail(cx, IGNIS_E_ARG, "'%s' is undefined", u->u.s.p ? u->u.s.p : "value");
    }
    if (is_num(a) && is_num(b)) {
        if (a->t == JV_FLOAT || b->t == JV_FLOAT) {
            double x = num_f(a), y = num_f(b);
            return x < y ? -1 : x > y ? 1 : 0;
        }
        int64_t x = num_i(a), y = num_i(b);
        return x < y ? -1 : x > y ? 1 : 0;
    }
    if (a->t == JV_STR && b->t == JV_STR) {
        size_t n = a->u.s.n < b->u.s.n ? a->u.s.n : b->u.s.n;
        int c = n ? memcmp(a->u.s.p, b->u.s.p, n) : 0;
        if (c) return c < 0 ? -1 : 1;
        return a->u.s.n < b->u.s.n ? -1 : a->u.s.n > b->u.s.n ? 1 : 0;
    }
    if (a->t == JV_LIST && b->t == JV_LIST && a->tuple == b->tuple) {
        size_t n = a->u.l->n < b->u.l->n ? a->u.l->n : b->u.l->n;
        for (size_t i = 0; i < n; i++) {
            if (jv_equal(&a->u.l->v[i], &b->u.l->v[i])) continue;
            return jv_compare(cx, &a->u.l->v[i], &b->u.l->v[i]);
        }
        return a->u.l->n < b->u.l->n ? -1 : a->u.l->n > b->u.l->n ? 1 : 0;
    }
    jx_fail(cx, IGNIS_E_ARG, "cannot order '%s' and '%s'", jv_type_name(a), jv_type_name(b));
}

jlist *jv_iter_list(jctx *cx, const jv *v)
{
    switch ((jv_type)v->t) {
    case JV_UNDEF:
        return jv_list_new(cx, 0).u.l;
    case JV_LIST:
        return v->u.l;
    case JV_DICT: {
        jv l = jv_list_new(cx, v->u.d->n);
        for (size_t i = 0; i < v->u.d->n; i++)
            jv_list_push(cx, &l, v->u.d->k[i]);
        return l.u.l;
    }
    case JV_STR: {
        jv l = jv_list_new(cx, v->u.s.n);
        for (size_t i = 0; i < v->u.s.n;) {
            uint32_t cp;
            int k = ju_decode(v->u.s.p + i, v->u.s.n - i, &cp);
            jv_list_push(cx, &l, jv_str(v->u.s.p + i, (size_t)k));
            i += (size_t)k;
        }
        return l.u.l;
    }
    default:
        jx_fail(cx, IGNIS_E_ARG, "'%s' object is not iterable", jv_type_name(v));
    }
}

int64_t jv_len(jctx *cx, const jv *v)
{
    switch ((jv_type)v->t) {
    case JV_UNDEF:
        return 0;
    case JV_STR:
        return (int64_t)ju_cp_count(v->u.s.p, v->u.s.n);
    case JV_LIST:
        return (int64_t)v->u.l->n;
    case JV_DICT:
        return (int64_t)v->u.d->n;
    default:
        jx_fail(cx, IGNIS_E_ARG, "object of type '%s' has no len()", jv_type_name(v));
    }
}

/* ------------------------------------------------------------------ printing */

/* Python's repr(float): the shortest digits that round-trip, fixed notation for
 * exponents in [-4, 16), otherwise d.ddde+XX. */
void jv_format_float(char *buf, size_t cap, double f)
{
    if (isnan(f)) {
        snprintf(buf, cap, "nan");
        return;
    }
    if (isinf(f)) {
        snprintf(buf, cap, f < 0 ? "-inf" : "inf");
        return;
    }
    char e[40];
    int prec = 1;
    for (; prec <= 17; prec++) {
        snprintf(e, sizeof e, "%.*e", prec - 1, f);
        if (strtod(e, NULL) == f) break;
    }
    /* e = [-]d[.ddd]e[+-]XX */
    const char *p = e;
    bool neg = *p == '-';
    if (neg) p++;
    char digits[24];
    int nd = 0;
    for (; *p && *p != 'e'; p++)
        if (*p != '.') digits[nd++] = *p;
    int exp = atoi(p + 1);
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    digits[nd] = 0;
    char *o = buf;
    size_t left = cap;
#define EMIT(...)                                                                                                      \
    do {                                                                                                               \
        int w_ = snprintf(o, left, __VA_ARGS__);                                                                       \
        if (w_ < 0 || (size_t)w_ >= left) return;                                                                      \
        o += w_;                                                                                                       \
        left -= (size_t)w_;                                                                                            \
    } while (0)
    if (neg) EMIT("-");
    if (exp >= -4 && exp < 16) {
        if (exp < 0) {
            EMIT("0.");
            for (int i = 0; i < -exp - 1; i++)
                EMIT("0");
            EMIT("%s", digits);
        } else {
            for (int i = 0; i <= exp; i++)
                EMIT("%c", i < nd ? digits[i] : '0');
            EMIT(".");
            if (nd > exp + 1)
                EMIT("%s", digits + exp + 1);
            else
                EMIT("0");
        }
    } else {
        EMIT("%c", digits[0]);
        if (nd > 1) EMIT(".%s", digits + 1);
        EMIT("e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
    }
#undef EMIT
}

static void repr_str(jctx *cx, jbuf *b, const char *p, size_t n)
{
    bool has_sq = memchr(p, '\'', n) != NULL, has_dq = memchr(p, '"', n) != NULL;
    char q = has_sq && !has_dq ? '"' : '\'';
    jb_putc(cx, b, q);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        char esc[8];
        if (c == '\\')
            jb_puts(cx, b, "\\\\");
        else if (c == (unsigned char)q) {
            jb_putc(cx, b, '\\');
            jb_putc(cx, b, (char)c);
        } else if (c == '\n')
            jb_puts(cx, b, "\\n");
        else if (c == '\r')
            jb_puts(cx, b, "\\r");
        else if (c == '\t')
            jb_puts(cx, b, "\\t");
        else if (c < 0x20 || c == 0x7f) {
            snprintf(esc, sizeof esc, "\\x%02x", c);
            jb_puts(cx, b, esc);
        } else
            jb_putc(cx, b, (char)c);
    }
    jb_putc(cx, b, q);
}

void jv_repr(jctx *cx, jbuf *b, const jv *v)
{
    switch ((jv_type)v->t) {
    case JV_STR:
        repr_str(cx, b, v->u.s.p, v->u.s.n);
        return;
    case JV_UNDEF:
        jb_puts(cx, b, "Undefined");
        return;
    case JV_LIST: {
        jb_putc(cx, b, v->tuple ? '(' : '[');
        for (size_t i = 0; i < v->u.l->n; i++) {
            if (i) jb_puts(cx, b, ", ");
            jv_repr(cx, b, &v->u.l->v[i]);
        }
        if (v->tuple && v->u.l->n == 1) jb_putc(cx, b, ',');
        jb_putc(cx, b, v->tuple ? ')' : ']');
        return;
    }
    case JV_DICT:
    case JV_NS: {
        if (v->t == JV_NS) jb_puts(cx, b, "<Namespace ");
        jb_putc(cx, b, '{');
        for (size_t i = 0; i < v->u.d->n; i++) {
            if (i) jb_puts(cx, b, ", ");
            jv_repr(cx, b, &v->u.d->k[i]);
            jb_puts(cx, b, ": ");
            jv_repr(cx, b, &v->u.d->v[i]);
        }
        jb_putc(cx, b, '}');
        if (v->t == JV_NS) jb_putc(cx, b, '>');
        return;
    }
    default:
        jv_to_str(cx, b, v);
    }
}

void jv_to_str(jctx *cx, jbuf *b, const jv *v)
{
    char tmp[64];
    switch ((jv_type)v->t) {
    case JV_UNDEF:
        return;
    case JV_NONE:
        jb_puts(cx, b, "None");
        return;
    case JV_BOOL:
        jb_puts(cx, b, v->u.b ? "True" : "False");
        return;
    case JV_INT:
        snprintf(tmp, sizeof tmp, "%lld", (long long)v->u.i);
        jb_puts(cx, b, tmp);
        return;
    case JV_FLOAT:
        jv_format_float(tmp, sizeof tmp, v->u.f);
        jb_puts(cx, b, tmp);
        return;
    case JV_STR:
        jb_put(cx, b, v->u.s.p, v->u.s.n);
        return;
    case JV_LIST:
    case JV_DICT:
    case JV_NS:
        jv_repr(cx, b, v);
        return;
    case JV_LOOP:
        jb_puts(cx, b, "<LoopContext>");
        return;
    case JV_FUNC:
    case JV_METHOD:
        jb_puts(cx, b, "<built-in function>");
        return;
    case JV_MACRO:
        jb_puts(cx, b, "<Macro>");
        return;
    }
}

jv jv_stringify(jctx *cx, const jv *v)
{
    if (v->t == JV_STR) return *v;
    jbuf b = {0};
    jv_to_str(cx, &b, v);
    return jb_value(cx, &b);
}

static void json_str(jctx *cx, jbuf *b, const char *p, size_t n, bool ascii)
{
    jb_putc(cx, b, '"');
    char esc[16];
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)p[i];
        if (c == '"')
            jb_puts(cx, b, "\\\""), i++;
        else if (c == '\\')
            jb_puts(cx, b, "\\\\"), i++;
        else if (c == '\n')
            jb_puts(cx, b, "\\n"), i++;
        else if (c == '\r')
            jb_puts(cx, b, "\\r"), i++;
        else if (c == '\t')
            jb_puts(cx, b, "\\t"), i++;
        else if (c == '\b')
            jb_puts(cx, b, "\\b"), i++;
        else if (c == '\f')
            jb_puts(cx, b, "\\f"), i++;
        else if (c < 0x20 || (ascii && c == 0x7f)) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            jb_puts(cx, b, esc);
            i++;
        } else if (c < 0x80 || !ascii) {
            jb_putc(cx, b, (char)c);
            i++;
        } else {
            uint32_t cp;
            i += (size_t)ju_decode(p + i, n - i, &cp);
            if (cp >= 0x10000) {
                cp -= 0x10000;
                snprintf(esc, sizeof esc, "\\u%04x\\u%04x", 0xD800 + (cp >> 10), 0xDC00 + (cp & 0x3FF));
            } else
                snprintf(esc, sizeof esc, "\\u%04x", cp);
            jb_puts(cx, b, esc);
        }
    }
    jb_putc(cx, b, '"');
}

static void json_newline(jctx *cx, jbuf *b, const jjson_opts *o, int level)
{
    jb_putc(cx, b, '\n');
    for (int i = 0; i < level; i++)
        jb_puts(cx, b, o->indent);
}

static void json_key(jctx *cx, jbuf *b, const jv *k, const jjson_opts *o)
{
    char tmp[64];
    switch ((jv_type)k->t) {
    case JV_STR:
        json_str(cx, b, k->u.s.p, k->u.s.n, o->ensure_ascii);
        return;
    case JV_NONE:
        jb_puts(cx, b, "\"null\"");
        return;
    case JV_BOOL:
        jb_puts(cx, b, k->u.b ? "\"true\"" : "\"false\"");
        return;
    case JV_INT:
        snprintf(tmp, sizeof tmp, "\"%lld\"", (long long)k->u.i);
        break;
    case JV_FLOAT: {
        char f[48];
        jv_format_float(f, sizeof f, k->u.f);
        snprintf(tmp, sizeof tmp, "\"%s\"", f);
        break;
    }
    default:
        jx_fail(cx, IGNIS_E_ARG, "tojson: keys must be str, int, float, bool or None, not %s", jv_type_name(k));
    }
    jb_puts(cx, b, tmp);
}

static int cmp_keys_idx(jctx *cx, const jdict *d, size_t a, size_t b) { return jv_compare(cx, &d->k[a], &d->k[b]); }

void jv_to_json(jctx *cx, jbuf *b, const jv *v, const jjson_opts *o, int level)
{
    char tmp[64];
    if (level > 200) jx_fail(cx, IGNIS_E_ARG, "tojson: nesting deeper than 200 levels");
    switch ((jv_type)v->t) {
    case JV_NONE:
        jb_puts(cx, b, "null");
        return;
    case JV_BOOL:
        jb_puts(cx, b, v->u.b ? "true" : "false");
        return;
    case JV_INT:
        snprintf(tmp, sizeof tmp, "%lld", (long long)v->u.i);
        jb_puts(cx, b, tmp);
        return;
    case JV_FLOAT:
        if (isnan(v->u.f))
            jb_puts(cx, b, "NaN");
        else if (isinf(v->u.f))
            jb_puts(cx, b, v->u.f < 0 ? "-Infinity" : "Infinity");
        else {
            jv_format_float(tmp, sizeof tmp, v->u.f);
            jb_puts(cx, b, tmp);
        }
        return;
    case JV_STR:
        json_str(cx, b, v->u.s.p, v->u.s.n, o->ensure_ascii);
        return;
    case JV_LIST: {
        const jlist *l = v->u.l;
        if (!l->n) {
            jb_puts(cx, b, "[]");
            return;
        }
        jb_putc(cx, b, '[');
        for (size_t i = 0; i < l->n; i++) {
            if (i) jb_puts(cx, b, o->item_sep);
            if (o->indent) json_newline(cx, b, o, level + 1);
            jv_to_json(cx, b, &l->v[i], o, level + 1);
        }
        if (o->indent) json_newline(cx, b, o, level);
        jb_putc(cx, b, ']');
        return;
    }
    case JV_DICT: {
        const jdict *d = v->u.d;
        if (!d->n) {
            jb_puts(cx, b, "{}");
            return;
        }
        size_t *order = jx_alloc(cx, d->n * sizeof *order);
        for (size_t i = 0; i < d->n; i++)
            order[i] = i;
        if (o->sort_keys) /* insertion sort: dicts in templates are small */
            for (size_t i = 1; i < d->n; i++)
                for (size_t j = i; j > 0 && cmp_keys_idx(cx, d, order[j - 1], order[j]) > 0; j--) {
                    size_t t = order[j];
                    order[j] = order[j - 1];
                    order[j - 1] = t;
                }
        jb_putc(cx, b, '{');
        for (size_t i = 0; i < d->n; i++) {
            if (i) jb_puts(cx, b, o->item_sep);
            if (o->indent) json_newline(cx, b, o, level + 1);
            json_key(cx, b, &d->k[order[i]], o);
            jb_puts(cx, b, o->key_sep);
            jv_to_json(cx, b, &d->v[order[i]], o, level + 1);
        }
        if (o->indent) json_newline(cx, b, o, level);
        jb_putc(cx, b, '}');
        return;
    }
    default:
        jx_fail(cx, IGNIS_E_ARG, "tojson: object of type %s is not JSON serializable", jv_type_name(v));
    }
}
