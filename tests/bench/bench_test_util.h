/* Helpers of the harness' tests: temp files, a child server on a free port. */
#ifndef IG_BENCH_TEST_UTIL_H
#define IG_BENCH_TEST_UTIL_H

#include <stdbool.h>
#include <sys/types.h>

#include "bench.h"
#include "test_util.h"

/* Starts argv (argv[0] a path) with stdout to a pipe; returns the pid (-1 on failure). */
pid_t bt_spawn(char *const argv[], int *stdout_fd);
/* Starts the stand-in server (IGNIS_STANDIN) with its options after "--port 0"; sets *port
 * from its "port N" line, which it prints once listening (no /health poll needed). Returns
 * the pid, -1 on failure. */
pid_t bt_spawn_standin(const char *const opts[], int *port);
/* Runs `ignis ARGS` (tu_run_cli); when it exits non-zero, prints the command, the exit
 * status and both outputs. Returns the exit status. */
int bt_run_cli(const char *args);
/* Number of items in a space-separated list (a per-request CSV's itl_ms_list). */
int bt_list_len(const char *list);
/* Stops a child started by bt_spawn (SIGTERM, then SIGKILL after 5 s). */
void bt_stop(pid_t pid);
/* Polls GET url until 200 or timeout_s; true when healthy. */
bool bt_wait_health(const char *url, double timeout_s);
/* A free TCP port on 127.0.0.1 (bound then released). */
int bt_free_port(void);
/* Reads a CSV or fails the test. */
void bt_read_csv(const char *path, bench_table *t);
double bt_num(const bench_table *t, int row, const char *col);

#endif
