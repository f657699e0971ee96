/* Shared between the kafka_*.c files of the library; not installed. Each handle kind (the
 * producer, the group consumer, the assigned reader, the admin handle) keeps only what differs;
 * what they share lives in kafka_common.c. */
#ifndef LST_KAFKA_INTERNAL_H
#define LST_KAFKA_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include <librdkafka/rdkafka.h>

#include "lst/kafka.h"

/* The one place where librdkafka codes become lst_err. */
lst_err lst_kafka_err_map(rd_kafka_resp_err_t err);

/* For callers that tell only a timeout from the rest: LST_ERR_TIMEOUT for the timeout codes,
 * LST_ERR_KAFKA for every other error (LST_OK for no error). */
lst_err lst_kafka_err_coarse(rd_kafka_resp_err_t err);

/* Sets one property; logs and returns LST_ERR_CONFIG when librdkafka refuses it. */
lst_err lst_kafka_conf_set(rd_kafka_conf_t *conf, const char *key, const char *value);

/* The same for a number property. */
lst_err lst_kafka_conf_set_int(rd_kafka_conf_t *conf, const char *key, int value);

/* What one handle kind adds to the common configuration. */
struct lst_kafka_handle_spec {
    rd_kafka_type_t type;
    /* NULL: no group. Otherwise the at-least-once settings of every group member (the group
     * consumer and the assigned reader): only offsets the application marks done are stored,
     * stored ones are committed every second, a new group starts at the beginning, no EOF
     * events. */
    const char *group_id;
    /* NULL, or sets the kind's callbacks and properties; LST_ERR_CONFIG when librdkafka
     * refuses one. */
    lst_err (*apply)(rd_kafka_conf_t *conf, const struct lst_kafka_config *cfg);
    void *opaque;      /* the callbacks' opaque (rd_kafka_conf_set_opaque) */
    const char *event; /* logged with librdkafka's reason when the handle cannot be created */
};

/* Creates a handle: the settings every handle shares (brokers, client id, keepalive, logging
 * through lst_log), then the spec's, then cfg->extra ("key=value" strings) last, so tests can
 * override anything. A consumer's main queue is served by rd_kafka_consumer_poll. On success
 * *out is owned by the caller (rd_kafka_destroy); LST_ERR_CONFIG for a bad setting. */
lst_err lst_kafka_handle_new(const struct lst_kafka_config *cfg,
                             const struct lst_kafka_handle_spec *spec, rd_kafka_t **out);

/* The part of an error_cb that producer and consumer share: true for __FATAL (the caller
 * records it once and logs it with lst_kafka_log_fatal); any other error (broker down,
 * transport) is logged under event and retried by librdkafka itself. */
bool lst_kafka_error_is_fatal(int err, const char *reason, const char *event);

/* Logs rk's fatal error with its real cause, as "<what> failed for good: <code>: <reason>":
 * the __FATAL code itself says nothing. */
void lst_kafka_log_fatal(rd_kafka_t *rk, const char *event, const char *what);

/* Metadata request for the brokers only: the readiness probe of every handle kind. */
lst_err lst_kafka_probe(rd_kafka_t *rk, int timeout_ms);

/* --- what the group consumer and the assigned reader share ---------------------------- */

/* A group id and 1 to 1000 topic names, none of them NULL or empty. */
bool lst_kafka_topics_ok(const char *group_id, const char *const *topics, size_t ntopics);

/* How a reading handle takes part in lst_kafka_poll_record. */
struct lst_kafka_poll_ops {
    /* NULL, or called before every poll: LST_OK to poll, anything else is returned. */
    lst_err (*before)(void *arg);
    /* Called for a message with an error, which is destroyed afterwards: LST_OK to poll on,
     * anything else is returned. */
    lst_err (*on_error)(const rd_kafka_message_t *m, void *arg);
    void *arg;
};

/* Zeroes *out, then polls one message at a time until one without error comes or timeout_ms
 * ran out: LST_OK with *out filled (lst_kafka_record_release), LST_ERR_TIMEOUT, or what an
 * op returned. */
lst_err lst_kafka_poll_record(rd_kafka_t *rk, int timeout_ms, const struct lst_kafka_poll_ops *ops,
                              struct lst_kafka_record *out);

/* Stores rec's offset + 1 for the next commit. LST_ERR_INVALID for a record without topic or
 * offset, LST_ERR_NOMEM; otherwise LST_OK with *err set to librdkafka's answer for the
 * partition (__STATE: not assigned any more), which the caller judges. */
lst_err lst_kafka_store_next(rd_kafka_t *rk, const struct lst_kafka_record *rec,
                             rd_kafka_resp_err_t *err);

#endif
