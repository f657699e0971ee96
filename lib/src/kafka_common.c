/* Kafka helpers shared by producer and consumer: error mapping, the common configuration,
 * librdkafka's log lines routed into our JSON log, the metadata probe and topic creation. */
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

lst_err lst_kafka_conf_new(const struct lst_kafka_config *cfg, rd_kafka_conf_t **out)
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
    if (lst_kafka_conf_set(conf, "bootstrap.servers", cfg->brokers) != LST_OK ||
        lst_kafka_conf_set(conf, "client.id", cfg->client_id ? cfg->client_id : "leitstand") !=
            LST_OK ||
        lst_kafka_conf_set(conf, "socket.keepalive.enable", "true") != LST_OK)
        goto out;
    *out = conf;
    conf = NULL;
    result = LST_OK;
out:
    if (conf != NULL)
        rd_kafka_conf_destroy(conf);
    return result;
}

lst_err lst_kafka_conf_at_least_once(rd_kafka_conf_t *conf, const char *group_id)
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

lst_err lst_kafka_conf_extras(rd_kafka_conf_t *conf, const struct lst_kafka_config *cfg)
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

lst_err lst_kafka_probe(rd_kafka_t *rk, int timeout_ms)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err;
    lst_err result;

    /* all_topics=0 and no topic: asks for brokers and locally known topics only, cheap. */
    err = rd_kafka_metadata(rk, 0, NULL, &md, timeout_ms);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        result = lst_kafka_err_map(err);
        if (result != LST_ERR_TIMEOUT)
            result = LST_ERR_KAFKA;
        LST_DEBUG("kafka.probe.failed", "%s", rd_kafka_err2str(err));
        return result;
    }
    result = md->broker_cnt > 0 ? LST_OK : LST_ERR_KAFKA;
    rd_kafka_metadata_destroy(md);
    return result;
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
    return lst_kafka_err_map(err) == LST_ERR_TIMEOUT ? LST_ERR_TIMEOUT : LST_ERR_KAFKA;
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
    lst_err result;
    rd_kafka_conf_t *conf = NULL;
    rd_kafka_t *rk = NULL;
    rd_kafka_NewTopic_t *nt = NULL;
    rd_kafka_AdminOptions_t *opts = NULL;
    rd_kafka_queue_t *q = NULL;
    rd_kafka_event_t *ev = NULL;
    char errstr[256];

    if (topic == NULL || partitions < 1 || replication < 1 || timeout_ms < 1)
        return LST_ERR_INVALID;
    result = lst_kafka_conf_new(cfg, &conf);
    if (result == LST_OK)
        result = lst_kafka_conf_extras(conf, cfg);
    if (result != LST_OK)
        goto out;
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        LST_ERROR("kafka.admin.create_failed", "%s", errstr);
        result = LST_ERR_CONFIG;
        goto out;
    }
    conf = NULL; /* owned by rk now */
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
    if (conf != NULL)
        rd_kafka_conf_destroy(conf);
    return result;
}
