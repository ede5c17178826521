/* Jinja evaluator: walks the AST with Jinja2's scoping (a for-loop iteration and a macro
 * call get their own scope, if-blocks do not) and Python's operator semantics. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "jinja.h"
#include "jinja_internal.h"

#define MAX_CALL_DEPTH 64

struct ig_jinja {
    jarena arena;
    jnodes body;
    char *name;
};

static jv eval(jctx *cx, jframe *f, const jnode *n);
static void exec_body(jctx *cx, jframe *f, jnodes body);

/* ------------------------------------------------------------------ scopes */

static jframe *frame_new(jctx *cx, jframe *parent)
{
    jframe *f = jx_alloc(cx, sizeof *f);
    memset(f, 0, sizeof *f);
    f->parent = parent;
    return f;
}

static void frame_set(jctx *cx, jframe *f, const char *name, jv v)
{
    for (size_t i = 0; i < f->n; i++)
        if (!strcmp(f->names[i], name)) {
            f->vals[i] = v;
            return;
        }
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 8;
        const char **nn = jx_alloc(cx, cap * sizeof *nn);
        jv *nv = jx_alloc(cx, cap * sizeof *nv);
        if (f->n) {
            memcpy(nn, f->names, f->n * sizeof *nn);
            memcpy(nv, f->vals, f->n * sizeof *nv);
        }
        f->names = nn;
        f->vals = nv;
        f->cap = cap;
    }
    f->names[f->n] = name;
    f->vals[f->n] = v;
    f->n++;
}

static jv lookup(jframe *f, const char *name)
{
    for (; f; f = f->parent)
        for (size_t i = f->n; i > 0; i--)
            if (!strcmp(f->names[i - 1], name)) return f->vals[i - 1];
    jv g;
    if (jx_global(name, &g)) return g;
    return jv_undef(name);
}

static IG_NORETURN void fail_undef(jctx *cx, const jv *u)
{
    jx_fail(cx, IGNIS_E_ARG, "'%s' is undefined", u->u.s.p ? u->u.s.p : "value");
}

/* ------------------------------------------------------------------ arithmetic */

static bool is_num(const jv *v) { return v->t == JV_BOOL || v->t == JV_INT || v->t == JV_FLOAT; }
static double num_f(const jv *v) { return v->t == JV_FLOAT ? v->u.f : v->t == JV_INT ? (double)v->u.i : v->u.b; }
static int64_t num_i(const jv *v) { return v->t == JV_INT ? v->u.i : v->u.b; }

static const char *op_sym(int op)
{
    switch (op) {
    case JO_ADD:
        return "+";
    case JO_SUB:
        return "-";
    case JO_MUL:
        return "*";
    case JO_DIV:
        return "/";
    case JO_FLOORDIV:
        return "//";
    case JO_MOD:
        return "%";
    case JO_POW:
        return "**";
    default:
        return "?";
    }
}

static IG_NORETURN void bad_operands(jctx *cx, int op, const jv *a, const jv *b)
{
    jx_fail(cx, IGNIS_E_ARG, "unsupported operand types for %s: '%s' and '%s'", op_sym(op), jv_type_name(a),
            jv_type_name(b));
}

static jv repeat(jctx *cx, const jv *seq, int64_t k)
{
    if (k < 0) k = 0;
    if (seq->t == JV_STR) {
        if (seq->u.s.n && (uint64_t)k > (64u << 20) / seq->u.s.n)
            jx_fail(cx, IGNIS_E_ARG, "string repetition too large");
        size_t n = seq->u.s.n * (size_t)k;
        char *p = jx_alloc(cx, n + 1);
        for (int64_t i = 0; i < k; i++)
            memcpy(p + (size_t)i * seq->u.s.n, seq->u.s.p, seq->u.s.n);
        p[n] = 0;
        return jv_str(p, n);
    }
    const jlist *l = seq->u.l;
    if (l->n && (uint64_t)k > (1u << 20) / l->n) jx_fail(cx, IGNIS_E_ARG, "list repetition too large");
    jv out = jv_list_new(cx, l->n * (size_t)k);
    out.tuple = seq->tuple;
    for (int64_t i = 0; i < k; i++)
        for (size_t j = 0; j < l->n; j++)
            jv_list_push(cx, &out, l->v[j]);
    return out;
}

