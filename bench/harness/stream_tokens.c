/* Per-token times of a streamed answer (see bench.h). A server may put several tokens in
 * one SSE chunk; the harness does not re-tokenize per chunk (quadratic, and wrong at
 * chunk boundaries). It tokenizes the whole answer once, finds each token's last byte
 * (by detokenizing the ids one by one) and so the chunk that delivered it. Tokens that
 * share a chunk are spread evenly over the gap since the previous chunk, so per-token
 * ITL sums to the decode time and a 4-token chunk gives four gaps of a quarter each
 * rather than one long gap and three zeros. Tokens of the first chunk all take its time
 * (the first token's time is the TTFT). */
#include <stdlib.h>
#include <string.h>

#include "bench.h"

/* Token k's chunk index for every token, from byte ends. */
static int token_chunks(const ignis_tokenizer *tok, const char *text, size_t len, const size_t *chunk_end, int n_chunks,
                        int **chunk_of)
{
    int32_t *ids = NULL;
    int n = 0;
    *chunk_of = NULL;
    if (ignis_tokenize(tok, text, len, false, false, &ids, &n) != IGNIS_OK || n <= 0) {
        free(ids);
        return 0;
    }
    ignis_detok_stream *ds = NULL;
    int *co = malloc(sizeof(int) * (size_t)n);
    if (!co || ignis_detok_stream_create(tok, false, &ds) != IGNIS_OK) {
        free(ids), free(co);
        return 0;
    }
    size_t bytes = 0;
    int j = 0;
    for (int k = 0; k < n; k++) {
        const char *piece;
        size_t pl = 0;
        if (ignis_detok_stream_push(ds, ids[k], &piece, &pl) == IGNIS_OK) bytes += pl;
        /* a token whose bytes are still held back (half a UTF-8 character) ends no later
         * than the next one; the stream's leading-space rule can shift by one byte */
        size_t end = bytes > len ? len : bytes;
        while (j < n_chunks - 1 && chunk_end[j] < end)
            j++;
        co[k] = j;
    }
    ignis_detok_stream_free(ds);
    free(ids);
    *chunk_of = co;
    return n;
}

/* Rescales per-chunk weights (tokens, or bytes) summing to `have` onto `want` tokens by
 * cumulative rounding, so the tokens stay where the weights put them. */
static void rescale(int *per, int n_chunks, long long have, int want)
{
    long long cum = 0;
    int given = 0;
    for (int j = 0; j < n_chunks; j++) {
        cum += per[j];
        int upto = (int)((double)want * cum / have + 0.5);
        per[j] = upto - given;
        given = upto;
    }
}

int bench_stream_token_times(const ignis_tokenizer *tok, const char *text, size_t text_len, const double *chunk_t,
                             const size_t *chunk_end, int n_chunks, int usage_tokens, double **times, int *counted)
{
    *times = NULL;
    if (counted) *counted = -1;
    if (n_chunks <= 0) return 0;
    int *per = calloc((size_t)n_chunks, sizeof(int)), n = 0;
    if (!per) return 0;
    int *chunk_of = NULL;
    if (tok && (n = token_chunks(tok, text, text_len, chunk_end, n_chunks, &chunk_of)) > 0) {
        for (int k = 0; k < n; k++)
            per[chunk_of[k]]++;
        free(chunk_of);
        if (counted) *counted = n;
        if (usage_tokens > 0 && usage_tokens != n) {
            rescale(per, n_chunks, n, usage_tokens);
            n = usage_tokens;
        }
    } else if (usage_tokens > 0) {
        /* no tokenizer: the server's count, spread over the chunks by their bytes */
        long long total = (long long)chunk_end[n_chunks - 1];
        for (int j = 0; j < n_chunks; j++)
            per[j] = (int)(chunk_end[j] - (j ? chunk_end[j - 1] : 0));
        if (total > 0)
            rescale(per, n_chunks, total, usage_tokens);
        else
            per[0] = usage_tokens;
        n = usage_tokens;
    } else {
        for (int j = 0; j < n_chunks; j++)
            per[j] = 1;
        n = n_chunks;
    }
    double *t = malloc(sizeof(double) * (size_t)(n ? n : 1));
    if (!t) {
        free(per);
        return 0;
    }
    int k = 0;
    for (int j = 0; j < n_chunks; j++) {
        double prev = j ? chunk_t[j - 1] : chunk_t[0];
        for (int i = 1; i <= per[j] && k < n; i++) {
            double v = j == 0 || k == 0 ? chunk_t[j] : prev + (chunk_t[j] - prev) * i / per[j];
            t[k++] = v;
        }
    }
    free(per);
    *times = t;
    return k;
}
