/* ignis bench: the benchmark harness (bench/harness/) behind a subcommand. The harness parses
 * its own arguments; the CLI lends it the shared engine flags so `bench` takes the same
 * --backend, --max-batch-size, ... as `serve` and `generate`. */
#include "bench.h"
#include "cli.h"

int cmd_bench(int argc, char **argv) { return bench_main(argc, argv, cli_engine_flag, cli_engine_flags_help); }
