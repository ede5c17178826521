/* Jinja lexer: splits a template into text and tag tokens, applying whitespace control
 * the way Jinja2 does with trim_blocks and lstrip_blocks on (the environment that
 * transformers renders chat templates with):
 *  - newlines are normalized to \n and one trailing newline of the source is dropped;
 *  - "{%-"/"{{-"/"{#-" strip all whitespace before the tag, "-%}"/"-}}"/"-#}" all after;
 *  - lstrip_blocks: spaces before a block or comment tag alone on its line are removed
 *    (unless the tag opens with "+");
 *  - trim_blocks: one newline right after a block or comment tag is removed (unless "+%}"). */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "jinja_internal.h"

typedef struct lexer {
    jctx *cx;
    const char *s;
    size_t n, pos;
    int line;
    bool line_starting;
    jtok *toks;
    int ntok, cap;
} lexer;

static jtok *push(lexer *L, jtok_kind k)
{
    if (L->ntok == L->cap) {
        int cap = L->cap ? L->cap * 2 : 256;
        jtok *t = jx_alloc(L->cx, (size_t)cap * sizeof *t);
        if (L->ntok) memcpy(t, L->toks, (size_t)L->ntok * sizeof *t);
        L->toks = t;
        L->cap = cap;
    }
    jtok *t = &L->toks[L->ntok++];
    memset(t, 0, sizeof *t);
    t->kind = k;
    t->line = L->line;
    return t;
}

static int count_nl(const char *p, size_t n)
{
    int k = 0;
    for (size_t i = 0; i < n; i++)
        k += p[i] == '\n';
    return k;
}

/* Length of p[0..n) without its trailing Python whitespace (str.rstrip()). */
static size_t rstrip_len(const char *p, size_t n)
{
    size_t keep = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        int k = ju_decode(p + i, n - i, &cp);
        i += (size_t)k;
        if (!ju_is_space(cp)) keep = i;
    }
    return keep;
}

static bool all_space(const char *p, size_t n)
{
    if (!n) return false; /* Jinja's \s+ needs at least one character */
    return rstrip_len(p, n) == 0;
}

static size_t skip_space(const char *p, size_t n, size_t i)
{
    while (i < n) {
        uint32_t cp;
        int k = ju_decode(p + i, n - i, &cp);
        if (!ju_is_space(cp)) break;
        i += (size_t)k;
    }
    return i;
}

/* Emits the text before a tag after applying the tag's left whitespace control. */
static void emit_data(lexer *L, const char *text, size_t len, char sign, bool lstrip_ok)
{
    int lines = count_nl(text, len);
    if (sign == '-') {
        len = rstrip_len(text, len);
    } else if (sign != '+' && lstrip_ok) {
        size_t l_pos = 0;
        for (size_t i = len; i > 0; i--)
            if (text[i - 1] == '\n') {
                l_pos = i;
                break;
            }
        if ((l_pos > 0 || L->line_starting) && all_space(text + l_pos, len - l_pos)) len = l_pos;
    }
    if (len) {
        jtok *t = push(L, JT_DATA);
        t->s = jx_strdup(L->cx, text, len);
        t->n = len;
    }
    L->line += lines;
}

/* After a closing tag at L->pos (already past it): '-' eats all whitespace, a plain block
 * or comment end eats one newline (trim_blocks). Updates line_starting like Jinja. */
