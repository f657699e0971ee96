/* The at-least-once consumer: offsets are stored only when the caller says a record's work is
 * durable, auto-commit commits what is stored, and a revoke commits synchronously before the
 * partitions go. One record per poll: the batch APIs of 2.0.2 lose messages around
 * pause/resume, seek and rebalances. */
#include <stdatomic.h>
#include <stdio.h>
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
    char reason[512];
    rd_kafka_resp_err_t orig;

    if (atomic_exchange(&c->fatal, true))
        return;
    orig = rd_kafka_fatal_error(c->rk, reason, sizeof(reason));
    LST_ERROR("kafka.consumer.fatal", "consumer failed for good: %s: %s", rd_kafka_err2name(orig),
              reason);
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    struct lst_kafka_consumer *c = opaque;

    (void)rk;
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        note_fatal(c);
        return;
    }
    LST_WARN("kafka.consumer.error", "%s: %s", rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

/* Commits the stored offsets of the current assignment and waits for the answer. */
static lst_err commit_sync(struct lst_kafka_consumer *c, const char *why)
{
    rd_kafka_resp_err_t err = rd_kafka_commit(c->rk, NULL, 0);

    /* __NO_OFFSET: nothing stored since the last commit, nothing to do. */
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR || err == RD_KAFKA_RESP_ERR__NO_OFFSET)
        return LST_OK;
    LST_WARN("kafka.consumer.commit_failed", "%s: %s", why, rd_kafka_err2name(err));
    return lst_kafka_err_map(err) == LST_ERR_TIMEOUT ? LST_ERR_TIMEOUT : LST_ERR_KAFKA;
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

static lst_err consumer_conf(const struct lst_kafka_config *cfg,
                             const struct lst_kafka_consumer_opts *opts,
                             struct lst_kafka_consumer *c, rd_kafka_conf_t **out)
{
    rd_kafka_conf_t *conf = NULL;
    char session[32];
    lst_err result;

    *out = NULL;
    result = lst_kafka_conf_new(cfg, &conf);
    if (result != LST_OK)
        goto out;
    snprintf(session, sizeof(session), "%d",
             cfg->session_timeout_ms > 0 ? cfg->session_timeout_ms : 10000);
    rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    rd_kafka_conf_set_opaque(conf, c);
    result = LST_ERR_CONFIG;
    if (lst_kafka_conf_at_least_once(conf, opts->group_id) != LST_OK ||
        lst_kafka_conf_set(conf, "session.timeout.ms", session) != LST_OK ||
        lst_kafka_conf_extras(conf, cfg) != LST_OK)
        goto out;
    *out = conf;
    conf = NULL;
    result = LST_OK;
out:
    if (conf != NULL)
        rd_kafka_conf_destroy(conf);
    return result;
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
    if (opts == NULL || opts->group_id == NULL || opts->group_id[0] == '\0' ||
        opts->topics == NULL || opts->ntopics == 0 || opts->ntopics > 1000)
        return false;
    for (size_t i = 0; i < opts->ntopics; i++) {
        if (opts->topics[i] == NULL || opts->topics[i][0] == '\0')
            return false;
    }
    return true;
}

lst_err lst_kafka_consumer_create(const struct lst_kafka_config *cfg,
                                  const struct lst_kafka_consumer_opts *opts,
                                  struct lst_kafka_consumer **out)
{
    struct lst_kafka_consumer *c = NULL;
    rd_kafka_conf_t *conf = NULL;
    char errstr[512];
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
    result = consumer_conf(cfg, opts, c, &conf);
    if (result != LST_OK)
        goto out;
    c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (c->rk == NULL) {
        LST_ERROR("kafka.consumer.create_failed", "%s", errstr);
        result = LST_ERR_CONFIG;
        goto out;
    }
    conf = NULL; /* owned by rk now */
    c->closed = false;
    /* Serve error_cb (and librdkafka's main queue) from lst_kafka_consumer_poll. */
    rd_kafka_poll_set_consumer(c->rk);
    result = subscribe(c, opts);
    if (result != LST_OK)
        goto out;
    LST_INFO("kafka.consumer.created", "%s group %s, %zu topics", rd_kafka_name(c->rk),
             opts->group_id, opts->ntopics);
    *out = c;
    c = NULL;
out:
    if (conf != NULL)
        rd_kafka_conf_destroy(conf);
    lst_kafka_consumer_destroy(c);
    return result;
}

/* LST_OK to go on polling, or the error to return. */
static lst_err consumer_error(struct lst_kafka_consumer *c, const rd_kafka_message_t *m)
{
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
        return LST_OK;
    if (m->err == RD_KAFKA_RESP_ERR__FATAL) {
        note_fatal(c);
        return LST_ERR_KAFKA_FATAL;
    }
    /* Broker down, unknown topic (not yet created), transport errors: librdkafka retries. */
    LST_WARN("kafka.consumer.error", "topic %s [%d]: %s: %s",
             m->rkt ? rd_kafka_topic_name(m->rkt) : "-", (int)m->partition,
             rd_kafka_err2name(m->err), rd_kafka_message_errstr(m));
    return LST_OK;
}

static void fill_record(rd_kafka_message_t *m, struct lst_kafka_record *out)
{
    rd_kafka_timestamp_type_t tstype;

    out->topic = rd_kafka_topic_name(m->rkt);
    out->partition = m->partition;
    out->offset = m->offset;
    out->key = m->key;
    out->keylen = m->key_len;
    out->value = m->payload;
    out->len = m->len;
    out->timestamp_ms = rd_kafka_message_timestamp(m, &tstype);
    out->msg = m;
}

lst_err lst_kafka_consumer_poll(struct lst_kafka_consumer *c, int timeout_ms,
                                struct lst_kafka_record *out)
{
    int64_t deadline = lst_mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    rd_kafka_message_t *m;
    lst_err result;

    memset(out, 0, sizeof(*out));
    if (c->closed)
        return LST_ERR_STATE;
    do {
        if (atomic_load(&c->fatal))
            return LST_ERR_KAFKA_FATAL;
        int64_t left = deadline - lst_mono_ms();
        m = rd_kafka_consumer_poll(c->rk, left > 0 ? (int)left : 0);
        if (m == NULL)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            lst_counter_inc(c->m_consumed);
            fill_record(m, out);
            return LST_OK;
        }
        result = consumer_error(c, m);
        rd_kafka_message_destroy(m);
        if (result != LST_OK)
            return result;
    } while (lst_mono_ms() < deadline);
    return LST_ERR_TIMEOUT;
}

