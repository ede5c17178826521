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

/* ids from "1 2 3", "1,2,3" or "[1, 2, 3]" */
static int parse_ids(const char *s, int32_t **ids, int *n)
{
    int cap = 64, k = 0;
    int32_t *v = malloc((size_t)cap * sizeof *v);
    if (!v) return -1;
    const char *p = s;
    while (*p) {
        if (strchr(" \t\r\n,[]", *p)) {
            p++;
            continue;
        }
        char *end;
        long x = strtol(p, &end, 10);
        if (end == p || x < 0 || x > INT32_MAX) {
            fprintf(stderr, "ignis tokenize: --decode expects token ids, got '%.20s'\n", p);
            free(v);
            return -1;
        }
        if (k == cap) {
            int32_t *q = realloc(v, (size_t)(cap *= 2) * sizeof *q);
            if (!q) {
                free(v);
                return -1;
            }
            v = q;
        }
        v[k++] = (int32_t)x;
        p = end;
    }
    *ids = v;
    *n = k;
    return 0;
}

static void print_ids(const int32_t *ids, int n, bool json)
{
    if (json) putchar('[');
    for (int i = 0; i < n; i++)
        printf(json ? (i ? ",%d" : "%d") : (i ? " %d" : "%d"), ids[i]);
    if (json) putchar(']');
    putchar('\n');
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
        json_t *res = json_object();
        if (!decode) {
            json_t *tx = json_object_get(o, "text");
            if (!json_is_string(tx)) {
                fprintf(stderr, "ignis tokenize: stdin line %ld: no \"text\" string\n", lineno);
                json_decref(o);
                json_decref(res);
                rc = 1;
                break;
            }
            int32_t *ids;
            int n;
            ignis_status s =
                ignis_tokenize(t, json_string_value(tx), json_string_length(tx), add_special, parse_special, &ids, &n);
            if (s != IGNIS_OK) {
                json_decref(o);
                json_decref(res);
                rc = cli_fail(s, "tokenize");
                break;
            }
            json_t *arr = json_array();
            for (int i = 0; i < n; i++)
                json_array_append_new(arr, json_integer(ids[i]));
            free(ids);
            json_object_set_new(res, "ids", arr);
        } else {
            json_t *arr = json_object_get(o, "ids");
            size_t n = json_array_size(arr);
            int32_t *ids = malloc((n ? n : 1) * sizeof *ids);
            for (size_t i = 0; ids && i < n; i++)
                ids[i] = (int32_t)json_integer_value(json_array_get(arr, i));
            char *text = NULL;
            size_t tl = 0;
            ignis_status s = ids ? ignis_detokenize(t, ids, (int)n, skip_special, &text, &tl) : IGNIS_E_NOMEM;
            free(ids);
            if (s != IGNIS_OK) {
                json_decref(o);
                json_decref(res);
                rc = cli_fail(s, "detokenize");
                break;
            }
            json_object_set_new(res, "text", json_stringn(text, tl));
            free(text);
        }
        char *out = json_dumps(res, JSON_COMPACT | JSON_ENSURE_ASCII);
        if (out) puts(out);
        free(out);
        json_decref(res);
        json_decref(o);
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
        if (parse_ids(text, &ids, &n) != 0)
            rc = 2;
        else {
            char *out;
            size_t ol;
            s = ignis_detokenize(t, ids, n, skip_special, &out, &ol);
            free(ids);
            if (s != IGNIS_OK)
                rc = cli_fail(s, "detokenize");
            else {
                if (json) {
                    json_t *js = json_stringn(out, ol);
                    char *d = json_dumps(js, JSON_ENCODE_ANY | JSON_ENSURE_ASCII);
                    if (d) puts(d);
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
