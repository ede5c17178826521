/* ignis tokenize: text to ids and back with a model's tokenizer, for people and for tests
 * (--jsonl batch mode). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char *k_help =
    "usage: ignis tokenize DIR [--text T] [--decode] [--json] [--jsonl] [--add-special]\n"
    "                          [--no-parse-special] [--skip-special]\n"
    "\n"
    "Prints the token ids of a text, space-separated. DIR is a workspace, a Hugging Face model\n"
    "directory or a directory holding only tokenizer files (tokenizer.json wins over\n"
    "tokenizer.model and vocab.json + merges.txt). Without --text the text is all of stdin, byte\n"
    "for byte (a trailing newline is part of it).\n"
    "\n"
    "  --text T            the text to encode (or, with --decode, the ids)\n"
    "  --decode            read ids (separated by spaces, commas or newlines, or a JSON array)\n"
    "                      and print their text\n"
    "  --json              print the ids as a JSON array\n"
    "  --jsonl             batch: each stdin line is a JSON object with \"text\" (or with --decode,\n"
    "                      \"ids\"); each output line is {\"ids\":[...]} (or {\"text\":...}), in order\n"
    "  --add-special       add BOS/EOS as the tokenizer's configuration says (default: none)\n"
    "  --no-parse-special  treat special-token text such as <|im_end|> as plain text\n"
    "  --skip-special      with --decode, leave special tokens out of the text\n";

static char *read_stdin(size_t *len)
{
    size_t cap = 1 << 16, n = 0;
    char *p = malloc(cap);
    if (!p) return NULL;
    for (;;) {
        if (n + 4096 > cap) {
            char *q = realloc(p, cap *= 2);
            if (!q) {
                free(p);
                return NULL;
            }
            p = q;
        }
        size_t k = fread(p + n, 1, cap - n - 1, stdin);
        n += k;
        if (k == 0) break;
    }
    p[n] = 0;
    *len = n;
    return p;
}

static void print_ids(const int32_t *ids, int n, bool json)
{
    if (json) putchar('[');
    for (int i = 0; i < n; i++)
        printf(json ? (i ? ",%d" : "%d") : (i ? " %d" : "%d"), ids[i]);
    if (json) putchar(']');
    putchar('\n');
}

/* One jsonl request: {"text": ...} -> {"ids": [...]} (or with decode {"ids": [...]} ->
 * {"text": ...}). Returns the result object, or NULL after printing one line. */
static json_t *jsonl_one(const ignis_tokenizer *t, json_t *o, long lineno, bool decode, bool add_special,
                         bool parse_special, bool skip_special)
{
    if (!decode) {
        json_t *tx = json_object_get(o, "text");
        if (!json_is_string(tx)) {
            fprintf(stderr, "ignis tokenize: stdin line %ld: no \"text\" string\n", lineno);
            return NULL;
        }
        int32_t *ids;
        int n;
        ignis_status s =
            ignis_tokenize(t, json_string_value(tx), json_string_length(tx), add_special, parse_special, &ids, &n);
        if (s != IGNIS_OK) {
            cli_fail(s, "tokenize");
            return NULL;
        }
        json_t *arr = json_array(), *res = json_object();
        bool ok = arr && res;
        for (int i = 0; ok && i < n; i++)
            ok = json_array_append_new(arr, json_integer(ids[i])) == 0;
        free(ids);
        if (!ok || json_object_set_new(res, "ids", arr) != 0) {
            if (!ok) json_decref(arr);
            json_decref(res);
            fprintf(stderr, "ignis tokenize: stdin line %ld: out of memory\n", lineno);
            return NULL;
        }
        return res;
    }
    json_t *arr = json_object_get(o, "ids");
    if (!json_is_array(arr)) {
        fprintf(stderr, "ignis tokenize: stdin line %ld: no \"ids\" array\n", lineno);
        return NULL;
    }
    size_t n = json_array_size(arr);
    int32_t *ids = malloc((n ? n : 1) * sizeof *ids);
    if (!ids) {
        fprintf(stderr, "ignis tokenize: stdin line %ld: out of memory for %zu ids\n", lineno, n);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(arr, i);
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > INT32_MAX) {
            fprintf(stderr, "ignis tokenize: stdin line %ld: \"ids\"[%zu] is not a token id\n", lineno, i);
            free(ids);
            return NULL;
        }
        ids[i] = (int32_t)json_integer_value(v);
    }
    char *text = NULL;
    size_t tl = 0;
    ignis_status s = ignis_detokenize(t, ids, (int)n, skip_special, &text, &tl);
    free(ids);
    if (s != IGNIS_OK) {
        cli_fail(s, "detokenize");
        return NULL;
    }
    json_t *res = json_object();
    if (!res || json_object_set_new(res, "text", json_stringn(text, tl)) != 0) {
        json_decref(res);
        res = NULL;
        fprintf(stderr, "ignis tokenize: stdin line %ld: out of memory\n", lineno);
    }
    free(text);
    return res;
}

