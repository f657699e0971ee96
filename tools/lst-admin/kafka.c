/* The metadata side of lst-admin: the client handle, readiness polling and topic listing. */
#include "admin.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "lst/log.h"
#include "lst/util.h"

/* One metadata attempt waits at most this long, so a dead broker pid is noticed quickly. */
#define ATTEMPT_MS 1000
/* Pause between attempts: short, the broker opens its port once it has joined. */
#define RETRY_PAUSE_MS 200

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    (void)level;
    LST_DEBUG("kafka.client.log", "%s: %s", fac, buf);
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    (void)rk;
    (void)opaque;
    /* Transport errors are normal while waiting for a starting broker; callers report the
     * outcome of the operation instead, once. */
    LST_DEBUG("kafka.client.error", "%s: %s", rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

static bool conf_set(rd_kafka_conf_t *conf, const char *key, const char *value)
{
    char errstr[256];
    if (rd_kafka_conf_set(conf, key, value, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
        LST_ERROR("admin.config", "cannot set %s: %s", key, errstr);
        return false;
    }
    return true;
}

rd_kafka_t *lst_admin_client_create(const char *brokers)
{
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (conf == NULL) {
        LST_ERROR("admin.config", "out of memory");
        return NULL;
    }
    /* localhost may resolve to ::1 first while the broker binds 127.0.0.1 only; the backoff
     * cap keeps reconnects to a starting broker frequent (the default grows to 10 s). */
    bool ok = conf_set(conf, "bootstrap.servers", brokers) &&
              conf_set(conf, "client.id", "lst-admin") &&
              conf_set(conf, "broker.address.family", "v4") &&
              conf_set(conf, "reconnect.backoff.ms", "100") &&
              conf_set(conf, "reconnect.backoff.max.ms", "500");
    if (!ok) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_conf_set_log_cb(conf, log_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    /* rd_kafka_new takes the conf only on success. */
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        LST_ERROR("admin.client", "cannot create Kafka client: %s", errstr);
        rd_kafka_conf_destroy(conf);
    }
    return rk;
}

static int clamp_ms(int64_t ms)
{
    if (ms < 1)
        return 1;
    return ms > ATTEMPT_MS ? ATTEMPT_MS : (int)ms;
}

lst_err lst_admin_metadata(rd_kafka_t *rk, int64_t timeout_ms, const struct rd_kafka_metadata **out,
                           const char **why)
{
    int t = timeout_ms > 0x7fffffff ? 0x7fffffff : (int)(timeout_ms < 1 ? 1 : timeout_ms);
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 1, NULL, out, t);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
        return LST_OK;
    *out = NULL;
    if (why != NULL)
        *why = rd_kafka_err2str(err);
    LST_DEBUG("admin.metadata", "metadata request failed: %s", rd_kafka_err2str(err));
    return err == RD_KAFKA_RESP_ERR__TIMED_OUT ? LST_ERR_TIMEOUT : LST_ERR_KAFKA;
}

static bool pid_alive(long pid)
{
    /* EPERM still means the process exists. */
    return kill((pid_t)pid, 0) == 0 || errno == EPERM;
}

/* One readiness probe: a broker listed in metadata and a known controller. */
static bool probe(rd_kafka_t *rk, int64_t remaining, int *brokers_out, int32_t *controller_out)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, NULL, &md, clamp_ms(remaining));
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        LST_DEBUG("admin.wait", "metadata: %s", rd_kafka_err2str(err));
        return false;
    }
    *brokers_out = md->broker_cnt;
    rd_kafka_metadata_destroy(md);
    if (*brokers_out < 1)
        return false;
    *controller_out = rd_kafka_controllerid(rk, clamp_ms(remaining));
    return *controller_out >= 0;
}

lst_err lst_admin_wait_ready(const char *brokers, int64_t timeout_ms, long watch_pid)
{
    lst_err result = LST_ERR_TIMEOUT;
    int64_t deadline = lst_mono_ms() + timeout_ms;
    rd_kafka_t *rk = lst_admin_client_create(brokers);
    if (rk == NULL)
        return LST_ERR_KAFKA;
    int nbrokers = 0;
    int32_t controller = -1;
    for (;;) {
        if (watch_pid > 0 && !pid_alive(watch_pid)) {
            LST_ERROR("admin.wait.died", "process %ld exited before %s became ready", watch_pid,
                      brokers);
            result = LST_ERR_STATE;
            goto out;
        }
        int64_t remaining = deadline - lst_mono_ms();
        if (remaining <= 0)
            break;
        if (probe(rk, remaining, &nbrokers, &controller)) {
            LST_INFO("admin.wait.ready", "%s ready: %d broker(s), controller %d", brokers, nbrokers,
                     (int)controller);
            result = LST_OK;
            goto out;
        }
        remaining = deadline - lst_mono_ms();
        lst_sleep_ms(remaining < RETRY_PAUSE_MS ? remaining : RETRY_PAUSE_MS, NULL);
    }
    LST_ERROR("admin.wait.timeout", "%s not ready after %lld ms", brokers, (long long)timeout_ms);
out:
    rd_kafka_destroy(rk);
    return result;
}

struct topic_row {
    const char *name;
    int partitions;
};

static int row_cmp(const void *a, const void *b)
{
    return strcmp(((const struct topic_row *)a)->name, ((const struct topic_row *)b)->name);
}

lst_err lst_admin_list_topics(const char *brokers, int64_t timeout_ms, int all, FILE *out)
{
    lst_err result = LST_OK;
    const struct rd_kafka_metadata *md = NULL;
    struct topic_row *rows = NULL;
    rd_kafka_t *rk = lst_admin_client_create(brokers);
    if (rk == NULL)
        return LST_ERR_KAFKA;
    const char *why = "";
    result = lst_admin_metadata(rk, timeout_ms, &md, &why);
    if (result != LST_OK) {
        LST_ERROR("admin.list", "cannot read metadata from %s: %s", brokers, why);
        goto out;
    }
    rows = calloc((size_t)md->topic_cnt + 1, sizeof(*rows));
    if (rows == NULL) {
        result = LST_ERR_NOMEM;
        goto out;
    }
    size_t n = 0;
    for (int i = 0; i < md->topic_cnt; i++) {
        const char *name = md->topics[i].topic;
        if (!all && strncmp(name, "__", 2) == 0)
            continue;
        rows[n].name = name;
        rows[n].partitions = md->topics[i].partition_cnt;
        n++;
    }
    qsort(rows, n, sizeof(*rows), row_cmp);
    for (size_t i = 0; i < n; i++)
        fprintf(out, "%s\t%d\n", rows[i].name, rows[i].partitions);
    if (fflush(out) != 0)
        result = LST_ERR_IO;
out:
    free(rows);
    if (md != NULL)
        rd_kafka_metadata_destroy(md);
    rd_kafka_destroy(rk);
    return result;
}
