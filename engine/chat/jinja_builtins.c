/* Jinja builtins as the transformers sandbox exposes them: globals (range, namespace,
 * dict, raise_exception, strftime_now), attribute and item access (dict members, str and
 * dict methods, loop fields), filters and tests. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <utf8proc.h>

#include "jinja_internal.h"

#define MAX_RANGE 100000 /* Jinja's sandbox limit */

static bool is_num(const jv *v) { return v->t == JV_BOOL || v->t == JV_INT || v->t == JV_FLOAT; }
static bool is_intlike(const jv *v) { return v->t == JV_BOOL || v->t == JV_INT; }
static int64_t num_i(const jv *v) { return v->t == JV_INT ? v->u.i : v->t == JV_BOOL ? v->u.b : (int64_t)v->u.f; }
static double num_f(const jv *v) { return v->t == JV_FLOAT ? v->u.f : (double)num_i(v); }

static bool str_eq(const jv *v, const char *s)
{
    return v->t == JV_STR && v->u.s.n == strlen(s) && !memcmp(v->u.s.p, s, v->u.s.n);
}

/* Argument `pos` positionally or by keyword `name`; NULL when not given. */
static const jv *arg(const jv *args, int nargs, const char *const *kwn, const jv *kwv, int nkw, int pos,
                     const char *name)
{
    if (pos >= 0 && pos < nargs) return &args[pos];
    for (int i = 0; name && i < nkw; i++)
        if (!strcmp(kwn[i], name)) return &kwv[i];
    return NULL;
}

static void check_arity(jctx *cx, const char *what, int nargs, int max)
{
    if (nargs > max) jx_fail(cx, IGNIS_E_ARG, "%s takes at most %d positional arguments (%d given)", what, max, nargs);
}

static jv need_str(jctx *cx, const jv *v, const char *what)
{
    if (v->t != JV_STR) jx_fail(cx, IGNIS_E_ARG, "%s: expected a string, got %s", what, jv_type_name(v));
    return *v;
}

/* ------------------------------------------------------------------ globals */

bool jx_global(const char *name, jv *out)
{
    static const struct {
        const char *name;
        int id;
    } g[] = {{"range", JF_RANGE},
             {"namespace", JF_NAMESPACE},
             {"raise_exception", JF_RAISE_EXCEPTION},
             {"strftime_now", JF_STRFTIME_NOW},
             {"dict", JF_DICT}};
    for (size_t i = 0; i < sizeof g / sizeof g[0]; i++)
        if (!strcmp(name, g[i].name)) {
            *out = (jv){.t = JV_FUNC, .u.fn = g[i].id};
            return true;
        }
    return false;
}

/* ------------------------------------------------------------------ string helpers */

typedef enum {
    M_NONE = 0,
    /* str */
    M_STARTSWITH,
    M_ENDSWITH,
    M_STRIP,
    M_LSTRIP,
    M_RSTRIP,
    M_SPLIT,
    M_RSPLIT,
    M_UPPER,
    M_LOWER,
    M_TITLE,
    M_CAPITALIZE,
    M_REPLACE,
    M_FIND,
    M_RFIND,
    M_COUNT,
    M_JOIN,
    M_FORMAT,
    M_SPLITLINES,
    M_ISDIGIT,
    M_ISALPHA,
    M_ISALNUM,
    M_ISSPACE,
    M_ISUPPER,
    M_ISLOWER,
    M_INDEX,
    /* dict */
    M_ITEMS,
    M_KEYS,
    M_VALUES,
    M_GET,
    M_COPY,
    /* loop */
    M_CYCLE
} method_id;

static const struct {
    const char *name;
    method_id id;
} k_str_methods[] = {
    {"startswith", M_STARTSWITH},
    {"endswith", M_ENDSWITH},
    {"strip", M_STRIP},
    {"lstrip", M_LSTRIP},
    {"rstrip", M_RSTRIP},
    {"split", M_SPLIT},
    {"rsplit", M_RSPLIT},
    {"upper", M_UPPER},
    {"lower", M_LOWER},
    {"title", M_TITLE},
    {"capitalize", M_CAPITALIZE},
    {"replace", M_REPLACE},
    {"find", M_FIND},
    {"rfind", M_RFIND},
    {"count", M_COUNT},
    {"join", M_JOIN},
    {"format", M_FORMAT},
    {"splitlines", M_SPLITLINES},
    {"isdigit", M_ISDIGIT},
    {"isalpha", M_ISALPHA},
    {"isalnum", M_ISALNUM},
    {"isspace", M_ISSPACE},
    {"isupper", M_ISUPPER},
    {"islower", M_ISLOWER},
    {"index", M_INDEX},
};
static const struct {
    const char *name;
    method_id id;
} k_dict_methods[] = {{"items", M_ITEMS}, {"keys", M_KEYS}, {"values", M_VALUES}, {"get", M_GET}, {"copy", M_COPY}};

static jv method(jctx *cx, const jv *self, method_id id)
{
    jmethod *m = jx_alloc(cx, sizeof *m);
    m->self = *self;
    m->id = id;
    return (jv){.t = JV_METHOD, .u.m = m};
}

/* Is code point c in the set of code points of `chars` (NULL: Python whitespace)? */
static bool in_chars(uint32_t c, const jv *chars)
{
    if (!chars || chars->t == JV_NONE) return ju_is_space(c);
    for (size_t i = 0; i < chars->u.s.n;) {
        uint32_t d;
        i += (size_t)ju_decode(chars->u.s.p + i, chars->u.s.n - i, &d);
        if (d == c) return true;
    }
    return false;
}

static jv strip(jctx *cx, const jv *s, const jv *chars, bool left, bool right)
{
    if (chars && chars->t != JV_NONE) need_str(cx, chars, "strip");
    const char *p = s->u.s.p;
    size_t n = s->u.s.n, a = 0, b = n;
    if (left)
        while (a < n) {
            uint32_t c;
            int k = ju_decode(p + a, n - a, &c);
            if (!in_chars(c, chars)) break;
            a += (size_t)k;
        }
    if (right) {
        size_t keep = a;
        for (size_t i = a; i < n;) {
            uint32_t c;
            int k = ju_decode(p + i, n - i, &c);
            i += (size_t)k;
            if (!in_chars(c, chars)) keep = i;
        }
        b = keep;
    }
    return jv_str(p + a, b > a ? b - a : 0);
}

static jv map_case(jctx *cx, const jv *s, int mode /* 0 lower, 1 upper */)
{
    jbuf b = {0};
    for (size_t i = 0; i < s->u.s.n;) {
        uint32_t c;
        int k = ju_decode(s->u.s.p + i, s->u.s.n - i, &c);
        uint32_t m = (uint32_t)(mode ? utf8proc_toupper((utf8proc_int32_t)c) : utf8proc_tolower((utf8proc_int32_t)c));
        if (m == c)
            jb_put(cx, &b, s->u.s.p + i, (size_t)k);
        else {
            char e[4];
            jb_put(cx, &b, e, (size_t)ju_encode(m, e));
        }
        i += (size_t)k;
    }
    return jb_value(cx, &b);
}

static bool cp_is_alpha(uint32_t c)
{
    utf8proc_category_t cat = utf8proc_category((utf8proc_int32_t)c);
    return cat == UTF8PROC_CATEGORY_LU || cat == UTF8PROC_CATEGORY_LL || cat == UTF8PROC_CATEGORY_LT ||
           cat == UTF8PROC_CATEGORY_LM || cat == UTF8PROC_CATEGORY_LO;
}

