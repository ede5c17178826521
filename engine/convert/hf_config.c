#include "convert/hf_config.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "model/workspace.h"

const char *ig_hf_supported_architectures(void)
{
    return "LlamaForCausalLM, Qwen2ForCausalLM, InternLM2ForCausalLM, InternLMForCausalLM, QWenLMHeadModel";
}

/* Reads an integer key; absent -> def (or an error when required). */
static ignis_status get_int(json_t *o, const char *what, const char *key, bool required, int def, int *out)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) {
        if (required) return ig_err(IGNIS_E_FORMAT, "%s: missing required key \"%s\"", what, key);
        *out = def;
        return IGNIS_OK;
    }
    if (!json_is_integer(v) || json_integer_value(v) < -1 || json_integer_value(v) > INT32_MAX)
        return ig_err(IGNIS_E_FORMAT, "%s: \"%s\" must be an integer", what, key);
    *out = (int)json_integer_value(v);
    return IGNIS_OK;
}

static ignis_status get_num(json_t *o, const char *what, const char *key, bool required, double def, double *out)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) {
        if (required) return ig_err(IGNIS_E_FORMAT, "%s: missing required key \"%s\"", what, key);
        *out = def;
        return IGNIS_OK;
    }
    if (!json_is_number(v)) return ig_err(IGNIS_E_FORMAT, "%s: \"%s\" must be a number", what, key);
    *out = json_number_value(v);
    return IGNIS_OK;
}

static ignis_status get_bool(json_t *o, const char *what, const char *key, bool def, bool *out)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) {
        *out = def;
        return IGNIS_OK;
    }
    if (!json_is_boolean(v)) return ig_err(IGNIS_E_FORMAT, "%s: \"%s\" must be true or false", what, key);
    *out = json_is_true(v);
    return IGNIS_OK;
}

static ignis_status parse_rope(json_t *root, const char *what, ig_config *c)
{
    IG_TRY(get_num(root, what, "rope_theta", false, 10000.0, &c->rope.theta));
    c->rope.type = IG_ROPE_DEFAULT;
    c->rope.factor = 1.0;
    json_t *rs = json_object_get(root, "rope_scaling");
    /* transformers >= 5 writes one "rope_parameters" object holding rope_theta too */
    json_t *rp = json_object_get(root, "rope_parameters");
    if ((!rs || json_is_null(rs)) && json_is_object(rp)) {
        rs = rp;
        if (json_object_get(rp, "rope_theta")) {
            char pwhat[160];
            snprintf(pwhat, sizeof pwhat, "%s: rope_parameters", what);
            IG_TRY(get_num(rp, pwhat, "rope_theta", true, 10000.0, &c->rope.theta));
        }
    }
    if (!rs || json_is_null(rs)) return IGNIS_OK;
    if (!json_is_object(rs)) return ig_err(IGNIS_E_FORMAT, "%s: \"rope_scaling\" must be an object or null", what);
    json_t *jt = json_object_get(rs, "rope_type");
    if (!jt) jt = json_object_get(rs, "type");
    if (!json_is_string(jt))
        return ig_err(IGNIS_E_FORMAT, "%s: rope_scaling has no \"rope_type\" (or \"type\") string", what);
    const char *t = json_string_value(jt);
    const char *rw = "rope_scaling";
    char rwhat[160];
    snprintf(rwhat, sizeof rwhat, "%s: %s", what, rw);
    if (strcmp(t, "default") == 0) return IGNIS_OK;
    if (strcmp(t, "linear") == 0)
        c->rope.type = IG_ROPE_LINEAR;
    else if (strcmp(t, "dynamic") == 0)
        c->rope.type = IG_ROPE_DYNAMIC;
    else if (strcmp(t, "llama3") == 0)
        c->rope.type = IG_ROPE_LLAMA3;
    else
        return ig_err(IGNIS_E_UNSUPPORTED,
                      "%s: rope_scaling type \"%s\" is not supported (supported: default, linear, dynamic, llama3)",
                      what, t);
    IG_TRY(get_num(rs, rwhat, "factor", true, 1.0, &c->rope.factor));
    if (!(c->rope.factor > 0)) return ig_err(IGNIS_E_FORMAT, "%s: factor must be positive", rwhat);
    if (c->rope.type == IG_ROPE_LLAMA3) {
        IG_TRY(get_num(rs, rwhat, "low_freq_factor", true, 1.0, &c->rope.low_freq_factor));
        IG_TRY(get_num(rs, rwhat, "high_freq_factor", true, 4.0, &c->rope.high_freq_factor));
        IG_TRY(get_int(rs, rwhat, "original_max_position_embeddings", true, 8192, &c->rope.original_max_pos));
        if (!(c->rope.high_freq_factor > c->rope.low_freq_factor) || !(c->rope.low_freq_factor > 0) ||
            c->rope.original_max_pos <= 0)
            return ig_err(IGNIS_E_FORMAT,
                          "%s: llama3 needs 0 < low_freq_factor < high_freq_factor and a positive "
                          "original_max_position_embeddings",
                          rwhat);
    }
    return IGNIS_OK;
}

