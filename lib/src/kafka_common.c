/* Kafka helpers shared by the handle kinds: error mapping, the common configuration and handle
 * creation, librdkafka's log lines routed into our JSON log, fatal errors, the metadata probe,
 * what the group consumer and the assigned reader share (topic checks, the poll loop, record
 * conversion, the offset store) and topic creation. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kafka_internal.h"
#include "lst/log.h"
#include "lst/util.h"

lst_err lst_kafka_err_map(rd_kafka_resp_err_t err)
{
    switch (err) {
    case RD_KAFKA_RESP_ERR_NO_ERROR:
        return LST_OK;
    case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR__TIMED_OUT_QUEUE:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
        return LST_ERR_TIMEOUT;
    case RD_KAFKA_RESP_ERR__FATAL:
        return LST_ERR_KAFKA_FATAL;
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
        return LST_ERR_NOT_FOUND;
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
        return LST_ERR_TOO_LARGE;
    case RD_KAFKA_RESP_ERR__STATE:
        return LST_ERR_STATE;
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
        return LST_ERR_INVALID;
    case RD_KAFKA_RESP_ERR__DESTROY:
    case RD_KAFKA_RESP_ERR__PURGE_QUEUE:
    case RD_KAFKA_RESP_ERR__PURGE_INFLIGHT:
        return LST_ERR_SHUTDOWN;
    default:
        return LST_ERR_KAFKA;
    }
}

lst_err lst_kafka_err_coarse(rd_kafka_resp_err_t err)
{
    lst_err mapped = lst_kafka_err_map(err);

    return mapped == LST_OK || mapped == LST_ERR_TIMEOUT ? mapped : LST_ERR_KAFKA;
}

/* librdkafka logs from its own threads with syslog levels; lst_log is thread-safe. */
static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    enum lst_log_level l = LST_LOG_DEBUG;

    if (level <= 3)
        l = LST_LOG_ERROR;
    else if (level == 4)
        l = LST_LOG_WARN;
    else if (level <= 6)
        l = LST_LOG_INFO;
    LST_LOG(l, "kafka.rdkafka", "%s %s: %s", rd_kafka_name(rk), fac, buf);
}

