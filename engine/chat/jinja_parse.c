/* Jinja parser: tokens to an AST, with Jinja2's grammar and operator precedence
 * (condexpr < or < and < not < compare < +,- < ~ < *,/,//,% < ** < unary < postfix,
 * where filters, tests and calls bind to the postfix expression they follow). */
#include <stdio.h>
#include <string.h>

#include "jinja_internal.h"

typedef struct parser {
    jctx *cx;
    const jtok *t;
    int n, pos;
    int depth;
} parser;

#define MAX_DEPTH 200

static const jtok *cur(parser *p) { return &p->t[p->pos]; }
static const jtok *peek(parser *p, int k) { return &p->t[p->pos + k < p->n ? p->pos + k : p->n - 1]; }
static void adv(parser *p)
{
    if (p->t[p->pos].kind != JT_EOF) p->pos++;
}
static bool is_op(parser *p, jop op) { return cur(p)->kind == JT_OP && cur(p)->op == op; }
static bool tok_is_name(const jtok *t, const char *name) { return t->kind == JT_NAME && !strcmp(t->s, name); }
static bool is_name(parser *p, const char *name) { return tok_is_name(cur(p), name); }

static const char *tok_desc(const jtok *t, char *buf, size_t cap)
{
    static const char *ops[] = {"",  "+", "-", "*", "/", "//", "%", "**", "~",  "(", ")",  "[", "]",
                                "{", "}", ",", ".", ":", "|",  "=", "==", "!=", "<", "<=", ">", ">="};
    switch (t->kind) {
    case JT_EOF:
        return "end of template";
    case JT_DATA:
        return "template text";
    case JT_VAR_BEGIN:
        return "'{{'";
    case JT_VAR_END:
        return "'}}'";
    case JT_BLOCK_BEGIN:
        return "'{%'";
    case JT_BLOCK_END:
        return "'%}'";
    case JT_NAME:
        snprintf(buf, cap, "'%s'", t->s);
        return buf;
    case JT_STRING:
        return "a string";
    case JT_INT:
    case JT_FLOAT:
        return "a number";
    case JT_OP:
        snprintf(buf, cap, "'%s'", ops[t->op]);
        return buf;
    }
    return "token";
}

static IG_NORETURN void fail_at(parser *p, const char *fmt, const char *a, const char *b)
{
    p->cx->line = cur(p)->line;
    jx_fail(p->cx, IGNIS_E_FORMAT, fmt, a, b);
}

static IG_NORETURN void unexpected(parser *p, const char *expected)
{
    char buf[64];
    fail_at(p, "expected %s, got %s", expected, tok_desc(cur(p), buf, sizeof buf));
}

static void expect_op(parser *p, jop op, const char *what)
{
    if (!is_op(p, op)) unexpected(p, what);
    adv(p);
}

static void expect_kind(parser *p, jtok_kind k, const char *what)
{
    if (cur(p)->kind != k) unexpected(p, what);
    adv(p);
}

static const char *expect_name(parser *p)
{
    if (cur(p)->kind != JT_NAME) unexpected(p, "a name");
    const char *s = cur(p)->s;
    adv(p);
    return s;
}

static jnode *node(parser *p, jnode_kind k)
{
    jnode *n = jx_alloc(p->cx, sizeof *n);
    memset(n, 0, sizeof *n);
    n->kind = k;
    n->line = cur(p)->line;
    return n;
}

typedef struct nvec {
    jnode **v;
    int n, cap;
} nvec;

static void nv_push(parser *p, nvec *v, jnode *x)
{
    if (v->n == v->cap) {
        int cap = v->cap ? v->cap * 2 : 4;
        jnode **nv = jx_alloc(p->cx, (size_t)cap * sizeof *nv);
        if (v->n) memcpy(nv, v->v, (size_t)v->n * sizeof *nv);
        v->v = nv;
        v->cap = cap;
    }
    v->v[v->n++] = x;
}

static jnodes nv_done(nvec *v) { return (jnodes){.v = v->v, .n = v->n}; }

static jnode *const_node(parser *p, jv val)
{
    jnode *n = node(p, JN_CONST);
    n->value = jx_alloc(p->cx, sizeof(jv));
    *n->value = val;
    return n;
}

static void enter(parser *p)
{
    if (++p->depth > MAX_DEPTH) fail_at(p, "expression or block nesting deeper than %s levels%s", "200", "");
}

