#include "convert/safetensors.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"

/* The header is JSON describing at most a few thousand tensors; 100 MB is the limit the
 * reference implementation uses, and anything larger is a corrupt length field. */
#define MAX_HEADER (100u << 20)

static const struct {
    const char *name;
    ig_st_dtype t;
    size_t size;
} k_dtypes[] = {
    {"F32", IG_ST_F32, 4}, {"F16", IG_ST_F16, 2},         {"BF16", IG_ST_BF16, 2},       {"F64", IG_ST_F64, 8},
    {"I64", IG_ST_I64, 8}, {"I32", IG_ST_I32, 4},         {"I16", IG_ST_I16, 2},         {"I8", IG_ST_I8, 1},
    {"U8", IG_ST_U8, 1},   {"BOOL", IG_ST_BOOL, 1},       {"U16", IG_ST_U16, 2},         {"U32", IG_ST_U32, 4},
    {"U64", IG_ST_U64, 8}, {"F8_E4M3", IG_ST_F8_E4M3, 1}, {"F8_E5M2", IG_ST_F8_E5M2, 1},
};

const char *ig_st_dtype_name(ig_st_dtype t)
{
    for (size_t i = 0; i < sizeof k_dtypes / sizeof k_dtypes[0]; i++)
        if (k_dtypes[i].t == t) return k_dtypes[i].name;
    return "?";
}

size_t ig_st_dtype_size(ig_st_dtype t)
{
    for (size_t i = 0; i < sizeof k_dtypes / sizeof k_dtypes[0]; i++)
        if (k_dtypes[i].t == t) return k_dtypes[i].size;
    return 0;
}

static int parse_dtype(const char *s, ig_st_dtype *t)
{
    for (size_t i = 0; i < sizeof k_dtypes / sizeof k_dtypes[0]; i++)
        if (strcmp(s, k_dtypes[i].name) == 0) {
            *t = k_dtypes[i].t;
            return 0;
        }
    return -1;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(((const ig_st_tensor *)a)->name, ((const ig_st_tensor *)b)->name);
}

typedef struct span {
    uint64_t begin, end;
    const char *name;
} span;

static int cmp_span(const void *a, const void *b)
{
    const span *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : 0;
}

/* Parses one header entry into t; the caller owns t->name on success. */
static ignis_status parse_entry(const char *file, const char *name, json_t *v, uint64_t data_len, ig_st_tensor *t)
{
    if (!json_is_object(v)) return ig_err(IGNIS_E_FORMAT, "%s: tensor %s: header entry is not an object", file, name);
    json_t *jd = json_object_get(v, "dtype"), *js = json_object_get(v, "shape"),
           *jo = json_object_get(v, "data_offsets");
    if (!json_is_string(jd)) return ig_err(IGNIS_E_FORMAT, "%s: tensor %s: missing \"dtype\"", file, name);
    if (parse_dtype(json_string_value(jd), &t->dtype))
        return ig_err(IGNIS_E_FORMAT, "%s: tensor %s: unknown dtype \"%s\"", file, name, json_string_value(jd));
    if (!json_is_array(js)) return ig_err(IGNIS_E_FORMAT, "%s: tensor %s: missing \"shape\" array", file, name);
    size_t nd = json_array_size(js);
    if (nd > IG_ST_MAX_DIMS)
        return ig_err(IGNIS_E_UNSUPPORTED, "%s: tensor %s: %zu dimensions (at most %d supported)", file, name, nd,
                      IG_ST_MAX_DIMS);
    t->ndim = (int)nd;
    uint64_t numel = 1;
    for (size_t i = 0; i < nd; i++) {
        json_t *e = json_array_get(js, i);
        if (!json_is_integer(e) || json_integer_value(e) < 0)
            return ig_err(IGNIS_E_FORMAT, "%s: tensor %s: shape[%zu] is not a non-negative integer", file, name, i);
        t->shape[i] = json_integer_value(e);
        if (t->shape[i] > 0 && numel > UINT64_MAX / 16 / (uint64_t)t->shape[i])
            return ig_err(IGNIS_E_FORMAT, "%s: tensor %s: shape overflows", file, name);
        numel *= (uint64_t)t->shape[i];
    }
    if (!json_is_array(jo) || json_array_size(jo) != 2 || !json_is_integer(json_array_get(jo, 0)) ||
        !json_is_integer(json_array_get(jo, 1)))
        return ig_err(IGNIS_E_FORMAT, "%s: tensor %s: \"data_offsets\" must be [begin, end]", file, name);
    json_int_t b = json_integer_value(json_array_get(jo, 0)), e = json_integer_value(json_array_get(jo, 1));
    if (b < 0 || e < b)
        return ig_err(IGNIS_E_FORMAT, "%s: tensor %s: bad data_offsets [%lld, %lld]", file, name, (long long)b,
                      (long long)e);
    uint64_t want = numel * ig_st_dtype_size(t->dtype);
    if ((uint64_t)(e - b) != want)
        return ig_err(IGNIS_E_FORMAT, "%s: tensor %s: data_offsets span %lld bytes but %s shape needs %llu", file, name,
                      (long long)(e - b), ig_st_dtype_name(t->dtype), (unsigned long long)want);
    if ((uint64_t)e > data_len)
        return ig_err(IGNIS_E_FORMAT,
                      "%s: tensor %s: data ends at byte %lld of the data section, but the file holds only %llu "
                      "(truncated file?)",
                      file, name, (long long)e, (unsigned long long)data_len);
    t->bytes = want;
    t->data = (const void *)(uintptr_t)b; /* relative until the caller adds the base */
    return IGNIS_OK;
}

