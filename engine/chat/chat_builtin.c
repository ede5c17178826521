/* Built-in chat templates, in LMDeploy's layout (model.py's BaseChatTemplate fields), and
 * the model-name -> template-name mapping. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "chat_internal.h"

static const char k_internlm_meta[] =
    "You are an AI assistant whose name is InternLM (书生·浦语).\n"
    "- InternLM (书生·浦语) is a conversational language model that is developed by Shanghai AI Laboratory "
    "(上海人工智能实验室). It is designed to be helpful, honest, and harmless.\n"
    "- InternLM (书生·浦语) can understand and communicate fluently in the language chosen by the user such as "
    "English and 中文.\n";

static const char k_llama2_meta[] =
    "You are a helpful, respectful and honest assistant. Always answer as helpfully as possible, while being safe. "
    "Your answers should not include any harmful, unethical, racist, sexist, toxic, dangerous, or illegal content. "
    "Please ensure that your responses are socially unbiased and positive in nature.\n\n"
    "If a question does not make any sense, or is not factually coherent, explain why instead of answering "
    "something not correct. If you don't know the answer to a question, please don't share false information.";

static const ig_chat_fields k_builtins[] = {
    {.name = "base"},
    {.name = "internlm2",
     .system = "<|im_start|>system\n",
     .meta_instruction = k_internlm_meta,
     .eosys = "<|im_end|>\n",
     .user = "<|im_start|>user\n",
     .eoh = "<|im_end|>\n",
     .assistant = "<|im_start|>assistant\n",
     .eoa = "<|im_end|>",
     .separator = "\n",
     .tool = "<|im_start|>environment\n",
     .eotool = "<|im_end|>\n",
     .stop_words = {"<|im_end|>", "<|action_end|>"}},
    /* InternLM (v1) chat, LMDeploy's InternLMChat7B (model.py, v0.2-v0.5): "<|User|>:" turns
     * end with "\n" (LMDeploy's eoh, where InternLM's own HF template writes "<eoh>\n"),
     * answers with "<eoa>" then the "\n" separator; <eoa> stops generation. */
    {.name = "internlm",
     .system = "<|System|>:",
     .meta_instruction = k_internlm_meta,
     .eosys = "\n",
     .user = "<|User|>:",
     .eoh = "\n",
     .assistant = "<|Bot|>:",
     .eoa = "<eoa>",
     .separator = "\n",
     .stop_words = {"<eoa>"}},
    {.name = "llama2",
     .system = "[INST] <<SYS>>\n",
     .meta_instruction = k_llama2_meta,
     .eosys = "\n<</SYS>>\n\n",
     .assistant = " [/INST] ",
     .eoa = "</s>",
     .separator = "<s>[INST] ",
     .stop_words = {"</s>"}},
    {.name = "llama3",
     .prefix = "<|begin_of_text|>",
     .system = "<|start_header_id|>system<|end_header_id|>\n\n",
     .eosys = "<|eot_id|>",
     .user = "<|start_header_id|>user<|end_header_id|>\n\n",
     .eoh = "<|eot_id|>",
     .assistant = "<|start_header_id|>assistant<|end_header_id|>\n\n",
     .eoa = "<|eot_id|>",
     .tool = "<|start_header_id|>ipython<|end_header_id|>\n\n",
     .eotool = "<|eot_id|>",
     .stop_words = {"<|eot_id|>", "<|end_of_text|>", "<|eom_id|>"}},
    {.name = "qwen",
     .system = "<|im_start|>system\n",
     .meta_instruction = "You are a helpful assistant.",
     .eosys = "<|im_end|>\n",
     .user = "<|im_start|>user\n",
     .eoh = "<|im_end|>\n",
     .assistant = "<|im_start|>assistant\n",
     .eoa = "<|im_end|>",
     .separator = "\n",
     .tool = "<|im_start|>tool\n",
     .eotool = "<|im_end|>\n",
     .stop_words = {"<|im_end|>"}},
    {.name = "chatml",
     .system = "<|im_start|>system\n",
     .eosys = "<|im_end|>\n",
     .user = "<|im_start|>user\n",
     .eoh = "<|im_end|>\n",
     .assistant = "<|im_start|>assistant\n",
     .eoa = "<|im_end|>",
     .separator = "\n",
     .tool = "<|im_start|>tool\n",
     .eotool = "<|im_end|>\n",
     .stop_words = {"<|im_end|>"}},
};

