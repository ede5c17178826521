/* ignis bench: the benchmark harness (bench/harness/) behind a subcommand. The harness parses
 * its own arguments; the CLI lends it the shared engine flags so `bench` takes the same
 * --backend, --max-batch-size, ... as `serve` and `generate`. Like the other commands, bench
 * takes LMDeploy's backend word (`ignis bench [MODE] turbomind --model M`) and tells a hub id
 * from a local directory before the harness opens anything. */
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "cli.h"
#include "env_opts.h"

int cmd_bench(int argc, char **argv)
{
    char **args = calloc((size_t)argc + 1, sizeof *args);
    if (!args) return cli_fail(IGNIS_E_NOMEM, "bench");
    int n = 0;
    for (int i = 0; i < argc; i++) {
        /* the backend word stands where MODEL would: argv[1] or after the mode word */
        if (i >= 1 && i <= 2 && argv[i][0] != '-') {
            int bw = cli_backend_word("bench", argv[i]);
            if (bw < 0) {
                free(args);
                return 2;
            }
            if (bw > 0) continue;
        }
        /* main split "--model=M" into "--model" "M" already */
        const char *model = !strcmp(argv[i], "--model") && i + 1 < argc ? argv[i + 1] : NULL;
        if (model && cli_check_model("bench", model)) {
            free(args);
            return 2;
        }
        args[n++] = argv[i];
    }
    int rc = bench_main(n, args, cli_engine_flag, cli_env_engine_opts, cli_engine_flags_help);
    free(args);
    return rc;
}