/* Python's "%" string formatting for the common conversions (%s %r %d %i %f %x %%). */
jv jx_percent(jctx *cx, const jv *fmt, const jv *args)
{
    const jv *argv = args;
    size_t argc = 1, ai = 0;
    if (args->t == JV_LIST && args->tuple) {
        argv = args->u.l->v;
        argc = args->u.l->n;
    }
    jbuf b = {0};
    const char *s = fmt->u.s.p;
    size_t n = fmt->u.s.n;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') {
            jb_putc(cx, &b, s[i]);
            continue;
        }
        if (++i >= n) jx_fail(cx, IGNIS_E_ARG, "incomplete format");
        char spec[32] = "%";
        size_t sl = 1;
        while (i < n && strchr("-+ #0123456789.", s[i]) && sl < sizeof spec - 2)
            spec[sl++] = s[i++];
        if (i >= n) jx_fail(cx, IGNIS_E_ARG, "incomplete format");
        char c = s[i];
        if (c == '%') {
            jb_putc(cx, &b, '%');
            continue;
        }
        if (ai >= argc) jx_fail(cx, IGNIS_E_ARG, "not enough arguments for format string");
        const jv *a = &argv[ai++];
        char tmp[128];
        if (c == 's' || c == 'r') {
            jbuf t = {0};
            if (c == 's')
                jv_to_str(cx, &t, a);
            else
                jv_repr(cx, &t, a);
            jb_put(cx, &b, t.p, t.n);
        } else if (c == 'd' || c == 'i' || c == 'x' || c == 'X' || c == 'o') {
            if (!is_num(a)) jx_fail(cx, IGNIS_E_ARG, "%%%c format: a number is required, not %s", c, jv_type_name(a));
            int64_t v = a->t == JV_FLOAT ? (int64_t)a->u.f : num_i(a);
            spec[sl++] = 'l';
            spec[sl++] = 'l';
            spec[sl++] = c == 'i' ? 'd' : c;
            spec[sl] = 0;
            snprintf(tmp, sizeof tmp, spec, (long long)v);
            jb_puts(cx, &b, tmp);
        } else if (strchr("feEgG", c)) {
            if (!is_num(a)) jx_fail(cx, IGNIS_E_ARG, "%%%c format: a number is required, not %s", c, jv_type_name(a));
            spec[sl++] = c;
            spec[sl] = 0;
            snprintf(tmp, sizeof tmp, spec, num_f(a));
            jb_puts(cx, &b, tmp);
        } else
            jx_fail(cx, IGNIS_E_ARG, "unsupported format character '%c'", c);
    }
    if (ai < argc) jx_fail(cx, IGNIS_E_ARG, "not all arguments converted during string formatting");
    return jb_value(cx, &b);
}