static void after_end(lexer *L, char sign, bool trim)
{
    size_t start = L->pos;
    if (sign == '-')
        L->pos = skip_space(L->s, L->n, L->pos);
    else if (sign != '+' && trim && L->pos < L->n && L->s[L->pos] == '\n')
        L->pos++;
    L->line += count_nl(L->s + start, L->pos - start);
    L->line_starting = L->pos > start ? L->s[L->pos - 1] == '\n' : false;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    c = tolower(c);
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* Python unicode-escape decoding of a string literal's body. */
static char *decode_string(lexer *L, const char *p, size_t n, size_t *out_n)
{
    char *o = jx_alloc(L->cx, n + 1), *w = o;
    for (size_t i = 0; i < n; i++) {
        if (p[i] != '\\' || i + 1 >= n) {
            *w++ = p[i];
            continue;
        }
        char c = p[++i];
        switch (c) {
        case '\n':
            break;
        case '\\':
            *w++ = '\\';
            break;
        case '\'':
            *w++ = '\'';
            break;
        case '"':
            *w++ = '"';
            break;
        case 'a':
            *w++ = '\a';
            break;
        case 'b':
            *w++ = '\b';
            break;
        case 'f':
            *w++ = '\f';
            break;
        case 'n':
            *w++ = '\n';
            break;
        case 'r':
            *w++ = '\r';
            break;
        case 't':
            *w++ = '\t';
            break;
        case 'v':
            *w++ = '\v';
            break;
        case 'x':
        case 'u':
        case 'U': {
            int digits = c == 'x' ? 2 : c == 'u' ? 4 : 8;
            uint32_t cp = 0;
            for (int k = 0; k < digits; k++) {
                int h = i + 1 + (size_t)k < n ? hexval((unsigned char)p[i + 1 + (size_t)k]) : -1;
                if (h < 0) {
                    L->cx->line = L->line;
                    jx_fail(L->cx, IGNIS_E_FORMAT, "truncated \\%cXX escape in a string literal", c);
                }
                cp = cp * 16 + (uint32_t)h;
            }
            if (cp > 0x10FFFF) {
                L->cx->line = L->line;
                jx_fail(L->cx, IGNIS_E_FORMAT, "illegal Unicode character \\U%08x in a string literal", cp);
            }
            i += (size_t)digits;
            w += ju_encode(cp, w);
            break;
        }
        default:
            if (c >= '0' && c <= '7') {
                uint32_t cp = (uint32_t)(c - '0');
                for (int k = 0; k < 2 && i + 1 < n && p[i + 1] >= '0' && p[i + 1] <= '7'; k++)
                    cp = cp * 8 + (uint32_t)(p[++i] - '0');
                w += ju_encode(cp, w);
            } else {
                *w++ = '\\';
                *w++ = c;
            }
        }
    }
    *w = 0;
    *out_n = (size_t)(w - o);
    return o;
}

static const struct {
    const char *s;
    jop op;
} k_ops[] = {
    {"//", JO_FLOORDIV}, {"**", JO_POW},   {"==", JO_EQ},    {"!=", JO_NE},    {"<=", JO_LE},
    {">=", JO_GE},       {"+", JO_ADD},    {"-", JO_SUB},    {"*", JO_MUL},    {"/", JO_DIV},
    {"%", JO_MOD},       {"~", JO_TILDE},  {"(", JO_LPAREN}, {")", JO_RPAREN}, {"[", JO_LBRACKET},
    {"]", JO_RBRACKET},  {"{", JO_LBRACE}, {"}", JO_RBRACE}, {",", JO_COMMA},  {".", JO_DOT},
    {":", JO_COLON},     {"|", JO_PIPE},   {"=", JO_ASSIGN}, {"<", JO_LT},     {">", JO_GT},
};

static IG_NORETURN void lex_fail(lexer *L, const char *fmt, const char *arg)
{
    L->cx->line = L->line;
    jx_fail(L->cx, IGNIS_E_FORMAT, fmt, arg);
}

/* Digits with optional '_' separators; returns the end. */
static size_t digits_end(const char *s, size_t n, size_t i)
{
    size_t j = i;
    while (j < n &&
           (isdigit((unsigned char)s[j]) || (s[j] == '_' && j > i && j + 1 < n && isdigit((unsigned char)s[j + 1]))))
        j++;
    return j;
}

static void lex_number(lexer *L)
{
    const char *s = L->s;
    size_t n = L->n, i = L->pos;
    char buf[128];
    size_t bn = 0;
    if (s[i] == '0' && i + 1 < n && strchr("xXoObB", s[i + 1])) {
        int base = tolower((unsigned char)s[i + 1]) == 'x' ? 16 : tolower((unsigned char)s[i + 1]) == 'o' ? 8 : 2;
        size_t j = i + 2;
        while (j < n && (isalnum((unsigned char)s[j]) || s[j] == '_')) {
            if (s[j] != '_' && bn < sizeof buf - 1) buf[bn++] = s[j];
            j++;
        }
        buf[bn] = 0;
        char *end;
        long long v = strtoll(buf, &end, base);
        if (!bn || *end) lex_fail(L, "invalid integer literal%s", "");
        jtok *t = push(L, JT_INT);
        t->i = v;
        L->pos = j;
        return;
    }
    size_t j = digits_end(s, n, i);
    bool is_float = false;
    if (j + 1 < n && s[j] == '.' && isdigit((unsigned char)s[j + 1])) {
        j = digits_end(s, n, j + 1);
        is_float = true;
    }
    if (j < n && (s[j] == 'e' || s[j] == 'E')) {
        size_t k = j + 1;
        if (k < n && (s[k] == '+' || s[k] == '-')) k++;
        if (k < n && isdigit((unsigned char)s[k])) {
            j = digits_end(s, n, k);
            is_float = true;
        }
    }
    for (size_t k = i; k < j && bn < sizeof buf - 1; k++)
        if (s[k] != '_') buf[bn++] = s[k];
    buf[bn] = 0;
    if (is_float) {
        jtok *t = push(L, JT_FLOAT);
        t->f = strtod(buf, NULL);
    } else {
        char *end;
        long long v = strtoll(buf, &end, 10);
        jtok *t = push(L, JT_INT);
        t->i = v;
    }
    L->pos = j;
}

/* Lexes the inside of a {{ }} or {% %} tag up to and including its end. */
static void lex_tag(lexer *L, bool block)
{
    const char *s = L->s;
    size_t n = L->n;
    char stack[256];
    int depth = 0;
    for (;;) {
        size_t ws = L->pos;
        while (L->pos < n && ju_is_space((unsigned char)s[L->pos]) && (unsigned char)s[L->pos] < 0x80)
            L->pos++;
        L->line += count_nl(s + ws, L->pos - ws);
        if (L->pos >= n) lex_fail(L, "unexpected end of template: the tag is not closed by '%s'", block ? "%}" : "}}");
        size_t i = L->pos;
        if (depth == 0) {
            char sign = 0;
            size_t j = i;
            if (s[j] == '-' || (block && s[j] == '+')) sign = s[j++];
            if (j + 1 < n && s[j] == (block ? '%' : '}') && s[j + 1] == '}') {
                push(L, block ? JT_BLOCK_END : JT_VAR_END);
                L->pos = j + 2;
                after_end(L, sign, block);
                return;
            }
        }
        char c = s[i];
        if (isdigit((unsigned char)c)) {
            lex_number(L);
            continue;
        }
        if (isalpha((unsigned char)c) || c == '_') {
            size_t j = i;
            while (j < n && (isalnum((unsigned char)s[j]) || s[j] == '_'))
                j++;
            jtok *t = push(L, JT_NAME);
            t->s = jx_strdup(L->cx, s + i, j - i);
            t->n = j - i;
            L->pos = j;
            continue;
        }
        if (c == '\'' || c == '"') {
            size_t j = i + 1;
            while (j < n && s[j] != c)
                j += s[j] == '\\' ? 2 : 1;
            if (j >= n) lex_fail(L, "unterminated string literal%s", "");
            jtok *t = push(L, JT_STRING);
            t->s = decode_string(L, s + i + 1, j - i - 1, &t->n);
            L->line += count_nl(s + i, j - i);
            L->pos = j + 1;
            continue;
        }
        jop op = JO_NONE;
        size_t oplen = 0;
        for (size_t k = 0; k < sizeof k_ops / sizeof k_ops[0]; k++) {
            size_t m = strlen(k_ops[k].s);
            if (i + m <= n && !memcmp(s + i, k_ops[k].s, m)) {
                op = k_ops[k].op;
                oplen = m;
                break;
            }
        }
        if (op == JO_NONE) {
            char what[8] = {c, 0};
            lex_fail(L, "unexpected character '%s' in a tag", what);
        }
        if (op == JO_LPAREN || op == JO_LBRACKET || op == JO_LBRACE) {
            if (depth == (int)sizeof stack) lex_fail(L, "brackets nested too deeply%s", "");
            stack[depth++] = op == JO_LPAREN ? ')' : op == JO_LBRACKET ? ']' : '}';
        } else if (op == JO_RPAREN || op == JO_RBRACKET || op == JO_RBRACE) {
            char want = op == JO_RPAREN ? ')' : op == JO_RBRACKET ? ']' : '}';
            if (depth == 0) {
                char what[2] = {want, 0};
                lex_fail(L, "unexpected '%s'", what);
            }
            if (stack[depth - 1] != want) {
                char what[2] = {want, 0};
                lex_fail(L, "unexpected '%s' (brackets do not match)", what);
            }
            depth--;
        }
        jtok *t = push(L, JT_OP);
        t->op = op;
        L->pos = i + oplen;
    }
}

/* Matches "{%[-+]? raw [-]?%}" at i; returns its end or 0. */
static size_t match_raw_begin(const char *s, size_t n, size_t i, char *sign, char *endsign)
{
    size_t j = i + 2;
    *sign = 0;
    if (j < n && (s[j] == '-' || s[j] == '+')) *sign = s[j++];
    while (j < n && isspace((unsigned char)s[j]))
        j++;
    if (j + 3 > n || memcmp(s + j, "raw", 3)) return 0;
    j += 3;
    while (j < n && isspace((unsigned char)s[j]))
        j++;
    *endsign = 0;
    if (j < n && s[j] == '-') *endsign = s[j++];
    if (j + 2 > n || s[j] != '%' || s[j + 1] != '}') return 0;
    return j + 2;
}

static void lex_raw(lexer *L, char endsign)
{
    const char *s = L->s;
    size_t n = L->n;
    L->line_starting = false;
    if (endsign == '-') {
        size_t st = L->pos;
        L->pos = skip_space(s, n, L->pos);
        L->line += count_nl(s + st, L->pos - st);
        L->line_starting = L->pos > st && s[L->pos - 1] == '\n';
    }
    for (size_t i = L->pos; i + 1 < n; i++) {
        if (s[i] != '{' || s[i + 1] != '%') continue;
        size_t j = i + 2;
        char sign = 0;
        if (j < n && (s[j] == '-' || s[j] == '+')) sign = s[j++];
        while (j < n && isspace((unsigned char)s[j]))
            j++;
        if (j + 6 > n || memcmp(s + j, "endraw", 6)) continue;
        j += 6;
        while (j < n && isspace((unsigned char)s[j]))
            j++;
        char esign = 0;
        if (j < n && (s[j] == '-' || s[j] == '+')) esign = s[j++];
        if (j + 2 > n || s[j] != '%' || s[j + 1] != '}') continue;
        emit_data(L, s + L->pos, i - L->pos, sign, true);
        L->line += count_nl(s + i, j + 2 - i);
        L->pos = j + 2;
        after_end(L, esign, true);
        return;
    }
    lex_fail(L, "missing {%% endraw %%} for a raw block%s", "");
}

jtok *jx_lex(jctx *cx, const char *src, size_t len, int *ntok)
{
    /* Newlines normalized to \n; one trailing newline dropped (keep_trailing_newline off). */
    char *s = jx_alloc(cx, len + 1);
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (src[i] == '\r') {
            s[n++] = '\n';
            if (i + 1 < len && src[i + 1] == '\n') i++;
        } else
            s[n++] = src[i];
    }
    if (n && s[n - 1] == '\n') n--;
    s[n] = 0;

    lexer L = {.cx = cx, .s = s, .n = n, .line = 1, .line_starting = true};
    while (L.pos < n) {
        size_t i = L.pos;
        while (i + 1 < n && !(s[i] == '{' && (s[i + 1] == '{' || s[i + 1] == '%' || s[i + 1] == '#')))
            i++;
        if (i + 1 >= n) {
            emit_data(&L, s + L.pos, n - L.pos, 0, false);
            break;
        }
        char kind = s[i + 1];
        char sign = 0, endsign = 0;
        if (kind == '%') {
            size_t rend = match_raw_begin(s, n, i, &sign, &endsign);
            if (rend) {
                emit_data(&L, s + L.pos, i - L.pos, sign, true);
                L.pos = rend;
                lex_raw(&L, endsign);
                continue;
            }
        }
        size_t j = i + 2;
        if (j < n && (s[j] == '-' || s[j] == '+')) sign = s[j++];
        emit_data(&L, s + L.pos, i - L.pos, sign, kind != '{');
        L.pos = j;
        L.line_starting = false;
        if (kind == '#') {
            size_t k = j;
            while (k + 1 < n && !(s[k] == '#' && s[k + 1] == '}'))
                k++;
            if (k + 1 >= n) lex_fail(&L, "missing end of comment tag ('#}')%s", "");
            char csign = k > j && (s[k - 1] == '-' || s[k - 1] == '+') ? s[k - 1] : 0;
            L.line += count_nl(s + j, k - j);
            L.pos = k + 2;
            after_end(&L, csign, true);
            continue;
        }
        push(&L, kind == '%' ? JT_BLOCK_BEGIN : JT_VAR_BEGIN);
        lex_tag(&L, kind == '%');
    }
    push(&L, JT_EOF);
    *ntok = L.ntok;
    return L.toks;
}