lst_err lst_kafka_conf_set(rd_kafka_conf_t *conf, const char *key, const char *value)
{
    char errstr[256];

    if (rd_kafka_conf_set(conf, key, value, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
        LST_ERROR("kafka.config.invalid", "property %s: %s", key, errstr);
        return LST_ERR_CONFIG;
    }
    return LST_OK;
}

lst_err lst_kafka_conf_set_int(rd_kafka_conf_t *conf, const char *key, int value)
{
    char text[32];

    snprintf(text, sizeof(text), "%d", value);
    return lst_kafka_conf_set(conf, key, text);
}

/* A new conf with the settings every handle shares. On success *out is owned by the caller. */
static lst_err conf_new(const struct lst_kafka_config *cfg, rd_kafka_conf_t **out)
{
    lst_err result = LST_ERR_CONFIG;
    rd_kafka_conf_t *conf = NULL;

    *out = NULL;
    if (cfg == NULL || cfg->brokers == NULL || cfg->brokers[0] == '\0') {
        LST_ERROR("kafka.config.invalid", "no brokers configured");
        goto out;
    }
    conf = rd_kafka_conf_new();
    if (conf == NULL) {
        result = LST_ERR_NOMEM;
        goto out;
    }
    rd_kafka_conf_set_log_cb(conf, log_cb);
    /* reconnect.backoff.max.ms: librdkafka backs reconnects off up to 10 s by default, so
     * after a broker restart a client could sit out up to 10 s more (the chaos suite's
     * broker-kill saw outcomes flow again 7-10 s after the broker was back). Retrying one
     * connection a second costs nothing. */
    if (lst_kafka_conf_set(conf, "bootstrap.servers", cfg->brokers) != LST_OK ||
        lst_kafka_conf_set(conf, "client.id", cfg->client_id ? cfg->client_id : "leitstand") !=
            LST_OK ||
        lst_kafka_conf_set(conf, "socket.keepalive.enable", "true") != LST_OK ||
        lst_kafka_conf_set(conf, "reconnect.backoff.max.ms", "1000") != LST_OK)
        goto out;
    *out = conf;
    conf = NULL;
    result = LST_OK;
out:
    if (conf != NULL)
        rd_kafka_conf_destroy(conf);
    return result;
}

static lst_err conf_at_least_once(rd_kafka_conf_t *conf, const char *group_id)
{
    /* The 2.0.2 defaults store an offset on hand-over (a crash skips work) and start a new
     * group at the end of the topic (looks exactly like loss). */
    if (lst_kafka_conf_set(conf, "group.id", group_id) != LST_OK ||
        lst_kafka_conf_set(conf, "enable.auto.offset.store", "false") != LST_OK ||
        lst_kafka_conf_set(conf, "auto.offset.reset", "earliest") != LST_OK ||
        lst_kafka_conf_set(conf, "enable.auto.commit", "true") != LST_OK ||
        lst_kafka_conf_set(conf, "auto.commit.interval.ms", "1000") != LST_OK ||
        lst_kafka_conf_set(conf, "enable.partition.eof", "false") != LST_OK)
        return LST_ERR_CONFIG;
    return LST_OK;
}

static lst_err conf_extras(rd_kafka_conf_t *conf, const struct lst_kafka_config *cfg)
{
    if (cfg->extra == NULL)
        return LST_OK;
    for (size_t i = 0; cfg->extra[i] != NULL; i++) {
        const char *kv = cfg->extra[i];
        const char *eq = strchr(kv, '=');
        size_t klen = eq ? (size_t)(eq - kv) : 0;
        char key[128];

        if (klen == 0 || klen >= sizeof(key)) {
            LST_ERROR("kafka.config.invalid", "extra property without key=value: %s", kv);
            return LST_ERR_CONFIG;
        }
        memcpy(key, kv, klen);
        key[klen] = '\0';
        if (lst_kafka_conf_set(conf, key, eq + 1) != LST_OK)
            return LST_ERR_CONFIG;
    }
    return LST_OK;
}

/* The spec's settings between the common ones and the extras, which come last. */
static lst_err conf_kind(rd_kafka_conf_t *conf, const struct lst_kafka_config *cfg,
                         const struct lst_kafka_handle_spec *spec)
{
    rd_kafka_conf_set_opaque(conf, spec->opaque);
    if (spec->group_id != NULL && conf_at_least_once(conf, spec->group_id) != LST_OK)
        return LST_ERR_CONFIG;
    if (spec->apply != NULL && spec->apply(conf, cfg) != LST_OK)
        return LST_ERR_CONFIG;
    return conf_extras(conf, cfg);
}

lst_err lst_kafka_handle_new(const struct lst_kafka_config *cfg,
                             const struct lst_kafka_handle_spec *spec, rd_kafka_t **out)
{
    rd_kafka_conf_t *conf = NULL;
    char errstr[512];
    lst_err result = conf_new(cfg, &conf);

    *out = NULL;
    if (result == LST_OK)
        result = conf_kind(conf, cfg, spec);
    if (result != LST_OK)
        goto out;
    *out = rd_kafka_new(spec->type, conf, errstr, sizeof(errstr));
    if (*out == NULL) {
        LST_ERROR(spec->event, "%s", errstr);
        result = LST_ERR_CONFIG;
        goto out;
    }
    conf = NULL; /* owned by the handle now */
    /* Serves error_cb (and librdkafka's main queue) from rd_kafka_consumer_poll. */
    if (spec->type == RD_KAFKA_CONSUMER)
        rd_kafka_poll_set_consumer(*out);
out:
    if (conf != NULL)
        rd_kafka_conf_destroy(conf);
    return result;
}

bool lst_kafka_error_is_fatal(int err, const char *reason, const char *event)
{
    if (err == RD_KAFKA_RESP_ERR__FATAL)
        return true;
    /* Broker down, transport errors: retried by librdkafka itself. */
    LST_WARN(event, "%s: %s", rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
    return false;
}

void lst_kafka_log_fatal(rd_kafka_t *rk, const char *event, const char *what)
{
    char reason[512];
    rd_kafka_resp_err_t orig = rd_kafka_fatal_error(rk, reason, sizeof(reason));

    LST_ERROR(event, "%s failed for good: %s: %s", what, rd_kafka_err2name(orig), reason);
}

lst_err lst_kafka_probe(rd_kafka_t *rk, int timeout_ms)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err;
    lst_err result;

    /* all_topics=0 and no topic: asks for brokers and locally known topics only, cheap. */
    err = rd_kafka_metadata(rk, 0, NULL, &md, timeout_ms);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        LST_DEBUG("kafka.probe.failed", "%s", rd_kafka_err2str(err));
        return lst_kafka_err_coarse(err);
    }
    result = md->broker_cnt > 0 ? LST_OK : LST_ERR_KAFKA;
    rd_kafka_metadata_destroy(md);
    return result;
}

