#include "test_convert_fixture.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dtype.h"
#include "test_util.h"

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void add(tc_model *m, uint64_t *rng, const char *name, int ndim, int64_t d0, int64_t d1)
{
    m->t = realloc(m->t, (size_t)(m->n + 1) * sizeof *m->t);
    tc_tensor *t = &m->t[m->n++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    snprintf(t->dtype, sizeof t->dtype, "%s", m->dtype);
    t->ndim = ndim;
    t->shape[0] = d0;
    t->shape[1] = ndim == 2 ? d1 : 0;
    int64_t numel = ndim == 2 ? d0 * d1 : d0;
    size_t es = strcmp(m->dtype, "F32") == 0 ? 4 : 2;
    t->bytes = (size_t)numel * es;
    t->data = malloc(t->bytes ? t->bytes : 1);
    t->shard = (m->n % 2);
    for (int64_t i = 0; i < numel; i++) {
        float v = (float)((double)(rng_next(rng) >> 11) / 9007199254740992.0 * 2.0 - 1.0);
        if (es == 4)
            memcpy(t->data + i * 4, &v, 4);
        else {
            uint16_t h = strcmp(m->dtype, "F16") == 0 ? ig_f32_to_f16(v) : ig_f32_to_bf16(v);
            memcpy(t->data + i * 2, &h, 2);
        }
    }
}

void tc_model_init(tc_model *m, tc_arch arch, uint64_t seed) { tc_model_init_as(m, arch, seed, "F32"); }

void tc_model_init_as(tc_model *m, tc_arch arch, uint64_t seed, const char *dtype)
{
    memset(m, 0, sizeof *m);
    m->arch = arch;
    m->vocab = 51;
    m->hidden = 32;
    m->layers = 2;
    m->heads = 4;
    m->kv_heads = arch == TC_LLAMA2 ? 4 : 2;
    m->head_dim = 8;
    m->inter = 48;
    m->tie = arch == TC_QWEN2;
    m->dtype = dtype;
    uint64_t rng = seed * 0x9e3779b97f4a7c15ull + 1;
    int q = m->heads * m->head_dim, kv = m->kv_heads * m->head_dim, H = m->hidden;
    bool ilm = arch == TC_INTERNLM2;
    char n[128];
    add(m, &rng, ilm ? "model.tok_embeddings.weight" : "model.embed_tokens.weight", 2, m->vocab, H);
    add(m, &rng, "model.norm.weight", 1, H, 0);
    if (!m->tie) add(m, &rng, ilm ? "output.weight" : "lm_head.weight", 2, m->vocab, H);
    for (int l = 0; l < m->layers; l++) {
#define L(fmt) (snprintf(n, sizeof n, "model.layers.%d." fmt, l), n)
        snprintf(n, sizeof n, "model.layers.%d.%s", l, ilm ? "attention_norm.weight" : "input_layernorm.weight");
        add(m, &rng, n, 1, H, 0);
        snprintf(n, sizeof n, "model.layers.%d.%s", l, ilm ? "ffn_norm.weight" : "post_attention_layernorm.weight");
        add(m, &rng, n, 1, H, 0);
        if (ilm) {
            add(m, &rng, L("attention.wqkv.weight"), 2, q + 2 * kv, H);
            add(m, &rng, L("attention.wo.weight"), 2, H, q);
            add(m, &rng, L("feed_forward.w1.weight"), 2, m->inter, H);
            add(m, &rng, L("feed_forward.w3.weight"), 2, m->inter, H);
            add(m, &rng, L("feed_forward.w2.weight"), 2, H, m->inter);
        } else {
            add(m, &rng, L("self_attn.q_proj.weight"), 2, q, H);
            add(m, &rng, L("self_attn.k_proj.weight"), 2, kv, H);
            add(m, &rng, L("self_attn.v_proj.weight"), 2, kv, H);
            if (arch == TC_QWEN2) {
                add(m, &rng, L("self_attn.q_proj.bias"), 1, q, 0);
                add(m, &rng, L("self_attn.k_proj.bias"), 1, kv, 0);
                add(m, &rng, L("self_attn.v_proj.bias"), 1, kv, 0);
            }
            add(m, &rng, L("self_attn.o_proj.weight"), 2, H, q);
            add(m, &rng, L("mlp.gate_proj.weight"), 2, m->inter, H);
            add(m, &rng, L("mlp.up_proj.weight"), 2, m->inter, H);
            add(m, &rng, L("mlp.down_proj.weight"), 2, H, m->inter);
        }
#undef L
    }
}

void tc_model_free(tc_model *m)
{
    for (int i = 0; i < m->n; i++)
        free(m->t[i].data);
    free(m->t);
    memset(m, 0, sizeof *m);
}

tc_tensor *tc_find(tc_model *m, const char *name)
{
    for (int i = 0; i < m->n; i++)
        if (strcmp(m->t[i].name, name) == 0) return &m->t[i];
    return NULL;
}

void tc_remove(tc_model *m, const char *name)
{
    for (int i = 0; i < m->n; i++)
        if (strcmp(m->t[i].name, name) == 0) {
            free(m->t[i].data);
            memmove(&m->t[i], &m->t[i + 1], (size_t)(m->n - i - 1) * sizeof *m->t);
            m->n--;
            return;
        }
}

float tc_value(const tc_tensor *t, int64_t i)
{
    if (strcmp(t->dtype, "F32") == 0) {
        float v;
        memcpy(&v, t->data + i * 4, 4);
        return v;
    }
    uint16_t h;
    memcpy(&h, t->data + i * 2, 2);
    return strcmp(t->dtype, "F16") == 0 ? ig_f16_to_f32(h) : ig_bf16_to_f32(h);
}

void tc_write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    if (!f) fail_msg("cannot write %s", path);
    fputs(text, f);
    fclose(f);
}

