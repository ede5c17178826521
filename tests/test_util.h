/* Shared helpers for ignis' cmocka suites: where the assets are, temp dirs, running the
 * CLI, reading reference files. */
#ifndef IG_TEST_UTIL_H
#define IG_TEST_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ignis.h"

/* $IGNIS_ASSETS (else the build's default ../shared/assets) joined with rel, or NULL when
 * it does not exist. With IGNIS_REQUIRE_ASSETS=1 a missing asset fails the test instead;
 * otherwise the caller should skip(). */
const char *tu_asset(const char *rel);
/* Skips the test when the asset rel was not found (found is false), or fails it with
 * IGNIS_REQUIRE_ASSETS=1. For suites that look an asset up once (in their setup). */
#define TU_SKIP_WITHOUT_ASSET(found, rel)                                                                              \
    do {                                                                                                               \
        if (!(found)) {                                                                                                \
            if (tu_assets_required()) fail_msg("required asset missing: %s", rel);                                     \
            print_message("skipping: asset %s not found (set IGNIS_ASSETS)\n", rel);                                   \
            skip();                                                                                                    \
        }                                                                                                              \
    } while (0)
/* Like tu_asset but calls cmocka's skip()/fail() itself; returns only with a path. */
#define TU_ASSET_OR_SKIP(var, rel)                                                                                     \
    const char *var = tu_asset(rel);                                                                                   \
    TU_SKIP_WITHOUT_ASSET(var, rel)
int tu_assets_required(void);

/* Source tree path (tests/fixtures/...). */
const char *tu_src(const char *rel);
/* A fresh empty directory under the build's test tmp dir; removed by tu_rmrf. */
const char *tu_tmpdir(const char *tag);
int tu_rmrf(const char *path);
int tu_exists(const char *path);

/* Runs the ignis CLI with args (a shell-quoted string); captures stdout and stderr
 * (malloc'd, NUL-terminated, may be NULL). Returns the exit status, -1 on failure. */
int tu_run_cli(const char *args, const char *stdin_text, char **out, char **err);

/* Reads whitespace-separated numbers; returns count, *vals malloc'd. */
int tu_read_floats(const char *path, float **vals);
int tu_read_ints(const char *path, int32_t **vals);
char *tu_read_file(const char *path, size_t *len);
/* Writes text to dir/name (failing the test when it cannot) and returns the path, valid
 * until eight more calls. */
const char *tu_write_file(const char *dir, const char *name, const char *text);
/* The Qwen fixture with seq_length 6 (tests/fixtures/qwen's config_ntk.json as config.json,
 * its weights linked) in a fresh temp directory, returned in dir; false when the fixture
 * has no config_ntk.json. Shared by the CPU fidelity and the CUDA long-context tests. */
bool tu_make_qwen_ntk_dir(const char *tag, char *dir, size_t cap);

#define TU_CHECK(st)                                                                                                   \
    do {                                                                                                               \
        ignis_status tu_s_ = (st);                                                                                     \
        if (tu_s_ != IGNIS_OK) fail_msg("%s -> %s: %s", #st, ignis_status_name(tu_s_), ignis_last_error());            \
    } while (0)

#endif
