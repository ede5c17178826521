/*
 * Interactive sessions (/v1/chat/interactive): the client's session_id -> the engine's
 * session id and how many tokens its history holds. Engine ids come from a counter, so a
 * client reusing an id after ending it gets a fresh, empty engine session.
 */
#include <pthread.h>
#include <stdlib.h>

#include "server/server_internal.h"

typedef struct sess_ent {
    int64_t client_id;
    uint64_t engine_id;
    int history_tokens;
} sess_ent;

struct srv_sessions {
    pthread_mutex_t mu;
    sess_ent *v;
    int n, cap;
    uint64_t next_engine_id;
};

srv_sessions *srv_sessions_new(void)
{
    srv_sessions *ss = calloc(1, sizeof *ss);
    if (!ss) return NULL;
    pthread_mutex_init(&ss->mu, NULL);
    ss->next_engine_id = 1;
    return ss;
}

void srv_sessions_free(srv_sessions *ss)
{
    if (!ss) return;
    pthread_mutex_destroy(&ss->mu);
    free(ss->v);
    free(ss);
}

static sess_ent *find(srv_sessions *ss, int64_t id)
{
    for (int i = 0; i < ss->n; i++)
        if (ss->v[i].client_id == id) return &ss->v[i];
    return NULL;
}

uint64_t srv_session_get(srv_sessions *ss, int64_t client_id, int *history_tokens)
{
    pthread_mutex_lock(&ss->mu);
    sess_ent *e = find(ss, client_id);
    if (!e && ss->n == ss->cap) {
        int cap = ss->cap ? 2 * ss->cap : 16;
        sess_ent *v = realloc(ss->v, sizeof *v * (size_t)cap);
        if (v) {
            ss->v = v;
            ss->cap = cap;
        }
    }
    if (!e && ss->n < ss->cap) {
        e = &ss->v[ss->n++];
        *e = (sess_ent){client_id, ss->next_engine_id++, 0};
    }
    uint64_t id = e ? e->engine_id : 0;
    *history_tokens = e ? e->history_tokens : 0;
    pthread_mutex_unlock(&ss->mu);
    return id;
}

void srv_session_grow(srv_sessions *ss, int64_t client_id, int tokens)
{
    pthread_mutex_lock(&ss->mu);
    sess_ent *e = find(ss, client_id);
    if (e) e->history_tokens += tokens;
    pthread_mutex_unlock(&ss->mu);
}

uint64_t srv_session_forget(srv_sessions *ss, int64_t client_id)
{
    pthread_mutex_lock(&ss->mu);
    sess_ent *e = find(ss, client_id);
    uint64_t id = 0;
    if (e) {
        id = e->engine_id;
        *e = ss->v[--ss->n];
    }
    pthread_mutex_unlock(&ss->mu);
    return id;
}