static jv arith(jctx *cx, int op, const jv *a, const jv *b)
{
    if (a->t == JV_UNDEF) fail_undef(cx, a);
    if (b->t == JV_UNDEF) fail_undef(cx, b);
    if (is_num(a) && is_num(b)) {
        bool fl = a->t == JV_FLOAT || b->t == JV_FLOAT;
        if (!fl) {
            int64_t x = num_i(a), y = num_i(b), r;
            switch (op) {
            case JO_ADD:
                if (__builtin_add_overflow(x, y, &r)) jx_fail(cx, IGNIS_E_ARG, "integer overflow");
                return jv_int(r);
            case JO_SUB:
                if (__builtin_sub_overflow(x, y, &r)) jx_fail(cx, IGNIS_E_ARG, "integer overflow");
                return jv_int(r);
            case JO_MUL:
                if (__builtin_mul_overflow(x, y, &r)) jx_fail(cx, IGNIS_E_ARG, "integer overflow");
                return jv_int(r);
            case JO_DIV:
                if (!y) jx_fail(cx, IGNIS_E_ARG, "division by zero");
                return jv_float((double)x / (double)y);
            case JO_FLOORDIV:
            case JO_MOD: {
                if (!y) jx_fail(cx, IGNIS_E_ARG, "integer division or modulo by zero");
                if (x == INT64_MIN && y == -1) jx_fail(cx, IGNIS_E_ARG, "integer overflow");
                int64_t q = x / y, m = x % y;
                if (m != 0 && ((m < 0) != (y < 0))) {
                    q--;
                    m += y;
                }
                return jv_int(op == JO_FLOORDIV ? q : m);
            }
            case JO_POW:
                if (y >= 0) {
                    int64_t acc = 1;
                    for (int64_t i = 0; i < y; i++)
                        if (__builtin_mul_overflow(acc, x, &acc)) jx_fail(cx, IGNIS_E_ARG, "integer overflow");
                    return jv_int(acc);
                }
                return jv_float(pow((double)x, (double)y));
            }
        }
        double x = num_f(a), y = num_f(b);
        switch (op) {
        case JO_ADD:
            return jv_float(x + y);
        case JO_SUB:
            return jv_float(x - y);
        case JO_MUL:
            return jv_float(x * y);
        case JO_DIV:
            if (y == 0) jx_fail(cx, IGNIS_E_ARG, "float division by zero");
            return jv_float(x / y);
        case JO_FLOORDIV:
            if (y == 0) jx_fail(cx, IGNIS_E_ARG, "float floor division by zero");
            return jv_float(floor(x / y));
        case JO_MOD: {
            if (y == 0) jx_fail(cx, IGNIS_E_ARG, "float modulo by zero");
            double m = fmod(x, y);
            if (m != 0 && ((m < 0) != (y < 0))) m += y;
            return jv_float(m);
        }
        case JO_POW:
            return jv_float(pow(x, y));
        }
    }
    if (op == JO_ADD && a->t == JV_STR && b->t == JV_STR) {
        size_t n = a->u.s.n + b->u.s.n;
        char *p = jx_alloc(cx, n + 1);
        memcpy(p, a->u.s.p, a->u.s.n);
        memcpy(p + a->u.s.n, b->u.s.p, b->u.s.n);
        p[n] = 0;
        return jv_str(p, n);
    }
    if (op == JO_ADD && a->t == JV_LIST && b->t == JV_LIST && a->tuple == b->tuple) {
        jv out = jv_list_new(cx, a->u.l->n + b->u.l->n);
        out.tuple = a->tuple;
        for (size_t i = 0; i < a->u.l->n; i++)
            jv_list_push(cx, &out, a->u.l->v[i]);
        for (size_t i = 0; i < b->u.l->n; i++)
            jv_list_push(cx, &out, b->u.l->v[i]);
        return out;
    }
    if (op == JO_MUL) {
        if ((a->t == JV_STR || a->t == JV_LIST) && (b->t == JV_INT || b->t == JV_BOOL)) return repeat(cx, a, num_i(b));
        if ((b->t == JV_STR || b->t == JV_LIST) && (a->t == JV_INT || a->t == JV_BOOL)) return repeat(cx, b, num_i(a));
    }
    if (op == JO_MOD && a->t == JV_STR) return jx_percent(cx, a, b);
    bad_operands(cx, op, a, b);
}

/* ------------------------------------------------------------------ membership, slices */

static bool contains(jctx *cx, const jv *needle, const jv *hay)
{
    switch ((jv_type)hay->t) {
    case JV_UNDEF:
        return false;
    case JV_STR:
        if (needle->t != JV_STR)
            jx_fail(cx, IGNIS_E_ARG, "'in <string>' requires string as left operand, not %s", jv_type_name(needle));
        if (!needle->u.s.n) return true;
        if (needle->u.s.n > hay->u.s.n) return false;
        return memmem(hay->u.s.p, hay->u.s.n, needle->u.s.p, needle->u.s.n) != NULL;
    case JV_LIST:
        for (size_t i = 0; i < hay->u.l->n; i++)
            if (jv_equal(needle, &hay->u.l->v[i])) return true;
        return false;
    case JV_DICT: {
        jv tmp;
        return jv_dict_get(hay->u.d, *needle, &tmp);
    }
    default:
        jx_fail(cx, IGNIS_E_ARG, "argument of type '%s' is not iterable", jv_type_name(hay));
    }
}

static int64_t slice_index(jctx *cx, const jv *v, const char *what)
{
    if (v->t == JV_INT || v->t == JV_BOOL) return num_i(v);
    jx_fail(cx, IGNIS_E_ARG, "slice %s must be an integer or None, not %s", what, jv_type_name(v));
}

