/* SentencePiece tokenizer.model: a protobuf ModelProto, parsed by hand (no C++ runtime).
 * Fields used: pieces (piece, score, type), trainer_spec (model_type, byte_fallback,
 * unk/bos/eos/pad ids) and normalizer_spec (name, precompiled_charsmap, add_dummy_prefix,
 * remove_extra_whitespaces, escape_whitespaces). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"

typedef struct pb {
    const unsigned char *p, *end;
    const char *path;
    const char *what; /* message being parsed, for errors */
} pb;

static ignis_status pb_fail(const pb *r, const char *why)
{
    return ig_err(IGNIS_E_FORMAT, "%s: corrupt SentencePiece model (%s: %s)", r->path, r->what, why);
}

static bool pb_varint(pb *r, uint64_t *v)
{
    uint64_t x = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (r->p >= r->end) return false;
        unsigned char b = *r->p++;
        x |= (uint64_t)(b & 0x7F) << shift;
        if (!(b & 0x80)) {
            *v = x;
            return true;
        }
    }
    return false;
}

/* Reads one field key; wire types 0 (varint), 1 (64-bit), 2 (length-delimited), 5 (32-bit). */
typedef struct pb_field {
    uint32_t num;
    int wt;
    uint64_t v;               /* varint / fixed value */
    const unsigned char *ptr; /* length-delimited payload */
    size_t len;
} pb_field;

static ignis_status pb_next(pb *r, pb_field *f)
{
    uint64_t key;
    if (!pb_varint(r, &key)) return pb_fail(r, "truncated field key");
    f->num = (uint32_t)(key >> 3);
    f->wt = (int)(key & 7);
    if (f->num == 0) return pb_fail(r, "field number 0");
    switch (f->wt) {
    case 0:
        if (!pb_varint(r, &f->v)) return pb_fail(r, "truncated varint");
        return IGNIS_OK;
    case 1:
        if (r->end - r->p < 8) return pb_fail(r, "truncated 64-bit value");
        memcpy(&f->v, r->p, 8);
        r->p += 8;
        return IGNIS_OK;
    case 5: {
        if (r->end - r->p < 4) return pb_fail(r, "truncated 32-bit value");
        uint32_t x;
        memcpy(&x, r->p, 4);
        f->v = x;
        r->p += 4;
        return IGNIS_OK;
    }
    case 2: {
        uint64_t n;
        if (!pb_varint(r, &n)) return pb_fail(r, "truncated length");
        if (n > (uint64_t)(r->end - r->p)) return pb_fail(r, "length runs past the end of the file");
        f->ptr = r->p;
        f->len = (size_t)n;
        r->p += n;
        return IGNIS_OK;
    }
    default:
        return pb_fail(r, "unknown wire type");
    }
}

typedef struct spm_raw_piece {
    const unsigned char *s;
    size_t len;
    float score;
    int type;
} spm_raw_piece;

static ignis_status parse_piece(const char *path, const unsigned char *p, size_t n, spm_raw_piece *out)
{
    pb r = {p, p + n, path, "piece"};
    out->s = NULL;
    out->len = 0;
    out->score = 0;
    out->type = IG_PIECE_NORMAL;
    bool have = false;
    while (r.p < r.end) {
        pb_field f;
        IG_TRY(pb_next(&r, &f));
        if (f.num == 1 && f.wt == 2) {
            out->s = f.ptr;
            out->len = f.len;
            have = true;
        } else if (f.num == 2 && f.wt == 5) {
            uint32_t x = (uint32_t)f.v;
            memcpy(&out->score, &x, 4);
        } else if (f.num == 3 && f.wt == 0) {
            out->type = (int)f.v;
        }
    }
    if (!have) return pb_fail(&r, "a piece has no text");
    if (out->type < IG_PIECE_NORMAL || out->type > IG_PIECE_BYTE) return pb_fail(&r, "unknown piece type");
    return IGNIS_OK;
}

typedef struct spm_spec {
    int model_type; /* 1 unigram, 2 bpe, 3 word, 4 char */
    bool byte_fallback;
    int64_t unk_id, bos_id, eos_id, pad_id;
    bool add_dummy_prefix, remove_extra_ws, escape_ws;
    char name[64];
    size_t charsmap_len;
} spm_spec;

