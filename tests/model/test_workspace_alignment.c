/* Loading a workspace refuses a tensor whose offset breaks the format's alignment, with or
 * without checksum verification: the backends read weights in place, so a misaligned
 * offset would make their loads undefined instead of failing cleanly. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "model/workspace.h"
#include "test_convert_fixture.h"
#include "test_util.h"

static void assert_msg_has(const char *needle)
{
    const char *msg = ignis_last_error();
    if (!strstr(msg, needle)) fail_msg("expected the error to mention \"%s\", got: %s", needle, msg);
}

/* A converted workspace of a tiny Llama checkpoint at root/ws. */
static void make_workspace(const char *root, char *ws, size_t n)
{
    char hf[2100];
    snprintf(hf, sizeof hf, "%s/hf", root);
    if (mkdir(hf, 0755) != 0) fail_msg("mkdir %s: %s", hf, strerror(errno));
    tc_model m;
    tc_model_init(&m, TC_LLAMA2, 21);
    tc_write(&m, hf, NULL, false);
    tc_model_free(&m);
    snprintf(ws, n, "%s/ws", root);
    ignis_convert_opts o;
    ignis_convert_opts_init(&o);
    o.model_name = "x";
    o.hf_dir = hf;
    o.dst_path = ws;
    o.tp = 1;
    TU_CHECK(ignis_convert(&o));
}

/* Adds `delta` to the recorded offset of tensor `name` in rank 0's index. */
static void shift_offset(const char *ws, const char *name, long long delta)
{
    char js[2300];
    snprintf(js, sizeof js, "%s/%s", ws, IG_WORKSPACE_CONFIG);
    json_error_t jerr;
    json_t *root = json_load_file(js, 0, &jerr);
    assert_non_null(root);
    json_t *tensors =
        json_object_get(json_array_get(json_object_get(json_object_get(root, "weights"), "ranks"), 0), "tensors");
    size_t i;
    json_t *t;
    bool found = false;
    json_array_foreach(tensors, i, t)
    {
        if (strcmp(json_string_value(json_object_get(t, "name")), name) != 0) continue;
        json_t *off = json_object_get(t, "offset");
        json_object_set_new(t, "offset", json_integer(json_integer_value(off) + delta));
        found = true;
    }
    if (!found) fail_msg("tensor %s is not in %s", name, js);
    assert_int_equal(json_dump_file(root, js, JSON_INDENT(2)), 0);
    json_decref(root);
}

static void test_workspace_open_rejects_misaligned_offset_without_verify(void **state)
{
    (void)state;
    const char *root = tu_tmpdir("ws-align");
    char ws[2100];
    make_workspace(root, ws, sizeof ws);
    ig_model_desc d;
    TU_CHECK(ig_workspace_open(ws, false, &d)); /* the untouched workspace opens */
    ig_model_desc_free(&d);

    /* 8 bytes back: still inside the file and a whole number of fp32 elements, so only the
     * alignment check can catch it */
    shift_offset(ws, "layers.1.wo", -8);
    assert_int_equal(ig_workspace_open(ws, false, &d), IGNIS_E_FORMAT);
    assert_msg_has("weights/rank0.bin: tensor layers.1.wo: offset");
    assert_msg_has("not a multiple of the workspace alignment 4096");

    /* the public entry point, without --verify, refuses it too */
    ignis_engine_opts eo;
    ignis_engine_opts_init(&eo);
    eo.backend = IGNIS_BACKEND_CPU;
    eo.threads = 1;
    ignis_model *m = NULL;
    assert_int_equal(ignis_model_open(ws, &eo, &m), IGNIS_E_FORMAT);
    assert_null(m);
    assert_msg_has("tensor layers.1.wo: offset");
    tu_rmrf(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_workspace_open_rejects_misaligned_offset_without_verify),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
