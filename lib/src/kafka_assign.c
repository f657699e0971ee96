/* The explicitly assigned reader (lst/kafka_assign.h): partitions and start offsets come from
 * the application, not from a consumer group. */
#include "lst/kafka_assign.h"

#include <stdlib.h>
#include <string.h>

#include "kafka_internal.h"
#include "lst/log.h"
#include "lst/util.h"

struct lst_kafka_reader {
    rd_kafka_t *rk;
    char **topics;
    size_t ntopics;
    int *nparts; /* per topic: partitions assigned so far (0: topic not seen yet) */
    lst_kafka_start_fn start;
    void *opaque;
    int refresh_ms;
    int metadata_timeout_ms;
    int64_t next_check_ms; /* mono time of the next metadata check */
    size_t assigned;
    bool ever_assigned;
};

static bool opts_ok(const struct lst_kafka_reader_opts *o)
{
    return o != NULL && o->start != NULL && lst_kafka_topics_ok(o->group_id, o->topics, o->ntopics);
}

static lst_err copy_topics(struct lst_kafka_reader *r, const struct lst_kafka_reader_opts *o)
{
    r->topics = calloc(o->ntopics, sizeof(*r->topics));
    r->nparts = calloc(o->ntopics, sizeof(*r->nparts));
    if (r->topics == NULL || r->nparts == NULL)
        return LST_ERR_NOMEM;
    r->ntopics = o->ntopics;
    for (size_t i = 0; i < o->ntopics; i++) {
        r->topics[i] = lst_strdup(o->topics[i]);
        if (r->topics[i] == NULL)
            return LST_ERR_NOMEM;
    }
    return LST_OK;
}

lst_err lst_kafka_reader_create(const struct lst_kafka_config *cfg,
                                const struct lst_kafka_reader_opts *opts,
                                struct lst_kafka_reader **out)
{
    /* Only offsets the application marks done are stored and committed, for monitoring;
     * the start position always comes from the start callback. */
    struct lst_kafka_handle_spec spec = {.type = RD_KAFKA_CONSUMER,
                                         .event = "kafka.reader.create_failed"};
    struct lst_kafka_reader *r = NULL;
    lst_err result = LST_ERR_CONFIG;

    *out = NULL;
    if (cfg == NULL || !opts_ok(opts)) {
        LST_ERROR("kafka.config.invalid", "reader needs a group id, topics and a start callback");
        goto out;
    }
    result = LST_ERR_NOMEM;
    r = calloc(1, sizeof(*r));
    if (r == NULL)
        goto out;
    r->start = opts->start;
    r->opaque = opts->opaque;
    r->refresh_ms = opts->refresh_ms > 0 ? opts->refresh_ms : 5000;
    r->metadata_timeout_ms = opts->metadata_timeout_ms > 0 ? opts->metadata_timeout_ms : 5000;
    result = copy_topics(r, opts);
    if (result != LST_OK)
        goto out;
    spec.group_id = opts->group_id;
    result = lst_kafka_handle_new(cfg, &spec, &r->rk);
    if (result != LST_OK)
        goto out;
    *out = r;
    r = NULL;
out:
    lst_kafka_reader_destroy(r);
    return result;
}

/* Partition count of each of our topics from one metadata request (0: topic not there). */
static lst_err fetch_counts(struct lst_kafka_reader *r, int *counts)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err = rd_kafka_metadata(r->rk, 1, NULL, &md, r->metadata_timeout_ms);

    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        LST_WARN("kafka.reader.metadata_failed", "%s", rd_kafka_err2name(err));
        return lst_kafka_err_coarse(err);
    }
    for (size_t i = 0; i < r->ntopics; i++) {
        counts[i] = 0;
        for (int t = 0; t < md->topic_cnt; t++) {
            const rd_kafka_metadata_topic_t *mt = &md->topics[t];
            if (mt->err == RD_KAFKA_RESP_ERR_NO_ERROR && strcmp(mt->topic, r->topics[i]) == 0)
                counts[i] = mt->partition_cnt;
        }
    }
    rd_kafka_metadata_destroy(md);
    return LST_OK;
}

/* The full assignment with start offsets from the callback. */
static lst_err build_list(struct lst_kafka_reader *r, const int *counts,
                          rd_kafka_topic_partition_list_t **out)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(16);
    lst_err result = LST_ERR_NOMEM;

    *out = NULL;
    if (list == NULL)
        goto out;
    for (size_t i = 0; i < r->ntopics; i++) {
        for (int p = 0; p < counts[i]; p++) {
            int64_t off = LST_KAFKA_OFFSET_BEGINNING;
            result = r->start(r->topics[i], p, &off, r->opaque);
            if (result != LST_OK)
                goto out;
            rd_kafka_topic_partition_list_add(list, r->topics[i], p)->offset = off;
        }
    }
    *out = list;
    list = NULL;
    result = LST_OK;
out:
    if (list != NULL)
        rd_kafka_topic_partition_list_destroy(list);
    return result;
}

static bool counts_changed(const struct lst_kafka_reader *r, const int *counts)
{
    for (size_t i = 0; i < r->ntopics; i++) {
        if (counts[i] != r->nparts[i])
            return true;
    }
    return false;
}

