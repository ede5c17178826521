#include "dtype.h"

#include <string.h>
#include <strings.h>

const char *ig_dtype_str(ig_dtype t)
{
    switch (t) {
    case IG_F32:
        return "fp32";
    case IG_F16:
        return "fp16";
    case IG_BF16:
        return "bf16";
    case IG_I32:
        return "int32";
    }
    return "?";
}

int ig_dtype_from_str(const char *s, ig_dtype *out)
{
    static const struct {
        const char *name;
        ig_dtype t;
    } tab[] = {
        {"fp32", IG_F32},      {"float32", IG_F32}, {"F32", IG_F32},   {"fp16", IG_F16},
        {"float16", IG_F16},   {"half", IG_F16},    {"F16", IG_F16},   {"bf16", IG_BF16},
        {"bfloat16", IG_BF16}, {"BF16", IG_BF16},   {"int32", IG_I32}, {"I32", IG_I32},
    };
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++)
        if (strcasecmp(s, tab[i].name) == 0) {
            *out = tab[i].t;
            return 0;
        }
    return -1;
}

/* Loads element i through memcpy: safetensors data sits at any byte offset of its file,
 * so a source row need not be aligned for its type (a plain load would be undefined). */
static inline uint16_t load_u16(const void *p, size_t i)
{
    uint16_t v;
    memcpy(&v, (const char *)p + i * 2, 2);
    return v;
}

static inline float load_f32(const void *p, size_t i)
{
    float v;
    memcpy(&v, (const char *)p + i * 4, 4);
    return v;
}

void ig_to_f32(float *dst, const void *src, ig_dtype t, size_t n)
{
    switch (t) {
    case IG_F32:
        memcpy(dst, src, n * 4);
        break;
    case IG_F16:
        for (size_t i = 0; i < n; i++)
            dst[i] = ig_f16_to_f32(load_u16(src, i));
        break;
    case IG_BF16:
        for (size_t i = 0; i < n; i++)
            dst[i] = ig_bf16_to_f32(load_u16(src, i));
        break;
    case IG_I32:
        for (size_t i = 0; i < n; i++) {
            int32_t v;
            memcpy(&v, (const char *)src + i * 4, 4);
            dst[i] = (float)v;
        }
        break;
    }
}

void ig_from_f32(void *dst, ig_dtype t, const float *src, size_t n)
{
    switch (t) {
    case IG_F32:
        memcpy(dst, src, n * 4);
        break;
    case IG_F16: {
        uint16_t *d = dst;
        for (size_t i = 0; i < n; i++)
            d[i] = ig_f32_to_f16(load_f32(src, i));
        break;
    }
    case IG_BF16: {
        uint16_t *d = dst;
        for (size_t i = 0; i < n; i++)
            d[i] = ig_f32_to_bf16(load_f32(src, i));
        break;
    }
    case IG_I32: {
        int32_t *d = dst;
        for (size_t i = 0; i < n; i++)
            d[i] = (int32_t)load_f32(src, i);
        break;
    }
    }
}