/* mode 0: str.title() (word = run of letters); 1: str.capitalize(); 2: Jinja's |title
 * (words start after '-', whitespace or an opening bracket). */
static jv title_case(jctx *cx, const jv *s, int mode)
{
    jbuf b = {0};
    bool start = true;
    for (size_t i = 0; i < s->u.s.n;) {
        uint32_t c;
        int k = ju_decode(s->u.s.p + i, s->u.s.n - i, &c);
        i += (size_t)k;
        uint32_t m;
        if (mode == 1) {
            m = (uint32_t)(start ? utf8proc_toupper((utf8proc_int32_t)c) : utf8proc_tolower((utf8proc_int32_t)c));
            start = false;
        } else if (mode == 0) {
            bool alpha = cp_is_alpha(c);
            m = alpha
                    ? (uint32_t)(start ? utf8proc_toupper((utf8proc_int32_t)c) : utf8proc_tolower((utf8proc_int32_t)c))
                    : c;
            start = !alpha;
        } else {
            bool sep = ju_is_space(c) || c == '-' || c == '(' || c == '{' || c == '[' || c == '<';
            m = sep ? c
                    : (uint32_t)(start ? utf8proc_toupper((utf8proc_int32_t)c) : utf8proc_tolower((utf8proc_int32_t)c));
            start = sep;
        }
        char e[4];
        jb_put(cx, &b, e, (size_t)ju_encode(m, e));
    }
    return jb_value(cx, &b);
}

static jv split(jctx *cx, const jv *s, const jv *sep, int64_t maxsplit, bool from_right)
{
    jv out = jv_list_new(cx, 4);
    const char *p = s->u.s.p;
    size_t n = s->u.s.n;
    if (!sep || sep->t == JV_NONE) {
        /* runs of whitespace; leading/trailing whitespace yields no empty strings */
        size_t *starts = jx_alloc(cx, (n + 1) * sizeof(size_t)), *ends = jx_alloc(cx, (n + 1) * sizeof(size_t));
        size_t nw = 0;
        for (size_t i = 0; i < n;) {
            uint32_t c;
            int k = ju_decode(p + i, n - i, &c);
            if (ju_is_space(c)) {
                i += (size_t)k;
                continue;
            }
            starts[nw] = i;
            while (i < n) {
                k = ju_decode(p + i, n - i, &c);
                if (ju_is_space(c)) break;
                i += (size_t)k;
            }
            ends[nw++] = i;
        }
        if (maxsplit < 0 || (size_t)maxsplit >= nw) {
            for (size_t w = 0; w < nw; w++)
                jv_list_push(cx, &out, jv_str(p + starts[w], ends[w] - starts[w]));
        } else if (!from_right) {
            for (size_t w = 0; w < (size_t)maxsplit; w++)
                jv_list_push(cx, &out, jv_str(p + starts[w], ends[w] - starts[w]));
            /* as Python: the remainder runs from the next word to the end, whitespace kept */
            size_t a = starts[maxsplit];
            jv_list_push(cx, &out, jv_str(p + a, n - a));
        } else {
            size_t first = nw - (size_t)maxsplit;
            jv_list_push(cx, &out, jv_str(p, ends[first - 1]));
            for (size_t w = first; w < nw; w++)
                jv_list_push(cx, &out, jv_str(p + starts[w], ends[w] - starts[w]));
        }
        return out;
    }
    need_str(cx, sep, "split");
    if (!sep->u.s.n) jx_fail(cx, IGNIS_E_ARG, "split: empty separator");
    const char *q = sep->u.s.p;
    size_t m = sep->u.s.n;
    if (!from_right) {
        size_t a = 0;
        int64_t done = 0;
        for (;;) {
            const char *hit = (maxsplit < 0 || done < maxsplit) && a <= n ? memmem(p + a, n - a, q, m) : NULL;
            if (!hit) break;
            jv_list_push(cx, &out, jv_str(p + a, (size_t)(hit - (p + a))));
            a = (size_t)(hit - p) + m;
            done++;
        }
        jv_list_push(cx, &out, jv_str(p + a, n - a));
        return out;
    }
    /* rsplit: collect from the right, then reverse */
    jv rev = jv_list_new(cx, 4);
    size_t b = n;
    int64_t done = 0;
    while (maxsplit < 0 || done < maxsplit) {
        size_t found = (size_t)-1;
        for (size_t i = b >= m ? b - m + 1 : 0; i-- > 0;)
            if (!memcmp(p + i, q, m)) {
                found = i;
                break;
            }
        if (found == (size_t)-1) break;
        jv_list_push(cx, &rev, jv_str(p + found + m, b - found - m));
        b = found;
        done++;
    }
    jv_list_push(cx, &rev, jv_str(p, b));
    for (size_t i = rev.u.l->n; i > 0; i--)
        jv_list_push(cx, &out, rev.u.l->v[i - 1]);
    return out;
}

static jv replace(jctx *cx, const jv *s, const jv *old, const jv *neu, int64_t count)
{
    need_str(cx, old, "replace");
    need_str(cx, neu, "replace");
    jbuf b = {0};
    const char *p = s->u.s.p;
    size_t n = s->u.s.n, a = 0;
    int64_t done = 0;
    if (!old->u.s.n) {
        /* Python inserts the replacement between every character */
        jlist *chars = jv_iter_list(cx, s);
        for (size_t i = 0; i <= chars->n; i++) {
            if (count < 0 || done < count) {
                jb_put(cx, &b, neu->u.s.p, neu->u.s.n);
                done++;
            }
            if (i < chars->n) jb_put(cx, &b, chars->v[i].u.s.p, chars->v[i].u.s.n);
        }
        return jb_value(cx, &b);
    }
    while (count < 0 || done < count) {
        const char *hit = memmem(p + a, n - a, old->u.s.p, old->u.s.n);
        if (!hit) break;
        jb_put(cx, &b, p + a, (size_t)(hit - (p + a)));
        jb_put(cx, &b, neu->u.s.p, neu->u.s.n);
        a = (size_t)(hit - p) + old->u.s.n;
        done++;
    }
    jb_put(cx, &b, p + a, n - a);
    return jb_value(cx, &b);
}

static bool starts_or_ends(jctx *cx, const jv *s, const jv *what, bool ends)
{
    if (what->t == JV_LIST && what->tuple) {
        for (size_t i = 0; i < what->u.l->n; i++)
            if (starts_or_ends(cx, s, &what->u.l->v[i], ends)) return true;
        return false;
    }
    if (what->t != JV_STR)
        jx_fail(cx, IGNIS_E_ARG, "%s first arg must be str or a tuple of str, not %s", ends ? "endswith" : "startswith",
                jv_type_name(what));
    if (what->u.s.n > s->u.s.n) return false;
    return !memcmp(ends ? s->u.s.p + s->u.s.n - what->u.s.n : s->u.s.p, what->u.s.p, what->u.s.n);
}

static jlist *splitlines(jctx *cx, const jv *s, bool keepends)
{
    jv out = jv_list_new(cx, 4);
    const char *p = s->u.s.p;
    size_t n = s->u.s.n, a = 0;
    for (size_t i = 0; i < n;) {
        uint32_t c;
        int k = ju_decode(p + i, n - i, &c);
        bool brk = c == '\n' || c == '\r' || c == 0x0B || c == 0x0C || c == 0x1C || c == 0x1D || c == 0x1E ||
                   c == 0x85 || c == 0x2028 || c == 0x2029;
        if (!brk) {
            i += (size_t)k;
            continue;
        }
        size_t end = i;
        i += (size_t)k;
        if (c == '\r' && i < n && p[i] == '\n') i++;
        jv_list_push(cx, &out, jv_str(p + a, (keepends ? i : end) - a));
        a = i;
    }
    if (a < n) jv_list_push(cx, &out, jv_str(p + a, n - a));
    return out.u.l;
}

