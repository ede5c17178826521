/* Helpers for the server suites: an in-process server on a free loopback port, HTTP
 * requests through libcurl, and reading one value from /metrics. */
#ifndef IG_TEST_SRV_UTIL_H
#define IG_TEST_SRV_UTIL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "ignis.h"

typedef struct srv_fixture {
    ignis_model *model;
    ignis_server *srv;
    int port;
} srv_fixture;

/* Opens stories260K on the CPU (skip/fail via cmocka when the asset is missing), starts a
 * server on 127.0.0.1 port 0 with so (NULL: defaults) and eo (NULL: defaults), and waits
 * for /health to answer 200. */
void su_start(srv_fixture *f, const ignis_server_opts *so, const ignis_engine_opts *eo);
void su_stop(srv_fixture *f);

typedef struct su_resp {
    long status;
    char *body; /* NUL-terminated, malloc'd */
    size_t len;
    char *headers; /* raw response headers */
    json_t *json;  /* parsed body or NULL */
} su_resp;

/* method, path, body (NULL: none), extra header (NULL: none). */
su_resp su_http(int port, const char *method, const char *path, const char *body, const char *header);
void su_resp_free(su_resp *r);
/* The value of one sample in /metrics ("ignis:num_requests_running"), -1 when absent. */
double su_metric(int port, const char *name);
/* Waits (up to timeout_s) until running and waiting are 0; returns false on timeout. */
bool su_wait_idle(int port, double timeout_s);
/* Fails unless r is an OpenAI error object with the status. */
void su_expect_error(const su_resp *r, long status, const char *what);

#endif