static jv do_slice(jctx *cx, const jv *obj, const jv *start, const jv *stop, const jv *step)
{
    if (obj->t == JV_UNDEF) fail_undef(cx, obj);
    if (obj->t != JV_STR && obj->t != JV_LIST)
        jx_fail(cx, IGNIS_E_ARG, "'%s' object is not subscriptable", jv_type_name(obj));
    int64_t len = obj->t == JV_STR ? (int64_t)ju_cp_count(obj->u.s.p, obj->u.s.n) : (int64_t)obj->u.l->n;
    int64_t st = step && step->t != JV_NONE ? slice_index(cx, step, "step") : 1;
    if (st == 0) jx_fail(cx, IGNIS_E_ARG, "slice step cannot be zero");
    int64_t lo, hi;
    if (st > 0) {
        lo = start && start->t != JV_NONE ? slice_index(cx, start, "start") : 0;
        hi = stop && stop->t != JV_NONE ? slice_index(cx, stop, "stop") : len;
        if (lo < 0) lo = lo + len < 0 ? 0 : lo + len;
        if (lo > len) lo = len;
        if (hi < 0) hi = hi + len < 0 ? 0 : hi + len;
        if (hi > len) hi = len;
    } else {
        lo = start && start->t != JV_NONE ? slice_index(cx, start, "start") : len - 1;
        hi = stop && stop->t != JV_NONE ? slice_index(cx, stop, "stop") : -1 - len;
        if (lo < 0) lo = lo + len < 0 ? -1 : lo + len;
        if (lo >= len) lo = len - 1;
        if (hi < 0) hi = hi + len < 0 ? -1 : hi + len;
        if (hi >= len) hi = len - 1;
    }
    if (obj->t == JV_STR) {
        const char *p = obj->u.s.p;
        size_t n = obj->u.s.n;
        if (st == 1) {
            if (hi <= lo) return jv_str("", 0);
            size_t a = ju_cp_offset(p, n, (size_t)lo), b = ju_cp_offset(p, n, (size_t)hi);
            return jv_str(p + a, b - a);
        }
        jlist *chars = jv_iter_list(cx, obj);
        jbuf b = {0};
        for (int64_t i = lo; st > 0 ? i < hi : i > hi; i += st)
            jb_put(cx, &b, chars->v[i].u.s.p, chars->v[i].u.s.n);
        return jb_value(cx, &b);
    }
    jv out = jv_list_new(cx, 0);
    out.tuple = obj->tuple;
    for (int64_t i = lo; st > 0 ? i < hi : i > hi; i += st)
        jv_list_push(cx, &out, obj->u.l->v[i]);
    return out;
}

/* ------------------------------------------------------------------ expressions */

typedef struct argv_t {
    jv *pos;
    int npos;
    jv *kw;
    int nkw;
} argv_t;

static argv_t eval_args(jctx *cx, jframe *f, const jnode *n)
{
    argv_t a = {0};
    a.npos = n->list.n;
    a.nkw = n->list2.n;
    if (a.npos) {
        a.pos = jx_alloc(cx, (size_t)a.npos * sizeof(jv));
        for (int i = 0; i < a.npos; i++)
            a.pos[i] = eval(cx, f, n->list.v[i]);
    }
    if (a.nkw) {
        a.kw = jx_alloc(cx, (size_t)a.nkw * sizeof(jv));
        for (int i = 0; i < a.nkw; i++)
            a.kw[i] = eval(cx, f, n->list2.v[i]);
    }
    return a;
}

/* Applies a filter node to an operand (its own operand expression, or a captured block). */
static jv apply_filter(jctx *cx, jframe *f, const jnode *n, const jv *override)
{
    jv operand;
    if (n->a)
        operand = n->a->kind == JN_FILTER && override ? apply_filter(cx, f, n->a, override) : eval(cx, f, n->a);
    else
        operand = override ? *override : jv_undef(NULL);
    argv_t a = eval_args(cx, f, n);
    cx->line = n->line;
    return jx_filter(cx, n->name, &operand, a.pos, a.npos, n->kwnames, a.kw, a.nkw);
}

static jv call_value(jctx *cx, const jv *callee, const argv_t *a, const char *const *kwnames)
{
    switch ((jv_type)callee->t) {
    case JV_FUNC:
    case JV_METHOD:
        return jx_call_builtin(cx, callee, a->pos, a->npos, kwnames, a->kw, a->nkw);
    case JV_MACRO:
        return jx_call_macro(cx, callee->u.mac, a->pos, a->npos, kwnames, a->kw, a->nkw);
    case JV_UNDEF:
        fail_undef(cx, callee);
    default:
        jx_fail(cx, IGNIS_E_ARG, "'%s' object is not callable", jv_type_name(callee));
    }
}

static bool compare_op(jctx *cx, int op, const jv *a, const jv *b)
{
    switch (op) {
    case CMP_EQ:
        return jv_equal(a, b);
    case CMP_NE:
        return !jv_equal(a, b);
    case CMP_LT:
        return jv_compare(cx, a, b) < 0;
    case CMP_LE:
        return jv_compare(cx, a, b) <= 0;
    case CMP_GT:
        return jv_compare(cx, a, b) > 0;
    case CMP_GE:
        return jv_compare(cx, a, b) >= 0;
    case CMP_IN:
        return contains(cx, a, b);
    case CMP_NOTIN:
        return !contains(cx, a, b);
    }
    return false;
}

