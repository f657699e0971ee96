/* Dead letters: a record the ledger can never apply goes to <topic>.dlq with
 * the reason, and only then does its watermark advance (the caller queues a
 * watermark-only script). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledger.h"
#include "lst/log.h"

/* The reason within LST_REASON_MAX bytes, cut at a character boundary. */
static char *bounded_reason(const char *reason)
{
    size_t len = strlen(reason);
    if (len > LST_REASON_MAX - 4) {
        len = LST_REASON_MAX - 4;
        while (len > 0 && ((unsigned char)reason[len] & 0xC0) == 0x80)
            len--;
    }
    char *out = malloc(len + 1);
    if (out != NULL) {
        memcpy(out, reason, len);
        out[len] = '\0';
    }
    return out;
}

static lst_err build_dlq(struct ledger_core *c, const struct ledger_rec *rec, lst_err why,
                         const char *reason, struct lst_dlq *d)
{
    memset(d, 0, sizeof(*d));
    d->source_topic = lst_strdup(c->topics[rec->topic]);
    d->source_partition = rec->partition;
    d->source_offset = rec->offset;
    d->error = lst_strdup(lst_err_name(why));
    d->reason = bounded_reason(reason[0] ? reason : lst_strerror(why));
    d->failed_at = lst_wall_ms();
    d->service = lst_strdup("ledger");
    if (d->source_topic == NULL || d->error == NULL || d->reason == NULL || d->service == NULL)
        return LST_ERR_NOMEM;
    if (rec->key != NULL) {
        d->has_key = true;
        if (lst_dlq_payload_set(&d->key, rec->key, rec->keylen) != LST_OK)
            return LST_ERR_NOMEM;
    }
    if (rec->value != NULL) {
        d->has_value = true;
        if (lst_dlq_payload_set(&d->value, rec->value, rec->len) != LST_OK)
            return LST_ERR_NOMEM;
    }
    return LST_OK;
}

lst_err ledger_dlq(struct ledger_core *c, const struct ledger_rec *rec, lst_err why,
                   const char *reason)
{
    struct lst_dlq d;
    struct lst_buf out;
    char topic[LST_TOPIC_MAX + 1];
    lst_err err;

    LST_WARN("ledger.dead_letter", "%s [%d] offset %lld: %s: %.200s", c->topics[rec->topic],
             (int)rec->partition, (long long)rec->offset, lst_err_name(why), reason);
    if (c->producer == NULL)
        return LST_OK; /* tests and benchmarks without Kafka */
    lst_buf_init(&out);
    err = build_dlq(c, rec, why, reason, &d);
    if (err == LST_OK)
        err = lst_dlq_encode(&d, &out);
    if (err == LST_OK) {
        int n = snprintf(topic, sizeof(topic), "%s.dlq", c->topics[rec->topic]);
        err = n > 0 && (size_t)n < sizeof(topic) ? LST_OK : LST_ERR_TOO_LARGE;
    }
    if (err == LST_OK)
        err = lst_kafka_produce(c->producer, topic, rec->key, rec->keylen, out.data, out.len,
                                c->cfg->common.kafka_message_timeout_ms, NULL);
    if (err != LST_OK)
        LST_ERROR("ledger.dead_letter_failed", "%s [%d] offset %lld: %s", c->topics[rec->topic],
                  (int)rec->partition, (long long)rec->offset, lst_strerror(err));
    lst_dlq_cleanup(&d);
    lst_buf_cleanup(&out);
    return err;
}
