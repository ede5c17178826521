#include "test_util.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static _Thread_local char tl_path[4096];

int tu_assets_required(void)
{
    const char *r = getenv("IGNIS_REQUIRE_ASSETS");
    return r && strcmp(r, "1") == 0;
}

int tu_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

const char *tu_asset(const char *rel)
{
    const char *base = getenv("IGNIS_ASSETS");
    if (!base || !*base) base = getenv("IGNIS_ASSETS_DEFAULT");
    if (!base || !*base) base = "../shared/assets";
    snprintf(tl_path, sizeof tl_path, "%s/%s", base, rel);
    return tu_exists(tl_path) ? tl_path : NULL;
}

const char *tu_src(const char *rel)
{
    const char *base = getenv("IGNIS_SOURCE_DIR");
    snprintf(tl_path, sizeof tl_path, "%s/%s", base ? base : ".", rel);
    return tl_path;
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

int tu_rmrf(const char *path)
{
    if (!tu_exists(path)) return 0;
    return nftw(path, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

const char *tu_tmpdir(const char *tag)
{
    const char *base = getenv("IGNIS_TEST_TMP");
    if (!base) base = "/tmp";
    mkdir(base, 0755);
    snprintf(tl_path, sizeof tl_path, "%s/%s-%d", base, tag, (int)getpid());
    tu_rmrf(tl_path);
    if (mkdir(tl_path, 0755) != 0) fail_msg("mkdir %s: %s", tl_path, strerror(errno));
    return tl_path;
}

const char *tu_write_file(const char *dir, const char *name, const char *text)
{
    static char bufs[8][1024];
    static int k;
    char *p = bufs[k++ % 8];
    snprintf(p, 1024, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    if (!f) {
        fail_msg("cannot create %s: %s", p, strerror(errno));
        return p; /* not reached: fail_msg ends the test (cppcheck cannot tell) */
    }
    bool ok = fputs(text, f) >= 0;
    if (fclose(f) != 0 || !ok) fail_msg("cannot write %s", p);
    return p;
}

char *tu_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    size_t r;
    while ((r = fread(buf + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            cap *= 2;
            buf = realloc(buf, cap + 1);
        }
    }
    fclose(f);
    buf[n] = 0;
    if (len) *len = n;
    return buf;
}

int tu_read_floats(const char *path, float **vals)
{
    char *s = tu_read_file(path, NULL);
    if (!s) return -1;
    int cap = 1024, n = 0;
    float *v = malloc(sizeof(float) * (size_t)cap);
    char *p = s, *end;
    for (;;) {
        float x = strtof(p, &end);
        if (end == p) break;
        if (n == cap) v = realloc(v, sizeof(float) * (size_t)(cap *= 2));
        v[n++] = x;
        p = end;
    }
    free(s);
    *vals = v;
    return n;
}

int tu_read_ints(const char *path, int32_t **vals)
{
    char *s = tu_read_file(path, NULL);
    if (!s) return -1;
    int cap = 1024, n = 0;
    int32_t *v = malloc(sizeof(int32_t) * (size_t)cap);
    char *p = s, *end;
    for (;;) {
        long x = strtol(p, &end, 10);
        if (end == p) break;
        if (n == cap) v = realloc(v, sizeof(int32_t) * (size_t)(cap *= 2));
        v[n++] = (int32_t)x;
        p = end;
    }
    free(s);
    *vals = v;
    return n;
}

int tu_run_cli(const char *args, const char *stdin_text, char **out, char **err)
{
    const char *bin = getenv("IGNIS_BIN");
    if (!bin) bin = "ignis";
    char dir[] = "/tmp/ignis-cli-XXXXXX";
    if (!mkdtemp(dir)) return -1;
    char in_p[64], out_p[64], err_p[64];
    snprintf(in_p, sizeof in_p, "%s/in", dir);
    snprintf(out_p, sizeof out_p, "%s/out", dir);
    snprintf(err_p, sizeof err_p, "%s/err", dir);
    FILE *f = fopen(in_p, "w");
    if (!f) return -1;
    if (stdin_text) fputs(stdin_text, f);
    fclose(f);
    size_t cl = strlen(bin) + strlen(args) + 256;
    char *cmd = malloc(cl);
    snprintf(cmd, cl, "'%s' %s <%s >%s 2>%s", bin, args, in_p, out_p, err_p);
    int st = system(cmd);
    free(cmd);
    if (out) *out = tu_read_file(out_p, NULL);
    if (err) *err = tu_read_file(err_p, NULL);
    unlink(in_p);
    unlink(out_p);
    unlink(err_p);
    rmdir(dir);
    if (st == -1) return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

bool tu_make_qwen_ntk_dir(const char *tag, char *dir, size_t cap)
{
    char src[4096], p[4200], q[8400];
    snprintf(src, sizeof src, "%s", tu_src("tests/fixtures/qwen"));
    snprintf(dir, cap, "%s", tu_tmpdir(tag));
    snprintf(p, sizeof p, "%s/config_ntk.json", src);
    char *cfg = tu_read_file(p, NULL);
    if (!cfg) return false;
    tu_write_file(dir, "config.json", cfg);
    free(cfg);
    snprintf(p, sizeof p, "%s/model.safetensors", src);
    snprintf(q, sizeof q, "%s/model.safetensors", dir);
    return symlink(p, q) == 0;
}
