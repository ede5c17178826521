/* Internals of the Jinja2 subset interpreter shared by its lexer, parser, value model,
 * builtins and evaluator. Errors inside compile and render unwind with longjmp to the
 * entry point: every allocation in between comes from an arena that the entry point
 * owns, so an error never leaks. */
#ifndef IG_JINJA_INTERNAL_H
#define IG_JINJA_INTERNAL_H

#include <setjmp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

#if defined(__GNUC__)
#define IG_NORETURN __attribute__((noreturn))
#else
#define IG_NORETURN
#endif

/* ------------------------------------------------------------------ arena */

typedef struct jarena_blk {
    struct jarena_blk *next;
    size_t used, cap;
    max_align_t data[];
} jarena_blk;

typedef struct jarena {
    jarena_blk *head;
    size_t total; /* bytes reserved so far */
    size_t limit; /* 0: unlimited */
} jarena;

/* Both return NULL when the system or the arena's limit is out of memory. */
void *ja_alloc(jarena *a, size_t n);
void ja_free_all(jarena *a);

/* ------------------------------------------------------------------ tokens */

typedef enum jtok_kind {
    JT_EOF = 0,
    JT_DATA,        /* text between tags (whitespace control already applied) */
    JT_VAR_BEGIN,   /* {{ */
    JT_VAR_END,     /* }} */
    JT_BLOCK_BEGIN, /* {% */
    JT_BLOCK_END,   /* %} */
    JT_NAME,
    JT_STRING,
    JT_INT,
    JT_FLOAT,
    JT_OP
} jtok_kind;

typedef enum jop {
    JO_NONE = 0,
    JO_ADD,
    JO_SUB,
    JO_MUL,
    JO_DIV,
    JO_FLOORDIV,
    JO_MOD,
    JO_POW,
    JO_TILDE,
    JO_LPAREN,
    JO_RPAREN,
    JO_LBRACKET,
    JO_RBRACKET,
    JO_LBRACE,
    JO_RBRACE,
    JO_COMMA,
    JO_DOT,
    JO_COLON,
    JO_PIPE,
    JO_ASSIGN,
    JO_EQ,
    JO_NE,
    JO_LT,
    JO_LE,
    JO_GT,
    JO_GE
} jop;

typedef struct jtok {
    jtok_kind kind;
    jop op;
    int line;
    const char *s; /* NAME, STRING (decoded), DATA: NUL-terminated, in the template arena */
    size_t n;
    int64_t i;
    double f;
} jtok;

/* ------------------------------------------------------------------ AST */

typedef enum jnode_kind {
    /* expressions */
    JN_CONST,
    JN_NAME,
    JN_GETATTR,
    JN_GETITEM,
    JN_SLICE,
    JN_CALL,
    JN_FILTER,
    JN_TEST,
    JN_BINOP,
    JN_NEG,
    JN_POS,
    JN_NOT,
    JN_AND,
    JN_OR,
    JN_COMPARE,
    JN_CONCAT,
    JN_CONDEXPR,
    JN_LIST,
    JN_TUPLE,
    JN_DICT,
    /* statements */
    JN_OUTPUT_DATA,
    JN_OUTPUT_EXPR,
    JN_IF,
    JN_FOR,
    JN_SET,
    JN_SET_BLOCK,
    JN_MACRO,
    JN_BREAK,
    JN_CONTINUE,
    JN_FILTER_BLOCK,
    JN_WITH,
    JN_BODY
} jnode_kind;

struct jv;
typedef struct jnode jnode;

typedef struct jnodes {
    jnode **v;
    int n;
} jnodes;

struct jnode {
    jnode_kind kind;
    int line;
    int op;               /* BINOP: jop; TEST: negated flag */
    const char *name;     /* NAME, GETATTR attribute, CALL-less FILTER/TEST name, MACRO name */
    jnode *a, *b, *c, *d; /* children, by kind (see the parser) */
    jnodes list;          /* args / items / statements / compare operands */
    jnodes list2;         /* kwarg values / dict values / else body */
    const char **kwnames; /* kwarg names, parallel to list2 for CALL/FILTER/TEST */
    int *ops;             /* COMPARE: operator per operand after the first */
    struct jv *value;     /* CONST */
    const char *text;     /* OUTPUT_DATA */
    size_t text_n;
};

/* JN_COMPARE operators */
enum { CMP_EQ = 1, CMP_NE, CMP_LT, CMP_LE, CMP_GT, CMP_GE, CMP_IN, CMP_NOTIN };

/* ------------------------------------------------------------------ values */

typedef enum jv_type {
    JV_UNDEF = 0,
    JV_NONE,
    JV_BOOL,
    JV_INT,
    JV_FLOAT,
    JV_STR,
    JV_LIST,
    JV_DICT,
    JV_NS,
    JV_LOOP,
    JV_FUNC,
    JV_METHOD,
    JV_MACRO
} jv_type;

typedef struct jlist jlist;
typedef struct jdict jdict;
typedef struct jloop jloop;
typedef struct jmethod jmethod;
typedef struct jmacro jmacro;

typedef struct jv {
    uint8_t t;
    uint8_t tuple; /* LIST built from a tuple: repr uses () */
    union {
        bool b;
        int64_t i;
        double f;
        struct {
            const char *p; /* STR bytes; UNDEF: the name that was missing (may be NULL) */
            size_t n;
        } s;
        jlist *l;
        jdict *d; /* DICT, NS */
        jloop *loop;
        jmethod *m;
        jmacro *mac;
        int fn; /* FUNC: builtin id */
    } u;
} jv;

