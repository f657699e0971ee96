/* System-test helper: creates/deletes the test topic and produces records 0..N-1 through the
 * shared producer, waiting for every acknowledgement (several threads at once, as gateway-in
 * does). Used by kill_consumer.sh against the real stack.
 *
 *   kafka_sys_producer ready
 *   kafka_sys_producer create-topic TOPIC PARTITIONS
 *   kafka_sys_producer delete-topic TOPIC
 *   kafka_sys_producer produce TOPIC N [THREADS]
 *
 * Environment: LST_KAFKA_BROKERS [127.0.0.1:19092]; KAFKA_SYS_MAP=FILE writes "id partition
 * offset" for every acknowledged record (the driver names a lost id's place in the log with
 * it); KAFKA_SYS_DEBUG=CONTEXTS sets librdkafka's debug property and logs at debug level. Exit
 * status 0 only when every record was acknowledged; a failed record is retried (a retry may
 * duplicate, which the consumer side counts) up to 5 times. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "lst/kafka.h"
#include "lst/log.h"
#include "lst/util.h"

struct job {
    struct lst_kafka_producer *p;
    const char *topic;
    int64_t n;
    atomic_llong next; /* next id to send */
    atomic_llong acked;
    atomic_llong retries;
    atomic_llong failed;
    FILE *map; /* NULL or where each acknowledged record's place goes */
    pthread_mutex_t map_lock;
};

static const char *brokers(void)
{
    const char *b = getenv("LST_KAFKA_BROKERS");

    return b != NULL && b[0] != '\0' ? b : "127.0.0.1:19092";
}

static char debug_prop[128];
static const char *debug_extra[] = {debug_prop, NULL};

static struct lst_kafka_config config(void)
{
    struct lst_kafka_config cfg = {
        .brokers = brokers(),
        .client_id = "systest-producer",
        .message_timeout_ms = 15000,
        .flush_timeout_ms = 5000,
        .extra = debug_prop[0] != '\0' ? debug_extra : NULL,
    };
    return cfg;
}

static void note_place(struct job *j, int64_t id, const struct lst_kafka_delivery *d)
{
    if (j->map == NULL)
        return;
    pthread_mutex_lock(&j->map_lock);
    fprintf(j->map, "%lld %d %lld\n", (long long)id, (int)d->partition, (long long)d->offset);
    pthread_mutex_unlock(&j->map_lock);
}

static bool send_one(struct job *j, int64_t id)
{
    char key[32], value[32];
    int klen = snprintf(key, sizeof(key), "k%lld", (long long)id);
    int vlen = snprintf(value, sizeof(value), "%lld", (long long)id);

    for (int attempt = 0; attempt < 5; attempt++) {
        struct lst_kafka_delivery d;
        lst_err e =
            lst_kafka_produce(j->p, j->topic, key, (size_t)klen, value, (size_t)vlen, 20000, &d);
        if (e == LST_OK) {
            note_place(j, id, &d);
            return true;
        }
        if (e == LST_ERR_KAFKA_FATAL)
            return false;
        fprintf(stderr, "produce id %lld: %s (status %d), retrying\n", (long long)id,
                lst_err_name(e), (int)d.status);
        atomic_fetch_add(&j->retries, 1);
    }
    return false;
}

static void *worker(void *arg)
{
    struct job *j = arg;

    for (;;) {
        int64_t id = atomic_fetch_add(&j->next, 1);
        if (id >= j->n)
            break;
        if (send_one(j, id))
            atomic_fetch_add(&j->acked, 1);
        else
            atomic_fetch_add(&j->failed, 1);
    }
    return NULL;
}