static ignis_status parse_ids(json_t *root, const char *what, ig_config *c)
{
    json_t *b = json_object_get(root, "bos_token_id");
    c->bos_id = -1;
    if (json_is_integer(b))
        c->bos_id = (int)json_integer_value(b);
    else if (b && !json_is_null(b))
        return ig_err(IGNIS_E_FORMAT, "%s: \"bos_token_id\" must be an integer", what);
    json_t *e = json_object_get(root, "eos_token_id");
    c->n_eos = 0;
    if (json_is_integer(e)) {
        c->eos_ids[c->n_eos++] = (int)json_integer_value(e);
    } else if (json_is_array(e)) {
        size_t i;
        json_t *x;
        json_array_foreach(e, i, x)
        {
            if (!json_is_integer(x)) return ig_err(IGNIS_E_FORMAT, "%s: eos_token_id[%zu] is not an integer", what, i);
            if (c->n_eos == IG_MAX_EOS)
                return ig_err(IGNIS_E_UNSUPPORTED, "%s: more than %d eos_token_id values", what, IG_MAX_EOS);
            c->eos_ids[c->n_eos++] = (int)json_integer_value(x);
        }
    } else if (e && !json_is_null(e)) {
        return ig_err(IGNIS_E_FORMAT, "%s: \"eos_token_id\" must be an integer or a list of integers", what);
    }
    return IGNIS_OK;
}

/* 4-bit AWQ/GPTQ checkpoints (LMDeploy's internlm-chat-20b-4bit) carry packed int weights
 * that this engine cannot run yet; say so before a tensor lookup fails obscurely. */
static ignis_status reject_quantized(json_t *root, const char *what)
{
    json_t *q = json_object_get(root, "quantization_config");
    if (!q || json_is_null(q)) return IGNIS_OK;
    const char *m = json_string_value(json_object_get(q, "quant_method"));
    return ig_err(IGNIS_E_UNSUPPORTED,
                  "%s: %s-quantized checkpoints (quantization_config) are not supported yet; use the fp16/bf16 "
                  "model",
                  what, m ? m : "weight");
}

/* InternLM (v1): Llama keys plus "bias" (q/k/v/o biases: true in internlm-chat-7b, false
 * in internlm-chat-20b) and an optional "rotary" object ({"base", "type": "origin"|"dynamic",
 * "scaling_factor"}) in place of rope_theta. */
static ignis_status parse_internlm(json_t *root, const char *what, ig_config *c)
{
    IG_TRY(get_bool(root, what, "bias", true, &c->qkv_bias)); /* and bo, the o_proj bias */
    json_t *rot = json_object_get(root, "rotary");
    if (!rot || json_is_null(rot)) return IGNIS_OK;
    if (!json_is_object(rot)) return ig_err(IGNIS_E_FORMAT, "%s: \"rotary\" must be an object", what);
    char rwhat[160];
    snprintf(rwhat, sizeof rwhat, "%s: rotary", what);
    IG_TRY(get_num(rot, rwhat, "base", false, c->rope.theta, &c->rope.theta));
    const char *t = json_string_value(json_object_get(rot, "type"));
    if (!t || !strcmp(t, "origin")) return IGNIS_OK;
    if (strcmp(t, "dynamic") != 0)
        return ig_err(IGNIS_E_UNSUPPORTED, "%s: type \"%s\" is not supported (origin, dynamic)", rwhat, t);
    c->rope.type = IG_ROPE_DYNAMIC;
    IG_TRY(get_num(rot, rwhat, "scaling_factor", false, 1.0, &c->rope.factor));
    if (!(c->rope.factor > 0)) return ig_err(IGNIS_E_FORMAT, "%s: scaling_factor must be positive", rwhat);
    return IGNIS_OK;
}

/* Qwen (v1), modeling_qwen.py's QWenConfig: kv_channels is head_dim, intermediate_size
 * is the sum of the two MLP branches (w1, w2 are each half), rotary_emb_base the RoPE
 * base, seq_length the training length past which use_dynamic_ntk / use_logn_attn act.
 * No GQA, RMSNorm with layer_norm_epsilon, c_attn always has a bias, and no_bias (true in
 * every published checkpoint) drops the others. */
