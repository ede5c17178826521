/* Validation of a directory's tokenizer files before they are copied into a workspace. */
#ifndef IG_TOK_CHECK_H
#define IG_TOK_CHECK_H

#include "ignis.h"

/* Loads every tokenizer file of `dir` that ignis_convert copies, each on its own
 * (tokenizer.json, tokenizer.model, vocab.json + merges.txt, *.tiktoken; the JSON side
 * files are parsed), then the tokenizer the loader will pick, and encodes a sample text
 * with it. IGNIS_OK when there are no tokenizer files at all. On failure the message
 * names the file and says why. *vocab (may be NULL) receives the loaded vocabulary size
 * (0 without a tokenizer). */
ignis_status ig_tokenizer_check_dir(const char *dir, int *vocab);

#endif