static jnode *parse_expression(parser *p, bool with_condexpr);
static jnode *parse_unary(parser *p, bool with_filter);
static jnode *parse_primary(parser *p);
static jnode *parse_postfix(parser *p, jnode *n);
static jnode *parse_filter_expr(parser *p, jnode *n);
static jnodes subparse(parser *p, const char *const *ends);

static bool in_list(const char *s, const char *const *list)
{
    for (; list && *list; list++)
        if (!strcmp(s, *list)) return true;
    return false;
}

static bool is_tuple_end(parser *p, const char *const *extra)
{
    const jtok *t = cur(p);
    if (t->kind == JT_VAR_END || t->kind == JT_BLOCK_END || t->kind == JT_EOF) return true;
    if (t->kind == JT_OP && t->op == JO_RPAREN) return true;
    return t->kind == JT_NAME && in_list(t->s, extra);
}

static jnode *parse_tuple(parser *p, bool simplified, bool with_condexpr, const char *const *extra, bool explicit)
{
    nvec args = {0};
    bool is_tuple = false;
    int line = cur(p)->line;
    for (;;) {
        if (args.n) expect_op(p, JO_COMMA, "','");
        if (is_tuple_end(p, extra)) break;
        jnode *e = simplified ? parse_primary(p) : parse_expression(p, with_condexpr);
        nv_push(p, &args, e);
        if (is_op(p, JO_COMMA))
            is_tuple = true;
        else
            break;
    }
    if (!is_tuple) {
        if (args.n) return args.v[0];
        if (!explicit) unexpected(p, "an expression");
    }
    jnode *t = node(p, JN_TUPLE);
    t->line = line;
    t->list = nv_done(&args);
    return t;
}

/* Arguments of a call, filter or test: "(" [expr {"," expr}] [name "=" expr ...] ")". */
static void parse_call_args(parser *p, jnode *n)
{
    expect_op(p, JO_LPAREN, "'('");
    nvec args = {0}, kw = {0};
    const char **names = NULL;
    int ncap = 0;
    while (!is_op(p, JO_RPAREN)) {
        if (args.n || kw.n) {
            expect_op(p, JO_COMMA, "',' or ')'");
            if (is_op(p, JO_RPAREN)) break;
        }
        if (is_op(p, JO_MUL) || is_op(p, JO_POW))
            fail_at(p, "*args and **kwargs in calls are not supported%s%s", "", "");
        if (cur(p)->kind == JT_NAME && peek(p, 1)->kind == JT_OP && peek(p, 1)->op == JO_ASSIGN) {
            const char *name = cur(p)->s;
            adv(p);
            adv(p);
            if (kw.n == ncap) {
                int cap = ncap ? ncap * 2 : 4;
                const char **nn = jx_alloc(p->cx, (size_t)cap * sizeof *nn);
                if (kw.n) memcpy(nn, names, (size_t)kw.n * sizeof *nn);
                names = nn;
                ncap = cap;
            }
            names[kw.n] = name;
            nv_push(p, &kw, parse_expression(p, true));
        } else {
            if (kw.n) fail_at(p, "positional argument after keyword arguments%s%s", "", "");
            nv_push(p, &args, parse_expression(p, true));
        }
    }
    expect_op(p, JO_RPAREN, "')'");
    n->list = nv_done(&args);
    n->list2 = nv_done(&kw);
    n->kwnames = names;
}

static const char *dotted_name(parser *p)
{
    const char *name = expect_name(p);
    while (is_op(p, JO_DOT)) {
        adv(p);
        const char *more = expect_name(p);
        size_t a = strlen(name), b = strlen(more);
        char *s = jx_alloc(p->cx, a + b + 2);
        memcpy(s, name, a);
        s[a] = '.';
        memcpy(s + a + 1, more, b + 1);
        name = s;
    }
    return name;
}

static jnode *parse_filter(parser *p, jnode *operand, bool start_inline)
{
    while (is_op(p, JO_PIPE) || start_inline) {
        if (!start_inline) adv(p);
        start_inline = false;
        jnode *f = node(p, JN_FILTER);
        f->a = operand;
        f->name = dotted_name(p);
        if (is_op(p, JO_LPAREN)) parse_call_args(p, f);
        operand = f;
    }
    return operand;
}