static ignis_status append_tensor(ig_st_set *set, int *cap, const ig_st_tensor *t)
{
    if (set->n_tensors == *cap) {
        int nc = *cap ? *cap * 2 : 256;
        ig_st_tensor *n = realloc(set->tensors, (size_t)nc * sizeof *n);
        if (!n) return ig_err(IGNIS_E_NOMEM, "out of memory");
        set->tensors = n;
        *cap = nc;
    }
    set->tensors[set->n_tensors++] = *t;
    return IGNIS_OK;
}

static ignis_status parse_header(ig_st_set *set, ig_st_file *f)
{
    const char *fname = f->base;
    if (f->len < 8)
        return ig_err(IGNIS_E_FORMAT, "%s: file is %zu bytes, too short for a safetensors header (truncated?)", fname,
                      f->len);
    uint64_t hlen;
    memcpy(&hlen, f->map, 8); /* little-endian on every platform ignis targets */
    if (hlen < 2 || hlen > MAX_HEADER)
        return ig_err(IGNIS_E_FORMAT, "%s: header length %llu is not plausible (not a safetensors file?)", fname,
                      (unsigned long long)hlen);
    if (hlen > f->len - 8)
        return ig_err(IGNIS_E_FORMAT, "%s: header length %llu exceeds the file size %zu (truncated file?)", fname,
                      (unsigned long long)hlen, f->len);
    json_error_t jerr;
    json_t *root = json_loadb((const char *)f->map + 8, hlen, 0, &jerr);
    if (!root)
        return ig_err(IGNIS_E_FORMAT, "%s: header is not valid JSON: %s (at byte %d)", fname, jerr.text, jerr.position);
    if (!json_is_object(root)) {
        json_decref(root);
        return ig_err(IGNIS_E_FORMAT, "%s: header is not a JSON object", fname);
    }
    const unsigned char *data = (const unsigned char *)f->map + 8 + hlen;
    uint64_t data_len = f->len - 8 - hlen;
    size_t n = json_object_size(root);
    span *spans = calloc(n ? n : 1, sizeof *spans);
    if (!spans) {
        json_decref(root);
        return ig_err(IGNIS_E_NOMEM, "out of memory");
    }
    int cap = set->n_tensors, ns = 0;
    ignis_status st = IGNIS_OK;
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v)
    {
        if (strcmp(key, "__metadata__") == 0) continue;
        ig_st_tensor t;
        memset(&t, 0, sizeof t);
        if ((st = parse_entry(fname, key, v, data_len, &t)) != IGNIS_OK) break;
        uint64_t off = (uint64_t)(uintptr_t)t.data;
        t.data = data + off;
        t.file = f->base;
        if (!(t.name = strdup(key))) {
            st = ig_err(IGNIS_E_NOMEM, "out of memory");
            break;
        }
        if ((st = append_tensor(set, &cap, &t)) != IGNIS_OK) {
            free((char *)t.name);
            break;
        }
        spans[ns++] = (span){off, off + t.bytes, set->tensors[set->n_tensors - 1].name};
    }
    if (st == IGNIS_OK) {
        qsort(spans, (size_t)ns, sizeof *spans, cmp_span);
        for (int i = 1; i < ns; i++)
            if (spans[i].begin < spans[i - 1].end && spans[i].end > spans[i].begin) {
                st = ig_err(IGNIS_E_FORMAT, "%s: tensors %s and %s overlap (bytes %llu..%llu and %llu..%llu)", fname,
                            spans[i - 1].name, spans[i].name, (unsigned long long)spans[i - 1].begin,
                            (unsigned long long)spans[i - 1].end, (unsigned long long)spans[i].begin,
                            (unsigned long long)spans[i].end);
                break;
            }
    }
    free(spans);
    json_decref(root);
    return st;
}