static jv eval(jctx *cx, jframe *f, const jnode *n)
{
    cx->line = n->line;
    switch (n->kind) {
    case JN_CONST:
        return *n->value;
    case JN_NAME:
        return lookup(f, n->name);
    case JN_GETATTR: {
        jv obj = eval(cx, f, n->a);
        if (obj.t == JV_UNDEF) fail_undef(cx, &obj);
        cx->line = n->line;
        return jx_getattr(cx, &obj, n->name);
    }
    case JN_GETITEM: {
        jv obj = eval(cx, f, n->a);
        if (n->b->kind == JN_SLICE) {
            const jnode *s = n->b;
            jv lo = s->a ? eval(cx, f, s->a) : jv_none();
            jv hi = s->b ? eval(cx, f, s->b) : jv_none();
            jv st = s->c ? eval(cx, f, s->c) : jv_none();
            cx->line = n->line;
            return do_slice(cx, &obj, &lo, &hi, &st);
        }
        jv key = eval(cx, f, n->b);
        if (obj.t == JV_UNDEF) fail_undef(cx, &obj);
        cx->line = n->line;
        return jx_getitem(cx, &obj, &key);
    }
    case JN_SLICE:
        jx_fail(cx, IGNIS_E_INTERNAL, "slice outside a subscript");
    case JN_CALL: {
        jv callee = eval(cx, f, n->a);
        argv_t a = eval_args(cx, f, n);
        cx->line = n->line;
        return call_value(cx, &callee, &a, n->kwnames);
    }
    case JN_FILTER:
        return apply_filter(cx, f, n, NULL);
    case JN_TEST: {
        jv v = eval(cx, f, n->a);
        argv_t a = eval_args(cx, f, n);
        cx->line = n->line;
        bool r = jx_test(cx, n->name, &v, a.pos, a.npos);
        return jv_bool(n->op ? !r : r);
    }
    case JN_BINOP: {
        jv a = eval(cx, f, n->a), b = eval(cx, f, n->b);
        cx->line = n->line;
        return arith(cx, n->op, &a, &b);
    }
    case JN_NEG:
    case JN_POS: {
        jv a = eval(cx, f, n->a);
        cx->line = n->line;
        if (a.t == JV_UNDEF) fail_undef(cx, &a);
        if (!is_num(&a))
            jx_fail(cx, IGNIS_E_ARG, "bad operand type for unary %s: '%s'", n->kind == JN_NEG ? "-" : "+",
                    jv_type_name(&a));
        if (n->kind == JN_POS) return a.t == JV_BOOL ? jv_int(a.u.b) : a;
        if (a.t == JV_FLOAT) return jv_float(-a.u.f);
        if (num_i(&a) == INT64_MIN) jx_fail(cx, IGNIS_E_ARG, "integer overflow");
        return jv_int(-num_i(&a));
    }
    case JN_NOT: {
        jv a = eval(cx, f, n->a);
        return jv_bool(!jv_truthy(&a));
    }
    case JN_AND: {
        jv a = eval(cx, f, n->a);
        return jv_truthy(&a) ? eval(cx, f, n->b) : a;
    }
    case JN_OR: {
        jv a = eval(cx, f, n->a);
        return jv_truthy(&a) ? a : eval(cx, f, n->b);
    }
    case JN_COMPARE: {
        jv left = eval(cx, f, n->a);
        for (int i = 0; i < n->list.n; i++) {
            jv right = eval(cx, f, n->list.v[i]);
            cx->line = n->line;
            if (!compare_op(cx, n->ops[i], &left, &right)) return jv_bool(false);
            left = right;
        }
        return jv_bool(true);
    }
    case JN_CONCAT: {
        jbuf b = {0};
        for (int i = 0; i < n->list.n; i++) {
            jv v = eval(cx, f, n->list.v[i]);
            jv_to_str(cx, &b, &v);
        }
        return jb_value(cx, &b);
    }
    case JN_CONDEXPR: {
        jv c = eval(cx, f, n->b);
        if (jv_truthy(&c)) return eval(cx, f, n->a);
        return n->c ? eval(cx, f, n->c) : jv_undef(NULL);
    }
    case JN_LIST:
    case JN_TUPLE: {
        jv l = jv_list_new(cx, (size_t)n->list.n);
        l.tuple = n->kind == JN_TUPLE;
        for (int i = 0; i < n->list.n; i++)
            jv_list_push(cx, &l, eval(cx, f, n->list.v[i]));
        return l;
    }
    case JN_DICT: {
        jv d = jv_dict_new(cx, (size_t)n->list.n);
        for (int i = 0; i < n->list.n; i++) {
            jv k = eval(cx, f, n->list.v[i]);
            jv v = eval(cx, f, n->list2.v[i]);
            if (k.t == JV_LIST && !k.tuple) jx_fail(cx, IGNIS_E_ARG, "unhashable type: 'list'");
            if (k.t == JV_DICT) jx_fail(cx, IGNIS_E_ARG, "unhashable type: 'dict'");
            jv_dict_set(cx, d.u.d, k, v);
        }
        return d;
    }
    default:
        jx_fail(cx, IGNIS_E_INTERNAL, "statement node %d used as an expression", (int)n->kind);
    }
}

