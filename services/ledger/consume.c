/* The Kafka side: every partition of the five topics is assigned explicitly at
 * its watermark
 * + 1 from Redis (lst/kafka_assign.h), records are read in batches and applied
 * through the core. Whenever Redis may have lost progress (a gap reported by a
 * script, a failed batch, a new connection) every partition is assigned again
 * from the watermarks, which refills what Redis lost and re-reads what was not
 * applied. */
#include <string.h>

#include "ledger.h"
#include "lst/log.h"

#define BACKOFF_MS       500
#define REFRESH_MS       5000
#define MAX_IDLE_WAIT_MS 50
#define IDLE_PING_MS     1000
#define REFILL_SYNC_MS   1000 /* adopting other ledgers' refill markers */
#define ROUNDS_MS        200  /* batches read in one step before the step's other duties */

static lst_err start_cb(const char *topic, int32_t partition, int64_t *offset, void *opaque)
{
    struct ledger *ctx = opaque;

    for (int t = 0; t < LEDGER_T__COUNT; t++) {
        if (strcmp(ctx->core.topics[t], topic) != 0)
            continue;
        lst_err err = ledger_core_start(&ctx->core, (enum ledger_topic)t, partition, offset);
        if (err == LST_OK)
            err = ledger_refill_check(ctx, (enum ledger_topic)t, partition);
        return err;
    }
    return LST_ERR_INVALID;
}

lst_err ledger_consume_init(struct ledger *ctx)
{
    const struct lst_common_config *cc = &ctx->cfg.common;
    const char *topics[LEDGER_T__COUNT];
    struct lst_kafka_config kc = {
        .brokers = cc->kafka_brokers,
        .client_id = "ledger",
        .session_timeout_ms = (int)cc->kafka_session_timeout_ms,
        .metrics = ctx->svc != NULL ? ctx->svc->metrics : NULL,
    };
    struct lst_kafka_reader_opts ro = {
        .group_id = ctx->cfg.group_id,
        .topics = topics,
        .ntopics = LEDGER_T__COUNT,
        .start = start_cb,
        .opaque = ctx,
        .refresh_ms = REFRESH_MS,
    };

    for (int t = 0; t < LEDGER_T__COUNT; t++)
        topics[t] = ctx->core.topics[t];
    if (kc.metrics != NULL)
        ctx->m_assigned = lst_metrics_gauge(kc.metrics, "lst_ledger_partitions_assigned",
                                            "Partitions the ledger reads", NULL);
    ctx->reassign = true;
    return lst_kafka_reader_create(&kc, &ro, &ctx->reader);
}

/* (Re)assigns: forced after a failure or a new Redis connection, otherwise only
 * when topics or partitions appeared (checked every REFRESH_MS). A forced one
 * checks every partition for lost progress (refill markers) and then confirms
 * the check for this Redis server (refill.c). */
static lst_err assign(struct ledger *ctx)
{
    unsigned long conns = lst_redis_connect_count(ctx->core.redis);
    bool force = ctx->reassign || conns != ctx->redis_conns;
    lst_err err = LST_OK;

    if (force) {
        ledger_core_forget(&ctx->core);
        err = ledger_refill_begin(ctx->refill, ctx->core.redis);
    }
    if (err == LST_OK)
        err = lst_kafka_reader_refresh(ctx->reader, force);
    if (err == LST_OK && force)
        err = ledger_refill_confirm(ctx->refill, ctx->core.redis);
    if (err != LST_OK) {
        ctx->reassign = ctx->reassign || force;
        return err;
    }
    ctx->reassign = false;
    ctx->redis_conns = lst_redis_connect_count(ctx->core.redis);
    lst_gauge_set(ctx->m_assigned, (double)lst_kafka_reader_assigned(ctx->reader));
    return LST_OK;
}

static enum ledger_topic topic_of(const struct ledger *ctx, const char *name)
{
    for (int t = 0; t < LEDGER_T__COUNT; t++) {
        if (strcmp(ctx->core.topics[t], name) == 0)
            return (enum ledger_topic)t;
    }
    return LEDGER_T__COUNT;
}

/* Queues one record; false when it could not be queued (it is read again after
 * reassigning). */
static bool queue(struct ledger *ctx, struct lst_kafka_record *kr)
{
    struct ledger_rec rec = {
        .topic = topic_of(ctx, kr->topic),
        .partition = kr->partition,
        .offset = kr->offset,
        .key = kr->key,
        .keylen = kr->keylen,
        .value = kr->value,
        .len = kr->len,
    };
    lst_err err = rec.topic < LEDGER_T__COUNT ? ledger_core_add(&ctx->core, &rec) : LST_ERR_INVALID;

    lst_kafka_record_release(kr);
    if (err != LST_OK)
        LST_WARN("ledger.queue_failed", "%s [%d] offset %lld: %s", ledger_topic_base(rec.topic),
                 (int)rec.partition, (long long)rec.offset, lst_strerror(err));
    return err == LST_OK;
}