/* A full re-assignment keeps no positions, so the start callback must describe where every
 * partition stands; the application calls refresh only between batches, where its stored
 * progress is exact. */
static lst_err assign(struct lst_kafka_reader *r, const int *counts)
{
    rd_kafka_topic_partition_list_t *list = NULL;
    rd_kafka_resp_err_t err;
    lst_err result = build_list(r, counts, &list);

    if (result != LST_OK)
        goto out;
    err = rd_kafka_assign(r->rk, list);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        LST_WARN("kafka.reader.assign_failed", "%s", rd_kafka_err2name(err));
        result = LST_ERR_KAFKA;
        goto out;
    }
    memcpy(r->nparts, counts, r->ntopics * sizeof(*counts));
    r->assigned = (size_t)list->cnt;
    r->ever_assigned = true;
    LST_INFO("kafka.reader.assigned", "%d partitions of %zu topics", list->cnt, r->ntopics);
out:
    if (list != NULL)
        rd_kafka_topic_partition_list_destroy(list);
    return result;
}

lst_err lst_kafka_reader_refresh(struct lst_kafka_reader *r, bool force)
{
    int *counts = NULL;
    lst_err result = LST_OK;
    int64_t now = lst_mono_ms();

    if (!force && r->ever_assigned && now < r->next_check_ms)
        return LST_OK;
    r->next_check_ms = now + r->refresh_ms;
    counts = calloc(r->ntopics, sizeof(*counts));
    if (counts == NULL)
        return LST_ERR_NOMEM;
    result = fetch_counts(r, counts);
    if (result != LST_OK)
        goto out;
    if (force || !r->ever_assigned || counts_changed(r, counts))
        result = assign(r, counts);
out:
    free(counts);
    return result;
}

size_t lst_kafka_reader_assigned(const struct lst_kafka_reader *r)
{
    return r->assigned;
}

/* Every error but a partition EOF is logged and polling goes on; a fatal one ends the poll. */
static lst_err reader_error(const rd_kafka_message_t *m, void *arg)
{
    (void)arg;
    if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
        LST_WARN("kafka.reader.error", "topic %s [%d]: %s",
                 m->rkt ? rd_kafka_topic_name(m->rkt) : "-", (int)m->partition,
                 rd_kafka_err2name(m->err));
    return m->err == RD_KAFKA_RESP_ERR__FATAL ? LST_ERR_KAFKA_FATAL : LST_OK;
}

lst_err lst_kafka_reader_poll(struct lst_kafka_reader *r, int timeout_ms,
                              struct lst_kafka_record *out)
{
    static const struct lst_kafka_poll_ops ops = {.on_error = reader_error};

    return lst_kafka_poll_record(r->rk, timeout_ms, &ops, out);
}

lst_err lst_kafka_reader_done(struct lst_kafka_reader *r, const struct lst_kafka_record *rec)
{
    rd_kafka_resp_err_t err;
    lst_err result = lst_kafka_store_next(r->rk, rec, &err);

    if (result != LST_OK || err == RD_KAFKA_RESP_ERR_NO_ERROR)
        return result;
    /* Only monitoring depends on it: the restart position is the application's own. */
    LST_DEBUG("kafka.reader.store_failed", "%s", rd_kafka_err2name(err));
    return err == RD_KAFKA_RESP_ERR__STATE ? LST_ERR_STATE : LST_ERR_KAFKA;
}

lst_err lst_kafka_reader_high(struct lst_kafka_reader *r, const char *topic, int32_t partition,
                              int timeout_ms, int64_t *high)
{
    int64_t low = 0;
    rd_kafka_resp_err_t err =
        rd_kafka_query_watermark_offsets(r->rk, topic, partition, &low, high, timeout_ms);
    return lst_kafka_err_map(err);
}

lst_err lst_kafka_reader_committed(struct lst_kafka_reader *r, const char *topic, int32_t partition,
                                   int timeout_ms, int64_t *offset)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
    *offset = -1;
    if (list == NULL)
        return LST_ERR_NOMEM;
    rd_kafka_topic_partition_t *tp = rd_kafka_topic_partition_list_add(list, topic, partition);
    rd_kafka_resp_err_t err = rd_kafka_committed(r->rk, list, timeout_ms);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
        err = tp->err;
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR && tp->offset >= 0)
        *offset = tp->offset; /* RD_KAFKA_OFFSET_INVALID (-1001): nothing committed */
    rd_kafka_topic_partition_list_destroy(list);
    return lst_kafka_err_map(err);
}

lst_err lst_kafka_reader_ready(struct lst_kafka_reader *r, int timeout_ms)
{
    return lst_kafka_probe(r->rk, timeout_ms);
}

void lst_kafka_reader_destroy(struct lst_kafka_reader *r)
{
    if (r == NULL)
        return;
    if (r->rk != NULL) {
        /* Commits the stored offsets; there is no group membership to leave. */
        rd_kafka_commit(r->rk, NULL, 0);
        rd_kafka_consumer_close(r->rk);
        rd_kafka_destroy(r->rk);
    }
    for (size_t i = 0; i < r->ntopics; i++)
        free(r->topics[i]);
    free(r->topics);
    free(r->nparts);
    free(r);
}