static jv join(jctx *cx, const jv *seq, const jv *sep, const jv *attribute)
{
    jlist *items = jv_iter_list(cx, seq);
    jbuf b = {0};
    for (size_t i = 0; i < items->n; i++) {
        if (i && sep) jv_to_str(cx, &b, sep);
        jv v = items->v[i];
        if (attribute && attribute->t != JV_NONE)
            v = attribute->t == JV_STR ? jx_getattr(cx, &v, attribute->u.s.p) : jx_getitem(cx, &v, attribute);
        jv_to_str(cx, &b, &v);
    }
    return jb_value(cx, &b);
}

/* str.format with {} / {0} / {name} fields (no format specs). */
static jv str_format(jctx *cx, const jv *fmt, const jv *args, int nargs, const char *const *kwn, const jv *kwv, int nkw)
{
    jbuf b = {0};
    const char *p = fmt->u.s.p;
    size_t n = fmt->u.s.n;
    int auto_idx = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '{' && i + 1 < n && p[i + 1] == '{') {
            jb_putc(cx, &b, '{');
            i++;
            continue;
        }
        if (p[i] == '}' && i + 1 < n && p[i + 1] == '}') {
            jb_putc(cx, &b, '}');
            i++;
            continue;
        }
        if (p[i] != '{') {
            jb_putc(cx, &b, p[i]);
            continue;
        }
        const char *end = memchr(p + i, '}', n - i);
        if (!end) jx_fail(cx, IGNIS_E_ARG, "format: single '{' encountered in format string");
        size_t fl = (size_t)(end - (p + i + 1));
        char field[64];
        if (fl >= sizeof field) jx_fail(cx, IGNIS_E_ARG, "format: field name too long");
        memcpy(field, p + i + 1, fl);
        field[fl] = 0;
        if (strchr(field, ':') || strchr(field, '!'))
            jx_fail(cx, IGNIS_E_ARG, "format: format specs are not supported");
        const jv *v = NULL;
        if (!fl) {
            if (auto_idx >= nargs) jx_fail(cx, IGNIS_E_ARG, "format: not enough positional arguments");
            v = &args[auto_idx++];
        } else if (isdigit((unsigned char)field[0])) {
            int k = atoi(field);
            if (k >= nargs) jx_fail(cx, IGNIS_E_ARG, "format: index %d out of range", k);
            v = &args[k];
        } else {
            for (int k = 0; k < nkw; k++)
                if (!strcmp(kwn[k], field)) v = &kwv[k];
            if (!v) jx_fail(cx, IGNIS_E_ARG, "format: no argument named '%s'", field);
        }
        jv_to_str(cx, &b, v);
        i += fl + 1;
    }
    return jb_value(cx, &b);
}

static bool str_all(const jv *s, int kind)
{
    if (!s->u.s.n) return false;
    bool cased = false;
    for (size_t i = 0; i < s->u.s.n;) {
        uint32_t c;
        i += (size_t)ju_decode(s->u.s.p + i, s->u.s.n - i, &c);
        utf8proc_category_t cat = utf8proc_category((utf8proc_int32_t)c);
        switch (kind) {
        case M_ISDIGIT:
            if (cat != UTF8PROC_CATEGORY_ND) return false;
            break;
        case M_ISALPHA:
            if (!cp_is_alpha(c)) return false;
            break;
        case M_ISALNUM:
            if (!cp_is_alpha(c) && cat != UTF8PROC_CATEGORY_ND && cat != UTF8PROC_CATEGORY_NL &&
                cat != UTF8PROC_CATEGORY_NO)
                return false;
            break;
        case M_ISSPACE:
            if (!ju_is_space(c)) return false;
            break;
        case M_ISUPPER:
            if (cat == UTF8PROC_CATEGORY_LL) return false;
            if (cat == UTF8PROC_CATEGORY_LU || cat == UTF8PROC_CATEGORY_LT) cased = true;
            break;
        case M_ISLOWER:
            if (cat == UTF8PROC_CATEGORY_LU || cat == UTF8PROC_CATEGORY_LT) return false;
            if (cat == UTF8PROC_CATEGORY_LL) cased = true;
            break;
        }
    }
    return (kind == M_ISUPPER || kind == M_ISLOWER) ? cased : true;
}

static int64_t find_sub(const jv *s, const jv *sub, bool last)
{
    const char *p = s->u.s.p;
    size_t n = s->u.s.n, m = sub->u.s.n;
    if (m > n) return -1;
    size_t at = (size_t)-1;
    if (!last) {
        const char *hit = m ? memmem(p, n, sub->u.s.p, m) : p;
        if (hit) at = (size_t)(hit - p);
    } else {
        for (size_t i = n - m + 1; i-- > 0;)
            if (!memcmp(p + i, sub->u.s.p, m)) {
                at = i;
                break;
            }
    }
    if (at == (size_t)-1) return -1;
    return (int64_t)ju_cp_count(p, at);
}

/* ------------------------------------------------------------------ attribute / item access */

jv jx_getattr(jctx *cx, const jv *obj, const char *name)
{
    switch ((jv_type)obj->t) {
    case JV_DICT:
        for (size_t i = 0; i < sizeof k_dict_methods / sizeof k_dict_methods[0]; i++)
            if (!strcmp(name, k_dict_methods[i].name)) return method(cx, obj, k_dict_methods[i].id);
        {
            jv v;
            if (jv_dict_get_str(obj->u.d, name, &v)) return v;
        }
        return jv_undef(name);
    case JV_NS: {
        jv v;
        if (jv_dict_get_str(obj->u.d, name, &v)) return v;
        return jv_undef(name);
    }
    case JV_STR:
        for (size_t i = 0; i < sizeof k_str_methods / sizeof k_str_methods[0]; i++)
            if (!strcmp(name, k_str_methods[i].name)) return method(cx, obj, k_str_methods[i].id);
        return jv_undef(name);
    case JV_LOOP: {
        const jloop *l = obj->u.loop;
        int64_t len = (int64_t)l->items->n, i = l->index0;
        if (!strcmp(name, "index0")) return jv_int(i);
        if (!strcmp(name, "index")) return jv_int(i + 1);
        if (!strcmp(name, "revindex")) return jv_int(len - i);
        if (!strcmp(name, "revindex0")) return jv_int(len - i - 1);
        if (!strcmp(name, "first")) return jv_bool(i == 0);
        if (!strcmp(name, "last")) return jv_bool(i == len - 1);
        if (!strcmp(name, "length")) return jv_int(len);
        if (!strcmp(name, "depth")) return jv_int(l->depth0 + 1);
        if (!strcmp(name, "depth0")) return jv_int(l->depth0);
        if (!strcmp(name, "previtem")) return i > 0 ? l->items->v[i - 1] : jv_undef("previtem");
        if (!strcmp(name, "nextitem")) return i + 1 < len ? l->items->v[i + 1] : jv_undef("nextitem");
        if (!strcmp(name, "cycle")) return method(cx, obj, M_CYCLE);
        return jv_undef(name);
    }
    default:
        return jv_undef(name);
    }
}