static ignis_status sort_and_check(ig_st_set *set)
{
    qsort(set->tensors, (size_t)set->n_tensors, sizeof *set->tensors, cmp_name);
    for (int i = 1; i < set->n_tensors; i++)
        if (strcmp(set->tensors[i].name, set->tensors[i - 1].name) == 0)
            return ig_err(IGNIS_E_FORMAT, "tensor %s appears twice (in %s and %s)", set->tensors[i].name,
                          set->tensors[i - 1].file, set->tensors[i].file);
    return IGNIS_OK;
}

static ignis_status map_file(ig_st_set *set, const char *path)
{
    ig_st_file *nf = realloc(set->files, (size_t)(set->n_files + 1) * sizeof *nf);
    if (!nf) return ig_err(IGNIS_E_NOMEM, "out of memory");
    set->files = nf;
    ig_st_file *f = &set->files[set->n_files];
    memset(f, 0, sizeof *f);
    f->path = strdup(path);
    if (!f->path) return ig_err(IGNIS_E_NOMEM, "out of memory");
    const char *slash = strrchr(path, '/');
    f->base = f->path + (slash ? slash - path + 1 : 0);
    set->n_files++; /* counted now so ig_st_close frees it on any failure below */
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ig_err(errno == ENOENT ? IGNIS_E_NOT_FOUND : IGNIS_E_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return ig_err(IGNIS_E_IO, "%s: not a regular file", path);
    }
    f->len = (size_t)sb.st_size;
    if (f->len > 0) {
        void *m = mmap(NULL, f->len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            int e = errno;
            close(fd);
            f->len = 0;
            return ig_err(IGNIS_E_IO, "%s: mmap failed: %s", path, strerror(e));
        }
        f->map = m;
    }
    close(fd);
    return parse_header(set, f);
}

ignis_status ig_st_open_file(ig_st_set *set, const char *path)
{
    IG_TRY(map_file(set, path));
    return sort_and_check(set);
}

static ignis_status open_index(ig_st_set *set, const char *dir, const char *index_path)
{
    json_error_t jerr;
    json_t *root = json_load_file(index_path, 0, &jerr);
    const char *iname = "model.safetensors.index.json";
    if (!root) return ig_err(IGNIS_E_FORMAT, "%s: not valid JSON: %s (line %d)", iname, jerr.text, jerr.line);
    ignis_status st = IGNIS_OK;
    json_t *wm = json_object_get(root, "weight_map");
    if (!json_is_object(wm) || json_object_size(wm) == 0) {
        st = ig_err(IGNIS_E_FORMAT, "%s: missing or empty \"weight_map\" object", iname);
        goto out;
    }
    /* open each distinct shard once, in the order first named */
    const char *key;
    json_t *v;
    json_object_foreach(wm, key, v)
    {
        if (!json_is_string(v)) {
            st = ig_err(IGNIS_E_FORMAT, "%s: weight_map[\"%s\"] is not a file name", iname, key);
            goto out;
        }
        const char *shard = json_string_value(v);
        if (!*shard || strchr(shard, '/') || strcmp(shard, "..") == 0) {
            st = ig_err(IGNIS_E_FORMAT, "%s: weight_map[\"%s\"] = \"%s\" is not a file name in the model directory",
                        iname, key, shard);
            goto out;
        }
        bool seen = false;
        for (int i = 0; i < set->n_files; i++)
            if (strcmp(set->files[i].base, shard) == 0) seen = true;
        if (seen) continue;
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", dir, shard);
        if ((st = map_file(set, path)) != IGNIS_OK) {
            if (st == IGNIS_E_NOT_FOUND)
                ig_err(IGNIS_E_NOT_FOUND, "%s: shard %s (holding %s) not found in %s", iname, shard, key, dir);
            goto out;
        }
    }
    if ((st = sort_and_check(set)) != IGNIS_OK) goto out;
    json_object_foreach(wm, key, v)
    {
        const ig_st_tensor *t = ig_st_find(set, key);
        const char *shard = json_string_value(v);
        if (!t) {
            st = ig_err(IGNIS_E_FORMAT, "%s: tensor %s is mapped to %s, which does not contain it", iname, key, shard);
            goto out;
        }
        if (strcmp(t->file, shard) != 0) {
            st = ig_err(IGNIS_E_FORMAT, "%s: tensor %s is mapped to %s but found in %s", iname, key, shard, t->file);
            goto out;
        }
    }
out:
    json_decref(root);
    return st;
}

