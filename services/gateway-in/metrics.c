/* The metrics of gateway-in, registered once at start-up (series pointers kept in the
 * context, so handlers update atomics without lookups). */
#include <stdio.h>

#include "gateway_in.h"

static const char *const result_names[GWIN_RESULT__COUNT] = {
    [GWIN_ACCEPTED] = "accepted",
    [GWIN_DUPLICATE] = "duplicate",
    [GWIN_DUPLICATE_PENDING] = "duplicate_pending",
    [GWIN_BAD_MAC] = "bad_mac",
    [GWIN_MALFORMED] = "malformed",
    [GWIN_DLQ] = "dlq",
    [GWIN_UNAVAILABLE] = "unavailable",
};

const char *gwin_result_name(enum gwin_result r)
{
    return r < GWIN_RESULT__COUNT ? result_names[r] : "unknown";
}

static struct lst_counter *labelled(struct lst_metrics *reg, const char *name, const char *help,
                                    const char *label, const char *value)
{
    char labels[96];
    snprintf(labels, sizeof(labels), "%s=\"%s\"", label, value);
    return lst_metrics_counter(reg, name, help, labels);
}

void gwin_metrics_init(struct gwin_metrics *m, struct lst_metrics *reg)
{
    for (int r = 0; r < GWIN_RESULT__COUNT; r++)
        m->callbacks[r] = labelled(reg, "lst_gateway_in_callbacks_total",
                                   "Callbacks answered, by result", "result", result_names[r]);
    for (int t = 0; t < GWIN_TYPES; t++)
        m->messages[t] = labelled(reg, "lst_gateway_in_messages_total",
                                  "Incoming messages and receipts published, by type", "type",
                                  lst_threema_msg_kind_name((enum lst_threema_msg_kind)t));
    m->latency = lst_metrics_histogram(reg, "lst_gateway_in_callback_duration_seconds",
                                       "Time from request to answer of a callback", NULL,
                                       lst_metrics_latency_buckets, lst_metrics_latency_nbuckets);
    m->blob_bytes = lst_metrics_counter(reg, "lst_gateway_in_blob_bytes_total",
                                        "Plaintext bytes written to the blob store", NULL);
    m->blobs_stored =
        labelled(reg, "lst_gateway_in_blobs_total", "Blobs handled, by result", "result", "stored");
    m->blobs_failed =
        labelled(reg, "lst_gateway_in_blobs_total", "Blobs handled, by result", "result", "failed");
    const char *pk_help = "Sender public keys resolved, by source";
    m->pubkey_local = labelled(reg, "lst_gateway_in_pubkeys_total", pk_help, "source", "process");
    m->pubkey_redis = labelled(reg, "lst_gateway_in_pubkeys_total", pk_help, "source", "redis");
    m->pubkey_gateway = labelled(reg, "lst_gateway_in_pubkeys_total", pk_help, "source", "gateway");
    m->redis_errors = lst_metrics_counter(reg, "lst_gateway_in_redis_errors_total",
                                          "Redis failures (dedupe or key cache skipped)", NULL);
    m->redis_skipped = lst_metrics_counter(
        reg, "lst_gateway_in_redis_skipped_total",
        "Redis operations skipped while Redis was unreachable or stalled (rgate.c)", NULL);
    m->possible_duplicates =
        lst_metrics_counter(reg, "lst_gateway_in_possible_duplicates_total",
                            "Failed produces that may nevertheless have been written", NULL);
    m->rate_limit = lst_metrics_gauge(reg, "lst_gateway_in_rate_limit",
                                      "Effective Gateway requests per second, shared with "
                                      "gateway-out (lowered by 429s)",
                                      NULL);
    m->rate_waits = lst_metrics_counter(reg, "lst_gateway_in_rate_limit_waits_total",
                                        "Gateway calls that waited for the shared rate", NULL);
    m->rate_busy = lst_metrics_counter(reg, "lst_gateway_in_rate_limit_busy_total",
                                       "Callbacks answered 503: no token of the shared Gateway "
                                       "rate within LST_GATEWAY_RATE_WAIT_MS",
                                       NULL);
}