jv jx_getitem(jctx *cx, const jv *obj, const jv *key)
{
    switch ((jv_type)obj->t) {
    case JV_LIST:
        if (is_intlike(key)) {
            int64_t i = num_i(key), n = (int64_t)obj->u.l->n;
            if (i < 0) i += n;
            if (i < 0 || i >= n) return jv_undef("list index out of range");
            return obj->u.l->v[i];
        }
        break;
    case JV_STR:
        if (is_intlike(key)) {
            int64_t i = num_i(key), n = (int64_t)ju_cp_count(obj->u.s.p, obj->u.s.n);
            if (i < 0) i += n;
            if (i < 0 || i >= n) return jv_undef("string index out of range");
            size_t a = ju_cp_offset(obj->u.s.p, obj->u.s.n, (size_t)i);
            size_t b = ju_cp_offset(obj->u.s.p, obj->u.s.n, (size_t)i + 1);
            return jv_str(obj->u.s.p + a, b - a);
        }
        break;
    case JV_DICT: {
        jv v;
        if (jv_dict_get(obj->u.d, *key, &v)) return v;
        break;
    }
    default:
        break;
    }
    /* Jinja falls back to attribute lookup for string keys (dict methods, namespace members) */
    if (key->t == JV_STR) {
        char *name = jx_strdup(cx, key->u.s.p, key->u.s.n);
        if (obj->t == JV_DICT) {
            for (size_t i = 0; i < sizeof k_dict_methods / sizeof k_dict_methods[0]; i++)
                if (!strcmp(name, k_dict_methods[i].name)) return method(cx, obj, k_dict_methods[i].id);
            return jv_undef(name);
        }
        return jx_getattr(cx, obj, name);
    }
    return jv_undef(NULL);
}

/* ------------------------------------------------------------------ calls */

static jv call_method(jctx *cx, const jmethod *m, const jv *args, int nargs, const char *const *kwn, const jv *kwv,
                      int nkw)
{
    const jv *s = &m->self;
    const jv *a0 = arg(args, nargs, kwn, kwv, nkw, 0, NULL);
    const jv *a1 = arg(args, nargs, kwn, kwv, nkw, 1, NULL);
    switch ((method_id)m->id) {
    case M_STARTSWITH:
    case M_ENDSWITH:
        if (!a0)
            jx_fail(cx, IGNIS_E_ARG, "%s() takes at least 1 argument",
                    m->id == M_STARTSWITH ? "startswith" : "endswith");
        return jv_bool(starts_or_ends(cx, s, a0, m->id == M_ENDSWITH));
    case M_STRIP:
        return strip(cx, s, a0, true, true);
    case M_LSTRIP:
        return strip(cx, s, a0, true, false);
    case M_RSTRIP:
        return strip(cx, s, a0, false, true);
    case M_SPLIT:
    case M_RSPLIT: {
        const jv *sep = arg(args, nargs, kwn, kwv, nkw, 0, "sep");
        const jv *mx = arg(args, nargs, kwn, kwv, nkw, 1, "maxsplit");
        return split(cx, s, sep, mx ? num_i(mx) : -1, m->id == M_RSPLIT);
    }
    case M_UPPER:
        return map_case(cx, s, 1);
    case M_LOWER:
        return map_case(cx, s, 0);
    case M_TITLE:
        return title_case(cx, s, 0);
    case M_CAPITALIZE:
        return title_case(cx, s, 1);
    case M_REPLACE: {
        if (!a0 || !a1) jx_fail(cx, IGNIS_E_ARG, "replace() takes at least 2 arguments");
        const jv *c = arg(args, nargs, kwn, kwv, nkw, 2, "count");
        return replace(cx, s, a0, a1, c ? num_i(c) : -1);
    }
    case M_FIND:
    case M_RFIND:
    case M_INDEX: {
        if (!a0) jx_fail(cx, IGNIS_E_ARG, "find() takes at least 1 argument");
        need_str(cx, a0, "find");
        int64_t r = find_sub(s, a0, m->id == M_RFIND);
        if (r < 0 && m->id == M_INDEX) jx_fail(cx, IGNIS_E_ARG, "substring not found");
        return jv_int(r);
    }
    case M_COUNT: {
        if (!a0) jx_fail(cx, IGNIS_E_ARG, "count() takes at least 1 argument");
        need_str(cx, a0, "count");
        if (!a0->u.s.n) return jv_int((int64_t)ju_cp_count(s->u.s.p, s->u.s.n) + 1);
        int64_t k = 0;
        for (const char *p = s->u.s.p, *end = p + s->u.s.n; (p = memmem(p, (size_t)(end - p), a0->u.s.p, a0->u.s.n));
             p += a0->u.s.n)
            k++;
        return jv_int(k);
    }
    case M_JOIN: {
        if (!a0) jx_fail(cx, IGNIS_E_ARG, "join() takes exactly 1 argument");
        jlist *items = jv_iter_list(cx, a0);
        for (size_t i = 0; i < items->n; i++)
            if (items->v[i].t != JV_STR)
                jx_fail(cx, IGNIS_E_ARG, "sequence item %zu: expected str instance, %s found", i,
                        jv_type_name(&items->v[i]));
        return join(cx, a0, s, NULL);
    }
    case M_FORMAT:
        return str_format(cx, s, args, nargs, kwn, kwv, nkw);
    case M_SPLITLINES: {
        const jv *ke = arg(args, nargs, kwn, kwv, nkw, 0, "keepends");
        return (jv){.t = JV_LIST, .u.l = splitlines(cx, s, ke && jv_truthy(ke))};
    }
    case M_ISDIGIT:
    case M_ISALPHA:
    case M_ISALNUM:
    case M_ISSPACE:
    case M_ISUPPER:
    case M_ISLOWER:
        return jv_bool(str_all(s, m->id));
    case M_ITEMS:
    case M_KEYS:
    case M_VALUES: {
        const jdict *d = s->u.d;
        jv out = jv_list_new(cx, d->n);
        for (size_t i = 0; i < d->n; i++) {
            if (m->id == M_KEYS)
                jv_list_push(cx, &out, d->k[i]);
            else if (m->id == M_VALUES)
                jv_list_push(cx, &out, d->v[i]);
            else {
                jv pair = jv_list_new(cx, 2);
                pair.tuple = 1;
                jv_list_push(cx, &pair, d->k[i]);
                jv_list_push(cx, &pair, d->v[i]);
                jv_list_push(cx, &out, pair);
            }
        }
        return out;
    }
    case M_GET: {
        if (!a0) jx_fail(cx, IGNIS_E_ARG, "get() takes at least 1 argument");
        jv v;
        if (jv_dict_get(s->u.d, *a0, &v)) return v;
        return a1 ? *a1 : jv_none();
    }
    case M_COPY: {
        jv d = jv_dict_new(cx, s->u.d->n);
        for (size_t i = 0; i < s->u.d->n; i++)
            jv_dict_set(cx, d.u.d, s->u.d->k[i], s->u.d->v[i]);
        return d;
    }
    case M_CYCLE:
        if (!nargs) jx_fail(cx, IGNIS_E_ARG, "loop.cycle() needs at least one argument");
        return args[s->u.loop->index0 % nargs];
    case M_NONE:
        break;
    }
    jx_fail(cx, IGNIS_E_INTERNAL, "unknown method");
}

