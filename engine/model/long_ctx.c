/* Qwen (v1) long-context extrapolation: dynamic NTK RoPE base and log-n query scaling,
 * as Qwen's modeling_qwen.py computes them (get_ntk_alpha, RotaryEmbedding, logn_tensor).
 * Both are the identity up to seq_length tokens, so a model run within its training
 * length is plain RoPE attention. */
#include <math.h>

#include "model/model.h"

bool ig_config_has_long_ctx(const ig_config *c)
{
    return c->seq_length > 0 && (c->use_dynamic_ntk || c->use_logn_attn);
}

double ig_qwen_ntk_alpha(const ig_config *c, int len)
{
    if (!c->use_dynamic_ntk || c->seq_length <= 0 || len <= c->seq_length) return 1.0;
    /* Qwen: alpha = 2^ceil(log2(len / seq_length) + 1) - 1, in integers (as the CUDA twin,
     * kernels/long_ctx.cu): the smallest k with seq_length * 2^k >= len is that ceil. */
    int k = 0;
    while (((long long)c->seq_length << k) < len)
        k++;
    return (double)((1LL << (k + 1)) - 1);
}

void ig_qwen_inv_freq(const ig_config *c, int len, float *inv_freq)
{
    /* Qwen's table is the default RoPE one (fp32 1 / base^(arange(0, d, 2) / d)) over the
     * NTK-grown base, which ig_rope_inv_freq applies */
    ig_rope_inv_freq(c, len, inv_freq);
}

float ig_logn_scale(const ig_config *c, int pos)
{
    if (!c->use_logn_attn || c->seq_length <= 1 || pos + 1 <= c->seq_length) return 1.0f;
    /* Qwen: logn_list[i] = math.log(i, seq_length) for i in 1.., indexed by position */
    return (float)(log((double)pos + 1.0) / log((double)c->seq_length));
}
