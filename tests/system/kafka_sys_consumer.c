/* System-test helper: consumes TOPIC in GROUP through the shared consumer and, for every
 * record, counts its delivery in Redis (HINCRBY KEY <id> 1) and only then marks the record
 * done. Counting deliveries (not setting a flag) is the point: the driver reads lost records
 * (missing ids) and duplicates (counts above 1) from the hash.
 *
 *   kafka_sys_consumer TOPIC GROUP KEY [SLEEP_US]
 *
 * SLEEP_US (default 0) slows each record down so a driver can kill the process mid-stream.
 * Environment: LST_KAFKA_BROKERS [127.0.0.1:19092], LST_REDIS_PORT [16379], KAFKA_SYS_LOG
 * [warn] (log level), KAFKA_SYS_TRACE=FILE ("partition offset id" of every record counted,
 * written unbuffered so a SIGKILL keeps it), KAFKA_SYS_DEBUG=CONTEXTS (librdkafka's debug
 * property, e.g. cgrp,fetch; shown with KAFKA_SYS_LOG=debug). SIGTERM/SIGINT
 * close the consumer cleanly (final commit, group leave). A Redis failure exits with status 3
 * without marking the record done, as a service would (the supervisor restarts it). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lst/kafka.h"
#include "lst/log.h"
#include "lst/redis.h"
#include "lst/signals.h"
#include "lst/util.h"

struct stats {
    long long consumed;
    long long not_assigned;
    int trace; /* -1 or the KAFKA_SYS_TRACE file */
};

static void pause_us(int64_t us)
{
    struct timespec ts = {.tv_sec = (time_t)(us / 1000000), .tv_nsec = (long)(us % 1000000) * 1000};

    if (us > 0)
        nanosleep(&ts, NULL);
}

/* LST_OK when the record's count is durable in Redis and it was marked done. */
static lst_err handle(struct lst_kafka_consumer *c, struct lst_redis *r, const char *key,
                      const struct lst_kafka_record *rec, struct stats *st)
{
    const char *value = rec->value ? rec->value : "";
    lst_err e = lst_redis_cmdf(r, NULL, "HINCRBY %s %b 1", key, value, rec->len);

    if (e != LST_OK) {
        fprintf(stderr, "redis HINCRBY failed: %s\n", lst_err_name(e));
        return e;
    }
    st->consumed++;
    if (st->trace >= 0)
        dprintf(st->trace, "%d %lld %.*s\n", (int)rec->partition, (long long)rec->offset,
                (int)rec->len, value);
    e = lst_kafka_consumer_done(c, rec);
    if (e == LST_ERR_STATE) {
        st->not_assigned++; /* revoked meanwhile: the new owner redoes it */
        e = LST_OK;
    }
    return e;
}

static int run(const char *topic, const char *group, const char *key, int64_t sleep_us)
{
    const char *b = getenv("LST_KAFKA_BROKERS");
    const char *port_s = getenv("LST_REDIS_PORT");
    const char *trace = getenv("KAFKA_SYS_TRACE");
    const char *debug = getenv("KAFKA_SYS_DEBUG");
    char debug_prop[128];
    const char *extra[] = {debug_prop, NULL};
    int64_t port = 16379;
    struct lst_kafka_config kcfg = {.brokers = b && b[0] ? b : "127.0.0.1:19092",
                                    .client_id = "systest-consumer",
                                    .session_timeout_ms = 6000};
    const char *topics[] = {topic};
    struct lst_kafka_consumer_opts opts = {.group_id = group, .topics = topics, .ntopics = 1};
    struct lst_redis_config rcfg = {.host = "127.0.0.1", .timeout_ms = 2000};
    struct lst_kafka_consumer *c = NULL;
    struct lst_redis *r = NULL;
    struct lst_kafka_record rec;
    struct stats st = {0, 0, -1};
    int rc = 1;
    lst_err e = LST_OK;

    if (debug != NULL && debug[0] != '\0') {
        snprintf(debug_prop, sizeof(debug_prop), "debug=%s", debug);
        kcfg.extra = extra;
    }
    if (trace != NULL && trace[0] != '\0' &&
        (st.trace = open(trace, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0) {
        perror(trace);
        goto out;
    }
    if (port_s != NULL && lst_parse_i64(port_s, 1, 65535, &port) != LST_OK)
        goto out;
    rcfg.port = (int)port;
    if (lst_redis_create(&rcfg, &r) != LST_OK || lst_redis_connect(r) != LST_OK)
        goto out;
    if (lst_kafka_consumer_create(&kcfg, &opts, &c) != LST_OK)
        goto out;
    while (!lst_stop_requested()) {
        e = lst_kafka_consumer_poll(c, 200, &rec);
        if (e == LST_ERR_TIMEOUT)
            continue;
        if (e != LST_OK)
            break;
        pause_us(sleep_us);
        e = handle(c, r, key, &rec, &st);
        lst_kafka_record_release(&rec);
        if (e != LST_OK)
            break;
    }
    if (e == LST_OK || e == LST_ERR_TIMEOUT)
        rc = lst_kafka_consumer_close(c) == LST_OK ? 0 : 1;
    else
        rc = 3;
out:
    printf("{\"consumed\":%lld,\"not_assigned\":%lld,\"exit\":%d}\n", st.consumed, st.not_assigned,
           rc);
    lst_kafka_consumer_destroy(c);
    lst_redis_destroy(r);
    if (st.trace >= 0)
        close(st.trace);
    return rc;
}

int main(int argc, char **argv)
{
    int64_t sleep_us = 0;

    enum lst_log_level level = LST_LOG_WARN;
    const char *lv = getenv("KAFKA_SYS_LOG");

    /* The driver reads "kafka.consumer.assigned" (info) to know the consumer has joined. */
    if (lv != NULL && lst_log_parse_level(lv, &level) != LST_OK)
        return 2;
    lst_log_init("kafka_sys_consumer", level);
    if (lst_signals_install() != LST_OK)
        return 1;
    if ((argc != 4 && argc != 5) ||
        (argc == 5 && lst_parse_i64(argv[4], 0, 1000000, &sleep_us) != LST_OK)) {
        fprintf(stderr, "usage: kafka_sys_consumer TOPIC GROUP KEY [SLEEP_US]\n");
        return 2;
    }
    return run(argv[1], argv[2], argv[3], sleep_us);
}
