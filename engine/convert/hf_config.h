/* Hugging Face config.json -> ig_config, for the architectures ignis runs. */
#ifndef IG_HF_CONFIG_H
#define IG_HF_CONFIG_H

#include <jansson.h>

#include "core/dtype.h"
#include "model/model.h"

/* Parses DIR/config.json. *src_dtype receives torch_dtype (F32/F16/BF16), or -1 when the
 * config does not say. Unknown architectures and rope types fail with
 * IGNIS_E_UNSUPPORTED naming them. */
ignis_status ig_hf_config_load(const char *dir, ig_config *cfg, int *src_dtype);
/* Same, from a JSON text (`what` names it in messages). */
ignis_status ig_hf_config_parse(const char *json_text, const char *what, ig_config *cfg, int *src_dtype);
/* Adds to a workspace's "model" object the ig_config keys beyond the common set that
 * convert.c writes: Qwen (v1)'s seq_length, use_dynamic_ntk and use_logn_attn (workspace.c
 * reads them back; absent for other architectures). */
void ig_config_model_json_extras(const ig_config *cfg, json_t *model);
/* "LlamaForCausalLM, Qwen2ForCausalLM, ..." */
const char *ig_hf_supported_architectures(void);

#endif
