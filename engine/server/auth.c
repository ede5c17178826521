/* API keys: "Authorization: Bearer KEY" must name one of --api-keys (compared in constant
 * time, so response timing does not reveal how much of a key matched). */
#include <string.h>
#include <strings.h>

#include "server/server_internal.h"

static bool same(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    unsigned char diff = (unsigned char)(na != nb);
    for (size_t i = 0; i < na; i++)
        diff |= (unsigned char)(a[i] ^ b[i % (nb ? nb : 1)]);
    return diff == 0 && nb > 0;
}

bool srv_auth_ok(const ignis_server *s, struct MHD_Connection *conn)
{
    if (s->n_api_keys == 0) return true;
    const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h || strncasecmp(h, "Bearer ", 7)) return false;
    const char *key = h + 7;
    while (*key == ' ')
        key++;
    bool ok = false;
    for (int i = 0; i < s->n_api_keys; i++)
        ok |= same(key, s->api_keys[i]);
    return ok;
}