lst_err lst_kafka_consumer_done(struct lst_kafka_consumer *c, const struct lst_kafka_record *rec)
{
    rd_kafka_topic_partition_list_t *list = NULL;
    rd_kafka_topic_partition_t *tp;
    rd_kafka_resp_err_t err;
    lst_err result = LST_ERR_NOMEM;

    if (rec == NULL || rec->topic == NULL || rec->offset < 0)
        return LST_ERR_INVALID;
    list = rd_kafka_topic_partition_list_new(1);
    if (list == NULL)
        goto out;
    tp = rd_kafka_topic_partition_list_add(list, rec->topic, rec->partition);
    /* The list form stores the value as given: the next offset to read is offset + 1. */
    tp->offset = rec->offset + 1;
    err = rd_kafka_offsets_store(c->rk, list);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
        err = tp->err;
    result = LST_OK;
    if (err == RD_KAFKA_RESP_ERR__STATE || err == RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION) {
        /* Revoked meanwhile: the new owner redoes the work (consumers are idempotent). */
        LST_DEBUG("kafka.consumer.store_not_assigned", "topic %s [%d] offset %lld", rec->topic,
                  (int)rec->partition, (long long)rec->offset);
        result = LST_ERR_STATE;
    } else if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        LST_WARN("kafka.consumer.store_failed", "topic %s [%d]: %s", rec->topic,
                 (int)rec->partition, rd_kafka_err2name(err));
        result = LST_ERR_KAFKA;
    }
out:
    if (list != NULL)
        rd_kafka_topic_partition_list_destroy(list);
    return result;
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