static ignis_status parse_trainer(const char *path, const unsigned char *p, size_t n, spm_spec *sp)
{
    pb r = {p, p + n, path, "trainer_spec"};
    while (r.p < r.end) {
        pb_field f;
        IG_TRY(pb_next(&r, &f));
        if (f.wt != 0) continue;
        switch (f.num) {
        case 3:
            sp->model_type = (int)f.v;
            break;
        case 35:
            sp->byte_fallback = f.v != 0;
            break;
        case 40:
            sp->unk_id = (int32_t)f.v;
            break;
        case 41:
            sp->bos_id = (int32_t)f.v;
            break;
        case 42:
            sp->eos_id = (int32_t)f.v;
            break;
        case 43:
            sp->pad_id = (int32_t)f.v;
            break;
        default:
            break;
        }
    }
    return IGNIS_OK;
}

static ignis_status parse_normalizer(const char *path, const unsigned char *p, size_t n, spm_spec *sp)
{
    pb r = {p, p + n, path, "normalizer_spec"};
    while (r.p < r.end) {
        pb_field f;
        IG_TRY(pb_next(&r, &f));
        if (f.num == 1 && f.wt == 2) {
            size_t k = f.len < sizeof sp->name - 1 ? f.len : sizeof sp->name - 1;
            memcpy(sp->name, f.ptr, k);
            sp->name[k] = 0;
        } else if (f.num == 2 && f.wt == 2) {
            sp->charsmap_len = f.len;
        } else if (f.wt == 0 && f.num == 3) {
            sp->add_dummy_prefix = f.v != 0;
        } else if (f.wt == 0 && f.num == 4) {
            sp->remove_extra_ws = f.v != 0;
        } else if (f.wt == 0 && f.num == 5) {
            sp->escape_ws = f.v != 0;
        }
    }
    return IGNIS_OK;
}