jv jx_call_builtin(jctx *cx, const jv *fn, const jv *args, int nargs, const char *const *kwn, const jv *kwv, int nkw)
{
    if (fn->t == JV_METHOD) return call_method(cx, fn->u.m, args, nargs, kwn, kwv, nkw);
    switch (fn->u.fn) {
    case JF_RANGE: {
        if (nargs < 1 || nargs > 3 || nkw) jx_fail(cx, IGNIS_E_ARG, "range() takes 1 to 3 positional arguments");
        for (int i = 0; i < nargs; i++)
            if (!is_intlike(&args[i]))
                jx_fail(cx, IGNIS_E_ARG, "range(): '%s' object cannot be interpreted as an integer",
                        jv_type_name(&args[i]));
        int64_t start = nargs > 1 ? num_i(&args[0]) : 0, stop = nargs > 1 ? num_i(&args[1]) : num_i(&args[0]);
        int64_t step = nargs > 2 ? num_i(&args[2]) : 1;
        if (!step) jx_fail(cx, IGNIS_E_ARG, "range() arg 3 must not be zero");
        int64_t count = step > 0 ? (stop > start ? (stop - start + step - 1) / step : 0)
                                 : (start > stop ? (start - stop - step - 1) / -step : 0);
        if (count > MAX_RANGE)
            jx_fail(cx, IGNIS_E_ARG, "range too big: %lld items (the sandbox allows %d)", (long long)count, MAX_RANGE);
        jv out = jv_list_new(cx, (size_t)count);
        for (int64_t i = 0; i < count; i++)
            jv_list_push(cx, &out, jv_int(start + i * step));
        return out;
    }
    case JF_NAMESPACE:
    case JF_DICT: {
        jv d = jv_dict_new(cx, (size_t)nkw);
        if (nargs > 1)
            jx_fail(cx, IGNIS_E_ARG, "%s() takes at most one positional argument",
                    fn->u.fn == JF_DICT ? "dict" : "namespace");
        if (nargs == 1) {
            if (args[0].t == JV_DICT || args[0].t == JV_NS) {
                for (size_t i = 0; i < args[0].u.d->n; i++)
                    jv_dict_set(cx, d.u.d, args[0].u.d->k[i], args[0].u.d->v[i]);
            } else {
                jlist *pairs = jv_iter_list(cx, &args[0]);
                for (size_t i = 0; i < pairs->n; i++) {
                    jlist *kv = jv_iter_list(cx, &pairs->v[i]);
                    if (kv->n != 2)
                        jx_fail(cx, IGNIS_E_ARG,
                                "dictionary update sequence element #%zu has length %zu; 2 is required", i, kv->n);
                    jv_dict_set(cx, d.u.d, kv->v[0], kv->v[1]);
                }
            }
        }
        for (int i = 0; i < nkw; i++) {
            if (fn->u.fn == JF_NAMESPACE && kwn[i][0] == '_')
                jx_fail(cx, IGNIS_E_ARG, "namespace attributes cannot start with '_' (got '%s')", kwn[i]);
            jv_dict_set(cx, d.u.d, jv_cstr(kwn[i]), kwv[i]);
        }
        if (fn->u.fn == JF_NAMESPACE) d.t = JV_NS;
        return d;
    }
    case JF_RAISE_EXCEPTION: {
        jv msg = nargs ? jv_stringify(cx, &args[0]) : jv_cstr("raise_exception called");
        jx_fail(cx, IGNIS_E_ARG, "the template rejected the conversation: %.*s", (int)msg.u.s.n, msg.u.s.p);
    }
    case JF_STRFTIME_NOW: {
        if (nargs != 1 || args[0].t != JV_STR) jx_fail(cx, IGNIS_E_ARG, "strftime_now() takes one format string");
        char fmt[256], out[512];
        if (args[0].u.s.n >= sizeof fmt) jx_fail(cx, IGNIS_E_ARG, "strftime_now(): format too long");
        memcpy(fmt, args[0].u.s.p, args[0].u.s.n);
        fmt[args[0].u.s.n] = 0;
        time_t now = time(NULL);
        struct tm tm;
        localtime_r(&now, &tm);
        size_t n = strftime(out, sizeof out, fmt, &tm);
        return jv_strdup(cx, out, n);
    }
    }
    jx_fail(cx, IGNIS_E_INTERNAL, "unknown builtin function %d", fn->u.fn);
}

/* ------------------------------------------------------------------ sorting */

typedef struct sort_key {
    jv key;
    jv item;
} sort_key;

static int key_cmp(jctx *cx, const jv *a, const jv *b, bool case_sensitive)
{
    if (!case_sensitive && a->t == JV_STR && b->t == JV_STR) {
        jv la = map_case(cx, a, 0), lb = map_case(cx, b, 0);
        return jv_compare(cx, &la, &lb);
    }
    return jv_compare(cx, a, b);
}

/* Stable merge sort (Python's sort is stable). */
static void msort(jctx *cx, sort_key *v, sort_key *tmp, size_t n, bool cs, bool reverse)
{
    if (n < 2) return;
    size_t h = n / 2;
    msort(cx, v, tmp, h, cs, reverse);
    msort(cx, v + h, tmp, n - h, cs, reverse);
    size_t i = 0, j = h, k = 0;
    while (i < h && j < n) {
        int c = key_cmp(cx, &v[j].key, &v[i].key, cs);
        bool take_right = reverse ? c > 0 : c < 0;
        tmp[k++] = take_right ? v[j++] : v[i++];
    }
    while (i < h)
        tmp[k++] = v[i++];
    while (j < n)
        tmp[k++] = v[j++];
    memcpy(v, tmp, n * sizeof *v);
}

static jv attr_path(jctx *cx, const jv *item, const jv *attribute)
{
    if (!attribute || attribute->t == JV_NONE) return *item;
    if (is_intlike(attribute)) return jx_getitem(cx, item, attribute);
    need_str(cx, attribute, "attribute");
    /* "a.b.0" walks nested members like Jinja's make_attrgetter */
    jv cur = *item;
    const char *p = attribute->u.s.p, *end = p + attribute->u.s.n;
    while (p <= end) {
        const char *dot = memchr(p, '.', (size_t)(end - p));
        size_t len = dot ? (size_t)(dot - p) : (size_t)(end - p);
        bool digits = len > 0;
        for (size_t i = 0; i < len; i++)
            digits = digits && isdigit((unsigned char)p[i]);
        if (digits) {
            jv idx = jv_int(strtoll(jx_strdup(cx, p, len), NULL, 10));
            cur = jx_getitem(cx, &cur, &idx);
        } else {
            jv k = jv_str(p, len);
            cur = jx_getitem(cx, &cur, &k);
        }
        if (!dot) break;
        p = dot + 1;
    }
    return cur;
}

static jv sorted(jctx *cx, jlist *items, bool reverse, bool cs, const jv *attribute)
{
    sort_key *v = jx_alloc(cx, (items->n + 1) * sizeof *v), *tmp = jx_alloc(cx, (items->n + 1) * sizeof *tmp);
    for (size_t i = 0; i < items->n; i++) {
        v[i].item = items->v[i];
        v[i].key = attr_path(cx, &items->v[i], attribute);
    }
    msort(cx, v, tmp, items->n, cs, reverse);
    jv out = jv_list_new(cx, items->n);
    for (size_t i = 0; i < items->n; i++)
        jv_list_push(cx, &out, v[i].item);
    return out;
}

/* ------------------------------------------------------------------ filters */

static jv to_int(jctx *cx, const jv *v, int64_t dflt, int base)
{
    if (is_num(v)) {
        if (v->t == JV_FLOAT) {
            if (!isfinite(v->u.f)) return jv_int(dflt);
            return jv_int((int64_t)v->u.f);
        }
        return jv_int(num_i(v));
    }
    if (v->t == JV_STR) {
        char *s = jx_strdup(cx, v->u.s.p, v->u.s.n), *end;
        while (isspace((unsigned char)*s))
            s++;
        long long x = strtoll(s, &end, base);
        while (isspace((unsigned char)*end))
            end++;
        if (end != s && !*end) return jv_int(x);
        double f = strtod(s, &end);
        while (isspace((unsigned char)*end))
            end++;
        if (end != s && !*end && isfinite(f)) return jv_int((int64_t)f);
    }
    return jv_int(dflt);
}

