#include "srv_util.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "test_util.h"

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

void su_start(srv_fixture *f, const ignis_server_opts *so, const ignis_engine_opts *eo)
{
    memset(f, 0, sizeof *f);
    TU_ASSET_OR_SKIP(model_rel, "models/stories260K/hf");
    char model[4096];
    snprintf(model, sizeof model, "%s", model_rel);
    ignis_engine_opts e;
    if (eo)
        e = *eo;
    else
        ignis_engine_opts_init(&e);
    e.backend = IGNIS_BACKEND_CPU;
    if (!e.threads) e.threads = 1;
    TU_CHECK(ignis_model_open(model, &e, &f->model));
    ignis_server_opts o;
    if (so)
        o = *so;
    else
        ignis_server_opts_init(&o);
    o.host = "127.0.0.1";
    o.port = 0;
    o.model_path = model;
    if (!o.model_name) o.model_name = "stories";
    o.access_log = false;
    TU_CHECK(ignis_server_start(&o, &f->srv));
    f->port = ignis_server_port(f->srv);
    if (f->port <= 0) fail_msg("server bound no port");
    su_resp before = su_http(f->port, "GET", "/health", NULL, NULL);
    if (before.status != 503) fail_msg("/health before the model is attached: expected 503, got %ld", before.status);
    su_resp_free(&before);
    TU_CHECK(ignis_server_attach(f->srv, f->model, &e));
    for (int i = 0; i < 500; i++) {
        su_resp r = su_http(f->port, "GET", "/health", NULL, NULL);
        long st = r.status;
        su_resp_free(&r);
        if (st == 200) return;
        sleep_ms(10);
    }
    fail_msg("/health never answered 200 on port %d", f->port);
}

void su_stop(srv_fixture *f)
{
    ignis_server_stop(f->srv, 2000);
    ignis_model_close(f->model);
    memset(f, 0, sizeof *f);
}

typedef struct grow {
    char *p;
    size_t n;
} grow;

static size_t on_data(char *d, size_t sz, size_t nm, void *u)
{
    grow *g = u;
    size_t n = sz * nm;
    char *p = realloc(g->p, g->n + n + 1);
    if (!p) return 0;
    memcpy(p + g->n, d, n);
    g->p = p;
    g->n += n;
    g->p[g->n] = 0;
    return n;
}

su_resp su_http(int port, const char *method, const char *path, const char *body, const char *header)
{
    su_resp r = {0};
    CURL *c = curl_easy_init();
    char url[512];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    grow b = {0}, h = {0};
    struct curl_slist *hs = curl_slist_append(NULL, "Content-Type: application/json");
    if (header) hs = curl_slist_append(hs, header);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hs);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &h);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    curl_slist_free_all(hs);
    curl_easy_cleanup(c);
    if (rc != CURLE_OK) { /* the failure in the body, for the test's message */
        free(b.p);
        b.p = strdup(curl_easy_strerror(rc));
        b.n = strlen(b.p);
    }
    r.body = b.p ? b.p : calloc(1, 1);
    r.len = b.n;
    r.headers = h.p ? h.p : calloc(1, 1);
    r.json = json_loadb(r.body, r.len, 0, NULL);
    /* cppcheck-suppress memleak ; b.p is r.body, the caller frees it (su_resp_free) */
    return r;
}

void su_resp_free(su_resp *r)
{
    free(r->body);
    free(r->headers);
    json_decref(r->json);
    memset(r, 0, sizeof *r);
}

/* The value of the first sample named `name` in a /metrics body, -1 when absent. */
static double metric_in(const char *body, const char *name)
{
    size_t n = strlen(name);
    for (const char *line = body; line && *line;) {
        const char *nl = strchr(line, '\n');
        if (!strncmp(line, name, n) && (line[n] == '{' || line[n] == ' ')) {
            const char *end = nl ? nl : line + strlen(line), *sp = end;
            while (sp > line && sp[-1] != ' ')
                sp--;
            return sp > line ? strtod(sp, NULL) : -1;
        }
        line = nl ? nl + 1 : NULL;
    }
    return -1;
}

double su_metric(int port, const char *name)
{
    su_resp r = su_http(port, "GET", "/metrics", NULL, NULL);
    double v = metric_in(r.body, name);
    su_resp_free(&r);
    return v;
}

bool su_wait_idle(int port, double timeout_s)
{
    for (int i = 0; i < (int)(timeout_s * 100); i++) {
        su_resp r = su_http(port, "GET", "/metrics", NULL, NULL); /* one scrape for both counts */
        bool idle = metric_in(r.body, "ignis:num_requests_running") == 0 &&
                    metric_in(r.body, "ignis:num_requests_waiting") == 0;
        su_resp_free(&r);
        if (idle) return true;
        sleep_ms(10);
    }
    return false;
}

void su_expect_error(const su_resp *r, long status, const char *what)
{
    if (r->status != status) fail_msg("%s: expected status %ld, got %ld: %s", what, status, r->status, r->body);
    json_t *e = json_object_get(r->json, "error");
    if (!json_is_object(e) || !json_is_string(json_object_get(e, "message")) ||
        !json_is_string(json_object_get(e, "type")) || !json_object_get(e, "param") || !json_object_get(e, "code"))
        fail_msg("%s: expected an error object {message, type, param, code}, got: %s", what, r->body);
}