static int produce(const char *topic, int64_t n, int64_t nthreads)
{
    struct lst_kafka_config cfg = config();
    struct job j = {.topic = topic, .n = n, .map_lock = PTHREAD_MUTEX_INITIALIZER};
    const char *map = getenv("KAFKA_SYS_MAP");
    pthread_t th[64];
    int64_t started = 0, t0 = lst_mono_ms();
    int rc = 1;

    atomic_init(&j.next, 0);
    atomic_init(&j.acked, 0);
    atomic_init(&j.retries, 0);
    atomic_init(&j.failed, 0);
    if (map != NULL && map[0] != '\0' && (j.map = fopen(map, "w")) == NULL) {
        perror(map);
        return 1;
    }
    if (lst_kafka_producer_create(&cfg, &j.p) != LST_OK) {
        if (j.map != NULL)
            fclose(j.map);
        return 1;
    }
    for (; started < nthreads; started++) {
        if (pthread_create(&th[started], NULL, worker, &j) != 0)
            break;
    }
    for (int64_t i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    printf("{\"produced\":%lld,\"acked\":%lld,\"retries\":%lld,\"failed\":%lld,\"ms\":%lld}\n",
           (long long)n, (long long)atomic_load(&j.acked), (long long)atomic_load(&j.retries),
           (long long)atomic_load(&j.failed), (long long)(lst_mono_ms() - t0));
    if (started > 0 && atomic_load(&j.acked) == n)
        rc = 0;
    lst_kafka_producer_destroy(j.p);
    if (j.map != NULL && fclose(j.map) != 0)
        rc = 1;
    return rc;
}

/* Deleting is test teardown only, after every consumer of the topic has stopped (deleting a
 * topic under a running consumer can hang its destroy in 2.0.2). Not part of the library. */
static int delete_topic(const char *topic)
{
    char errstr[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk = NULL;
    rd_kafka_DeleteTopic_t *dt = NULL;
    rd_kafka_queue_t *q = NULL;
    rd_kafka_event_t *ev = NULL;
    int rc = 1;

    if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers(), errstr, sizeof(errstr)) !=
        RD_KAFKA_CONF_OK)
        goto out;
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (rk == NULL)
        goto out;
    conf = NULL;
    dt = rd_kafka_DeleteTopic_new(topic);
    q = rd_kafka_queue_new(rk);
    rd_kafka_DeleteTopics(rk, &dt, 1, NULL, q);
    ev = rd_kafka_queue_poll(q, 15000);
    if (ev != NULL && rd_kafka_event_error(ev) == RD_KAFKA_RESP_ERR_NO_ERROR)
        rc = 0;
out:
    if (ev != NULL)
        rd_kafka_event_destroy(ev);
    if (q != NULL)
        rd_kafka_queue_destroy(q);
    if (dt != NULL)
        rd_kafka_DeleteTopic_destroy(dt);
    if (rk != NULL)
        rd_kafka_destroy(rk);
    if (conf != NULL)
        rd_kafka_conf_destroy(conf);
    return rc;
}

static int ready(void)
{
    struct lst_kafka_config cfg = config();
    struct lst_kafka_producer *p = NULL;
    lst_err e;

    if (lst_kafka_producer_create(&cfg, &p) != LST_OK)
        return 1;
    e = lst_kafka_producer_ready(p, 5000);
    lst_kafka_producer_destroy(p);
    return e == LST_OK ? 0 : 1;
}

static int usage(void)
{
    fprintf(stderr, "usage: kafka_sys_producer ready | create-topic TOPIC PARTITIONS | "
                    "delete-topic TOPIC | produce TOPIC N [THREADS]\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *debug = getenv("KAFKA_SYS_DEBUG");
    struct lst_kafka_config cfg;
    int64_t a = 0, b = 16;

    if (debug != NULL && debug[0] != '\0')
        snprintf(debug_prop, sizeof(debug_prop), "debug=%s", debug);
    cfg = config();
    lst_log_init("kafka_sys_producer", debug_prop[0] != '\0' ? LST_LOG_DEBUG : LST_LOG_WARN);
    if (argc == 2 && strcmp(argv[1], "ready") == 0)
        return ready();
    if (argc == 4 && strcmp(argv[1], "create-topic") == 0) {
        if (lst_parse_i64(argv[3], 1, 1000, &a) != LST_OK)
            return usage();
        return lst_kafka_create_topic(&cfg, argv[2], (int)a, 1, 15000) == LST_OK ? 0 : 1;
    }
    if (argc == 3 && strcmp(argv[1], "delete-topic") == 0)
        return delete_topic(argv[2]);
    if ((argc == 4 || argc == 5) && strcmp(argv[1], "produce") == 0) {
        if (lst_parse_i64(argv[3], 1, 10000000, &a) != LST_OK ||
            (argc == 5 && lst_parse_i64(argv[4], 1, 64, &b) != LST_OK))
            return usage();
        return produce(argv[2], a, b);
    }
    return usage();
}
