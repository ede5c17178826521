/*
 * config.json of the first-generation InternLM and Qwen checkpoints the LMDeploy tutorial
 * runs, as published on the Hub (trimmed of keys ignis ignores), parsed into ig_config;
 * and Qwen's long-context numbers against values worked out by hand from modeling_qwen.py.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "convert/hf_config.h"
#include "test_util.h"

static const char k_qwen7b_chat[] =
    "{\"architectures\": [\"QWenLMHeadModel\"], \"bf16\": false, \"fp16\": false, \"fp32\": false,"
    " \"hidden_size\": 4096, \"intermediate_size\": 22016, \"kv_channels\": 128, \"layer_norm_epsilon\": 1e-06,"
    " \"max_position_embeddings\": 8192, \"model_type\": \"qwen\", \"no_bias\": true, \"num_attention_heads\": 32,"
    " \"num_hidden_layers\": 32, \"onnx_safe\": null, \"rotary_emb_base\": 10000, \"rotary_pct\": 1.0,"
    " \"scale_attn_weights\": true, \"seq_length\": 8192, \"tie_word_embeddings\": false,"
    " \"tokenizer_class\": \"QWenTokenizer\", \"use_dynamic_ntk\": true, \"use_flash_attn\": \"auto\","
    " \"use_logn_attn\": true, \"vocab_size\": 151936}";

static const char k_internlm_chat_20b[] =
    "{\"architectures\": [\"InternLMForCausalLM\"], \"bias\": false, \"bos_token_id\": 1, \"eos_token_id\": 2,"
    " \"hidden_act\": \"silu\", \"hidden_size\": 5120, \"intermediate_size\": 13824,"
    " \"max_position_embeddings\": 4096, \"model_type\": \"internlm\", \"num_attention_heads\": 40,"
    " \"num_hidden_layers\": 60, \"num_key_value_heads\": 40, \"pad_token_id\": 2, \"rms_norm_eps\": 1e-06,"
    " \"rotary\": {\"base\": 10000, \"type\": \"dynamic\"}, \"tie_word_embeddings\": false,"
    " \"torch_dtype\": \"bfloat16\", \"vocab_size\": 103168}";

static const char k_internlm_chat_7b[] =
    "{\"architectures\": [\"InternLMForCausalLM\"], \"bias\": true, \"bos_token_id\": 1, \"eos_token_id\": 2,"
    " \"hidden_act\": \"silu\", \"hidden_size\": 4096, \"intermediate_size\": 11008,"
    " \"max_position_embeddings\": 2048, \"model_type\": \"internlm\", \"num_attention_heads\": 32,"
    " \"num_hidden_layers\": 32, \"rms_norm_eps\": 1e-06, \"torch_dtype\": \"float16\", \"vocab_size\": 103168}";

static void test_qwen_v1_config_maps_its_own_keys(void **state)
{
    (void)state;
    ig_config c;
    int dt;
    TU_CHECK(ig_hf_config_parse(k_qwen7b_chat, "Qwen-7B-Chat", &c, &dt));
    assert_int_equal(c.arch, IG_ARCH_QWEN);
    assert_int_equal(c.head_dim, 128);  /* kv_channels */
    assert_int_equal(c.inter, 11008);   /* each of w1, w2: half of 22016 */
    assert_int_equal(c.n_kv_heads, 32); /* no GQA */
    assert_true(fabs(c.rope.theta - 1e4) < 1e-9);
    assert_true(fabsf(c.norm_eps - 1e-6f) < 1e-12f);
    assert_int_equal(c.seq_length, 8192);
    assert_true(c.use_dynamic_ntk && c.use_logn_attn && c.qkv_bias && !c.tie_embeddings);
    assert_int_equal(c.n_eos, 1);
    assert_int_equal(c.eos_ids[0], 151643); /* <|endoftext|> */
    assert_int_equal(dt, -1);
}

