/* The at-least-once consumer: offsets are stored only when the caller says a record's work is
 * durable, auto-commit commits what is stored, and a revoke commits synchronously before the
 * partitions go. One record per poll: the batch APIs of 2.0.2 lose messages around
 * pause/resume, seek and rebalances. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "kafka_internal.h"
#include "lst/log.h"
#include "lst/metrics.h"
#include "lst/util.h"

struct lst_kafka_consumer {
    rd_kafka_t *rk;
    lst_kafka_revoke_cb on_revoke;
    void *opaque;
    rd_kafka_topic_partition_list_t *paused; /* exactly what we paused, to resume exactly it */
    bool pause_mode;                         /* keep new assignments paused too */
    bool closed;
    atomic_bool fatal;
    struct lst_counter *m_consumed;   /* NULL without a metrics registry */
    struct lst_counter *m_rebalances; /* revokes and assigns */
};

static void note_fatal(struct lst_kafka_consumer *c)
{
    if (!atomic_exchange(&c->fatal, true))
        lst_kafka_log_fatal(c->rk, "kafka.consumer.fatal", "consumer");
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    (void)rk;
    if (lst_kafka_error_is_fatal(err, reason, "kafka.consumer.error"))
        note_fatal(opaque);
}

/* Commits the stored offsets of the current assignment and waits for the answer. */
static lst_err commit_sync(struct lst_kafka_consumer *c, const char *why)
{
    rd_kafka_resp_err_t err = rd_kafka_commit(c->rk, NULL, 0);

    /* __NO_OFFSET: nothing stored since the last commit, nothing to do. */
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR || err == RD_KAFKA_RESP_ERR__NO_OFFSET)
        return LST_OK;
    LST_WARN("kafka.consumer.commit_failed", "%s: %s", why, rd_kafka_err2name(err));
    return lst_kafka_err_coarse(err);
}

static void remember_paused(struct lst_kafka_consumer *c,
                            const rd_kafka_topic_partition_list_t *parts)
{
    for (int i = 0; i < parts->cnt; i++) {
        const rd_kafka_topic_partition_t *tp = &parts->elems[i];

        if (tp->err != RD_KAFKA_RESP_ERR_NO_ERROR)
            continue; /* not paused: must not be resumed either */
        if (rd_kafka_topic_partition_list_find(c->paused, tp->topic, tp->partition) == NULL)
            rd_kafka_topic_partition_list_add(c->paused, tp->topic, tp->partition);
    }
}

static lst_err pause_parts(struct lst_kafka_consumer *c, rd_kafka_topic_partition_list_t *parts)
{
    rd_kafka_resp_err_t err;

    if (parts->cnt == 0)
        return LST_OK;
    err = rd_kafka_pause_partitions(c->rk, parts);
    remember_paused(c, parts);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        LST_WARN("kafka.consumer.pause_failed", "%s", rd_kafka_err2name(err));
        return LST_ERR_KAFKA;
    }
    return LST_OK;
}

/* Resumes what we paused and forgets it. Only ever partitions we paused ourselves: resuming
 * one that is not paused rewinds it to an older position in 2.0.2 (fixed in 2.4). */
static lst_err resume_paused(struct lst_kafka_consumer *c)
{
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
    rd_kafka_topic_partition_list_t *fresh;

    if (c->paused->cnt > 0)
        err = rd_kafka_resume_partitions(c->rk, c->paused);
    fresh = rd_kafka_topic_partition_list_new(4);
    if (fresh == NULL)
        return LST_ERR_NOMEM;
    rd_kafka_topic_partition_list_destroy(c->paused);
    c->paused = fresh;
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        LST_WARN("kafka.consumer.resume_failed", "%s", rd_kafka_err2name(err));
        return LST_ERR_KAFKA;
    }
    return LST_OK;
}

