/* Records to Kafka, each produced with a wait for its delivery report: the callback's 200
 * means "Kafka holds it". The producer's message timeout is bounded by the ack timeout at
 * start-up (gateway_in.c), so the report is final when the wait ends: a failure is a real
 * failure (503, the Gateway retries) and not a record that may still show up later. */
#include <string.h>

#include "lst/log.h"
#include "gateway_in.h"

static lst_err produce(struct gateway_in *ctx, const char *topic, const char *key,
                       const struct lst_buf *value, bool *possibly_persisted)
{
    struct lst_kafka_delivery d = {0};
    lst_err err = lst_kafka_produce(
        ctx->svc->producer, topic, key, key != NULL ? strlen(key) : 0, value->data, value->len,
        ctx->cfg.common.kafka_message_timeout_ms + GWIN_ACK_MARGIN_MS, &d);
    *possibly_persisted = err != LST_OK && d.status != LST_KAFKA_NOT_PERSISTED;
    if (*possibly_persisted)
        lst_counter_inc(ctx->m.possible_duplicates);
    if (err != LST_OK)
        LST_WARN("gateway_in.produce_failed", "producing to %s failed: %s (%s)", topic,
                 lst_strerror(err),
                 d.status == LST_KAFKA_PERSISTED            ? "persisted"
                 : d.status == LST_KAFKA_POSSIBLY_PERSISTED ? "possibly persisted"
                                                            : "not persisted");
    return err;
}

lst_err gwin_publish_inbound(struct gateway_in *ctx, const struct lst_inbound *rec,
                             bool *possibly_persisted, struct lst_buf *why)
{
    struct lst_buf value;
    lst_buf_init(&value);
    *possibly_persisted = false;
    lst_err err = lst_inbound_validate(rec, why);
    if (err == LST_OK)
        err = lst_inbound_encode(rec, &value);
    if (err != LST_OK) {
        if (err != LST_ERR_NOMEM)
            err = LST_ERR_INVALID; /* the caller dead-letters it with why */
        goto out;
    }
    err = produce(ctx, ctx->topic_inbound, rec->from, &value, possibly_persisted);
out:
    lst_buf_cleanup(&value);
    return err;
}

lst_err gwin_publish_inbound_async(struct gateway_in *ctx, const struct lst_inbound *rec,
                                   lst_kafka_delivery_cb cb, void *opaque, struct lst_buf *why)
{
    struct lst_buf value;
    lst_buf_init(&value);
    lst_err err = lst_inbound_validate(rec, why);
    if (err == LST_OK)
        err = lst_inbound_encode(rec, &value);
    if (err != LST_OK && err != LST_ERR_NOMEM)
        err = LST_ERR_INVALID;
    if (err == LST_OK)
        err = lst_kafka_produce_async(ctx->svc->producer, ctx->topic_inbound, rec->from,
                                      strlen(rec->from), value.data, value.len, cb, opaque);
    if (err != LST_OK && err != LST_ERR_INVALID)
        LST_WARN("gateway_in.produce_failed", "producing to %s failed: %s", ctx->topic_inbound,
                 lst_strerror(err));
    lst_buf_cleanup(&value);
    return err;
}

lst_err gwin_publish_dlq(struct gateway_in *ctx, const char *key, const char *body, size_t len,
                         lst_err error, const char *reason)
{
    struct lst_dlq d;
    struct lst_buf value;
    bool maybe = false;
    memset(&d, 0, sizeof(d));
    lst_buf_init(&value);
    /* Not a Kafka record: the source is the callback endpoint, position 0/0. */
    d.source_topic = lst_strdup("gateway-in.callback");
    d.error = lst_strdup(lst_err_name(error));
    d.reason = lst_strdup(reason != NULL && reason[0] != '\0' ? reason : lst_strerror(error));
    d.service = lst_strdup("gateway-in");
    d.failed_at = lst_wall_ms();
    lst_err err = LST_OK;
    if (key != NULL) {
        d.has_key = true;
        err = lst_dlq_payload_set(&d.key, key, strlen(key));
    }
    d.has_value = true;
    if (err == LST_OK)
        err = lst_dlq_payload_set(&d.value, body, len);
    if (err == LST_OK &&
        (d.source_topic == NULL || d.error == NULL || d.reason == NULL || d.service == NULL))
        err = LST_ERR_NOMEM;
    if (err == LST_OK && strlen(d.reason) > LST_REASON_MAX)
        d.reason[LST_REASON_MAX] = '\0'; /* reasons are ASCII: a plain cut is fine */
    if (err == LST_OK)
        err = lst_dlq_encode(&d, &value);
    if (err == LST_OK)
        err = produce(ctx, ctx->topic_dlq, key, &value, &maybe);
    else
        LST_ERROR("gateway_in.dlq_encode", "dead-letter record does not encode: %s",
                  lst_strerror(err));
    lst_dlq_cleanup(&d);
    lst_buf_cleanup(&value);
    return err;
}
