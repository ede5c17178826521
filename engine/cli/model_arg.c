/* The MODEL argument of chat, serve, generate and bench as LMDeploy's command lines write
 * it: `lmdeploy chat turbomind ./model`. An optional backend word comes first; MODEL is a
 * local directory (workspace or Hugging Face) or synthetic:SHAPE, never a hub id: ignis
 * does not download, so "internlm/internlm-chat-20b-4bit" gets told to fetch it first. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

int cli_backend_word(const char *cmd, const char *word)
{
    if (!strcmp(word, "turbomind")) return 1; /* LMDeploy's engine; here: ours */
    if (!strcmp(word, "pytorch")) {
        fprintf(stderr,
                "ignis %s: the 'pytorch' backend is not supported (it is LMDeploy's transformers-based engine); use "
                "'turbomind' or leave the word out: ignis %s turbomind MODEL\n",
                cmd, cmd);
        return -1;
    }
    return 0;
}

/* "owner/name" with no such path here: how the Hub names models. */
static bool looks_like_hub_id(const char *m)
{
    const char *slash = strchr(m, '/');
    if (!slash || slash == m || !slash[1] || strchr(slash + 1, '/')) return false;
    if (m[0] == '.' || m[0] == '~') return false;
    for (const char *p = m; *p; p++)
        if (*p == ':' || *p == ' ') return false;
    return true;
}

int cli_check_model(const char *cmd, const char *model)
{
    struct stat sb;
    if (!strncmp(model, "synthetic:", 10) || stat(model, &sb) == 0) return 0;
    if (looks_like_hub_id(model)) {
        const char *name = strchr(model, '/') + 1;
        fprintf(stderr,
                "ignis %s: '%s' is not a local directory. ignis does not download models: fetch it first (e.g. "
                "'huggingface-cli download %s --local-dir ./%s') and pass the directory: ignis %s ./%s\n",
                cmd, model, model, name, cmd, name);
        return 2;
    }
    return 0; /* other missing paths: the model loader names them */
}

int cli_model_positional(const char *cmd, const char *arg, const char **model)
{
    if (*model) return cli_usage_error(cmd, "unexpected argument '%s'", arg);
    int bw = cli_backend_word(cmd, arg); /* `CMD turbomind MODEL` */
    if (bw < 0) return 2;
    if (bw == 0) *model = arg;
    return 0;
}

int cli_require_model(const char *cmd, const char *model)
{
    if (!model) return cli_usage_error(cmd, "no MODEL given");
    return cli_check_model(cmd, model);
}