static void call_revoke_hook(struct lst_kafka_consumer *c,
                             const rd_kafka_topic_partition_list_t *parts)
{
    struct lst_kafka_tp *tps;
    size_t n = (size_t)parts->cnt;

    if (c->on_revoke == NULL)
        return;
    tps = calloc(n ? n : 1, sizeof(*tps));
    if (tps == NULL)
        n = 0; /* still let the application finish its in-flight work */
    for (size_t i = 0; i < n; i++) {
        tps[i].topic = parts->elems[i].topic;
        tps[i].partition = parts->elems[i].partition;
    }
    c->on_revoke(tps, n, c->opaque);
    free(tps);
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    struct lst_kafka_consumer *c = opaque;

    lst_counter_inc(c->m_rebalances);
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        LST_INFO("kafka.consumer.assigned", "%d partitions", parts->cnt);
        rd_kafka_assign(rk, parts);
        /* A 402 pause (gateway-out) must survive a rebalance. */
        if (c->pause_mode)
            pause_parts(c, parts);
        return;
    }
    if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        LST_INFO("kafka.consumer.revoked", "%d partitions", parts->cnt);
        call_revoke_hook(c, parts);
        commit_sync(c, "revoke");
        /* Clear librdkafka's pause flag too, or a partition could come back paused. */
        resume_paused(c);
    } else {
        LST_ERROR("kafka.consumer.rebalance_error", "%s", rd_kafka_err2name(err));
    }
    rd_kafka_assign(rk, NULL);
}

/* The group consumer's part of its configuration (lst_kafka_handle_spec.apply). */
static lst_err consumer_conf(rd_kafka_conf_t *conf, const struct lst_kafka_config *cfg)
{
    rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    return lst_kafka_conf_set_int(conf, "session.timeout.ms",
                                  cfg->session_timeout_ms > 0 ? cfg->session_timeout_ms : 10000);
}

static lst_err subscribe(struct lst_kafka_consumer *c, const struct lst_kafka_consumer_opts *opts)
{
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new((int)opts->ntopics);
    rd_kafka_resp_err_t err;

    if (topics == NULL)
        return LST_ERR_NOMEM;
    for (size_t i = 0; i < opts->ntopics; i++)
        rd_kafka_topic_partition_list_add(topics, opts->topics[i], RD_KAFKA_PARTITION_UA);
    err = rd_kafka_subscribe(c->rk, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        LST_ERROR("kafka.consumer.subscribe_failed", "%s", rd_kafka_err2name(err));
        return LST_ERR_KAFKA;
    }
    return LST_OK;
}

static bool opts_ok(const struct lst_kafka_consumer_opts *opts)
{
    return opts != NULL && lst_kafka_topics_ok(opts->group_id, opts->topics, opts->ntopics);
}

lst_err lst_kafka_consumer_create(const struct lst_kafka_config *cfg,
                                  const struct lst_kafka_consumer_opts *opts,
                                  struct lst_kafka_consumer **out)
{
    struct lst_kafka_handle_spec spec = {
        .type = RD_KAFKA_CONSUMER, .apply = consumer_conf, .event = "kafka.consumer.create_failed"};
    struct lst_kafka_consumer *c = NULL;
    lst_err result = LST_ERR_CONFIG;

    *out = NULL;
    if (cfg == NULL || !opts_ok(opts)) {
        LST_ERROR("kafka.config.invalid", "consumer needs a group id and topics");
        goto out;
    }
    result = LST_ERR_NOMEM;
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        goto out;
    c->closed = true; /* until the handle exists: destroy must not close */
    atomic_init(&c->fatal, false);
    if (cfg->metrics != NULL) {
        c->m_consumed = lst_metrics_counter(cfg->metrics, "lst_kafka_consumed_total",
                                            "Records handed to the application", NULL);
        c->m_rebalances = lst_metrics_counter(cfg->metrics, "lst_kafka_rebalances_total",
                                              "Partition assignments and revocations", NULL);
    }
    c->on_revoke = opts->on_revoke;
    c->opaque = opts->opaque;
    c->paused = rd_kafka_topic_partition_list_new(4);
    if (c->paused == NULL)
        goto out;
    spec.group_id = opts->group_id;
    spec.opaque = c;
    result = lst_kafka_handle_new(cfg, &spec, &c->rk);
    if (result != LST_OK)
        goto out;
    c->closed = false;
    result = subscribe(c, opts);
    if (result != LST_OK)
        goto out;
    LST_INFO("kafka.consumer.created", "%s group %s, %zu topics", rd_kafka_name(c->rk),
             opts->group_id, opts->ntopics);
    *out = c;
    c = NULL;
out:
    lst_kafka_consumer_destroy(c);
    return result;
}

/* Before every poll: error_cb (served inside the poll) may have seen a fatal error. */
static lst_err consumer_fatal(void *arg)
{
    struct lst_kafka_consumer *c = arg;

    return atomic_load(&c->fatal) ? LST_ERR_KAFKA_FATAL : LST_OK;
}

