/* librdkafka's built-in mock cluster for the Kafka unit tests: librdkafka creates it inside a
 * throwaway handle, and the handles under test then bootstrap from its address.
 *
 *   struct kafka_mock m;
 *   REQUIRE(kafka_mock_start(&m) == 0);
 *   ... cfg.brokers = m.brokers ...
 *   kafka_mock_stop(&m);
 */
#ifndef LST_KAFKA_MOCK_H
#define LST_KAFKA_MOCK_H

#include <stdio.h>
#include <string.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

struct kafka_mock {
    rd_kafka_t *rk;
    rd_kafka_mock_cluster_t *mc;
    char brokers[256];
};

/* 0, or -1 when the cluster could not be created (kafka_mock_stop still frees what exists). */
static inline int kafka_mock_start(struct kafka_mock *m)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char errstr[256];

    memset(m, 0, sizeof(*m));
    m->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (m->rk == NULL)
        return -1;
    m->mc = rd_kafka_mock_cluster_new(m->rk, 1);
    if (m->mc == NULL)
        return -1;
    snprintf(m->brokers, sizeof(m->brokers), "%s", rd_kafka_mock_cluster_bootstraps(m->mc));
    return 0;
}

static inline void kafka_mock_stop(struct kafka_mock *m)
{
    if (m->mc != NULL)
        rd_kafka_mock_cluster_destroy(m->mc);
    if (m->rk != NULL)
        rd_kafka_destroy(m->rk);
    memset(m, 0, sizeof(*m));
}

#endif
