/* ignis convert MODEL_NAME HF_DIR [...]: Hugging Face checkpoint -> workspace. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char *k_usage = "usage: ignis convert MODEL_NAME HF_DIR [options]\n"
                             "\n"
                             "Converts a Hugging Face checkpoint (config.json + safetensors, single or sharded)\n"
                             "into an ignis workspace: a versioned ignis.json (model attributes and editable\n"
                             "engine knobs), aligned mmap-able weight files with CRC32C checksums, and the\n"
                             "tokenizer files. Writing is atomic: on failure nothing is left at the destination.\n"
                             "\n"
                             "  MODEL_NAME                 LMDeploy-style name (e.g. internlm2-chat-7b, llama3-8b);\n"
                             "                             picks the chat template\n"
                             "  HF_DIR                     Hugging Face model directory\n"
                             "\n"
                             "options:\n"
                             "  --dst-path DIR             destination (default ./workspace); an existing\n"
                             "                             workspace there is replaced\n"
                             "  --dtype auto|fp16|bf16|fp32  weight dtype (default auto: as in the checkpoint)\n"
                             "  --tp N                     tensor-parallel ranks to split the weights for (default 1)\n"
                             "  --chat-template NAME|FILE  chat template (default: chosen from MODEL_NAME)\n"
                             "  -h, --help                 show this help\n";

int cmd_convert(int argc, char **argv)
{
    ignis_convert_opts o;
    ignis_convert_opts_init(&o);
    const char *pos[2];
    int npos = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(k_usage, stdout);
            return 0;
        }
        if (!strcmp(a, "--dst-path") || !strcmp(a, "--dtype") || !strcmp(a, "--tp") || !strcmp(a, "--chat-template")) {
            if (!v) return cli_usage_error("convert", "%s needs a value", a);
            i++;
            if (!strcmp(a, "--dst-path")) {
                o.dst_path = v;
            } else if (!strcmp(a, "--chat-template")) {
                o.chat_template = v;
            } else if (!strcmp(a, "--tp")) {
                long n;
                if (!cli_int(a, v, 1, 64, &n)) return 2;
                o.tp = (int)n;
            } else if (ignis_dtype_parse(v, &o.dtype) != IGNIS_OK) {
                cli_fail(IGNIS_E_ARG, "--dtype");
                return 2;
            }
            continue;
        }
        if (a[0] == '-' && a[1]) return cli_usage_error("convert", "unknown option '%s'", a);
        if (npos == 2) return cli_usage_error("convert", "unexpected argument '%s'", a);
        pos[npos++] = a;
    }
    if (npos < 2) return cli_usage_error("convert", "expected MODEL_NAME and HF_DIR");
    o.model_name = pos[0];
    o.hf_dir = pos[1];
    o.progress = cli_progress;
    ignis_status s = ignis_convert(&o);
    if (s != IGNIS_OK) return cli_fail(s, "convert");
    fprintf(stderr, "ignis: converted %s into %s\n", o.hf_dir, o.dst_path ? o.dst_path : "./workspace");
    return 0;
}
