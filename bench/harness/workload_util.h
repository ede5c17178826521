/* Helpers shared by the dataset loaders (not part of the harness' contract). */
#ifndef IG_BENCH_WORKLOAD_UTIL_H
#define IG_BENCH_WORKLOAD_UTIL_H

#include "bench.h"

/* Appends a zeroed item (n_ids -1, conversation -1); NULL when out of memory. */
bench_item *wl_push(bench_workload *w, int *cap);
/* Tokenizes with o->tok (ids folded into o->vocab); without a tokenizer *n = -1, ids NULL. */
int wl_tokenize(const bench_ds_opts *o, const char *text, bool add_special, int32_t **ids, int *n);
/* Tokens of text without specials; -1 without a tokenizer. */
int wl_count_tokens(const bench_ds_opts *o, const char *text);
/* w->name = "kind:FILE" (the file's name without its folder). */
void wl_name_file(bench_workload *w, const char *kind, const char *path);

#endif
