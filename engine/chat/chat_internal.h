/* Shared by the chat template implementation files. */
#ifndef IG_CHAT_INTERNAL_H
#define IG_CHAT_INTERNAL_H

#include <stddef.h>

#include "ignis.h"

#define IG_CHAT_MAX_STOP 8

/* LMDeploy's BaseChatTemplate fields. NULL meta_instruction: no default system prompt;
 * NULL elsewhere means "". prefix opens every conversation (llama3's <|begin_of_text|>). */
typedef struct ig_chat_fields {
    const char *name;
    const char *prefix;
    const char *system, *meta_instruction, *eosys;
    const char *user, *eoh;
    const char *assistant, *eoa, *separator;
    const char *tool, *eotool;
    const char *stop_words[IG_CHAT_MAX_STOP];
} ig_chat_fields;

const ig_chat_fields *ig_chat_builtin(const char *name);
/* "base, internlm2, ..." for messages. */
void ig_chat_builtin_names(char *buf, size_t cap);

#endif