static jv to_float(jctx *cx, const jv *v, double dflt)
{
    if (is_num(v)) return jv_float(num_f(v));
    if (v->t == JV_STR) {
        char *s = jx_strdup(cx, v->u.s.p, v->u.s.n), *end;
        double f = strtod(s, &end);
        while (isspace((unsigned char)*end))
            end++;
        if (end != s && !*end) return jv_float(f);
    }
    return jv_float(dflt);
}

static jv html_escape(jctx *cx, const jv *v)
{
    jv s = jv_stringify(cx, v);
    jbuf b = {0};
    for (size_t i = 0; i < s.u.s.n; i++) {
        char c = s.u.s.p[i];
        switch (c) {
        case '&':
            jb_puts(cx, &b, "&amp;");
            break;
        case '<':
            jb_puts(cx, &b, "&lt;");
            break;
        case '>':
            jb_puts(cx, &b, "&gt;");
            break;
        case '"':
            jb_puts(cx, &b, "&#34;");
            break;
        case '\'':
            jb_puts(cx, &b, "&#39;");
            break;
        default:
            jb_putc(cx, &b, c);
        }
    }
    return jb_value(cx, &b);
}

static jv indent(jctx *cx, const jv *v, const jv *width, bool first, bool blank)
{
    jv s = jv_stringify(cx, v);
    jbuf ind = {0};
    if (width && width->t == JV_STR)
        jb_put(cx, &ind, width->u.s.p, width->u.s.n);
    else {
        int64_t w = width ? num_i(width) : 4;
        for (int64_t i = 0; i < w && i < 1024; i++)
            jb_putc(cx, &ind, ' ');
    }
    /* Jinja appends a newline so splitlines() keeps a trailing empty line */
    jbuf t = {0};
    jb_put(cx, &t, s.u.s.p, s.u.s.n);
    jb_putc(cx, &t, '\n');
    jv ts = jb_value(cx, &t);
    jlist *lines = splitlines(cx, &ts, false);
    jbuf b = {0};
    if (first) jb_put(cx, &b, ind.p, ind.n);
    for (size_t i = 0; i < lines->n; i++) {
        if (i) {
            jb_putc(cx, &b, '\n');
            if (blank || lines->v[i].u.s.n) jb_put(cx, &b, ind.p, ind.n);
        }
        jb_put(cx, &b, lines->v[i].u.s.p, lines->v[i].u.s.n);
    }
    return jb_value(cx, &b);
}

/* select/reject/selectattr/rejectattr: keep items whose test (default: truthiness) passes. */
static jv select_items(jctx *cx, const jv *seq, const jv *args, int nargs, bool by_attr, bool keep_if)
{
    jlist *items = jv_iter_list(cx, seq);
    int ai = 0;
    const jv *attribute = NULL;
    if (by_attr) {
        if (nargs < 1) jx_fail(cx, IGNIS_E_ARG, "selectattr/rejectattr need an attribute name");
        attribute = &args[ai++];
    }
    const jv *test = ai < nargs ? &args[ai++] : NULL;
    char *tname = NULL;
    if (test) {
        need_str(cx, test, "select test");
        tname = jx_strdup(cx, test->u.s.p, test->u.s.n);
    }
    jv out = jv_list_new(cx, items->n);
    for (size_t i = 0; i < items->n; i++) {
        jv v = by_attr ? attr_path(cx, &items->v[i], attribute) : items->v[i];
        bool ok = tname ? jx_test(cx, tname, &v, args + ai, nargs - ai) : jv_truthy(&v);
        if (ok == keep_if) jv_list_push(cx, &out, items->v[i]);
    }
    return out;
}