static jnode *parse_test(parser *p, jnode *operand)
{
    adv(p); /* is */
    jnode *t = node(p, JN_TEST);
    t->a = operand;
    if (is_name(p, "not")) {
        adv(p);
        t->op = 1;
    }
    t->name = dotted_name(p);
    const jtok *c = cur(p);
    if (is_op(p, JO_LPAREN)) {
        parse_call_args(p, t);
    } else if ((c->kind == JT_NAME || c->kind == JT_STRING || c->kind == JT_INT || c->kind == JT_FLOAT ||
                (c->kind == JT_OP && (c->op == JO_LBRACKET || c->op == JO_LBRACE))) &&
               !tok_is_name(c, "else") && !tok_is_name(c, "or") && !tok_is_name(c, "and")) {
        if (tok_is_name(c, "is")) fail_at(p, "cannot chain multiple tests with 'is'%s%s", "", "");
        nvec args = {0};
        jnode *arg = parse_postfix(p, parse_primary(p));
        nv_push(p, &args, arg);
        t->list = nv_done(&args);
    }
    return t;
}

static jnode *parse_filter_expr(parser *p, jnode *n)
{
    for (;;) {
        if (is_op(p, JO_PIPE))
            n = parse_filter(p, n, false);
        else if (is_name(p, "is"))
            n = parse_test(p, n);
        else if (is_op(p, JO_LPAREN)) {
            jnode *c = node(p, JN_CALL);
            c->a = n;
            parse_call_args(p, c);
            n = c;
        } else
            return n;
    }
}

/* One subscript inside [...]: an expression or a slice start:stop:step. */
static jnode *parse_subscribed(parser *p)
{
    jnode *parts[3] = {NULL, NULL, NULL};
    if (is_op(p, JO_COLON)) {
        adv(p);
    } else {
        jnode *e = parse_expression(p, true);
        if (!is_op(p, JO_COLON)) return e;
        adv(p);
        parts[0] = e;
    }
    jnode *s = node(p, JN_SLICE);
    if (!is_op(p, JO_COLON) && !is_op(p, JO_RBRACKET) && !is_op(p, JO_COMMA)) parts[1] = parse_expression(p, true);
    if (is_op(p, JO_COLON)) {
        adv(p);
        if (!is_op(p, JO_RBRACKET) && !is_op(p, JO_COMMA)) parts[2] = parse_expression(p, true);
    }
    s->a = parts[0];
    s->b = parts[1];
    s->c = parts[2];
    return s;
}

static jnode *parse_postfix(parser *p, jnode *n)
{
    for (;;) {
        if (is_op(p, JO_DOT)) {
            adv(p);
            const jtok *t = cur(p);
            if (t->kind == JT_NAME) {
                jnode *g = node(p, JN_GETATTR);
                g->a = n;
                g->name = t->s;
                adv(p);
                n = g;
            } else if (t->kind == JT_INT) {
                jnode *g = node(p, JN_GETITEM);
                g->a = n;
                g->b = const_node(p, jv_int(t->i));
                adv(p);
                n = g;
            } else
                unexpected(p, "a name or number after '.'");
        } else if (is_op(p, JO_LBRACKET)) {
            adv(p);
            nvec args = {0};
            while (!is_op(p, JO_RBRACKET)) {
                if (args.n) expect_op(p, JO_COMMA, "',' or ']'");
                nv_push(p, &args, parse_subscribed(p));
            }
            expect_op(p, JO_RBRACKET, "']'");
            if (!args.n) unexpected(p, "a subscript");
            jnode *g = node(p, JN_GETITEM);
            g->a = n;
            if (args.n == 1)
                g->b = args.v[0];
            else {
                g->b = node(p, JN_TUPLE);
                g->b->list = nv_done(&args);
            }
            n = g;
        } else if (is_op(p, JO_LPAREN)) {
            jnode *c = node(p, JN_CALL);
            c->a = n;
            parse_call_args(p, c);
            n = c;
        } else
            return n;
    }
}

