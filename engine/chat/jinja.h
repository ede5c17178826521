/* A Jinja2 subset interpreter, enough for the chat_template strings of Hugging Face
 * tokenizer configs. It follows the environment transformers renders with
 * (ImmutableSandboxedEnvironment, trim_blocks and lstrip_blocks on, loop controls,
 * raise_exception/strftime_now/namespace/dict globals, json.dumps-style tojson), so that
 * a rendered conversation equals apply_chat_template's string byte for byte. */
#ifndef IG_JINJA_H
#define IG_JINJA_H

#include <stddef.h>

#include <jansson.h>

#include "ignis.h"

typedef struct ig_jinja ig_jinja;

/* Lexes and parses a template. name labels error messages ("qwen3 chat template"). */
ignis_status ig_jinja_compile(const char *src, size_t len, const char *name, ig_jinja **out);
/* Renders with the members of the JSON object `vars` as the template's variables.
 * *out is malloc'd and NUL-terminated; *out_len may be NULL. */
ignis_status ig_jinja_render(const ig_jinja *t, const json_t *vars, char **out, size_t *out_len);
void ig_jinja_free(ig_jinja *t);

#endif