jv jx_filter(jctx *cx, const char *name, const jv *v, const jv *args, int nargs, const char *const *kwn, const jv *kwv,
             int nkw)
{
#define A(pos, kw) arg(args, nargs, kwn, kwv, nkw, pos, kw)
    if (!strcmp(name, "trim")) {
        jv s = jv_stringify(cx, v);
        return strip(cx, &s, A(0, "chars"), true, true);
    }
    if (!strcmp(name, "length") || !strcmp(name, "count")) return jv_int(jv_len(cx, v));
    if (!strcmp(name, "tojson")) {
        /* transformers' signature: tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False) */
        check_arity(cx, "tojson", nargs, 4);
        const jv *ea = A(0, "ensure_ascii"), *ind = A(1, "indent"), *seps = A(2, "separators"), *sk = A(3, "sort_keys");
        jjson_opts o = {.ensure_ascii = ea && jv_truthy(ea), .sort_keys = sk && jv_truthy(sk)};
        if (ind && ind->t != JV_NONE) {
            if (ind->t == JV_STR)
                o.indent = jx_strdup(cx, ind->u.s.p, ind->u.s.n);
            else {
                int64_t w = num_i(ind);
                char *sp = jx_alloc(cx, (size_t)(w > 0 ? w : 0) + 1);
                for (int64_t i = 0; i < w; i++)
                    sp[i] = ' ';
                sp[w > 0 ? w : 0] = 0;
                o.indent = sp;
            }
        }
        o.item_sep = o.indent ? "," : ", ";
        o.key_sep = ": ";
        if (seps && seps->t != JV_NONE) {
            jlist *l = jv_iter_list(cx, seps);
            if (l->n != 2 || l->v[0].t != JV_STR || l->v[1].t != JV_STR)
                jx_fail(cx, IGNIS_E_ARG, "tojson: separators must be a pair of strings");
            o.item_sep = jx_strdup(cx, l->v[0].u.s.p, l->v[0].u.s.n);
            o.key_sep = jx_strdup(cx, l->v[1].u.s.p, l->v[1].u.s.n);
        }
        jbuf b = {0};
        jv_to_json(cx, &b, v, &o, 0);
        return jb_value(cx, &b);
    }
    if (!strcmp(name, "default") || !strcmp(name, "d")) {
        const jv *dv = A(0, "default_value"), *boolean = A(1, "boolean");
        bool use = v->t == JV_UNDEF || (boolean && jv_truthy(boolean) && !jv_truthy(v));
        return use ? (dv ? *dv : jv_str("", 0)) : *v;
    }
    if (!strcmp(name, "upper") || !strcmp(name, "lower")) {
        jv s = jv_stringify(cx, v);
        return map_case(cx, &s, name[0] == 'u');
    }
    if (!strcmp(name, "capitalize") || !strcmp(name, "title")) {
        jv s = jv_stringify(cx, v);
        return title_case(cx, &s, name[0] == 'c' ? 1 : 2);
    }
    if (!strcmp(name, "string")) return jv_stringify(cx, v);
    if (!strcmp(name, "safe")) return *v;
    if (!strcmp(name, "e") || !strcmp(name, "escape") || !strcmp(name, "forceescape")) return html_escape(cx, v);
    if (!strcmp(name, "int")) {
        const jv *d = A(0, "default"), *base = A(1, "base");
        return to_int(cx, v, d ? num_i(d) : 0, base ? (int)num_i(base) : 10);
    }
    if (!strcmp(name, "float")) {
        const jv *d = A(0, "default");
        return to_float(cx, v, d ? num_f(d) : 0.0);
    }
    if (!strcmp(name, "abs")) {
        if (v->t == JV_FLOAT) return jv_float(fabs(v->u.f));
        if (is_intlike(v)) return jv_int(num_i(v) < 0 ? -num_i(v) : num_i(v));
        jx_fail(cx, IGNIS_E_ARG, "bad operand type for abs(): '%s'", jv_type_name(v));
    }
    if (!strcmp(name, "round")) {
        const jv *prec = A(0, "precision"), *meth = A(1, "method");
        if (!is_num(v)) jx_fail(cx, IGNIS_E_ARG, "round: expected a number, got %s", jv_type_name(v));
        double x = num_f(v), m = pow(10.0, prec ? (double)num_i(prec) : 0.0);
        if (meth && str_eq(meth, "floor")) return jv_float(floor(x * m) / m);
        if (meth && str_eq(meth, "ceil")) return jv_float(ceil(x * m) / m);
        int64_t pr = prec ? num_i(prec) : 0;
        if (pr >= 0 && pr < 300 && isfinite(x)) {
            /* Python's round(): correctly rounded on the exact binary value, ties to even,
             * which is what glibc's printf does */
            char buf[400];
            snprintf(buf, sizeof buf, "%.*f", (int)pr, x);
            return jv_float(strtod(buf, NULL));
        }
        double r = x * m, fl = floor(r), diff = r - fl;
        double rr = diff > 0.5 ? fl + 1 : diff < 0.5 ? fl : (fmod(fl, 2.0) == 0 ? fl : fl + 1);
        return jv_float(rr / m);
    }
    if (!strcmp(name, "first") || !strcmp(name, "last")) {
        jlist *items = jv_iter_list(cx, v);
        if (!items->n) return jv_undef(name);
        return name[0] == 'f' ? items->v[0] : items->v[items->n - 1];
    }
    if (!strcmp(name, "list")) {
        jlist *items = jv_iter_list(cx, v);
        jv out = jv_list_new(cx, items->n);
        for (size_t i = 0; i < items->n; i++)
            jv_list_push(cx, &out, items->v[i]);
        return out;
    }
    if (!strcmp(name, "reverse")) {
        if (v->t == JV_STR) {
            jlist *chars = jv_iter_list(cx, v);
            jbuf b = {0};
            for (size_t i = chars->n; i > 0; i--)
                jb_put(cx, &b, chars->v[i - 1].u.s.p, chars->v[i - 1].u.s.n);
            return jb_value(cx, &b);
        }
        jlist *items = jv_iter_list(cx, v);
        jv out = jv_list_new(cx, items->n);
        for (size_t i = items->n; i > 0; i--)
            jv_list_push(cx, &out, items->v[i - 1]);
        return out;
    }
    if (!strcmp(name, "join")) {
        const jv *sep = A(0, "d");
        return join(cx, v, sep, A(1, "attribute"));
    }
    if (!strcmp(name, "replace")) {
        jv s = jv_stringify(cx, v);
        const jv *a = A(0, "old"), *b = A(1, "new"), *c = A(2, "count");
        if (!a || !b) jx_fail(cx, IGNIS_E_ARG, "replace needs the old and new strings");
        return replace(cx, &s, a, b, c && c->t != JV_NONE ? num_i(c) : -1);
    }
    if (!strcmp(name, "items")) {
        if (v->t == JV_UNDEF) return jv_list_new(cx, 0);
        if (v->t != JV_DICT) jx_fail(cx, IGNIS_E_ARG, "items: expected a mapping, got %s", jv_type_name(v));
        jmethod m = {.self = *v, .id = M_ITEMS};
        return call_method(cx, &m, NULL, 0, NULL, NULL, 0);
    }
    if (!strcmp(name, "dictsort")) {
        if (v->t != JV_DICT) jx_fail(cx, IGNIS_E_ARG, "dictsort: expected a mapping, got %s", jv_type_name(v));
        const jv *cs = A(0, "case_sensitive"), *by = A(1, "by"), *rev = A(2, "reverse");
        jmethod m = {.self = *v, .id = M_ITEMS};
        jv pairs = call_method(cx, &m, NULL, 0, NULL, NULL, 0);
        jv idx = jv_int(by && str_eq(by, "value") ? 1 : 0);
        return sorted(cx, pairs.u.l, rev && jv_truthy(rev), cs && jv_truthy(cs), &idx);
    }
    if (!strcmp(name, "sort")) {
        const jv *rev = A(0, "reverse"), *cs = A(1, "case_sensitive"), *attr = A(2, "attribute");
        return sorted(cx, jv_iter_list(cx, v), rev && jv_truthy(rev), cs && jv_truthy(cs), attr);
    }
    if (!strcmp(name, "unique")) {
        const jv *cs = A(0, "case_sensitive"), *attr = A(1, "attribute");
        jlist *items = jv_iter_list(cx, v);
        jv out = jv_list_new(cx, items->n), seen = jv_list_new(cx, items->n);
        for (size_t i = 0; i < items->n; i++) {
            jv k = attr_path(cx, &items->v[i], attr);
            if (!(cs && jv_truthy(cs)) && k.t == JV_STR) k = map_case(cx, &k, 0);
            bool dup = false;
            for (size_t j = 0; j < seen.u.l->n && !dup; j++)
                dup = jv_equal(&seen.u.l->v[j], &k);
            if (dup) continue;
            jv_list_push(cx, &seen, k);
            jv_list_push(cx, &out, items->v[i]);
        }
        return out;
    }
    if (!strcmp(name, "min") || !strcmp(name, "max")) {
        const jv *cs = A(0, "case_sensitive"), *attr = A(1, "attribute");
        jlist *items = jv_iter_list(cx, v);
        if (!items->n) return jv_undef(name);
        size_t best = 0;
        for (size_t i = 1; i < items->n; i++) {
            jv a = attr_path(cx, &items->v[i], attr), b = attr_path(cx, &items->v[best], attr);
            int c = key_cmp(cx, &a, &b, cs && jv_truthy(cs));
            if (name[1] == 'i' ? c < 0 : c > 0) best = i;
        }
        return items->v[best];
    }
    if (!strcmp(name, "sum")) {
        const jv *attr = A(0, "attribute"), *start = A(1, "start");
        jlist *items = jv_iter_list(cx, v);
        jv acc = start ? *start : jv_int(0);
        for (size_t i = 0; i < items->n; i++) {
            jv x = attr_path(cx, &items->v[i], attr);
            if (!is_num(&x) || !is_num(&acc)) jx_fail(cx, IGNIS_E_ARG, "sum: cannot add %s", jv_type_name(&x));
            acc = (acc.t == JV_FLOAT || x.t == JV_FLOAT) ? jv_float(num_f(&acc) + num_f(&x))
                                                         : jv_int(num_i(&acc) + num_i(&x));
        }
        return acc;
    }
    if (!strcmp(name, "map")) {
        jlist *items = jv_iter_list(cx, v);
        jv out = jv_list_new(cx, items->n);
        const jv *attr = A(-1, "attribute");
        if (attr) {
            const jv *dflt = A(-1, "default");
            for (size_t i = 0; i < items->n; i++) {
                jv x = attr_path(cx, &items->v[i], attr);
                if (x.t == JV_UNDEF && dflt) x = *dflt;
                jv_list_push(cx, &out, x);
            }
            return out;
        }
        if (nargs < 1 || args[0].t != JV_STR) jx_fail(cx, IGNIS_E_ARG, "map needs a filter name or attribute=");
        char *fname = jx_strdup(cx, args[0].u.s.p, args[0].u.s.n);
        for (size_t i = 0; i < items->n; i++)
            jv_list_push(cx, &out, jx_filter(cx, fname, &items->v[i], args + 1, nargs - 1, kwn, kwv, nkw));
        return out;
    }
    if (!strcmp(name, "select") || !strcmp(name, "reject"))
        return select_items(cx, v, args, nargs, false, name[0] == 's');
    if (!strcmp(name, "selectattr") || !strcmp(name, "rejectattr"))
        return select_items(cx, v, args, nargs, true, name[0] == 's');
    if (!strcmp(name, "attr")) {
        const jv *a = A(0, "name");
        if (!a || a->t != JV_STR) jx_fail(cx, IGNIS_E_ARG, "attr needs an attribute name");
        if (v->t == JV_UNDEF) jx_fail(cx, IGNIS_E_ARG, "'%s' is undefined", v->u.s.p ? v->u.s.p : "value");
        return jx_getattr(cx, v, jx_strdup(cx, a->u.s.p, a->u.s.n));
    }
    if (!strcmp(name, "indent")) {
        const jv *w = A(0, "width"), *first = A(1, "first"), *blank = A(2, "blank");
        return indent(cx, v, w, first && jv_truthy(first), blank && jv_truthy(blank));
    }
    if (!strcmp(name, "wordcount")) {
        jv s = jv_stringify(cx, v);
        int64_t k = 0;
        bool in = false;
        for (size_t i = 0; i < s.u.s.n;) {
            uint32_t c;
            i += (size_t)ju_decode(s.u.s.p + i, s.u.s.n - i, &c);
            bool w = c == '_' || cp_is_alpha(c) || utf8proc_category((utf8proc_int32_t)c) == UTF8PROC_CATEGORY_ND;
            if (w && !in) k++;
            in = w;
        }
        return jv_int(k);
    }
    if (!strcmp(name, "format")) {
        jv s = jv_stringify(cx, v);
        jv tuple = jv_list_new(cx, (size_t)nargs);
        tuple.tuple = 1;
        for (int i = 0; i < nargs; i++)
            jv_list_push(cx, &tuple, args[i]);
        jv fmt_args = nargs == 1 && args[0].t == JV_DICT ? args[0] : tuple;
        jv fmt = jv_str(s.u.s.p, s.u.s.n);
        return jx_percent(cx, &fmt, &fmt_args);
    }
    if (!strcmp(name, "batch") || !strcmp(name, "slice") || !strcmp(name, "truncate") || !strcmp(name, "xmlattr") ||
        !strcmp(name, "urlencode") || !strcmp(name, "striptags") || !strcmp(name, "pprint") ||
        !strcmp(name, "center") || !strcmp(name, "filesizeformat") || !strcmp(name, "groupby") ||
        !strcmp(name, "random") || !strcmp(name, "urlize"))
        jx_fail(cx, IGNIS_E_UNSUPPORTED, "filter '%s' is not supported by ignis' template engine", name);
    jx_fail(cx, IGNIS_E_ARG, "no filter named '%s'", name);
#undef A
}