static jnode *parse_primary(parser *p)
{
    enter(p);
    const jtok *t = cur(p);
    jnode *n = NULL;
    switch (t->kind) {
    case JT_NAME:
        if (!strcmp(t->s, "true") || !strcmp(t->s, "True"))
            n = const_node(p, jv_bool(true));
        else if (!strcmp(t->s, "false") || !strcmp(t->s, "False"))
            n = const_node(p, jv_bool(false));
        else if (!strcmp(t->s, "none") || !strcmp(t->s, "None"))
            n = const_node(p, jv_none());
        else {
            n = node(p, JN_NAME);
            n->name = t->s;
        }
        adv(p);
        break;
    case JT_STRING: {
        /* adjacent literals concatenate, as in Python */
        size_t total = 0;
        int k = 0;
        while (peek(p, k)->kind == JT_STRING)
            total += peek(p, k++)->n;
        char *s = jx_alloc(p->cx, total + 1);
        size_t off = 0;
        for (int i = 0; i < k; i++) {
            memcpy(s + off, cur(p)->s, cur(p)->n);
            off += cur(p)->n;
            adv(p);
        }
        s[off] = 0;
        n = const_node(p, jv_str(s, off));
        break;
    }
    case JT_INT:
        n = const_node(p, jv_int(t->i));
        adv(p);
        break;
    case JT_FLOAT:
        n = const_node(p, jv_float(t->f));
        adv(p);
        break;
    case JT_OP:
        if (t->op == JO_LPAREN) {
            adv(p);
            n = parse_tuple(p, false, true, NULL, true);
            expect_op(p, JO_RPAREN, "')'");
        } else if (t->op == JO_LBRACKET) {
            adv(p);
            nvec items = {0};
            while (!is_op(p, JO_RBRACKET)) {
                if (items.n) expect_op(p, JO_COMMA, "',' or ']'");
                if (is_op(p, JO_RBRACKET)) break;
                nv_push(p, &items, parse_expression(p, true));
            }
            expect_op(p, JO_RBRACKET, "']'");
            n = node(p, JN_LIST);
            n->list = nv_done(&items);
        } else if (t->op == JO_LBRACE) {
            adv(p);
            nvec keys = {0}, vals = {0};
            while (!is_op(p, JO_RBRACE)) {
                if (keys.n) expect_op(p, JO_COMMA, "',' or '}'");
                if (is_op(p, JO_RBRACE)) break;
                nv_push(p, &keys, parse_expression(p, true));
                expect_op(p, JO_COLON, "':'");
                nv_push(p, &vals, parse_expression(p, true));
            }
            expect_op(p, JO_RBRACE, "'}'");
            n = node(p, JN_DICT);
            n->list = nv_done(&keys);
            n->list2 = nv_done(&vals);
        } else
            unexpected(p, "an expression");
        break;
    default:
        unexpected(p, "an expression");
    }
    p->depth--;
    return n;
}

static jnode *parse_unary(parser *p, bool with_filter)
{
    enter(p);
    jnode *n;
    if (is_op(p, JO_SUB) || is_op(p, JO_ADD)) {
        n = node(p, is_op(p, JO_SUB) ? JN_NEG : JN_POS);
        adv(p);
        n->a = parse_unary(p, false);
    } else
        n = parse_primary(p);
    n = parse_postfix(p, n);
    if (with_filter) n = parse_filter_expr(p, n);
    p->depth--;
    return n;
}

static jnode *binop(parser *p, jop op, jnode *a, jnode *b, int line)
{
    jnode *n = node(p, JN_BINOP);
    n->op = op;
    n->a = a;
    n->b = b;
    n->line = line;
    return n;
}

static jnode *parse_pow(parser *p)
{
    jnode *l = parse_unary(p, true);
    while (is_op(p, JO_POW)) {
        int line = cur(p)->line;
        adv(p);
        l = binop(p, JO_POW, l, parse_unary(p, true), line);
    }
    return l;
}

static jnode *parse_math2(parser *p)
{
    jnode *l = parse_pow(p);
    while (is_op(p, JO_MUL) || is_op(p, JO_DIV) || is_op(p, JO_FLOORDIV) || is_op(p, JO_MOD)) {
        jop op = cur(p)->op;
        int line = cur(p)->line;
        adv(p);
        l = binop(p, op, l, parse_pow(p), line);
    }
    return l;
}

static jnode *parse_concat(parser *p)
{
    jnode *first = parse_math2(p);
    if (!is_op(p, JO_TILDE)) return first;
    nvec parts = {0};
    nv_push(p, &parts, first);
    while (is_op(p, JO_TILDE)) {
        adv(p);
        nv_push(p, &parts, parse_math2(p));
    }
    jnode *n = node(p, JN_CONCAT);
    n->list = nv_done(&parts);
    return n;
}