const ig_chat_fields *ig_chat_builtin(const char *name)
{
    for (size_t i = 0; i < sizeof k_builtins / sizeof k_builtins[0]; i++)
        if (!strcmp(k_builtins[i].name, name)) return &k_builtins[i];
    return NULL;
}

void ig_chat_builtin_names(char *buf, size_t cap)
{
    size_t off = 0;
    buf[0] = 0;
    for (size_t i = 0; i < sizeof k_builtins / sizeof k_builtins[0] && off < cap; i++) {
        int w = snprintf(buf + off, cap - off, "%s%s", i ? ", " : "", k_builtins[i].name);
        if (w < 0) break;
        off += (size_t)w;
    }
}

/* LMDeploy's registered model names (model.py, MODELS.register_module) for the families
 * ignis runs, as `lmdeploy list` printed them, and the built-in each one picks. */
static const struct {
    const char *model, *tmpl;
} k_model_names[] = {
    {"base", "base"},
    {"internlm", "internlm"},
    {"internlm-chat", "internlm"},
    {"internlm-chat-7b", "internlm"},
    {"internlm-chat-7b-8k", "internlm"},
    {"internlm-chat-20b", "internlm"},
    {"internlm-20b", "base"}, /* LMDeploy: completion only */
    {"internlm2", "internlm2"},
    {"internlm2-chat-1_8b", "internlm2"},
    {"internlm2-chat-7b", "internlm2"},
    {"internlm2-chat-20b", "internlm2"},
    {"llama2", "llama2"},
    {"llama3", "llama3"},
    {"qwen", "qwen"},
    {"qwen-7b", "qwen"},
    {"qwen-14b", "qwen"},
    {"chatml", "chatml"},
};

const char *ignis_chat_builtin_name(int i)
{
    return i >= 0 && (size_t)i < sizeof k_builtins / sizeof k_builtins[0] ? k_builtins[i].name : NULL;
}

const char *ignis_chat_model_name(int i, const char **tmpl)
{
    if (i < 0 || (size_t)i >= sizeof k_model_names / sizeof k_model_names[0]) return NULL;
    if (tmpl) *tmpl = k_model_names[i].tmpl;
    return k_model_names[i].model;
}

const char *ignis_chat_template_for_model(const char *model_name)
{
    if (!model_name) return NULL;
    /* only the last path component names the model ("/models/Qwen2-7B-Instruct/") */
    char low[256];
    size_t n = strlen(model_name);
    while (n > 1 && model_name[n - 1] == '/')
        n--;
    size_t start = n;
    while (start > 0 && model_name[start - 1] != '/')
        start--;
    size_t k = 0;
    for (size_t i = start; i < n && k < sizeof low - 1; i++)
        low[k++] = (char)tolower((unsigned char)model_name[i]);
    low[k] = 0;
    for (size_t i = 0; i < sizeof k_model_names / sizeof k_model_names[0]; i++)
        if (!strcmp(low, k_model_names[i].model)) return k_model_names[i].tmpl;
    if (strstr(low, "internlm2")) return "internlm2";
    /* LMDeploy's InternLMChat7B.match: "internlm" and "chat" in the path, not internlm2 */
    if (strstr(low, "internlm") && strstr(low, "chat")) return "internlm";
    if (strstr(low, "llama3") || strstr(low, "llama-3")) return "llama3";
    if (strstr(low, "llama2") || strstr(low, "llama-2")) return "llama2";
    if (strstr(low, "qwen")) return "qwen";
    if (strstr(low, "chatml")) return "chatml";
    if (!strcmp(low, "base")) return "base";
    return NULL;
}
