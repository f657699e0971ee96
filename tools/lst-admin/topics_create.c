/* Topic creation for lst-admin: CreateTopics, then CreatePartitions for existing topics that
 * have fewer partitions than the table, then a wait until metadata shows every topic with a
 * leader for each partition (a producer started right after `stack.sh up` must not race the
 * controller). Kafka cannot shrink a topic: more partitions than the table is only reported. */
#include "admin.h"

#include <stdlib.h>
#include <string.h>

#include "lst/log.h"
#include "lst/util.h"

#define RETRY_PAUSE_MS 200

static const rd_kafka_metadata_topic_t *find_topic(const struct rd_kafka_metadata *md,
                                                   const char *name)
{
    for (int i = 0; i < md->topic_cnt; i++) {
        if (strcmp(md->topics[i].topic, name) == 0)
            return &md->topics[i];
    }
    return NULL;
}

static int admin_ms(int64_t timeout_ms)
{
    return timeout_ms > 60000 ? 60000 : (int)(timeout_ms < 1000 ? 1000 : timeout_ms);
}

/* Runs one admin request already started on q and returns its result event (NULL on timeout;
 * the caller destroys the event). */
static rd_kafka_event_t *await_event(rd_kafka_queue_t *q, int64_t timeout_ms, const char *what)
{
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, admin_ms(timeout_ms) + 5000);
    if (ev == NULL) {
        LST_ERROR("admin.request.timeout", "%s: no answer from the broker", what);
        return NULL;
    }
    if (rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        LST_ERROR("admin.request.failed", "%s: %s", what, rd_kafka_event_error_string(ev));
        rd_kafka_event_destroy(ev);
        return NULL;
    }
    return ev;
}

static rd_kafka_AdminOptions_t *make_options(rd_kafka_t *rk, rd_kafka_admin_op_t op,
                                             int64_t timeout_ms)
{
    char errstr[256];
    rd_kafka_AdminOptions_t *o = rd_kafka_AdminOptions_new(rk, op);
    if (o == NULL)
        return NULL;
    /* The operation timeout makes the controller wait until the topics exist before it
     * answers; the request timeout bounds the whole round trip. */
    if (rd_kafka_AdminOptions_set_operation_timeout(o, admin_ms(timeout_ms), errstr,
                                                    sizeof(errstr)) ||
        rd_kafka_AdminOptions_set_request_timeout(o, admin_ms(timeout_ms) + 2000, errstr,
                                                  sizeof(errstr))) {
        LST_ERROR("admin.options", "%s", errstr);
        rd_kafka_AdminOptions_destroy(o);
        return NULL;
    }
    return o;
}

static rd_kafka_NewTopic_t *new_topic(const struct lst_admin_topic *t)
{
    char errstr[256];
    rd_kafka_NewTopic_t *nt =
        rd_kafka_NewTopic_new(t->name, t->partitions, 1, errstr, sizeof(errstr));
    if (nt == NULL) {
        LST_ERROR("admin.create", "%s: %s", t->name, errstr);
        return NULL;
    }
    if (rd_kafka_NewTopic_set_config(nt, "cleanup.policy", t->cleanup) !=
        RD_KAFKA_RESP_ERR_NO_ERROR) {
        LST_ERROR("admin.create", "%s: cannot set cleanup.policy", t->name);
        rd_kafka_NewTopic_destroy(nt);
        return NULL;
    }
    return nt;
}

/* Prints "<done>\t<topic>" per topic that succeeded or "<benign_name>\t<topic>" per one that
 * failed with benign (already there when creating, not there when deleting), and logs the rest. */
static lst_err report_topics(const rd_kafka_topic_result_t **res, size_t n, const char *done,
                             rd_kafka_resp_err_t benign, const char *benign_name, const char *event)
{
    lst_err result = LST_OK;
    for (size_t i = 0; i < n; i++) {
        const char *name = rd_kafka_topic_result_name(res[i]);
        rd_kafka_resp_err_t err = rd_kafka_topic_result_error(res[i]);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            printf("%s\t%s\n", done, name);
        } else if (err == benign) {
            printf("%s\t%s\n", benign_name, name);
        } else {
            const char *why = rd_kafka_topic_result_error_string(res[i]);
            LST_ERROR(event, "%s: %s (%s)", name, rd_kafka_err2name(err),
                      why != NULL ? why : rd_kafka_err2str(err));
            result = LST_ERR_KAFKA;
        }
    }
    return result;
}

/* TOPIC_ALREADY_EXISTS counts as success here (the partition count is checked afterwards). */
static lst_err report_created(rd_kafka_event_t *ev)
{
    size_t n = 0;
    const rd_kafka_topic_result_t **res =
        rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
    return report_topics(res, n, "created", RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS, "exists",
                         "admin.create.failed");
}

