/* Kafka: the idempotent producer and the at-least-once consumer every service uses, on top of
 * librdkafka 2.0.2 (see docs pitfalls: the defaults of that version lose or duplicate data).
 *
 * Producer: enable.idempotence=true, acks=all, message.timeout.ms from the config, linger 5 ms.
 * lst_kafka_produce may be called from many threads at once; each caller may wait for the
 * delivery report of its own record. Delivery reports are served by a dedicated poll thread
 * that wakes the waiting caller through a condition variable. A fatal idempotence error
 * ("out of order sequence" and friends) is logged once and makes every later produce fail
 * with LST_ERR_KAFKA_FATAL: the service must stop accepting work and exit non-zero.
 *
 * Consumer: one group, enable.auto.offset.store=false, auto.offset.reset=earliest, auto-commit
 * of *stored* offsets every second plus a synchronous commit on revoke and on close, eager
 * assignors. Poll one record at a time; call lst_kafka_consumer_done only once the record's
 * effect is durable (at-least-once: records not done are delivered again after a crash or a
 * rebalance, so every consumer must be idempotent).
 *
 * Topic names are full names: callers add LST_TOPIC_PREFIX themselves.
 *
 * Threads: a producer is fully thread-safe except create/destroy. A consumer is used by one
 * thread (the one that polls; the revoke hook runs in it); lst_kafka_consumer_ready may be
 * called from any thread. */
#ifndef LST_KAFKA_H
#define LST_KAFKA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lst/error.h"

struct lst_metrics;

/* Settings shared by producer and consumer. Strings are borrowed during _create only. */
struct lst_kafka_config {
    const char *brokers;         /* required: "host:port,host:port" */
    const char *client_id;       /* NULL: "leitstand" */
    int session_timeout_ms;      /* consumer; 0: 10000 (broker minimum 6000) */
    int message_timeout_ms;      /* producer: a record fails after this; 0: 30000 */
    int flush_timeout_ms;        /* producer destroy: bound of the final flush; 0: 10000 */
    const char *const *extra;    /* NULL or a NULL-terminated list of "key=value" librdkafka
                                    properties applied last (tests: test.mock.num.brokers=1) */
    struct lst_metrics *metrics; /* NULL or the service's registry; borrowed for the lifetime */
};

/* --- producer ------------------------------------------------------------------------ */

/* What is known about a record after its delivery attempt (rd_kafka_message_status). */
enum lst_kafka_persisted {
    LST_KAFKA_NOT_PERSISTED = 0,      /* never reached the broker: safe to retry */
    LST_KAFKA_POSSIBLY_PERSISTED = 1, /* unknown: a retry may write a duplicate */
    LST_KAFKA_PERSISTED = 2,          /* written (acked by all in-sync replicas) */
};

struct lst_kafka_delivery {
    lst_err err;                     /* LST_OK only for a delivery report without error */
    enum lst_kafka_persisted status; /* meaningful on failure too */
    int32_t partition;               /* -1 when unknown */
    int64_t offset;                  /* -1 when unknown */
};

/* Called from the producer's poll thread (or from a thread inside lst_kafka_producer_flush or
 * _destroy); must not block for long nor call lst_kafka_producer_destroy. d is borrowed for
 * the call. */
typedef void (*lst_kafka_delivery_cb)(const struct lst_kafka_delivery *d, void *opaque);

struct lst_kafka_producer;

/* Creates the producer and starts its poll thread. On success *out is a new producer owned by
 * the caller (free with lst_kafka_producer_destroy). LST_ERR_CONFIG for a bad setting. */
lst_err lst_kafka_producer_create(const struct lst_kafka_config *cfg,
                                  struct lst_kafka_producer **out);

/* Flushes for at most flush_timeout_ms, logs how many records were left unsent (their
 * delivery reports fail with a purge error), stops the poll thread and frees everything.
 * No other thread may use p any more. NULL is a no-op. */
void lst_kafka_producer_destroy(struct lst_kafka_producer *p);

/* Sends one record; key and value are copied (either may be NULL with length 0).
 * wait_timeout_ms > 0: blocks until the record's delivery report arrives or the wait runs out;
 *   LST_OK only when the broker acknowledged the record with an offset (a librdkafka success
 *   report without one, an "implicit ack", fails with LST_ERR_KAFKA, POSSIBLY_PERSISTED: it may
 *   not be in the log). Failures: LST_ERR_TIMEOUT (message
 *   timeout, or the wait ran out: the record may still be delivered later), LST_ERR_NOT_FOUND
 *   (unknown topic or partition), LST_ERR_TOO_LARGE, LST_ERR_KAFKA (other, retrying may help),
 *   LST_ERR_KAFKA_FATAL (the producer is dead), LST_ERR_INVALID (bad arguments).
 * wait_timeout_ms == 0: fire-and-forget; LST_OK means queued, a later failure is only logged.
 * out may be NULL; otherwise it receives the outcome including rd_kafka_message_status, so the
 * caller can tell a safe retry (NOT_PERSISTED) from a possible duplicate. */
lst_err lst_kafka_produce(struct lst_kafka_producer *p, const char *topic, const void *key,
                          size_t keylen, const void *value, size_t len, int64_t wait_timeout_ms,
                          struct lst_kafka_delivery *out);

/* Like fire-and-forget lst_kafka_produce, but cb (may be NULL) is called exactly once with the
 * delivery outcome when LST_OK is returned, never when an error is returned. */
lst_err lst_kafka_produce_async(struct lst_kafka_producer *p, const char *topic, const void *key,
                                size_t keylen, const void *value, size_t len,
                                lst_kafka_delivery_cb cb, void *opaque);

