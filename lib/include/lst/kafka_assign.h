/* Kafka: a reader that assigns partitions explicitly instead of joining a consumer group, and
 * starts each partition at an offset the application names (e.g. one past a watermark the
 * application keeps next to its data, as the ledger does in Redis).
 *
 * Why not the group consumer of kafka.h: a single writer whose progress is stored atomically
 * with its effects must resume from that stored progress, not from the group's committed
 * offsets (which may be ahead of a Redis that lost its tail, or behind). With an explicit
 * assignment the application's start offsets are authoritative and there are no rebalances.
 *
 * The reader still has a group id and auto-commits the offsets the application marks done
 * (enable.auto.offset.store=false, so only lst_kafka_reader_done stores): the committed offsets
 * serve monitoring (consumer lag tools), never the restart position.
 *
 * Assignment happens only in lst_kafka_reader_refresh, which the application calls between
 * batches (never with records of the old assignment still in flight): the first call assigns
 * every partition of every topic that exists; later calls add topics or partitions that
 * appeared since (re-checked at most every refresh_ms), and force=true re-assigns everything
 * from fresh start offsets (after the application learned that its store lost progress).
 * Every (re)assignment asks the start callback for each partition. librdkafka drops records
 * fetched for an outdated assignment (op versions), so after a forced refresh the next record
 * of a partition is the one at its new start offset.
 *
 * Records are the same struct lst_kafka_record as the group consumer's, released with
 * lst_kafka_record_release. One thread uses a reader. */
#ifndef LST_KAFKA_ASSIGN_H
#define LST_KAFKA_ASSIGN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lst/error.h"
#include "lst/kafka.h"

/* Start offsets the callback may return besides a concrete offset (librdkafka's values). */
#define LST_KAFKA_OFFSET_BEGINNING INT64_C(-2)
#define LST_KAFKA_OFFSET_END       INT64_C(-1)

/* Sets *offset to where partition should start (>= 0, or one of the values above). An error
 * aborts the (re)assignment; lst_kafka_reader_refresh returns it and nothing is assigned. */
typedef lst_err (*lst_kafka_start_fn)(const char *topic, int32_t partition, int64_t *offset,
                                      void *opaque);

struct lst_kafka_reader_opts {
    const char *group_id;      /* required: for the monitoring commits only */
    const char *const *topics; /* required, ntopics full topic names; borrowed during create */
    size_t ntopics;
    lst_kafka_start_fn start; /* required */
    void *opaque;             /* passed to start */
    int refresh_ms;           /* how often refresh re-checks metadata; 0: 5000 */
    int metadata_timeout_ms;  /* bound of one metadata request; 0: 5000 */
};

struct lst_kafka_reader;

/* Creates the handle; performs no assignment yet (call lst_kafka_reader_refresh). On success
 * *out is owned by the caller (lst_kafka_reader_destroy). LST_ERR_CONFIG for bad options. */
lst_err lst_kafka_reader_create(const struct lst_kafka_config *cfg,
                                const struct lst_kafka_reader_opts *opts,
                                struct lst_kafka_reader **out);

/* Assigns as described above. LST_OK also when some topics do not exist yet (they are assigned
 * by a later refresh); LST_ERR_TIMEOUT / LST_ERR_KAFKA when metadata could not be fetched;
 * the start callback's error. */
lst_err lst_kafka_reader_refresh(struct lst_kafka_reader *r, bool force);

/* Partitions currently assigned. */
size_t lst_kafka_reader_assigned(const struct lst_kafka_reader *r);

/* Waits up to timeout_ms for the next record, like lst_kafka_consumer_poll: LST_OK with *out
 * filled (release it), LST_ERR_TIMEOUT when none came, LST_ERR_KAFKA_FATAL. */
lst_err lst_kafka_reader_poll(struct lst_kafka_reader *r, int timeout_ms,
                              struct lst_kafka_record *out);

/* Stores rec's offset + 1 for the next auto-commit (monitoring only). */
lst_err lst_kafka_reader_done(struct lst_kafka_reader *r, const struct lst_kafka_record *rec);

/* The end of a partition (the offset the next produced record gets) as the broker reports it,
 * waiting up to timeout_ms. For lag and "caught up" checks. */
lst_err lst_kafka_reader_high(struct lst_kafka_reader *r, const char *topic, int32_t partition,
                              int timeout_ms, int64_t *high);

/* The group's committed offset of a partition (one past the last record marked done and
 * committed), asking the group coordinator and waiting up to timeout_ms: LST_OK with *offset,
 * -1 when the group has none for it. For checking the application's own progress against
 * what the group saw (a store that went back while the application was down), never as a
 * start position. */
lst_err lst_kafka_reader_committed(struct lst_kafka_reader *r, const char *topic, int32_t partition,
                                   int timeout_ms, int64_t *offset);

/* Readiness: a metadata request succeeds within timeout_ms. */
lst_err lst_kafka_reader_ready(struct lst_kafka_reader *r, int timeout_ms);

/* Commits what is stored (synchronously, bounded by librdkafka) and frees. NULL is a no-op. */
void lst_kafka_reader_destroy(struct lst_kafka_reader *r);

#endif