/* ------------------------------------------------------------------ statements */

static void assign(jctx *cx, jframe *f, const jnode *target, jv v)
{
    if (target->kind == JN_NAME) {
        frame_set(cx, f, target->name, v);
        return;
    }
    if (target->kind == JN_GETATTR) {
        jv ns = lookup(f, target->a->name);
        if (ns.t != JV_NS)
            jx_fail(cx, IGNIS_E_ARG,
                    "cannot assign attribute '%s' on '%s' (a %s): only namespace() objects take attributes",
                    target->name, target->a->name, jv_type_name(&ns));
        jv_dict_set(cx, ns.u.d, jv_cstr(target->name), v);
        return;
    }
    /* tuple unpacking */
    jlist *items = jv_iter_list(cx, &v);
    if ((int)items->n != target->list.n)
        jx_fail(cx, IGNIS_E_ARG, "cannot unpack %zu values into %d names", items->n, target->list.n);
    for (int i = 0; i < target->list.n; i++)
        frame_set(cx, f, target->list.v[i]->name, items->v[i]);
}

static jbuf *capture_begin(jctx *cx)
{
    jbuf *saved = cx->out;
    jbuf *b = jx_alloc(cx, sizeof *b);
    memset(b, 0, sizeof *b);
    cx->out = b;
    return saved;
}

static jv capture_end(jctx *cx, jbuf *saved)
{
    jv v = jb_value(cx, cx->out);
    cx->out = saved;
    return v;
}

static void exec_for(jctx *cx, jframe *f, const jnode *n)
{
    jv seq = eval(cx, f, n->b);
    cx->line = n->line;
    jlist *items = jv_iter_list(cx, &seq);
    if (n->c) {
        jv kept = jv_list_new(cx, items->n);
        for (size_t i = 0; i < items->n; i++) {
            jframe *lf = frame_new(cx, f);
            assign(cx, lf, n->a, items->v[i]);
            jv ok = eval(cx, lf, n->c);
            if (jv_truthy(&ok)) jv_list_push(cx, &kept, items->v[i]);
        }
        items = kept.u.l;
    }
    if (!items->n) {
        exec_body(cx, f, n->list2);
        return;
    }
    jloop *lp = jx_alloc(cx, sizeof *lp);
    lp->items = items;
    jv outer = lookup(f, "loop");
    lp->depth0 = outer.t == JV_LOOP ? outer.u.loop->depth0 + 1 : 0;
    for (size_t i = 0; i < items->n; i++) {
        jloop *it = jx_alloc(cx, sizeof *it); /* a fresh object: a macro may keep an old one */
        *it = *lp;
        it->index0 = (int64_t)i;
        jframe *lf = frame_new(cx, f);
        assign(cx, lf, n->a, items->v[i]);
        frame_set(cx, lf, "loop", (jv){.t = JV_LOOP, .u.loop = it});
        exec_body(cx, lf, n->list);
        if (cx->loop_ctl == 1) {
            cx->loop_ctl = 0;
            break;
        }
        cx->loop_ctl = 0;
    }
}