/* Names topics this producer will write to; returns at once. The poll thread fetches their
 * metadata and keeps them known for the producer's life. Without it, librdkafka 2.0.2 learns
 * a topic's leaders only at its next once-a-second topic scan after the topic's first record:
 * gateway-out's first 2,048 outcomes after a start waited 0.7-1 s for their delivery reports.
 * Best effort: a broker that does not answer within 1 s changes nothing but that wait (one
 * metadata request for all of them; the poll thread serves no reports meanwhile).
 * LST_ERR_INVALID beyond 16 topics per producer, LST_ERR_NOMEM. */
lst_err lst_kafka_producer_prepare(struct lst_kafka_producer *p, const char *const *topics);

/* Waits up to timeout_ms until every queued record has its delivery report.
 * LST_ERR_TIMEOUT when records are still outstanding. */
lst_err lst_kafka_producer_flush(struct lst_kafka_producer *p, int timeout_ms);

/* True once a fatal error was raised: stop accepting work and exit non-zero. */
bool lst_kafka_producer_fatal(struct lst_kafka_producer *p);

/* Readiness: LST_OK when not fatal and a metadata request to the cluster succeeds within
 * timeout_ms; LST_ERR_KAFKA_FATAL, LST_ERR_TIMEOUT or LST_ERR_KAFKA otherwise. */
lst_err lst_kafka_producer_ready(struct lst_kafka_producer *p, int timeout_ms);

/* --- consumer ------------------------------------------------------------------------ */

/* A topic partition, as handed to the revoke hook. topic is borrowed for the call. */
struct lst_kafka_tp {
    const char *topic;
    int32_t partition;
};

/* Called in the polling thread when partitions are taken away (rebalance or close), before
 * stored offsets are committed synchronously: finish the in-flight work and call
 * lst_kafka_consumer_done for what is durable, or abandon it (it will be redelivered to
 * whoever gets the partition). */
typedef void (*lst_kafka_revoke_cb)(const struct lst_kafka_tp *tps, size_t n, void *opaque);

struct lst_kafka_consumer_opts {
    const char *group_id;      /* required */
    const char *const *topics; /* required, ntopics full topic names */
    size_t ntopics;
    lst_kafka_revoke_cb on_revoke; /* may be NULL */
    void *opaque;                  /* passed to on_revoke */
};

/* One consumed record. Every pointer is borrowed from the underlying librdkafka message and
 * valid until lst_kafka_record_release, which the caller must call for every record that
 * lst_kafka_consumer_poll returned with LST_OK. */
struct lst_kafka_record {
    const char *topic;
    int32_t partition;
    int64_t offset;
    const void *key; /* NULL when the record has no key */
    size_t keylen;
    const void *value; /* NULL for a tombstone */
    size_t len;
    int64_t timestamp_ms; /* -1 when unknown */
    void *msg;            /* internal: the rd_kafka_message_t */
};

struct lst_kafka_consumer;

/* Creates the consumer and subscribes to the topics (partitions arrive during polling).
 * On success *out is owned by the caller (lst_kafka_consumer_destroy). */
lst_err lst_kafka_consumer_create(const struct lst_kafka_config *cfg,
                                  const struct lst_kafka_consumer_opts *opts,
                                  struct lst_kafka_consumer **out);

/* Waits up to timeout_ms for the next record. LST_OK with *out filled; LST_ERR_TIMEOUT when
 * none came; LST_ERR_KAFKA_FATAL on a fatal consumer error; LST_ERR_STATE after close.
 * Transient errors (broker down, unknown topic) are logged and polling goes on. Rebalances
 * (and the revoke hook) are served inside this call. */
lst_err lst_kafka_consumer_poll(struct lst_kafka_consumer *c, int timeout_ms,
                                struct lst_kafka_record *out);

/* Marks rec as done: stores offset + 1 for commit (auto-commit within a second, at the latest
 * on revoke or close). Call it before lst_kafka_record_release, only when the record's effect
 * is durable. LST_ERR_STATE when the partition is no longer assigned to us (another consumer
 * will redo the work; not an error for the caller), LST_ERR_KAFKA otherwise. */
lst_err lst_kafka_consumer_done(struct lst_kafka_consumer *c, const struct lst_kafka_record *rec);

/* Destroys the underlying message; rec is zeroed. Safe on a zeroed record. */
void lst_kafka_record_release(struct lst_kafka_record *rec);

/* Pauses every assigned partition and keeps new assignments paused until resume_all; records
 * already fetched for them are not delivered (they come again after resume). */
lst_err lst_kafka_consumer_pause_all(struct lst_kafka_consumer *c);
/* Resumes exactly the partitions pause_all paused (resuming a partition that is not paused
 * rewinds it in librdkafka 2.0.2, producing duplicates). */
lst_err lst_kafka_consumer_resume_all(struct lst_kafka_consumer *c);
bool lst_kafka_consumer_paused(const struct lst_kafka_consumer *c);

/* Readiness: a metadata request succeeds within timeout_ms and no fatal error was seen.
 * Callable from any thread. */
lst_err lst_kafka_consumer_ready(struct lst_kafka_consumer *c, int timeout_ms);

/* Commits stored offsets synchronously and leaves the group (so it rebalances at once).
 * Later polls return LST_ERR_STATE. Returns the commit's outcome. */
lst_err lst_kafka_consumer_close(struct lst_kafka_consumer *c);

/* Closes if not closed yet, then frees. NULL is a no-op. */
void lst_kafka_consumer_destroy(struct lst_kafka_consumer *c);

/* --- admin --------------------------------------------------------------------------- */

/* Creates topic with the given partitions and replication factor through the admin API,
 * waiting up to timeout_ms. LST_OK also when it already exists. */
lst_err lst_kafka_create_topic(const struct lst_kafka_config *cfg, const char *topic,
                               int partitions, int replication, int timeout_ms);

#endif