void tc_write_safetensors(const char *path, tc_tensor *const *t, int n)
{
    json_t *h = json_object();
    json_object_set_new(h, "__metadata__", json_pack("{s:s}", "format", "pt"));
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        json_t *shape = json_array();
        for (int k = 0; k < t[i]->ndim; k++)
            json_array_append_new(shape, json_integer(t[i]->shape[k]));
        json_object_set_new(h, t[i]->name,
                            json_pack("{s:s, s:o, s:[I, I]}", "dtype", t[i]->dtype, "shape", shape, "data_offsets",
                                      (json_int_t)off, (json_int_t)(off + t[i]->bytes)));
        off += t[i]->bytes;
    }
    char *text = json_dumps(h, JSON_COMPACT);
    json_decref(h);
    uint64_t hl = strlen(text);
    FILE *f = fopen(path, "wb");
    if (!f) fail_msg("cannot write %s", path);
    fwrite(&hl, 8, 1, f);
    fwrite(text, 1, hl, f);
    for (int i = 0; i < n; i++)
        fwrite(t[i]->data, 1, t[i]->bytes, f);
    fclose(f);
    free(text);
}

void tc_write_config(const tc_model *m, const char *dir, const char *extra)
{
    static const char *arch_names[] = {"LlamaForCausalLM", "LlamaForCausalLM", "Qwen2ForCausalLM",
                                       "InternLM2ForCausalLM"};
    static const char *types[] = {"llama", "llama", "qwen2", "internlm2"};
    const char *td = strcmp(m->dtype, "F32") == 0 ? "float32" : strcmp(m->dtype, "F16") == 0 ? "float16" : "bfloat16";
    char text[4096], path[4096];
    snprintf(text, sizeof text,
             "{\n  \"architectures\": [\"%s\"],\n  \"model_type\": \"%s\",\n  \"vocab_size\": %d,\n"
             "  \"hidden_size\": %d,\n  \"intermediate_size\": %d,\n  \"num_hidden_layers\": %d,\n"
             "  \"num_attention_heads\": %d,\n  \"num_key_value_heads\": %d,\n  \"max_position_embeddings\": 256,\n"
             "  \"rms_norm_eps\": 1e-06,\n  \"rope_theta\": 10000.0,\n  \"hidden_act\": \"silu\",\n"
             "  \"bos_token_id\": 1,\n  \"eos_token_id\": %s,\n  \"tie_word_embeddings\": %s,\n"
             "  \"torch_dtype\": \"%s\"%s%s\n}\n",
             arch_names[m->arch], types[m->arch], m->vocab, m->hidden, m->inter, m->layers, m->heads, m->kv_heads,
             m->arch == TC_LLAMA3 ? "[2, 7]" : "2", m->tie ? "true" : "false", td, extra ? ",\n  " : "",
             extra ? extra : "");
    snprintf(path, sizeof path, "%s/config.json", dir);
    tc_write_text(path, text);
}

void tc_write(const tc_model *m, const char *dir, const char *extra, bool sharded)
{
    tc_write_config(m, dir, extra);
    char path[4096];
    tc_tensor **all = malloc(sizeof *all * (size_t)m->n);
    if (!sharded) {
        for (int i = 0; i < m->n; i++)
            all[i] = &m->t[i];
        snprintf(path, sizeof path, "%s/model.safetensors", dir);
        tc_write_safetensors(path, all, m->n);
    } else {
        json_t *wm = json_object();
        for (int s = 0; s < 2; s++) {
            int k = 0;
            char shard[64];
            snprintf(shard, sizeof shard, "model-%05d-of-00002.safetensors", s + 1);
            for (int i = 0; i < m->n; i++)
                if (m->t[i].shard == s) {
                    all[k++] = &m->t[i];
                    json_object_set_new(wm, m->t[i].name, json_string(shard));
                }
            snprintf(path, sizeof path, "%s/%s", dir, shard);
            tc_write_safetensors(path, all, k);
        }
        json_t *idx = json_pack("{s:{s:i}, s:o}", "metadata", "total_size", 0, "weight_map", wm);
        snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
        json_dump_file(idx, path, JSON_INDENT(2));
        json_decref(idx);
    }
    free(all);
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    tc_write_text(path, "{\"model_max_length\": 256}\n");
}