static void exec_stmt(jctx *cx, jframe *f, const jnode *n)
{
    cx->line = n->line;
    switch (n->kind) {
    case JN_OUTPUT_DATA:
        jb_put(cx, cx->out, n->text, n->text_n);
        return;
    case JN_OUTPUT_EXPR: {
        jv v = eval(cx, f, n->a);
        jv_to_str(cx, cx->out, &v);
        return;
    }
    case JN_IF: {
        jv c = eval(cx, f, n->a);
        exec_body(cx, f, jv_truthy(&c) ? n->list : n->list2);
        return;
    }
    case JN_FOR:
        exec_for(cx, f, n);
        return;
    case JN_SET: {
        jv v = eval(cx, f, n->b);
        cx->line = n->line;
        assign(cx, f, n->a, v);
        return;
    }
    case JN_SET_BLOCK: {
        jbuf *saved = capture_begin(cx);
        exec_body(cx, f, n->list);
        jv v = capture_end(cx, saved);
        if (n->c) v = apply_filter(cx, f, n->c, &v);
        assign(cx, f, n->a, v);
        return;
    }
    case JN_MACRO: {
        jmacro *m = jx_alloc(cx, sizeof *m);
        m->def = n;
        frame_set(cx, f, n->name, (jv){.t = JV_MACRO, .u.mac = m});
        return;
    }
    case JN_BREAK:
    case JN_CONTINUE:
        if (!lookup(f, "loop").t)
            jx_fail(cx, IGNIS_E_ARG, "'%s' outside a for loop", n->kind == JN_BREAK ? "break" : "continue");
        cx->loop_ctl = n->kind == JN_BREAK ? 1 : 2;
        return;
    case JN_FILTER_BLOCK: {
        jbuf *saved = capture_begin(cx);
        exec_body(cx, f, n->list);
        jv v = capture_end(cx, saved);
        v = apply_filter(cx, f, n->a, &v);
        jv_to_str(cx, cx->out, &v);
        return;
    }
    case JN_WITH: {
        jframe *wf = frame_new(cx, f);
        for (int i = 0; i < n->list.n; i++)
            frame_set(cx, wf, n->list.v[i]->name, eval(cx, f, n->list2.v[i]));
        exec_body(cx, wf, n->a->list);
        return;
    }
    case JN_BODY:
        exec_body(cx, f, n->list);
        return;
    default: {
        jv v = eval(cx, f, n);
        jv_to_str(cx, cx->out, &v);
    }
    }
}

static void exec_body(jctx *cx, jframe *f, jnodes body)
{
    for (int i = 0; i < body.n; i++) {
        exec_stmt(cx, f, body.v[i]);
        if (cx->loop_ctl) return;
    }
}

jv jx_call_macro(jctx *cx, const jmacro *m, const jv *args, int nargs, const char *const *kwnames, const jv *kwvals,
                 int nkw)
{
    const jnode *def = m->def;
    if (cx->depth >= MAX_CALL_DEPTH) jx_fail(cx, IGNIS_E_ARG, "macro calls nested deeper than %d", MAX_CALL_DEPTH);
    if (nargs > def->list.n)
        jx_fail(cx, IGNIS_E_ARG, "macro '%s' takes %d arguments, got %d", def->name, def->list.n, nargs);
    jframe *mf = frame_new(cx, cx->root);
    for (int k = 0; k < nkw; k++) {
        bool found = false;
        for (int i = 0; i < def->list.n; i++)
            if (!strcmp(def->list.v[i]->name, kwnames[k])) {
                if (i < nargs)
                    jx_fail(cx, IGNIS_E_ARG, "macro '%s' got multiple values for argument '%s'", def->name, kwnames[k]);
                found = true;
            }
        if (!found) jx_fail(cx, IGNIS_E_ARG, "macro '%s' has no argument named '%s'", def->name, kwnames[k]);
    }
    for (int i = 0; i < def->list.n; i++) {
        const char *pname = def->list.v[i]->name;
        jv v = jv_undef(pname);
        bool set = false;
        if (i < nargs) {
            v = args[i];
            set = true;
        }
        for (int k = 0; !set && k < nkw; k++)
            if (!strcmp(kwnames[k], pname)) {
                v = kwvals[k];
                set = true;
            }
        if (!set && def->list2.v[i]) v = eval(cx, mf, def->list2.v[i]);
        frame_set(cx, mf, pname, v);
    }
    frame_set(cx, mf, def->name, (jv){.t = JV_MACRO, .u.mac = (jmacro *)m});
    cx->depth++;
    int saved_ctl = cx->loop_ctl;
    cx->loop_ctl = 0;
    jbuf *saved = capture_begin(cx);
    exec_body(cx, mf, def->a->list);
    jv out = capture_end(cx, saved);
    cx->loop_ctl = saved_ctl;
    cx->depth--;
    return out;
}

