#include "bench.h"
int bench_replay_http(const bench_workload *w, const bench_replay_opts *o, bench_run *out)
{
    (void)w;
    (void)o;
    (void)out;
    return -1;
}
int bench_compare(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return 2;
}
int bench_plot_cmd(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return 2;
}
int bench_plot_report(const char *r, const char *d)
{
    (void)r;
    (void)d;
    return 0;
}