ignis_status ig_st_open_dir(ig_st_set *set, const char *dir)
{
    memset(set, 0, sizeof *set);
    snprintf(set->dir, sizeof set->dir, "%s", dir);
    char path[2048];
    struct stat sb;
    ignis_status st;
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    if (stat(path, &sb) == 0) {
        snprintf(set->index_name, sizeof set->index_name, "model.safetensors.index.json");
        st = open_index(set, dir, path);
    } else {
        snprintf(path, sizeof path, "%s/model.safetensors", dir);
        if (stat(path, &sb) != 0) {
            /* some exports use another single-file name: accept exactly one *.safetensors */
            DIR *dp = opendir(dir);
            if (!dp) return ig_err(IGNIS_E_NOT_FOUND, "%s: cannot open directory: %s", dir, strerror(errno));
            int found = 0;
            struct dirent *de;
            while ((de = readdir(dp))) {
                size_t l = strlen(de->d_name);
                if (l > 12 && strcmp(de->d_name + l - 12, ".safetensors") == 0) {
                    if (!found) snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
                    found++;
                }
            }
            closedir(dp);
            if (found > 1)
                return ig_err(IGNIS_E_FORMAT,
                              "%s: %d .safetensors files but no model.safetensors.index.json to order them", dir,
                              found);
            if (found == 0) {
                char bin[2048];
                snprintf(bin, sizeof bin, "%s/pytorch_model.bin", dir);
                bool has_bin = stat(bin, &sb) == 0;
                snprintf(bin, sizeof bin, "%s/pytorch_model.bin.index.json", dir);
                has_bin = has_bin || stat(bin, &sb) == 0;
                return ig_err(IGNIS_E_NOT_FOUND, "%s: no model.safetensors or model.safetensors.index.json%s", dir,
                              has_bin ? " (found PyTorch .bin weights: ignis reads safetensors only; re-save the "
                                        "model with save_pretrained(..., safe_serialization=True))"
                                      : "");
            }
        }
        st = ig_st_open_file(set, path);
    }
    if (st != IGNIS_OK) ig_st_close(set);
    return st;
}

void ig_st_close(ig_st_set *set)
{
    if (!set) return;
    for (int i = 0; i < set->n_tensors; i++)
        free((char *)set->tensors[i].name);
    free(set->tensors);
    for (int i = 0; i < set->n_files; i++) {
        if (set->files[i].map) munmap(set->files[i].map, set->files[i].len);
        free(set->files[i].path);
    }
    free(set->files);
    memset(set, 0, sizeof *set);
}

const ig_st_tensor *ig_st_find(const ig_st_set *set, const char *name)
{
    ig_st_tensor key = {.name = name};
    if (!set->n_tensors) return NULL;
    return bsearch(&key, set->tensors, (size_t)set->n_tensors, sizeof key, cmp_name);
}

const char *ig_st_where(const ig_st_set *set)
{
    if (set->index_name[0]) return set->index_name;
    return set->n_files == 1 ? set->files[0].base : "model.safetensors";
}