ignis_status ig_spm_load(ignis_tokenizer *t, const char *path)
{
    char *data;
    size_t size;
    IG_TRY(ig_read_whole(path, &data, &size));
    ignis_status st = IGNIS_OK;
    spm_spec sp = {.model_type = 1,
                   .unk_id = 0,
                   .bos_id = 1,
                   .eos_id = 2,
                   .pad_id = -1,
                   .add_dummy_prefix = true,
                   .remove_extra_ws = true,
                   .escape_ws = true};
    strcpy(sp.name, "nmt_nfkc");
    spm_raw_piece *pieces = NULL;
    size_t n_pieces = 0, cap = 0;
    pb r = {(const unsigned char *)data, (const unsigned char *)data + size, path, "ModelProto"};
    bool have_trainer = false;
    if (size == 0) {
        st = ig_err(IGNIS_E_FORMAT, "%s: empty file, not a SentencePiece model", path);
        goto done;
    }
    while (r.p < r.end) {
        pb_field f;
        if ((st = pb_next(&r, &f)) != IGNIS_OK) goto done;
        if (f.wt != 2) continue;
        if (f.num == 1) {
            if (n_pieces == cap) {
                cap = cap ? cap * 2 : 1024;
                spm_raw_piece *np = realloc(pieces, cap * sizeof *np);
                if (!np) {
                    st = ig_err(IGNIS_E_NOMEM, "%s: out of memory", path);
                    goto done;
                }
                pieces = np;
            }
            if ((st = parse_piece(path, f.ptr, f.len, &pieces[n_pieces])) != IGNIS_OK) goto done;
            n_pieces++;
        } else if (f.num == 2) {
            have_trainer = true;
            if ((st = parse_trainer(path, f.ptr, f.len, &sp)) != IGNIS_OK) goto done;
        } else if (f.num == 3) {
            if ((st = parse_normalizer(path, f.ptr, f.len, &sp)) != IGNIS_OK) goto done;
        }
    }
    if (n_pieces == 0) {
        st = ig_err(IGNIS_E_FORMAT, "%s: not a SentencePiece model (no pieces found)", path);
        goto done;
    }
    if (!have_trainer) {
        st = ig_err(IGNIS_E_FORMAT, "%s: corrupt SentencePiece model (no trainer_spec: truncated file?)", path);
        goto done;
    }
    if (sp.model_type != 2) {
        st = ig_err(IGNIS_E_UNSUPPORTED, "%s: SentencePiece model type %s is not supported (only BPE)", path,
                    sp.model_type == 1   ? "unigram"
                    : sp.model_type == 3 ? "word"
                    : sp.model_type == 4 ? "char"
                                         : "?");
        goto done;
    }
    if (sp.charsmap_len > 0 && strcmp(sp.name, "identity") != 0) {
        st = ig_err(IGNIS_E_UNSUPPORTED, "%s: SentencePiece normalizer '%s' (precompiled charsmap) is not supported",
                    path, sp.name);
        goto done;
    }
    if ((st = ig_tok_alloc_vocab(t, (int)n_pieces)) != IGNIS_OK) goto done;
    t->kind = IG_TOK_SPM;
    t->byte_fallback = sp.byte_fallback;
    t->add_dummy_prefix = sp.add_dummy_prefix;
    t->remove_extra_ws = sp.remove_extra_ws;
    t->escape_ws = sp.escape_ws;
    t->unk = sp.unk_id >= 0 && sp.unk_id < (int64_t)n_pieces ? (int32_t)sp.unk_id : -1;
    t->bos = sp.bos_id >= 0 && sp.bos_id < (int64_t)n_pieces ? (int32_t)sp.bos_id : -1;
    t->eos = sp.eos_id >= 0 && sp.eos_id < (int64_t)n_pieces ? (int32_t)sp.eos_id : -1;
    t->pad = sp.pad_id >= 0 && sp.pad_id < (int64_t)n_pieces ? (int32_t)sp.pad_id : -1;
    t->add_bos = t->bos >= 0; /* SentencePiece-based HF tokenizers (Llama) add BOS by default */
    if ((st = ig_strmap_init(&t->user_map, 16)) != IGNIS_OK) goto done;
    for (size_t i = 0; i < n_pieces; i++) {
        if ((st = ig_tok_set_piece(t, (int)i, (const char *)pieces[i].s, pieces[i].len)) != IGNIS_OK) goto done;
        t->score[i] = pieces[i].score;
        /* sentencepiece >= 0.2 treats a NUL piece as unused when byte fallback is on, so
         * NUL in text becomes <0x00> */
        if (sp.byte_fallback && pieces[i].len == 1 && pieces[i].s[0] == 0 && pieces[i].type == IG_PIECE_NORMAL)
            pieces[i].type = IG_PIECE_UNUSED;
        t->type[i] = (uint8_t)pieces[i].type;
        int ty = pieces[i].type;
        if (ty == IG_PIECE_BYTE) {
            unsigned v;
            char hex[8] = {0};
            if (pieces[i].len == 6 && memcmp(pieces[i].s, "<0x", 3) == 0 && pieces[i].s[5] == '>') {
                memcpy(hex, pieces[i].s + 3, 2);
                char *end;
                v = (unsigned)strtoul(hex, &end, 16);
                if (*end == 0 && v < 256)
                    t->byte_id[v] = (int32_t)i;
                else
                    pieces[i].len = 0;
            }
            if (pieces[i].len != 6) {
                st = ig_err(IGNIS_E_FORMAT, "%s: corrupt SentencePiece model (byte piece %zu is not <0xNN>)", path, i);
                goto done;
            }
        }
        if (ty == IG_PIECE_USER_DEFINED) {
            ig_strmap_put(&t->user_map, t->piece[i], pieces[i].len, (int32_t)i, false);
            if ((int)pieces[i].len > t->max_user_len) t->max_user_len = (int)pieces[i].len;
            if (pieces[i].len) t->user_first[pieces[i].s[0]] = true;
        }
        /* Normal, user-defined and unused pieces are what merges may produce; control,
         * unknown and byte pieces are only reachable by id (SentencePiece's reserved map). */
        bool dup = !ig_strmap_put(&t->piece_map, t->piece[i], pieces[i].len, (int32_t)i, false);
        if (dup) {
            st = ig_err(IGNIS_E_FORMAT, "%s: corrupt SentencePiece model (piece %zu '%.*s' appears twice)", path, i,
                        (int)pieces[i].len, (const char *)pieces[i].s);
            goto done;
        }
    }
    if (t->byte_fallback)
        for (int b = 0; b < 256; b++)
            if (t->byte_id[b] < 0) {
                st = ig_err(IGNIS_E_FORMAT, "%s: byte_fallback is set but piece <0x%02X> is missing", path, b);
                goto done;
            }
    /* Control and unknown pieces are what Hugging Face registers as special tokens. */
    for (size_t i = 0; i < n_pieces; i++) {
        int ty = pieces[i].type;
        if (ty == IG_PIECE_CONTROL || ty == IG_PIECE_UNKNOWN) {
            if ((st = ig_tok_add_token(t, t->piece[i], pieces[i].len, (int32_t)i, true, false, false, false, false)) !=
                IGNIS_OK)
                goto done;
        }
    }
    if ((st = ig_spm_prepare_words(t)) != IGNIS_OK) goto done;
done:
    free(pieces);
    free(data);
    return st;
}

bool ig_spm_probe(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return true; /* let the loader report the error */
    int c = fgetc(f);
    fclose(f);
    return c == 0x0A || c == EOF; /* field 1 (pieces), length-delimited */
}
