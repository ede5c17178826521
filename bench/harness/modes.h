/* The modes' shared plumbing (main.c) and the generation mode (generation.c). */
#ifndef IG_BENCH_MODES_H
#define IG_BENCH_MODES_H

#include "args.h"

int bench_open_model(const bench_args *a, ignis_model **m, ignis_model_info *info);
int bench_tokenizer(const bench_args *a, const ignis_model *m, ignis_tokenizer **owned, const ignis_tokenizer **tok);
int bench_finish(const bench_args *a, const bench_row *rows, int n);
int bench_mode_generation(bench_args *a);

#endif
