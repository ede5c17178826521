/* One line per request, through the library's log sink at INFO:
 *   access id=12 POST /v1/completions 200 prompt=5 gen=64 ttft_ms=3.2 total_ms=41.0 */
#include "core/clock.h"
#include "core/error.h"
#include "server/server_internal.h"

void srv_access_log(const ignis_server *s, const srv_conn *c)
{
    (void)s;
    if (!ig_log_enabled(IGNIS_LOG_INFO)) return;
    double total_ms = (ig_now() - c->t0) * 1e3;
    if (c->ttft_ms >= 0)
        ig_log(IGNIS_LOG_INFO, "access id=%llu %s %s %d prompt=%d gen=%d ttft_ms=%.1f total_ms=%.1f",
               (unsigned long long)c->id, c->method, c->path, c->status, c->prompt_tokens, c->generated_tokens,
               c->ttft_ms, total_ms);
    else
        ig_log(IGNIS_LOG_INFO, "access id=%llu %s %s %d prompt=%d gen=%d ttft_ms=- total_ms=%.1f",
               (unsigned long long)c->id, c->method, c->path, c->status, c->prompt_tokens, c->generated_tokens,
               total_ms);
}