static void test_internlm_v1_configs_with_and_without_bias(void **state)
{
    (void)state;
    ig_config c;
    int dt;
    TU_CHECK(ig_hf_config_parse(k_internlm_chat_20b, "internlm-chat-20b", &c, &dt));
    assert_int_equal(c.arch, IG_ARCH_INTERNLM);
    assert_false(c.qkv_bias);
    assert_false(ig_config_has_o_bias(&c));
    assert_int_equal(c.rope.type, IG_ROPE_DYNAMIC);
    assert_true(fabs(c.rope.factor - 1.0) < 1e-12);
    assert_int_equal(c.head_dim, 128);
    assert_int_equal(dt, IG_BF16);
    TU_CHECK(ig_hf_config_parse(k_internlm_chat_7b, "internlm-chat-7b", &c, &dt));
    assert_true(c.qkv_bias);
    assert_true(ig_config_has_o_bias(&c));
    assert_int_equal(c.rope.type, IG_ROPE_DEFAULT);
}

static void expect_parse_error(const char *json, ignis_status want, const char *needle)
{
    ig_config c;
    int dt;
    ignis_status s = ig_hf_config_parse(json, "cfg", &c, &dt);
    if (s != want || !strstr(ignis_last_error(), needle))
        fail_msg("expected %s with '%s', got %s: %s", ignis_status_name(want), needle, ignis_status_name(s),
                 ignis_last_error());
}

static void test_unsupported_variants_fail_clearly(void **state)
{
    (void)state;
    char buf[4096];
    /* partial rotary */
    snprintf(buf, sizeof buf, "%s", k_qwen7b_chat);
    memcpy(strstr(buf, "\"rotary_pct\": 1.0"), "\"rotary_pct\": 0.5", 17);
    expect_parse_error(buf, IGNIS_E_UNSUPPORTED, "rotary_pct");
    /* 4-bit AWQ, as LMDeploy's internlm-chat-20b-4bit */
    snprintf(buf, sizeof buf, "%.*s, \"quantization_config\": {\"quant_method\": \"awq\", \"bits\": 4}}",
             (int)strlen(k_internlm_chat_20b) - 1, k_internlm_chat_20b);
    expect_parse_error(buf, IGNIS_E_UNSUPPORTED, "not supported yet");
}

/* modeling_qwen.py: alpha = max(2^ceil(log2(len/seq_length) + 1) - 1, 1) when len >
 * seq_length; logn_list[i] = log(i, seq_length) for i > seq_length (i = position + 1). */
static void test_qwen_ntk_alpha_and_logn_scale(void **state)
{
    (void)state;
    ig_config c;
    int dt;
    TU_CHECK(ig_hf_config_parse(k_qwen7b_chat, "Qwen-7B-Chat", &c, &dt));
    assert_true(ig_qwen_ntk_alpha(&c, 8192) == 1.0);
    assert_true(ig_qwen_ntk_alpha(&c, 8193) == 3.0);  /* log2(~1) + 1 -> ceil 2 */
    assert_true(ig_qwen_ntk_alpha(&c, 16384) == 3.0); /* log2(2) + 1 = 2 */
    assert_true(ig_qwen_ntk_alpha(&c, 16385) == 7.0);
    assert_true(ig_qwen_ntk_alpha(&c, 32768) == 7.0);
    assert_true(ig_logn_scale(&c, 8191) == 1.0f);
    assert_true(fabsf(ig_logn_scale(&c, 16383) - 14.0f / 13.0f) < 1e-6f);
    float inv[64];
    ig_qwen_inv_freq(&c, 16385, inv); /* base 1e4 * 7^(128/126) */
    double base = 1e4 * pow(7.0, 128.0 / 126.0);
    assert_true(fabsf(inv[1] - (float)(1.0 / pow(base, 2.0 / 128))) < 1e-9f);
    c.use_dynamic_ntk = c.use_logn_attn = false;
    assert_true(ig_qwen_ntk_alpha(&c, 100000) == 1.0);
    assert_true(ig_logn_scale(&c, 100000) == 1.0f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_qwen_v1_config_maps_its_own_keys),
        cmocka_unit_test(test_internlm_v1_configs_with_and_without_bias),
        cmocka_unit_test(test_unsupported_variants_fail_clearly),
        cmocka_unit_test(test_qwen_ntk_alpha_and_logn_scale),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