/* ------------------------------------------------------------------ JSON bridge */

static jv from_json(jctx *cx, const json_t *j, int depth)
{
    if (depth > 100) jx_fail(cx, IGNIS_E_ARG, "template variables nested deeper than 100 levels");
    switch (json_typeof(j)) {
    case JSON_NULL:
        return jv_none();
    case JSON_TRUE:
        return jv_bool(true);
    case JSON_FALSE:
        return jv_bool(false);
    case JSON_INTEGER:
        return jv_int((int64_t)json_integer_value(j));
    case JSON_REAL:
        return jv_float(json_real_value(j));
    case JSON_STRING:
        return jv_str(json_string_value(j), json_string_length(j));
    case JSON_ARRAY: {
        jv l = jv_list_new(cx, json_array_size(j));
        size_t i;
        json_t *e;
        json_array_foreach(j, i, e) jv_list_push(cx, &l, from_json(cx, e, depth + 1));
        return l;
    }
    case JSON_OBJECT: {
        jv d = jv_dict_new(cx, json_object_size(j));
        const char *k;
        json_t *e;
        json_object_foreach((json_t *)j, k, e) jv_dict_set(cx, d.u.d, jv_cstr(k), from_json(cx, e, depth + 1));
        return d;
    }
    }
    return jv_none();
}

/* ------------------------------------------------------------------ entry points */

ignis_status ig_jinja_compile(const char *src, size_t len, const char *name, ig_jinja **out)
{
    *out = NULL;
    if (!src) return ig_err(IGNIS_E_ARG, "ig_jinja_compile: no template source");
    ig_jinja *t = calloc(1, sizeof *t);
    if (!t) return ig_err(IGNIS_E_NOMEM, "out of memory compiling a template");
    t->name = strdup(name ? name : "template");
    if (!t->name) {
        free(t);
        return ig_err(IGNIS_E_NOMEM, "out of memory compiling a template");
    }
    jctx *cx = calloc(1, sizeof *cx);
    if (!cx) {
        free(t->name);
        free(t);
        return ig_err(IGNIS_E_NOMEM, "out of memory compiling a template");
    }
    cx->tname = t->name;
    cx->arena = &t->arena;
    if (setjmp(cx->jb)) {
        ignis_status s = cx->status;
        free(cx);
        ig_jinja_free(t);
        return s;
    }
    int ntok = 0;
    jtok *toks = jx_lex(cx, src, len, &ntok);
    t->body = jx_parse(cx, toks, ntok);
    free(cx);
    *out = t;
    return IGNIS_OK;
}

ignis_status ig_jinja_render(const ig_jinja *t, const json_t *vars, char **out, size_t *out_len)
{
    *out = NULL;
    if (out_len) *out_len = 0;
    if (vars && !json_is_object(vars))
        return ig_err(IGNIS_E_ARG, "%s: template variables must be a JSON object", t->name);
    /* heap, not locals: they change between setjmp and a longjmp back */
    jarena *arena = calloc(1, sizeof *arena);
    jctx *cx = calloc(1, sizeof *cx);
    if (!cx || !arena) {
        free(cx);
        free(arena);
        return ig_err(IGNIS_E_NOMEM, "out of memory rendering %s", t->name);
    }
    arena->limit = (size_t)512 << 20;
    cx->tname = t->name;
    cx->arena = arena;
    if (setjmp(cx->jb)) {
        ignis_status s = cx->status;
        free(cx);
        ja_free_all(arena);
        free(arena);
        return s;
    }
    cx->root = frame_new(cx, NULL);
    if (vars) {
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)vars, k, v) frame_set(cx, cx->root, k, from_json(cx, v, 0));
    }
    jbuf *b = jx_alloc(cx, sizeof *b);
    memset(b, 0, sizeof *b);
    cx->out = b;
    exec_body(cx, cx->root, t->body);
    char *res = malloc(b->n + 1);
    if (!res) {
        free(cx);
        ja_free_all(arena);
        free(arena);
        return ig_err(IGNIS_E_NOMEM, "out of memory rendering %s", t->name);
    }
    if (b->n) memcpy(res, b->p, b->n);
    res[b->n] = 0;
    if (out_len) *out_len = b->n;
    *out = res;
    free(cx);
    ja_free_all(arena);
    free(arena);
    return IGNIS_OK;
}

void ig_jinja_free(ig_jinja *t)
{
    if (!t) return;
    ja_free_all(&t->arena);
    free(t->name);
    free(t);
}