static ignis_status parse_qwen(json_t *root, const char *what, ig_config *c)
{
    IG_TRY(get_int(root, what, "vocab_size", true, 0, &c->vocab_size));
    IG_TRY(get_int(root, what, "hidden_size", true, 0, &c->hidden));
    IG_TRY(get_int(root, what, "num_hidden_layers", true, 0, &c->n_layers));
    IG_TRY(get_int(root, what, "num_attention_heads", true, 0, &c->n_heads));
    if (c->n_heads <= 0) return ig_err(IGNIS_E_FORMAT, "%s: num_attention_heads must be positive", what);
    c->n_kv_heads = c->n_heads;
    IG_TRY(get_int(root, what, "kv_channels", false, c->hidden / c->n_heads, &c->head_dim));
    int inter2 = 0;
    IG_TRY(get_int(root, what, "intermediate_size", true, 0, &inter2));
    if (inter2 <= 0 || inter2 % 2)
        return ig_err(IGNIS_E_FORMAT, "%s: intermediate_size %d must be even (w1 and w2 are each half of it)", what,
                      inter2);
    c->inter = inter2 / 2;
    IG_TRY(get_int(root, what, "max_position_embeddings", false, 8192, &c->max_pos));
    IG_TRY(get_int(root, what, "seq_length", false, 2048, &c->seq_length));
    if (c->seq_length <= 1) return ig_err(IGNIS_E_FORMAT, "%s: seq_length must be > 1", what);
    double eps = 0;
    IG_TRY(get_num(root, what, "layer_norm_epsilon", false, 1e-6, &eps));
    c->norm_eps = (float)eps;
    c->rope.type = IG_ROPE_DEFAULT;
    c->rope.factor = 1.0;
    IG_TRY(get_num(root, what, "rotary_emb_base", false, 10000.0, &c->rope.theta));
    double pct = 1.0;
    IG_TRY(get_num(root, what, "rotary_pct", false, 1.0, &pct));
    if (pct != 1.0)
        return ig_err(IGNIS_E_UNSUPPORTED, "%s: rotary_pct %g is not supported (only 1.0: RoPE over the whole head)",
                      what, pct);
    IG_TRY(get_bool(root, what, "use_dynamic_ntk", false, &c->use_dynamic_ntk));
    IG_TRY(get_bool(root, what, "use_logn_attn", false, &c->use_logn_attn));
    bool nb = true;
    IG_TRY(get_bool(root, what, "no_bias", true, &nb));
    if (!nb) return ig_err(IGNIS_E_UNSUPPORTED, "%s: Qwen with no_bias=false is not supported", what);
    c->qkv_bias = true;
    IG_TRY(get_bool(root, what, "tie_word_embeddings", false, &c->tie_embeddings));
    IG_TRY(parse_ids(root, what, c));
    /* Qwen's config.json names no EOS; its generation_config.json and tokenizer stop at
     * <|endoftext|>, the first id past the 151643 ranks */
    if (c->n_eos == 0 && c->vocab_size > 151643) c->eos_ids[c->n_eos++] = 151643;
    return IGNIS_OK;
}

/* torch_dtype (or transformers 5's "dtype") -> *src_dtype, -1 when absent. */
static ignis_status parse_dtype(json_t *root, const char *what, int *src_dtype)
{
    *src_dtype = -1;
    json_t *td = json_object_get(root, "torch_dtype");
    if (!td) td = json_object_get(root, "dtype"); /* newer transformers write "dtype" */
    if (json_is_string(td)) {
        ig_dtype t;
        if (ig_dtype_from_str(json_string_value(td), &t) == 0 && t != IG_I32)
            *src_dtype = (int)t;
        else
            return ig_err(IGNIS_E_UNSUPPORTED, "%s: torch_dtype \"%s\" is not supported (float32, float16, bfloat16)",
                          what, json_string_value(td));
    }
    return IGNIS_OK;
}

/* The Llama layout's config keys, shared by Llama, Qwen2, InternLM2 and InternLM (v1),
 * then each family's bias keys. */