struct jlist {
    size_t n, cap;
    jv *v;
};
struct jdict {
    size_t n, cap;
    jv *k, *v;
};
struct jloop {
    jlist *items;
    int64_t index0;
    int depth0;
};
struct jmethod {
    jv self;
    int id;
};
struct jmacro {
    const jnode *def;
};

/* ------------------------------------------------------------------ scopes and context */

typedef struct jframe {
    struct jframe *parent;
    size_t n, cap;
    const char **names;
    jv *vals;
} jframe;

typedef struct jbuf {
    char *p;
    size_t n, cap;
} jbuf;

typedef struct jctx {
    jmp_buf jb;
    ignis_status status;
    const char *tname; /* template name, for messages */
    int line;          /* line being evaluated */
    jarena *arena;
    jbuf *out;
    jframe *root;
    int depth;    /* macro/call nesting, bounded */
    int loop_ctl; /* 0, 1 = break, 2 = continue */
} jctx;

/* Records the message (prefixed with template and line) and unwinds to the entry point. */
IG_NORETURN void jx_fail(jctx *cx, ignis_status s, const char *fmt, ...) IG_PRINTF(3, 4);
void *jx_alloc(jctx *cx, size_t n);
char *jx_strdup(jctx *cx, const char *s, size_t n);

/* Lexer and parser (compile time: cx->arena is the template's arena). */
jtok *jx_lex(jctx *cx, const char *src, size_t n, int *ntok);
jnodes jx_parse(jctx *cx, const jtok *toks, int ntok);

/* Value helpers (jinja_value.c). */
jv jv_undef(const char *name);
jv jv_none(void);
jv jv_bool(bool b);
jv jv_int(int64_t i);
jv jv_float(double f);
jv jv_str(const char *p, size_t n);
jv jv_cstr(const char *p);
jv jv_strdup(jctx *cx, const char *p, size_t n);
jv jv_list_new(jctx *cx, size_t cap);
void jv_list_push(jctx *cx, jv *list, jv item);
jv jv_dict_new(jctx *cx, size_t cap);
void jv_dict_set(jctx *cx, jdict *d, jv key, jv val);
/* Looks up a key; returns false when absent. */
bool jv_dict_get(const jdict *d, jv key, jv *out);
bool jv_dict_get_str(const jdict *d, const char *key, jv *out);

bool jv_truthy(const jv *v);
bool jv_equal(const jv *a, const jv *b);
/* <0, 0, >0; fails for types Python cannot order. */
int jv_compare(jctx *cx, const jv *a, const jv *b);
const char *jv_type_name(const jv *v);
/* str(v) as Python would print it (strings as is, None, True, lists as repr). */
void jv_to_str(jctx *cx, jbuf *b, const jv *v);
jv jv_stringify(jctx *cx, const jv *v);
void jv_repr(jctx *cx, jbuf *b, const jv *v);
/* json.dumps(v, ensure_ascii, indent, separators, sort_keys) with Python's formatting. */
typedef struct jjson_opts {
    bool ensure_ascii;
    const char *indent; /* NULL: compact line */
    const char *item_sep;
    const char *key_sep;
    bool sort_keys;
} jjson_opts;
void jv_to_json(jctx *cx, jbuf *b, const jv *v, const jjson_opts *o, int level);
void jv_format_float(char *buf, size_t cap, double f);
/* Iteration: lists and tuples as is, strings by character, dicts by key; fails otherwise. */
jlist *jv_iter_list(jctx *cx, const jv *v);
/* len(); fails for types without a length. */
int64_t jv_len(jctx *cx, const jv *v);

void jb_put(jctx *cx, jbuf *b, const char *p, size_t n);
void jb_puts(jctx *cx, jbuf *b, const char *s);
void jb_putc(jctx *cx, jbuf *b, char c);
jv jb_value(jctx *cx, jbuf *b);

/* UTF-8 helpers (code points are what Python indexes and counts). */
size_t ju_cp_count(const char *p, size_t n);
/* Byte offset of code point idx (0 <= idx <= count). */
size_t ju_cp_offset(const char *p, size_t n, size_t idx);
/* Decodes one code point at p (n > 0); returns bytes used, sets *cp (0xFFFD if invalid). */
int ju_decode(const char *p, size_t n, uint32_t *cp);
int ju_encode(uint32_t cp, char *out);
bool ju_is_space(uint32_t cp);

/* Builtins (jinja_builtins.c). */
enum { JF_RANGE = 1, JF_NAMESPACE, JF_RAISE_EXCEPTION, JF_STRFTIME_NOW, JF_DICT, JF_LOOP_CYCLE };
/* Global functions by name (range, namespace, ...); false when not a builtin. */
bool jx_global(const char *name, jv *out);
/* Attribute of a value: methods of str/dict, loop fields, namespace/dict members. */
jv jx_getattr(jctx *cx, const jv *obj, const char *name);
jv jx_getitem(jctx *cx, const jv *obj, const jv *key);
jv jx_call_builtin(jctx *cx, const jv *fn, const jv *args, int nargs, const char *const *kwnames, const jv *kwvals,
                   int nkw);
jv jx_filter(jctx *cx, const char *name, const jv *arg, const jv *args, int nargs, const char *const *kwnames,
             const jv *kwvals, int nkw);
bool jx_test(jctx *cx, const char *name, const jv *arg, const jv *args, int nargs);

/* Python's "fmt % args" string formatting (args: a value or a tuple). */
jv jx_percent(jctx *cx, const jv *fmt, const jv *args);

/* Evaluator entry for callbacks from builtins that take expressions (none today) and for
 * macros: calls a macro value. */
jv jx_call_macro(jctx *cx, const jmacro *m, const jv *args, int nargs, const char *const *kwnames, const jv *kwvals,
                 int nkw);

#endif