bool lst_kafka_topics_ok(const char *group_id, const char *const *topics, size_t ntopics)
{
    if (group_id == NULL || group_id[0] == '\0' || topics == NULL || ntopics == 0 || ntopics > 1000)
        return false;
    for (size_t i = 0; i < ntopics; i++) {
        if (topics[i] == NULL || topics[i][0] == '\0')
            return false;
    }
    return true;
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

/* One message per poll: the batch APIs of 2.0.2 lose or misreport messages around seek,
 * pause/resume and rebalances (fixed in 2.1.0). */
lst_err lst_kafka_poll_record(rd_kafka_t *rk, int timeout_ms, const struct lst_kafka_poll_ops *ops,
                              struct lst_kafka_record *out)
{
    int64_t deadline = lst_mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    rd_kafka_message_t *m;
    lst_err result;

    memset(out, 0, sizeof(*out));
    do {
        result = ops->before != NULL ? ops->before(ops->arg) : LST_OK;
        if (result != LST_OK)
            return result;
        int64_t left = deadline - lst_mono_ms();
        m = rd_kafka_consumer_poll(rk, left > 0 ? (int)left : 0);
        if (m == NULL)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            fill_record(m, out);
            return LST_OK;
        }
        result = ops->on_error(m, ops->arg);
        rd_kafka_message_destroy(m);
        if (result != LST_OK)
            return result;
    } while (lst_mono_ms() < deadline);
    return LST_ERR_TIMEOUT;
}

lst_err lst_kafka_store_next(rd_kafka_t *rk, const struct lst_kafka_record *rec,
                             rd_kafka_resp_err_t *err)
{
    rd_kafka_topic_partition_list_t *list;
    rd_kafka_topic_partition_t *tp;

    *err = RD_KAFKA_RESP_ERR_NO_ERROR;
    if (rec == NULL || rec->topic == NULL || rec->offset < 0)
        return LST_ERR_INVALID;
    list = rd_kafka_topic_partition_list_new(1);
    if (list == NULL)
        return LST_ERR_NOMEM;
    tp = rd_kafka_topic_partition_list_add(list, rec->topic, rec->partition);
    /* The list form stores the value as given: the next offset to read is offset + 1
     * (rd_kafka_offset_store_message does not exist before 2.1.0). */
    tp->offset = rec->offset + 1;
    *err = rd_kafka_offsets_store(rk, list);
    if (*err == RD_KAFKA_RESP_ERR_NO_ERROR)
        *err = tp->err;
    rd_kafka_topic_partition_list_destroy(list);
    return LST_OK;
}

static lst_err create_topic_result(rd_kafka_event_t *ev, const char *topic)
{
    const rd_kafka_CreateTopics_result_t *res;
    const rd_kafka_topic_result_t **topics;
    size_t cnt = 0;
    rd_kafka_resp_err_t err;

    if (ev == NULL) {
        LST_ERROR("kafka.admin.create_topic", "topic %s: no answer in time", topic);
        return LST_ERR_TIMEOUT;
    }
    err = rd_kafka_event_error(ev);
    res = rd_kafka_event_CreateTopics_result(ev);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR && res != NULL) {
        topics = rd_kafka_CreateTopics_result_topics(res, &cnt);
        err = cnt == 1 ? rd_kafka_topic_result_error(topics[0]) : RD_KAFKA_RESP_ERR__FAIL;
    }
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR || err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
        LST_INFO("kafka.admin.create_topic", "topic %s: %s", topic,
                 err ? "exists already" : "created");
        return LST_OK;
    }
    LST_ERROR("kafka.admin.create_topic", "topic %s: %s", topic, rd_kafka_err2str(err));
    return lst_kafka_err_coarse(err);
}