static jnode *parse_math1(parser *p)
{
    jnode *l = parse_concat(p);
    while (is_op(p, JO_ADD) || is_op(p, JO_SUB)) {
        jop op = cur(p)->op;
        int line = cur(p)->line;
        adv(p);
        l = binop(p, op, l, parse_concat(p), line);
    }
    return l;
}

static jnode *parse_compare(parser *p)
{
    jnode *first = parse_math1(p);
    nvec rhs = {0};
    int *ops = NULL, nops = 0, cap = 0;
    for (;;) {
        int op = 0;
        if (cur(p)->kind == JT_OP) {
            switch (cur(p)->op) {
            case JO_EQ:
                op = CMP_EQ;
                break;
            case JO_NE:
                op = CMP_NE;
                break;
            case JO_LT:
                op = CMP_LT;
                break;
            case JO_LE:
                op = CMP_LE;
                break;
            case JO_GT:
                op = CMP_GT;
                break;
            case JO_GE:
                op = CMP_GE;
                break;
            default:
                break;
            }
            if (op) adv(p);
        } else if (is_name(p, "in")) {
            op = CMP_IN;
            adv(p);
        } else if (is_name(p, "not") && tok_is_name(peek(p, 1), "in")) {
            op = CMP_NOTIN;
            adv(p);
            adv(p);
        }
        if (!op) break;
        if (nops == cap) {
            cap = cap ? cap * 2 : 4;
            int *no = jx_alloc(p->cx, (size_t)cap * sizeof *no);
            if (nops) memcpy(no, ops, (size_t)nops * sizeof *no);
            ops = no;
        }
        ops[nops++] = op;
        nv_push(p, &rhs, parse_math1(p));
    }
    if (!nops) return first;
    jnode *n = node(p, JN_COMPARE);
    n->a = first;
    n->list = nv_done(&rhs);
    n->ops = ops;
    return n;
}

static jnode *parse_not(parser *p)
{
    if (is_name(p, "not")) {
        enter(p);
        jnode *n = node(p, JN_NOT);
        adv(p);
        n->a = parse_not(p);
        p->depth--;
        return n;
    }
    return parse_compare(p);
}

static jnode *parse_and(parser *p)
{
    jnode *l = parse_not(p);
    while (is_name(p, "and")) {
        jnode *n = node(p, JN_AND);
        adv(p);
        n->a = l;
        n->b = parse_not(p);
        l = n;
    }
    return l;
}

static jnode *parse_or(parser *p)
{
    jnode *l = parse_and(p);
    while (is_name(p, "or")) {
        jnode *n = node(p, JN_OR);
        adv(p);
        n->a = l;
        n->b = parse_and(p);
        l = n;
    }
    return l;
}

static jnode *parse_condexpr(parser *p)
{
    jnode *e = parse_or(p);
    while (is_name(p, "if")) {
        jnode *n = node(p, JN_CONDEXPR);
        adv(p);
        n->a = e;
        n->b = parse_or(p);
        if (is_name(p, "else")) {
            adv(p);
            n->c = parse_condexpr(p);
        }
        e = n;
    }
    return e;
}

static jnode *parse_expression(parser *p, bool with_condexpr)
{
    enter(p);
    jnode *n = with_condexpr ? parse_condexpr(p) : parse_or(p);
    p->depth--;
    return n;
}

/* ------------------------------------------------------------------ statements */

static jnode *parse_assign_target(parser *p, const char *const *extra, bool with_namespace)
{
    if (with_namespace && cur(p)->kind == JT_NAME && peek(p, 1)->kind == JT_OP && peek(p, 1)->op == JO_DOT) {
        jnode *obj = node(p, JN_NAME);
        obj->name = cur(p)->s;
        adv(p);
        adv(p);
        jnode *g = node(p, JN_GETATTR);
        g->a = obj;
        g->name = expect_name(p);
        return g;
    }
    jnode *t = parse_tuple(p, true, true, extra, false);
    bool ok = t->kind == JN_NAME;
    if (t->kind == JN_TUPLE) {
        ok = t->list.n > 0;
        for (int i = 0; i < t->list.n; i++)
            ok = ok && t->list.v[i]->kind == JN_NAME;
    }
    if (!ok) {
        p->cx->line = t->line;
        jx_fail(p->cx, IGNIS_E_FORMAT, "can only assign to names, tuples of names or namespace attributes");
    }
    if (t->kind == JN_NAME && (!strcmp(t->name, "true") || !strcmp(t->name, "false") || !strcmp(t->name, "none")))
        fail_at(p, "cannot assign to '%s'%s", t->name, "");
    return t;
}