/* Receives the batch in flight; stores the applied offsets for the monitoring
 * commits, only those beyond what this process applied before (a refill re-applies
 * older ones: the group's commits never go back), and clears the refill markers
 * the batch reached. */
static void receive(struct ledger *ctx, bool *failed)
{
    const struct ledger_done *done = NULL;
    size_t n = 0;

    if (ledger_core_recv(&ctx->core, &done, &n) != LST_OK)
        *failed = true;
    for (size_t i = 0; i < n; i++) {
        if (done[i].outcome != LEDGER_APPLIED ||
            !ledger_refill_applied(ctx->refill, done[i].topic, done[i].partition, done[i].offset))
            continue;
        struct lst_kafka_record kr = {.topic = ctx->core.topics[done[i].topic],
                                      .partition = done[i].partition,
                                      .offset = done[i].offset};
        lst_kafka_reader_done(ctx->reader, &kr);
    }
    if (n > 0)
        ledger_refill_reached(ctx);
}

/* Queues up to a batch of records, waiting up to wait_ms for the first; *n says how many. */
static lst_err fill(struct ledger *ctx, int wait_ms, bool *failed, int64_t *n)
{
    struct lst_kafka_record kr;
    lst_err err = lst_kafka_reader_poll(ctx->reader, wait_ms, &kr);

    *n = 0;
    if (err == LST_ERR_TIMEOUT && wait_ms > 0 && lst_mono_ms() >= ctx->next_ping) {
        /* Idle: a Redis that restarted (and maybe lost its tail) is only noticed through a
         * command; the PING reconnects, and the next step then reassigns from the watermarks. */
        ctx->next_ping = lst_mono_ms() + IDLE_PING_MS;
        lst_redis_ping(ctx->core.redis);
    }
    while (err == LST_OK) {
        if (!queue(ctx, &kr)) {
            *failed = true;
            break;
        }
        if (++*n >= ctx->cfg.batch)
            break;
        err = lst_kafka_reader_poll(ctx->reader, 0, &kr);
    }
    return err;
}

/* Reads and applies batches for up to ROUNDS_MS: each batch is read from Kafka and encoded
 * while Redis runs the one before (Redis and the ledger took turns before, and Redis, the
 * bound, sat idle for the ledger's share). A failure drops the batch being built: it is read
 * again after the reassignment. Nothing is in flight on return, so the rest of the step may
 * use the connection. */
static lst_err read_batch(struct ledger *ctx, bool *failed)
{
    int64_t until = lst_mono_ms() + ROUNDS_MS;
    lst_err err = LST_OK;

    for (;;) {
        bool flying = ledger_core_in_flight(&ctx->core);
        int64_t n = 0;
        err = fill(ctx, flying ? 0 : (int)ctx->cfg.poll_ms, failed, &n);
        if (flying)
            receive(ctx, failed);
        if (*failed) {
            ledger_core_discard(&ctx->core);
            break;
        }
        if (n == 0)
            break;
        ledger_core_send(&ctx->core);
        if (err == LST_ERR_KAFKA_FATAL || lst_mono_ms() >= until)
            break;
    }
    if (ledger_core_in_flight(&ctx->core))
        receive(ctx, failed);
    return err == LST_ERR_KAFKA_FATAL ? err : LST_OK;
}

lst_err ledger_consume_step(void *ud)
{
    struct ledger *ctx = ud;
    bool failed = false;
    int64_t now = lst_mono_ms();

    if (now < ctx->backoff_until) {
        int64_t wait = ctx->backoff_until - now;
        lst_sleep_ms(wait < MAX_IDLE_WAIT_MS ? wait : MAX_IDLE_WAIT_MS, NULL);
        return LST_OK;
    }
    if (assign(ctx) != LST_OK) {
        ctx->backoff_until = lst_mono_ms() + BACKOFF_MS;
        return LST_OK; /* Kafka or Redis unreachable: /readyz says so, we keep
                          trying */
    }
    lst_err err = read_batch(ctx, &failed);
    if (lst_mono_ms() >= ctx->next_refill_sync) {
        ctx->next_refill_sync = lst_mono_ms() + REFILL_SYNC_MS;
        ledger_refill_sync(ctx);
    }
    ledger_retention_tick(ctx);
    if (failed) {
        ctx->reassign = true;
        ctx->backoff_until = lst_mono_ms() + BACKOFF_MS / 5;
    }
    return err;
}
