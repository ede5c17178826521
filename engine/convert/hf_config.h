/* Hugging Face config.json -> ig_config, for the architectures ignis runs. */
#ifndef IG_HF_CONFIG_H
#define IG_HF_CONFIG_H

#include "core/dtype.h"
#include "model/model.h"

/* Parses DIR/config.json. *src_dtype receives torch_dtype (F32/F16/BF16), or -1 when the
 * config does not say. Unknown architectures and rope types fail with
 * IGNIS_E_UNSUPPORTED naming them. */
ignis_status ig_hf_config_load(const char *dir, ig_config *cfg, int *src_dtype);
/* Same, from a JSON text (`what` names it in messages). */
ignis_status ig_hf_config_parse(const char *json_text, const char *what, ig_config *cfg, int *src_dtype);
/* "LlamaForCausalLM, Qwen2ForCausalLM, ..." */
const char *ig_hf_supported_architectures(void);

#endif