static void end_tag(parser *p) { expect_kind(p, JT_BLOCK_END, "'%}'"); }

/* At "{% name": consumes the closing tag name and its "%}". */
static void close_tag(parser *p, const char *name)
{
    if (!is_name(p, name)) unexpected(p, name);
    adv(p);
    end_tag(p);
}

static jnode *parse_for(parser *p)
{
    jnode *n = node(p, JN_FOR);
    adv(p);
    static const char *const in_end[] = {"in", NULL};
    n->a = parse_assign_target(p, in_end, false);
    if (!is_name(p, "in")) unexpected(p, "'in'");
    adv(p);
    static const char *const rec_end[] = {"recursive", NULL};
    n->b = parse_tuple(p, false, false, rec_end, false);
    if (is_name(p, "if")) {
        adv(p);
        n->c = parse_expression(p, true);
    }
    if (is_name(p, "recursive")) fail_at(p, "recursive for loops are not supported%s%s", "", "");
    end_tag(p);
    static const char *const ends[] = {"endfor", "else", NULL};
    n->list = subparse(p, ends);
    if (is_name(p, "else")) {
        adv(p);
        end_tag(p);
        static const char *const ends2[] = {"endfor", NULL};
        n->list2 = subparse(p, ends2);
    }
    close_tag(p, "endfor");
    return n;
}

static jnode *parse_if(parser *p)
{
    jnode *top = node(p, JN_IF), *n = top;
    adv(p);
    static const char *const ends[] = {"elif", "else", "endif", NULL};
    for (;;) {
        n->a = parse_tuple(p, false, false, NULL, false);
        end_tag(p);
        n->list = subparse(p, ends);
        if (is_name(p, "elif")) {
            adv(p);
            jnode *e = node(p, JN_IF);
            jnode **slot = jx_alloc(p->cx, sizeof *slot);
            slot[0] = e;
            n->list2 = (jnodes){.v = slot, .n = 1};
            n = e;
            continue;
        }
        if (is_name(p, "else")) {
            adv(p);
            end_tag(p);
            static const char *const ends2[] = {"endif", NULL};
            n->list2 = subparse(p, ends2);
        }
        close_tag(p, "endif");
        return top;
    }
}

static jnode *parse_set(parser *p)
{
    int line = cur(p)->line;
    adv(p);
    jnode *target = parse_assign_target(p, NULL, true);
    if (is_op(p, JO_ASSIGN)) {
        adv(p);
        jnode *n = node(p, JN_SET);
        n->line = line;
        n->a = target;
        n->b = parse_tuple(p, false, true, NULL, false);
        end_tag(p);
        return n;
    }
    jnode *n = node(p, JN_SET_BLOCK);
    n->line = line;
    n->a = target;
    if (is_op(p, JO_PIPE)) n->c = parse_filter(p, NULL, false);
    end_tag(p);
    static const char *const ends[] = {"endset", NULL};
    n->list = subparse(p, ends);
    close_tag(p, "endset");
    return n;
}

static jnode *body_node(parser *p, jnodes stmts)
{
    jnode *b = node(p, JN_BODY);
    b->list = stmts;
    return b;
}

static jnode *parse_macro(parser *p)
{
    jnode *n = node(p, JN_MACRO);
    adv(p);
    n->name = expect_name(p);
    expect_op(p, JO_LPAREN, "'('");
    nvec params = {0}, defs = {0};
    while (!is_op(p, JO_RPAREN)) {
        if (params.n) expect_op(p, JO_COMMA, "',' or ')'");
        if (is_op(p, JO_RPAREN)) break;
        jnode *a = node(p, JN_NAME);
        a->name = expect_name(p);
        nv_push(p, &params, a);
        if (is_op(p, JO_ASSIGN)) {
            adv(p);
            nv_push(p, &defs, parse_expression(p, true));
        } else {
            if (defs.n && defs.v[defs.n - 1])
                fail_at(p, "non-default argument '%s' follows default argument%s", a->name, "");
            nv_push(p, &defs, NULL);
        }
    }
    expect_op(p, JO_RPAREN, "')'");
    end_tag(p);
    static const char *const ends[] = {"endmacro", NULL};
    n->a = body_node(p, subparse(p, ends));
    close_tag(p, "endmacro");
    n->list = nv_done(&params);
    n->list2 = nv_done(&defs);
    return n;
}