/* LST_OK to go on polling, or the error to return. */
static lst_err consumer_error(const rd_kafka_message_t *m, void *arg)
{
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
        return LST_OK;
    if (m->err == RD_KAFKA_RESP_ERR__FATAL) {
        note_fatal(arg);
        return LST_ERR_KAFKA_FATAL;
    }
    /* Broker down, unknown topic (not yet created), transport errors: librdkafka retries. */
    LST_WARN("kafka.consumer.error", "topic %s [%d]: %s: %s",
             m->rkt ? rd_kafka_topic_name(m->rkt) : "-", (int)m->partition,
             rd_kafka_err2name(m->err), rd_kafka_message_errstr(m));
    return LST_OK;
}

lst_err lst_kafka_consumer_poll(struct lst_kafka_consumer *c, int timeout_ms,
                                struct lst_kafka_record *out)
{
    const struct lst_kafka_poll_ops ops = {
        .before = consumer_fatal, .on_error = consumer_error, .arg = c};
    lst_err result;

    memset(out, 0, sizeof(*out));
    if (c->closed)
        return LST_ERR_STATE;
    result = lst_kafka_poll_record(c->rk, timeout_ms, &ops, out);
    if (result == LST_OK)
        lst_counter_inc(c->m_consumed);
    return result;
}

lst_err lst_kafka_consumer_done(struct lst_kafka_consumer *c, const struct lst_kafka_record *rec)
{
    rd_kafka_resp_err_t err;
    lst_err result = lst_kafka_store_next(c->rk, rec, &err);

    if (result != LST_OK || err == RD_KAFKA_RESP_ERR_NO_ERROR)
        return result;
    if (err == RD_KAFKA_RESP_ERR__STATE || err == RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION) {
        /* Revoked meanwhile: the new owner redoes the work (consumers are idempotent). */
        LST_DEBUG("kafka.consumer.store_not_assigned", "topic %s [%d] offset %lld", rec->topic,
                  (int)rec->partition, (long long)rec->offset);
        return LST_ERR_STATE;
    }
    LST_WARN("kafka.consumer.store_failed", "topic %s [%d]: %s", rec->topic, (int)rec->partition,
             rd_kafka_err2name(err));
    return LST_ERR_KAFKA;
}

void lst_kafka_record_release(struct lst_kafka_record *rec)
{
    if (rec == NULL)
        return;
    if (rec->msg != NULL)
        rd_kafka_message_destroy(rec->msg);
    memset(rec, 0, sizeof(*rec));
}

lst_err lst_kafka_consumer_pause_all(struct lst_kafka_consumer *c)
{
    rd_kafka_topic_partition_list_t *assigned = NULL;
    rd_kafka_resp_err_t err;
    lst_err result;

    if (c->closed)
        return LST_ERR_STATE;
    c->pause_mode = true;
    err = rd_kafka_assignment(c->rk, &assigned);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        LST_WARN("kafka.consumer.pause_failed", "assignment: %s", rd_kafka_err2name(err));
        return LST_ERR_KAFKA;
    }
    result = pause_parts(c, assigned);
    rd_kafka_topic_partition_list_destroy(assigned);
    return result;
}

lst_err lst_kafka_consumer_resume_all(struct lst_kafka_consumer *c)
{
    if (c->closed)
        return LST_ERR_STATE;
    c->pause_mode = false;
    return resume_paused(c);
}

bool lst_kafka_consumer_paused(const struct lst_kafka_consumer *c)
{
    return c->pause_mode;
}

lst_err lst_kafka_consumer_ready(struct lst_kafka_consumer *c, int timeout_ms)
{
    if (atomic_load(&c->fatal))
        return LST_ERR_KAFKA_FATAL;
    if (c->closed)
        return LST_ERR_STATE;
    return lst_kafka_probe(c->rk, timeout_ms);
}

lst_err lst_kafka_consumer_close(struct lst_kafka_consumer *c)
{
    lst_err result;
    rd_kafka_resp_err_t err;

    if (c->closed)
        return LST_OK;
    result = commit_sync(c, "close");
    /* Leaves the group now (revoke callback included) instead of after session.timeout.ms. */
    err = rd_kafka_consumer_close(c->rk);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
        LST_WARN("kafka.consumer.close_failed", "%s", rd_kafka_err2name(err));
    c->closed = true;
    LST_INFO("kafka.consumer.closed", "%s", rd_kafka_name(c->rk));
    return result;
}

void lst_kafka_consumer_destroy(struct lst_kafka_consumer *c)
{
    if (c == NULL)
        return;
    if (c->rk != NULL) {
        lst_kafka_consumer_close(c);
        rd_kafka_destroy(c->rk);
    }
    if (c->paused != NULL)
        rd_kafka_topic_partition_list_destroy(c->paused);
    free(c);
}
