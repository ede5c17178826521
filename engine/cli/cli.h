/* The ignis command line: one file per subcommand, each a thin layer over ignis.h. */
#ifndef IG_CLI_H
#define IG_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include <stdio.h>

#include "ignis.h"

typedef struct cli_cmd {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv); /* argv[0] is the subcommand name */
} cli_cmd;

/* argv with each "--name=value" split into "--name" "value" (before a bare "--"), so every
 * command accepts both forms; updates *argc. NULL when out of memory. */
char **cli_split_equals(int *argc, char **argv);
/* Prints "ignis: <what>: <last error>" on one line (just the error when it already names
 * <what>) and returns the exit code for a status. */
int cli_fail(ignis_status s, const char *what);
/* Prints a one-line usage error ("ignis CMD: ... (see 'ignis CMD --help')") and returns 2. */
int cli_usage_error(const char *cmd, const char *fmt, ...);
/* Parses an integer option value or reports which flag was bad. */
bool cli_int(const char *flag, const char *v, long lo, long hi, long *out);
/* Token ids from "1 2 3", "1,2,3" or "[1, 2, 3]" into a malloc'd *ids. 0; -1 when a word
 * is no id in [0, 2^31) (*bad points at it); -2 out of memory. */
int cli_parse_ids(const char *s, int32_t **ids, int *n, const char **bad);
/* Prints usage, then the lines of `more` (shared option help) for options usage does not
 * already document, so each option is listed once. */
void cli_print_help(const char *usage, const char *more);
/* Progress bar on stderr when it is a TTY (a no-op otherwise). user: unused. */
void cli_progress(void *user, const char *stage, uint64_t done, uint64_t total);
/* Shared engine flags (--backend, --threads, --dtype, --session-len, ...): returns 1 when
 * argv[*i] was one of them (advancing *i past its value), 0 if not, -1 on a bad value. */
int cli_engine_flag(const char *cmd, int argc, char **argv, int *i, ignis_engine_opts *o);
extern const char *cli_engine_flags_help;
/* Sampling flags shared by generate and chat (--max-new-tokens, --temperature, --top-k,
 * --top-p, --repetition-penalty, --seed): same contract as cli_engine_flag; *seeded (may be
 * NULL) is set when --seed was given. */
int cli_sampling_flag(const char *cmd, int argc, char **argv, int *i, ignis_gen_opts *go, bool *seeded);

/* MODEL arguments (model_arg.c), LMDeploy style. cli_backend_word: 1 when word is the
 * backend word "turbomind" (skip it; MODEL follows), 0 when it is not a backend word (it is
 * MODEL), -1 after printing why "pytorch" is refused. cli_check_model: 0, or an exit code
 * after printing that a hub id ("owner/name", not a local path) must be downloaded first. */
int cli_backend_word(const char *cmd, const char *word);
int cli_check_model(const char *cmd, const char *model);
/* A positional argument of a command taking one MODEL: a backend word is skipped, the
 * first other word is *model, a second one is a usage error. 0, or the exit code after
 * printing why. */
int cli_model_positional(const char *cmd, const char *arg, const char **model);
/* After parsing: 0 when MODEL was given and passes cli_check_model, else the exit code
 * after printing why. */
int cli_require_model(const char *cmd, const char *model);
int cmd_list(int argc, char **argv);

int cmd_convert(int argc, char **argv);
int cmd_generate(int argc, char **argv);
/* `generate --batch`: many requests through the scheduler; defaults: the sampling flags. */
int cmd_generate_batch(const char *model, const char *jsonl, int concurrency, const ignis_engine_opts *eo,
                       const ignis_gen_opts *defaults);
int cmd_tokenize(int argc, char **argv);
int cmd_chat(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_bench(int argc, char **argv);

#endif