/* ------------------------------------------------------------------ tests */

bool jx_test(jctx *cx, const char *name, const jv *v, const jv *args, int nargs)
{
    const jv *a0 = nargs > 0 ? &args[0] : NULL;
    if (!strcmp(name, "defined")) return v->t != JV_UNDEF;
    if (!strcmp(name, "undefined")) return v->t == JV_UNDEF;
    if (!strcmp(name, "none")) return v->t == JV_NONE;
    if (!strcmp(name, "boolean")) return v->t == JV_BOOL;
    if (!strcmp(name, "true")) return v->t == JV_BOOL && v->u.b;
    if (!strcmp(name, "false")) return v->t == JV_BOOL && !v->u.b;
    if (!strcmp(name, "integer")) return v->t == JV_INT;
    if (!strcmp(name, "float")) return v->t == JV_FLOAT;
    if (!strcmp(name, "number")) return is_num(v);
    if (!strcmp(name, "string")) return v->t == JV_STR;
    if (!strcmp(name, "mapping")) return v->t == JV_DICT;
    if (!strcmp(name, "sequence")) return v->t == JV_STR || v->t == JV_LIST || v->t == JV_DICT;
    if (!strcmp(name, "iterable")) return v->t == JV_STR || v->t == JV_LIST || v->t == JV_DICT || v->t == JV_UNDEF;
    if (!strcmp(name, "callable")) return v->t == JV_FUNC || v->t == JV_METHOD || v->t == JV_MACRO;
    if (!strcmp(name, "escaped")) return false;
    if (!strcmp(name, "lower") || !strcmp(name, "upper")) {
        jv s = jv_stringify(cx, v);
        return str_all(&s, name[0] == 'l' ? M_ISLOWER : M_ISUPPER);
    }
    if (!strcmp(name, "odd") || !strcmp(name, "even") || !strcmp(name, "divisibleby")) {
        if (!is_intlike(v)) jx_fail(cx, IGNIS_E_ARG, "test '%s' needs an integer, got %s", name, jv_type_name(v));
        int64_t x = num_i(v);
        if (name[0] == 'o') return x % 2 != 0;
        if (name[0] == 'e') return x % 2 == 0;
        if (!a0 || !is_intlike(a0) || !num_i(a0)) jx_fail(cx, IGNIS_E_ARG, "divisibleby needs a non-zero integer");
        return x % num_i(a0) == 0;
    }
    if (!a0 && (strcmp(name, "eq") == 0 || !strcmp(name, "equalto") || !strcmp(name, "ne") || !strcmp(name, "in") ||
                !strcmp(name, "sameas")))
        jx_fail(cx, IGNIS_E_ARG, "test '%s' needs an argument", name);
    if (!strcmp(name, "eq") || !strcmp(name, "equalto") || !strcmp(name, "==")) return jv_equal(v, a0);
    if (!strcmp(name, "ne") || !strcmp(name, "!=")) return !jv_equal(v, a0);
    if (!strcmp(name, "sameas")) return jv_equal(v, a0) && v->t == a0->t;
    if (!strcmp(name, "in")) {
        jv tmp;
        switch ((jv_type)a0->t) {
        case JV_STR:
            if (v->t != JV_STR) jx_fail(cx, IGNIS_E_ARG, "'in <string>' requires a string");
            return !v->u.s.n || memmem(a0->u.s.p, a0->u.s.n, v->u.s.p, v->u.s.n);
        case JV_LIST:
            for (size_t i = 0; i < a0->u.l->n; i++)
                if (jv_equal(v, &a0->u.l->v[i])) return true;
            return false;
        case JV_DICT:
            return jv_dict_get(a0->u.d, *v, &tmp);
        default:
            jx_fail(cx, IGNIS_E_ARG, "test 'in': '%s' is not a container", jv_type_name(a0));
        }
    }
    static const struct {
        const char *name;
        int sign; /* compare result must satisfy */
    } cmp[] = {{"lt", -1}, {"lessthan", -1}, {"<", -1},  {"gt", 1}, {"greaterthan", 1},
               {">", 1},   {"le", -2},       {"<=", -2}, {"ge", 2}, {">=", 2}};
    for (size_t i = 0; i < sizeof cmp / sizeof cmp[0]; i++)
        if (!strcmp(name, cmp[i].name)) {
            if (!a0) jx_fail(cx, IGNIS_E_ARG, "test '%s' needs an argument", name);
            int c = jv_compare(cx, v, a0);
            switch (cmp[i].sign) {
            case -1:
                return c < 0;
            case 1:
                return c > 0;
            case -2:
                return c <= 0;
            default:
                return c >= 0;
            }
        }
    jx_fail(cx, IGNIS_E_ARG, "no test named '%s'", name);
}