static lst_err create_all(rd_kafka_t *rk, rd_kafka_queue_t *q,
                          const struct lst_admin_topics *topics, int64_t timeout_ms)
{
    lst_err result = LST_ERR_KAFKA;
    rd_kafka_event_t *ev = NULL;
    rd_kafka_AdminOptions_t *opts = NULL;
    rd_kafka_NewTopic_t **nts = calloc(topics->n, sizeof(*nts));
    if (nts == NULL)
        return LST_ERR_NOMEM;
    for (size_t i = 0; i < topics->n; i++) {
        nts[i] = new_topic(&topics->v[i]);
        if (nts[i] == NULL)
            goto out;
    }
    opts = make_options(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS, timeout_ms);
    if (opts == NULL)
        goto out;
    rd_kafka_CreateTopics(rk, nts, topics->n, opts, q);
    ev = await_event(q, timeout_ms, "CreateTopics");
    if (ev != NULL)
        result = report_created(ev);
out:
    if (ev != NULL)
        rd_kafka_event_destroy(ev);
    if (opts != NULL)
        rd_kafka_AdminOptions_destroy(opts);
    /* Not rd_kafka_NewTopic_destroy_array: entries after a failure are still NULL. */
    for (size_t i = 0; i < topics->n; i++) {
        if (nts[i] != NULL)
            rd_kafka_NewTopic_destroy(nts[i]);
    }
    free(nts);
    return result;
}

/* Topics whose current partition count (per md) is below the table's. Warns about those
 * above it. Fills grow (capacity topics->n) with new NewPartitions objects. */
static lst_err collect_growth(const struct rd_kafka_metadata *md,
                              const struct lst_admin_topics *topics,
                              rd_kafka_NewPartitions_t **grow, size_t *ngrow)
{
    char errstr[256];
    *ngrow = 0;
    for (size_t i = 0; i < topics->n; i++) {
        const struct lst_admin_topic *t = &topics->v[i];
        const rd_kafka_metadata_topic_t *mt = find_topic(md, t->name);
        if (mt == NULL || mt->err != RD_KAFKA_RESP_ERR_NO_ERROR)
            continue; /* not visible yet; the final wait checks it */
        if (mt->partition_cnt > t->partitions) {
            LST_WARN("admin.partitions.more", "%s has %d partitions, the table says %d", t->name,
                     mt->partition_cnt, (int)t->partitions);
        } else if (mt->partition_cnt < t->partitions) {
            printf("grow\t%s\t%d -> %d\n", t->name, mt->partition_cnt, (int)t->partitions);
            grow[*ngrow] =
                rd_kafka_NewPartitions_new(t->name, (size_t)t->partitions, errstr, sizeof(errstr));
            if (grow[*ngrow] == NULL) {
                LST_ERROR("admin.partitions", "%s: %s", t->name, errstr);
                return LST_ERR_KAFKA;
            }
            (*ngrow)++;
        }
    }
    return LST_OK;
}

static lst_err report_grown(rd_kafka_event_t *ev)
{
    lst_err result = LST_OK;
    size_t n = 0;
    const rd_kafka_topic_result_t **res =
        rd_kafka_CreatePartitions_result_topics(rd_kafka_event_CreatePartitions_result(ev), &n);
    for (size_t i = 0; i < n; i++) {
        rd_kafka_resp_err_t err = rd_kafka_topic_result_error(res[i]);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            LST_ERROR("admin.partitions.failed", "%s: %s", rd_kafka_topic_result_name(res[i]),
                      rd_kafka_err2str(err));
            result = LST_ERR_KAFKA;
        }
    }
    return result;
}

static lst_err grow_partitions(rd_kafka_t *rk, rd_kafka_queue_t *q,
                               const struct lst_admin_topics *topics, int64_t timeout_ms)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_AdminOptions_t *opts = NULL;
    rd_kafka_event_t *ev = NULL;
    size_t ngrow = 0;
    rd_kafka_NewPartitions_t **grow = calloc(topics->n, sizeof(*grow));
    lst_err result = grow == NULL ? LST_ERR_NOMEM : lst_admin_metadata(rk, timeout_ms, &md, NULL);
    if (result == LST_OK)
        result = collect_growth(md, topics, grow, &ngrow);
    if (result != LST_OK || ngrow == 0)
        goto out;
    opts = make_options(rk, RD_KAFKA_ADMIN_OP_CREATEPARTITIONS, timeout_ms);
    if (opts == NULL) {
        result = LST_ERR_KAFKA;
        goto out;
    }
    rd_kafka_CreatePartitions(rk, grow, ngrow, opts, q);
    ev = await_event(q, timeout_ms, "CreatePartitions");
    result = ev != NULL ? report_grown(ev) : LST_ERR_KAFKA;
out:
    if (ev != NULL)
        rd_kafka_event_destroy(ev);
    if (opts != NULL)
        rd_kafka_AdminOptions_destroy(opts);
    if (grow != NULL)
        rd_kafka_NewPartitions_destroy_array(grow, ngrow);
    free(grow);
    if (md != NULL)
        rd_kafka_metadata_destroy(md);
    return result;
}

