/* Element types of tensors and the scalar conversions between them. The conversions are
 * round-to-nearest-even, bit-exact with CUDA's __float2half_rn / __float2bfloat16_rn, so
 * the CPU and CUDA backends see identical weights. */
#ifndef IG_DTYPE_H
#define IG_DTYPE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef enum ig_dtype { IG_F32 = 0, IG_F16 = 1, IG_BF16 = 2, IG_I32 = 3 } ig_dtype;

static inline size_t ig_dtype_size(ig_dtype t) { return t == IG_F16 || t == IG_BF16 ? 2 : 4; }
const char *ig_dtype_str(ig_dtype t);                /* "fp32", "fp16", "bf16", "int32" */
int ig_dtype_from_str(const char *s, ig_dtype *out); /* 0 on success */

static inline float ig_bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static inline uint32_t ig_f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static inline float ig_bf16_to_f32(uint16_t h) { return ig_bits_f32((uint32_t)h << 16); }

static inline uint16_t ig_f32_to_bf16(float f)
{
    uint32_t u = ig_f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

static inline float ig_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t man = h & 0x3ffu;
    if (exp == 0x1f) return ig_bits_f32(sign | 0x7f800000u | (man << 13));
    if (exp == 0) {
        if (man == 0) return ig_bits_f32(sign);
        /* subnormal: value = man * 2^-24 */
        float v = (float)man * 5.9604644775390625e-8f;
        return sign ? -v : v;
    }
    return ig_bits_f32(sign | ((exp + 112) << 23) | (man << 13));
}

static inline uint16_t ig_f32_to_f16(float f)
{
    uint32_t u = ig_f32_bits(f);
    uint32_t sign = (u >> 16) & 0x8000u;
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return (uint16_t)(sign | 0x7e00u);  /* NaN */
    if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); /* overflow rounds to inf */
    if (a < 0x38800000u) {
        /* result is subnormal or zero: round a * 2^24 to an integer, nearest-even */
        if (a < 0x33000000u) return (uint16_t)sign; /* < 2^-25: rounds to zero */
        uint32_t e = a >> 23, m = (a & 0x7fffffu) | 0x800000u;
        uint32_t shift = 126 - e; /* 14..24 */
        uint32_t r = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (r & 1u))) r++;
        return (uint16_t)(sign | r);
    }
    uint32_t r = a + 0xfffu + ((a >> 13) & 1u); /* round mantissa to 10 bits, nearest-even */
    r -= 0x38000000u;                           /* rebias exponent 127 -> 15 */
    return (uint16_t)(sign | (r >> 13));
}

/* Converts n elements of src (type t) to fp32. */
void ig_to_f32(float *dst, const void *src, ig_dtype t, size_t n);
/* Converts n fp32 elements to type t (fp32, fp16 or bf16). */
void ig_from_f32(void *dst, ig_dtype t, const float *src, size_t n);

#endif