static ignis_status parse_llama_family(json_t *root, const char *what, ig_config *c)
{
    json_t *act = json_object_get(root, "hidden_act");
    if (json_is_string(act) && strcmp(json_string_value(act), "silu") != 0)
        return ig_err(IGNIS_E_UNSUPPORTED, "%s: hidden_act \"%s\" is not supported (only silu)", what,
                      json_string_value(act));

    IG_TRY(get_int(root, what, "vocab_size", true, 0, &c->vocab_size));
    IG_TRY(get_int(root, what, "hidden_size", true, 0, &c->hidden));
    IG_TRY(get_int(root, what, "num_hidden_layers", true, 0, &c->n_layers));
    IG_TRY(get_int(root, what, "num_attention_heads", true, 0, &c->n_heads));
    IG_TRY(get_int(root, what, "num_key_value_heads", false, c->n_heads, &c->n_kv_heads));
    IG_TRY(get_int(root, what, "intermediate_size", true, 0, &c->inter));
    IG_TRY(get_int(root, what, "max_position_embeddings", false, 4096, &c->max_pos));
    if (c->n_heads <= 0) return ig_err(IGNIS_E_FORMAT, "%s: num_attention_heads must be positive", what);
    int hd_default = c->hidden / c->n_heads;
    IG_TRY(get_int(root, what, "head_dim", false, hd_default, &c->head_dim));
    if (c->head_dim <= 0) c->head_dim = hd_default; /* some configs write null/0 */
    if (!json_object_get(root, "head_dim") && c->hidden % c->n_heads)
        return ig_err(IGNIS_E_FORMAT, "%s: hidden_size %d is not a multiple of num_attention_heads %d", what, c->hidden,
                      c->n_heads);
    double eps = 0;
    IG_TRY(get_num(root, what, "rms_norm_eps", false, 1e-6, &eps));
    c->norm_eps = (float)eps;
    IG_TRY(parse_rope(root, what, c));
    IG_TRY(get_bool(root, what, "tie_word_embeddings", false, &c->tie_embeddings));
    IG_TRY(parse_ids(root, what, c));

    bool b = false;
    switch (c->arch) {
    case IG_ARCH_QWEN2:
        c->qkv_bias = true;
        break;
    case IG_ARCH_LLAMA:
        IG_TRY(get_bool(root, what, "attention_bias", false, &b));
        if (b) return ig_err(IGNIS_E_UNSUPPORTED, "%s: attention_bias=true (bias on o_proj) is not supported", what);
        IG_TRY(get_bool(root, what, "mlp_bias", false, &b));
        if (b) return ig_err(IGNIS_E_UNSUPPORTED, "%s: mlp_bias=true is not supported", what);
        break;
    case IG_ARCH_INTERNLM2:
        IG_TRY(get_bool(root, what, "bias", false, &b));
        if (b) return ig_err(IGNIS_E_UNSUPPORTED, "%s: InternLM2 with bias=true is not supported", what);
        break;
    case IG_ARCH_INTERNLM:
        IG_TRY(parse_internlm(root, what, c));
        break;
    case IG_ARCH_QWEN: /* parse_qwen */
        break;
    }
    return IGNIS_OK;
}

static ignis_status parse_root(json_t *root, const char *what, ig_config *c, int *src_dtype)
{
    memset(c, 0, sizeof *c);
    if (!json_is_object(root)) return ig_err(IGNIS_E_FORMAT, "%s: not a JSON object", what);
    json_t *archs = json_object_get(root, "architectures");
    const char *aname = NULL;
    if (json_is_array(archs) && json_array_size(archs) > 0 && json_is_string(json_array_get(archs, 0)))
        aname = json_string_value(json_array_get(archs, 0));
    if (!aname)
        return ig_err(IGNIS_E_FORMAT, "%s: no \"architectures\" list (supported: %s)", what,
                      ig_hf_supported_architectures());
    if (ig_arch_from_hf_name(aname, &c->arch) != 0)
        return ig_err(IGNIS_E_UNSUPPORTED, "%s: architecture %s is not supported (supported: %s)", what, aname,
                      ig_hf_supported_architectures());
    snprintf(c->architecture, sizeof c->architecture, "%s", aname);
    json_t *mt = json_object_get(root, "model_type");
    snprintf(c->model_type, sizeof c->model_type, "%s",
             json_is_string(mt) ? json_string_value(mt) : ig_arch_model_type(c->arch));
    IG_TRY(c->arch == IG_ARCH_QWEN ? parse_qwen(root, what, c) : parse_llama_family(root, what, c));
    IG_TRY(reject_quantized(root, what));
    return parse_dtype(root, what, src_dtype);
}

ignis_status ig_hf_config_parse(const char *text, const char *what, ig_config *cfg, int *src_dtype)
{
    json_error_t jerr;
    json_t *root = json_loads(text, 0, &jerr);
    if (!root)
        return ig_err(IGNIS_E_FORMAT, "%s: not valid JSON: %s (line %d, column %d)", what, jerr.text, jerr.line,
                      jerr.column);
    ignis_status st = parse_root(root, what, cfg, src_dtype);
    json_decref(root);
    return st;
}

ignis_status ig_hf_config_load(const char *dir, ig_config *cfg, int *src_dtype)
{
    char path[2048];
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "rb");
    if (!f)
        return ig_err(errno == ENOENT ? IGNIS_E_NOT_FOUND : IGNIS_E_IO, "%s: cannot open: %s", path, strerror(errno));
    json_error_t jerr;
    json_t *root = json_loadf(f, 0, &jerr);
    fclose(f);
    if (!root)
        return ig_err(IGNIS_E_FORMAT, "%s: not valid JSON: %s (line %d, column %d)", path, jerr.text, jerr.line,
                      jerr.column);
    ignis_status st = parse_root(root, path, cfg, src_dtype);
    json_decref(root);
    return st;
}