static int run_jsonl(const ignis_tokenizer *t, bool decode, bool add_special, bool parse_special, bool skip_special)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    long lineno = 0;
    int rc = 0;
    while ((got = getline(&line, &cap, stdin)) >= 0) {
        lineno++;
        size_t len = (size_t)got;
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            len--;
        if (len == 0) continue;
        json_error_t je;
        json_t *o = json_loadb(line, len, JSON_ALLOW_NUL, &je);
        if (!json_is_object(o)) {
            fprintf(stderr, "ignis tokenize: stdin line %ld: %s\n", lineno, o ? "not a JSON object" : je.text);
            json_decref(o);
            rc = 1;
            break;
        }
        json_t *res = jsonl_one(t, o, lineno, decode, add_special, parse_special, skip_special);
        json_decref(o);
        if (!res) {
            rc = 1;
            break;
        }
        char *out = json_dumps(res, JSON_COMPACT | JSON_ENSURE_ASCII);
        json_decref(res);
        if (!out) {
            fprintf(stderr, "ignis tokenize: stdin line %ld: out of memory\n", lineno);
            rc = 1;
            break;
        }
        puts(out);
        free(out);
    }
    free(line);
    return rc;
}

int cmd_tokenize(int argc, char **argv)
{
    const char *dir = NULL, *text = NULL;
    bool decode = false, json = false, jsonl = false, add_special = false, parse_special = true, skip_special = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(k_help, stdout);
            return 0;
        } else if (!strcmp(a, "--text")) {
            if (i + 1 >= argc) return cli_usage_error("tokenize", "--text needs a value");
            text = argv[++i];
        } else if (!strcmp(a, "--decode"))
            decode = true;
        else if (!strcmp(a, "--json"))
            json = true;
        else if (!strcmp(a, "--jsonl"))
            jsonl = true;
        else if (!strcmp(a, "--add-special"))
            add_special = true;
        else if (!strcmp(a, "--no-parse-special"))
            parse_special = false;
        else if (!strcmp(a, "--skip-special"))
            skip_special = true;
        else if (a[0] == '-' && a[1])
            return cli_usage_error("tokenize", "unknown option '%s'", a);
        else if (!dir)
            dir = a;
        else
            return cli_usage_error("tokenize", "unexpected argument '%s'", a);
    }
    if (!dir) return cli_usage_error("tokenize", "missing DIR");
    if (jsonl && text) return cli_usage_error("tokenize", "--jsonl reads stdin; it does not take --text");
    ignis_tokenizer *t;
    ignis_status s = ignis_tokenizer_open(dir, &t);
    if (s != IGNIS_OK) return cli_fail(s, "opening the tokenizer");
    int rc = 0;
    if (jsonl) {
        rc = run_jsonl(t, decode, add_special, parse_special, skip_special);
        ignis_tokenizer_free(t);
        return rc;
    }
    size_t len;
    char *buf = NULL;
    if (text)
        len = strlen(text);
    else {
        buf = read_stdin(&len);
        if (!buf) {
            ignis_tokenizer_free(t);
            fprintf(stderr, "ignis tokenize: cannot read stdin\n");
            return 1;
        }
        text = buf;
    }
    if (decode) {
        int32_t *ids;
        int n;
        const char *bad = "";
        int r = cli_parse_ids(text, &ids, &n, &bad);
        if (r == -2) {
            fprintf(stderr, "ignis tokenize: out of memory reading the ids\n");
            rc = 1;
        } else if (r != 0) {
            fprintf(stderr, "ignis tokenize: --decode expects token ids, got '%.20s'\n", bad);
            rc = 2;
        } else {
            char *out;
            size_t ol;
            s = ignis_detokenize(t, ids, n, skip_special, &out, &ol);
            free(ids);
            if (s != IGNIS_OK)
                rc = cli_fail(s, "detokenize");
            else {
                if (json) {
                    json_t *js = json_stringn(out, ol);
                    char *d = js ? json_dumps(js, JSON_ENCODE_ANY | JSON_ENSURE_ASCII) : NULL;
                    if (d) {
                        puts(d);
                    } else {
                        fprintf(stderr, "ignis tokenize: out of memory\n");
                        rc = 1;
                    }
                    free(d);
                    json_decref(js);
                } else {
                    fwrite(out, 1, ol, stdout);
                    putchar('\n');
                }
                free(out);
            }
        }
    } else {
        int32_t *ids;
        int n;
        s = ignis_tokenize(t, text, len, add_special, parse_special, &ids, &n);
        if (s != IGNIS_OK)
            rc = cli_fail(s, "tokenize");
        else {
            print_ids(ids, n, json);
            free(ids);
        }
    }
    free(buf);
    ignis_tokenizer_free(t);
    return rc;
}