/* true when every table topic is in md, without error, with at least the table's partition
 * count and a leader for every partition. Names the first missing topic in *missing. */
static bool all_visible(const struct rd_kafka_metadata *md, const struct lst_admin_topics *topics,
                        const char **missing)
{
    for (size_t i = 0; i < topics->n; i++) {
        const rd_kafka_metadata_topic_t *mt = find_topic(md, topics->v[i].name);
        *missing = topics->v[i].name;
        if (mt == NULL || mt->err != RD_KAFKA_RESP_ERR_NO_ERROR ||
            mt->partition_cnt < topics->v[i].partitions)
            return false;
        for (int p = 0; p < mt->partition_cnt; p++) {
            if (mt->partitions[p].err != RD_KAFKA_RESP_ERR_NO_ERROR || mt->partitions[p].leader < 0)
                return false;
        }
    }
    return true;
}

static lst_err wait_visible(rd_kafka_t *rk, const struct lst_admin_topics *topics, int64_t deadline)
{
    const char *missing = "?";
    while (lst_mono_ms() < deadline) {
        const struct rd_kafka_metadata *md = NULL;
        if (lst_admin_metadata(rk, deadline - lst_mono_ms(), &md, NULL) == LST_OK) {
            bool ok = all_visible(md, topics, &missing);
            rd_kafka_metadata_destroy(md);
            if (ok)
                return LST_OK;
        }
        lst_sleep_ms(RETRY_PAUSE_MS, NULL);
    }
    LST_ERROR("admin.create.timeout", "topic %s has no leader for every partition in time",
              missing);
    return LST_ERR_TIMEOUT;
}

lst_err lst_admin_create_topics(const char *brokers, const struct lst_admin_topics *topics,
                                int64_t timeout_ms)
{
    lst_err result = LST_ERR_KAFKA;
    int64_t deadline = lst_mono_ms() + timeout_ms;
    rd_kafka_queue_t *q = NULL;
    rd_kafka_t *rk = lst_admin_client_create(brokers);
    if (rk == NULL)
        goto out;
    q = rd_kafka_queue_new(rk);
    if (q == NULL)
        goto out;
    result = create_all(rk, q, topics, timeout_ms);
    if (result == LST_OK)
        result = grow_partitions(rk, q, topics, deadline - lst_mono_ms());
    if (result == LST_OK)
        result = wait_visible(rk, topics, deadline);
    if (fflush(stdout) != 0 && result == LST_OK)
        result = LST_ERR_IO;
out:
    if (q != NULL)
        rd_kafka_queue_destroy(q);
    if (rk != NULL)
        rd_kafka_destroy(rk);
    return result;
}

/* A topic that is not there (deleted before, never created) counts as gone. */
static lst_err report_deleted(rd_kafka_event_t *ev)
{
    size_t n = 0;
    const rd_kafka_topic_result_t **res =
        rd_kafka_DeleteTopics_result_topics(rd_kafka_event_DeleteTopics_result(ev), &n);
    return report_topics(res, n, "deleted", RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART, "absent",
                         "admin.delete.failed");
}

lst_err lst_admin_delete_topics(const char *brokers, const struct lst_admin_topics *topics,
                                int64_t timeout_ms)
{
    lst_err result = LST_ERR_KAFKA;
    rd_kafka_queue_t *q = NULL;
    rd_kafka_AdminOptions_t *opts = NULL;
    rd_kafka_event_t *ev = NULL;
    rd_kafka_DeleteTopic_t **dts = calloc(topics->n > 0 ? topics->n : 1, sizeof(*dts));
    rd_kafka_t *rk = dts != NULL ? lst_admin_client_create(brokers) : NULL;
    if (rk == NULL || (q = rd_kafka_queue_new(rk)) == NULL)
        goto out;
    for (size_t i = 0; i < topics->n; i++) {
        if ((dts[i] = rd_kafka_DeleteTopic_new(topics->v[i].name)) == NULL)
            goto out;
    }
    opts = make_options(rk, RD_KAFKA_ADMIN_OP_DELETETOPICS, timeout_ms);
    if (opts == NULL)
        goto out;
    rd_kafka_DeleteTopics(rk, dts, topics->n, opts, q);
    ev = await_event(q, timeout_ms, "DeleteTopics");
    if (ev != NULL)
        result = report_deleted(ev);
    if (fflush(stdout) != 0 && result == LST_OK)
        result = LST_ERR_IO;
out:
    if (ev != NULL)
        rd_kafka_event_destroy(ev);
    if (opts != NULL)
        rd_kafka_AdminOptions_destroy(opts);
    for (size_t i = 0; dts != NULL && i < topics->n; i++) {
        if (dts[i] != NULL)
            rd_kafka_DeleteTopic_destroy(dts[i]);
    }
    free(dts);
    if (q != NULL)
        rd_kafka_queue_destroy(q);
    if (rk != NULL)
        rd_kafka_destroy(rk);
    return result;
}