static jnode *parse_with(parser *p)
{
    jnode *n = node(p, JN_WITH);
    adv(p);
    nvec targets = {0}, vals = {0};
    while (cur(p)->kind != JT_BLOCK_END) {
        if (targets.n) expect_op(p, JO_COMMA, "','");
        jnode *t = node(p, JN_NAME);
        t->name = expect_name(p);
        expect_op(p, JO_ASSIGN, "'='");
        nv_push(p, &targets, t);
        nv_push(p, &vals, parse_expression(p, true));
    }
    end_tag(p);
    static const char *const ends[] = {"endwith", NULL};
    n->a = body_node(p, subparse(p, ends));
    close_tag(p, "endwith");
    n->list = nv_done(&targets);
    n->list2 = nv_done(&vals);
    return n;
}

static jnode *parse_statement(parser *p)
{
    const jtok *t = cur(p);
    if (t->kind != JT_NAME) unexpected(p, "a tag name");
    const char *name = t->s;
    if (!strcmp(name, "for")) return parse_for(p);
    if (!strcmp(name, "if")) return parse_if(p);
    if (!strcmp(name, "set")) return parse_set(p);
    if (!strcmp(name, "macro")) return parse_macro(p);
    if (!strcmp(name, "with")) return parse_with(p);
    if (!strcmp(name, "break") || !strcmp(name, "continue")) {
        jnode *n = node(p, name[0] == 'b' ? JN_BREAK : JN_CONTINUE);
        adv(p);
        end_tag(p);
        return n;
    }
    if (!strcmp(name, "filter")) {
        jnode *n = node(p, JN_FILTER_BLOCK);
        adv(p);
        n->a = parse_filter(p, NULL, true);
        end_tag(p);
        static const char *const ends[] = {"endfilter", NULL};
        n->list = subparse(p, ends);
        close_tag(p, "endfilter");
        return n;
    }
    if (!strcmp(name, "generation")) {
        /* transformers' assistant-mask marker: renders its body unchanged */
        jnode *n = node(p, JN_WITH);
        adv(p);
        end_tag(p);
        static const char *const ends[] = {"endgeneration", NULL};
        n->a = body_node(p, subparse(p, ends));
        close_tag(p, "endgeneration");
        return n;
    }
    if (!strncmp(name, "end", 3) || !strcmp(name, "else") || !strcmp(name, "elif"))
        fail_at(p, "unexpected '%s': no open block it could close%s", name, "");
    fail_at(p, "unknown or unsupported tag '%s'%s", name, "");
}

static jnodes subparse(parser *p, const char *const *ends)
{
    enter(p);
    nvec body = {0};
    for (;;) {
        const jtok *t = cur(p);
        if (t->kind == JT_EOF) {
            if (ends) fail_at(p, "unexpected end of template: expected '{%% %s %%}'%s", ends[0], "");
            break;
        }
        if (t->kind == JT_DATA) {
            jnode *n = node(p, JN_OUTPUT_DATA);
            n->text = t->s;
            n->text_n = t->n;
            nv_push(p, &body, n);
            adv(p);
        } else if (t->kind == JT_VAR_BEGIN) {
            jnode *n = node(p, JN_OUTPUT_EXPR);
            adv(p);
            n->a = parse_tuple(p, false, true, NULL, false);
            expect_kind(p, JT_VAR_END, "'}}'");
            nv_push(p, &body, n);
        } else if (t->kind == JT_BLOCK_BEGIN) {
            adv(p);
            if (cur(p)->kind == JT_NAME && in_list(cur(p)->s, ends)) break;
            nv_push(p, &body, parse_statement(p));
        } else
            unexpected(p, "template text or a tag");
    }
    p->depth--;
    return nv_done(&body);
}

jnodes jx_parse(jctx *cx, const jtok *toks, int ntok)
{
    parser p = {.cx = cx, .t = toks, .n = ntok};
    return subparse(&p, NULL);
}
