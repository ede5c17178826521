/* ignis list: the chat templates and the LMDeploy model names that pick them, as
 * `lmdeploy list` printed its registered model names. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

int cmd_list(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: ignis list\n\nPrints the built-in chat templates (--chat-template NAME) and the model "
                   "names\n(ignis convert MODEL_NAME, --model-name NAME) with the template each picks.\n");
            return 0;
        }
        return cli_usage_error("list", "unexpected argument '%s'", argv[i]);
    }
    printf("Supported chat templates:\n");
    const char *n;
    for (int i = 0; (n = ignis_chat_builtin_name(i)); i++)
        printf("  %s\n", n);
    printf("Supported model names (chat template):\n");
    const char *t;
    for (int i = 0; (n = ignis_chat_model_name(i, &t)); i++)
        printf("  %-22s %s\n", n, t);
    return 0;
}
