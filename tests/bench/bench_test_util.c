/* Helpers of the harness' tests. */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_test_util.h"

pid_t bt_spawn(char *const argv[], int *stdout_fd)
{
    int fd[2];
    if (stdout_fd && pipe(fd) != 0) return -1;
    pid_t pid = fork();
    if (pid == 0) {
        if (stdout_fd) {
            dup2(fd[1], 1);
            close(fd[0]);
            close(fd[1]);
        }
        execv(argv[0], argv);
        _exit(127);
    }
    if (stdout_fd) {
        close(fd[1]);
        *stdout_fd = fd[0];
    }
    return pid;
}

void bt_stop(pid_t pid)
{
    if (pid <= 0) return;
    kill(pid, SIGTERM);
    for (int i = 0; i < 500; i++) {
        if (waitpid(pid, NULL, WNOHANG) == pid) return;
        usleep(10000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

static size_t discard(char *p, size_t s, size_t n, void *u)
{
    (void)p, (void)u;
    return s * n;
}

bool bt_wait_health(const char *url, double timeout_s)
{
    double t0 = bench_now();
    while (bench_now() - t0 < timeout_s) {
        CURL *h = curl_easy_init();
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 1000L);
        long code = 0;
        if (curl_easy_perform(h) == CURLE_OK) curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
        curl_easy_cleanup(h);
        if (code == 200) return true;
        usleep(100000);
    }
    return false;
}

int bt_free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK), .sin_port = 0};
    socklen_t l = sizeof a;
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) != 0 || getsockname(s, (struct sockaddr *)&a, &l) != 0) {
        if (s >= 0) close(s);
        return -1;
    }
    close(s);
    return ntohs(a.sin_port);
}

void bt_read_csv(const char *path, bench_table *t)
{
    if (bench_csv_read(path, t) != 0) fail_msg("reading %s: %s", path, bench_errmsg());
}

double bt_num(const bench_table *t, int row, const char *col)
{
    const char *s = bench_table_get(t, row, col);
    if (!s) fail_msg("column %s missing", col);
    return *s ? strtod(s, NULL) : NAN;
}

pid_t bt_spawn_standin(const char *const opts[], int *port)
{
    char *argv[16] = {getenv("IGNIS_STANDIN"), "--port", "0"};
    int n = 3;
    for (int i = 0; opts && opts[i] && n < 15; i++)
        argv[n++] = (char *)opts[i];
    argv[n] = NULL;
    if (!argv[0]) return -1;
    int fd;
    pid_t pid = bt_spawn(argv, &fd);
    if (pid < 0) return -1;
    FILE *f = fdopen(fd, "r");
    int ok = f && fscanf(f, "port %d", port) == 1;
    if (f) fclose(f);
    if (!ok) {
        bt_stop(pid);
        return -1;
    }
    return pid;
}

int bt_list_len(const char *list)
{
    int n = list && *list ? 1 : 0;
    for (; list && *list; list++)
        n += *list == ' ';
    return n;
}

int bt_run_cli(const char *args)
{
    char *out = NULL, *err = NULL;
    int rc = tu_run_cli(args, NULL, &out, &err);
    if (rc != 0) print_message("ignis %s\nexit %d\n%s\n%s\n", args, rc, out ? out : "", err ? err : "");
    free(out), free(err);
    return rc;
}
