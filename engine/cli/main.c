/* ignis — command-line entry: dispatches to one subcommand per file. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const cli_cmd k_cmds[] = {
    {"convert", "convert a Hugging Face model into a workspace", cmd_convert},
    {"generate", "generate a continuation of a prompt (one-shot, scriptable)", cmd_generate},
    {"tokenize", "text to token ids and back (--decode) with a model's tokenizer", cmd_tokenize},
    {"chat", "interactive chat in the terminal (streams answers, keeps history in the KV cache)", cmd_chat},
    {"bench", "benchmark: generation grid, workload replay in-process or over HTTP, compare, plot", cmd_bench},
};

static void usage(FILE *f)
{
    fprintf(f, "ignis %s — LLM inference engine\n\nusage: ignis COMMAND [ARGS...]\n\ncommands:\n", ignis_version());
    for (size_t i = 0; i < sizeof k_cmds / sizeof k_cmds[0]; i++)
        fprintf(f, "  %-10s %s\n", k_cmds[i].name, k_cmds[i].summary);
    fprintf(f, "\nMODEL is a workspace directory, a Hugging Face model directory, or synthetic:SHAPE.\n"
               "Run 'ignis COMMAND --help' for a command's options.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
        printf("ignis %s\n", ignis_version());
        return 0;
    }
    for (size_t i = 0; i < sizeof k_cmds / sizeof k_cmds[0]; i++)
        if (!strcmp(argv[1], k_cmds[i].name)) return k_cmds[i].run(argc - 1, argv + 1);
    fprintf(stderr, "ignis: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