/* Whether the broker's metadata lists the topic with at least `partitions` partitions, every
 * one of them led. */
static bool topic_visible(rd_kafka_t *rk, rd_kafka_topic_t *rkt, int partitions)
{
    const struct rd_kafka_metadata *md = NULL;
    bool ok = rd_kafka_metadata(rk, 0, rkt, &md, 1000) == RD_KAFKA_RESP_ERR_NO_ERROR &&
              md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR &&
              md->topics[0].partition_cnt >= partitions;
    for (int i = 0; ok && i < md->topics[0].partition_cnt; i++)
        ok = md->topics[0].partitions[i].leader >= 0;
    if (md != NULL)
        rd_kafka_metadata_destroy(md);
    return ok;
}

/* CreateTopics answers once the controller has the topic; the brokers learn it a moment
 * later. A consumer that subscribes in that moment is told the topic does not exist and,
 * in librdkafka 2.0.2, looks again only after topic.metadata.refresh.interval.ms (5 min):
 * the system test that created its topics just before subscribing missed a whole topic
 * now and then. So creation returns only once the metadata shows the topic. */
static lst_err wait_visible(rd_kafka_t *rk, const char *topic, int partitions, int timeout_ms)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    if (rkt == NULL)
        return LST_ERR_NOMEM;
    int64_t end = lst_mono_ms() + timeout_ms;
    bool ok = topic_visible(rk, rkt, partitions);
    while (!ok && lst_mono_ms() < end) {
        lst_sleep_ms(100, NULL);
        ok = topic_visible(rk, rkt, partitions);
    }
    rd_kafka_topic_destroy(rkt);
    if (!ok)
        LST_ERROR("kafka.admin.create_topic", "topic %s: not in the metadata after %d ms", topic,
                  timeout_ms);
    return ok ? LST_OK : LST_ERR_TIMEOUT;
}

lst_err lst_kafka_create_topic(const struct lst_kafka_config *cfg, const char *topic,
                               int partitions, int replication, int timeout_ms)
{
    static const struct lst_kafka_handle_spec admin = {.type = RD_KAFKA_PRODUCER,
                                                       .event = "kafka.admin.create_failed"};
    lst_err result;
    rd_kafka_t *rk = NULL;
    rd_kafka_NewTopic_t *nt = NULL;
    rd_kafka_AdminOptions_t *opts = NULL;
    rd_kafka_queue_t *q = NULL;
    rd_kafka_event_t *ev = NULL;
    char errstr[256];

    if (topic == NULL || partitions < 1 || replication < 1 || timeout_ms < 1)
        return LST_ERR_INVALID;
    result = lst_kafka_handle_new(cfg, &admin, &rk);
    if (result != LST_OK)
        goto out;
    nt = rd_kafka_NewTopic_new(topic, partitions, replication, errstr, sizeof(errstr));
    opts = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    q = rd_kafka_queue_new(rk);
    if (nt == NULL || opts == NULL || q == NULL) {
        LST_ERROR("kafka.admin.create_topic", "topic %s: %s", topic, nt ? "no memory" : errstr);
        result = nt ? LST_ERR_NOMEM : LST_ERR_INVALID;
        goto out;
    }
    rd_kafka_AdminOptions_set_request_timeout(opts, timeout_ms, errstr, sizeof(errstr));
    rd_kafka_AdminOptions_set_operation_timeout(opts, timeout_ms, errstr, sizeof(errstr));
    rd_kafka_CreateTopics(rk, &nt, 1, opts, q);
    ev = rd_kafka_queue_poll(q, timeout_ms + 1000);
    result = create_topic_result(ev, topic);
    if (result == LST_OK)
        result = wait_visible(rk, topic, 1, timeout_ms); /* an existing one may have fewer */
out:
    if (ev != NULL)
        rd_kafka_event_destroy(ev);
    if (q != NULL)
        rd_kafka_queue_destroy(q);
    if (opts != NULL)
        rd_kafka_AdminOptions_destroy(opts);
    if (nt != NULL)
        rd_kafka_NewTopic_destroy(nt);
    if (rk != NULL)
        rd_kafka_destroy(rk);
    return result;
}
