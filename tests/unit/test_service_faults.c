/* Issue 7's unit-tier fault for the service frame, on librdkafka's mock cluster: an
 * out-of-order-sequence error from the broker kills the idempotent producer, and the run loop
 * every service uses must then end on its own, with exit code 1 (so the supervisor restarts
 * the process with a fresh producer), and shut down cleanly (no hang in the final flush).
 * Redis is pointed at a closed port: the service frame must not need it for any of this. */
#include <string.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "lst/log.h"
#include "lst/service.h"
#include "lst/util.h"
#include "lst_test.h"

struct step_state {
    struct lst_service *s;
    int steps;
    lst_err produce_err;
};

/* The service's work: one record per step, as a consumer-driven service would produce. */
static lst_err step(void *ud)
{
    struct step_state *st = ud;

    st->steps++;
    st->produce_err = lst_kafka_produce(st->s->producer, "t.svc", "k", 1, "v", 1, 3000, NULL);
    return st->steps > 200 ? LST_ERR_TIMEOUT : LST_OK; /* bound: never loop forever */
}

static void test_fatal_producer_ends_run(void)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char errstr[256];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    REQUIRE(rk != NULL);
    rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, 1);
    REQUIRE(mc != NULL);
    REQUIRE(rd_kafka_mock_topic_create(mc, "t.svc", 1, 1) == RD_KAFKA_RESP_ERR_NO_ERROR);

    char brokers[256], addr[] = "127.0.0.1", prefix[] = "", redis_host[] = "127.0.0.1";
    snprintf(brokers, sizeof(brokers), "%s", rd_kafka_mock_cluster_bootstraps(mc));
    struct lst_common_config common = {
        .log_level = LST_LOG_ERROR,
        .kafka_brokers = brokers,
        .topic_prefix = prefix,
        .kafka_session_timeout_ms = 6000,
        .kafka_message_timeout_ms = 2000,
        .redis_host = redis_host,
        .redis_port = 1, /* nothing listens there */
        .redis_timeout_ms = 200,
        .http_addr = addr,
        .http_max_body = 1024,
        .shutdown_timeout_ms = 2000,
    };
    struct step_state st = {0};
    struct lst_service_opts o = {.name = "test_service_faults", .common = &common, .ud = &st};
    REQUIRE(lst_service_create(&o, &st.s) == LST_OK);

    /* A healthy first record, then the broker answers the next Produce with a sequence
     * error (ApiKey 0 is Produce). */
    CHECK_EQ(lst_kafka_produce(st.s->producer, "t.svc", "k", 1, "v", 1, 5000, NULL), LST_OK);
    rd_kafka_mock_push_request_errors(mc, 0, 1, RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER);

    int64_t t0 = lst_mono_ms();
    int rc = lst_service_run(st.s, step, &st, 10);
    CHECK_EQ(rc, 1);
    CHECK(lst_kafka_producer_fatal(st.s->producer));
    CHECK(st.steps < 200);
    CHECK(st.produce_err != LST_OK); /* the record the broker refused was not acked */
    CHECK_EQ(lst_kafka_produce(st.s->producer, "t.svc", "k", 1, "v", 1, 3000, NULL),
             LST_ERR_KAFKA_FATAL);
    CHECK(lst_mono_ms() - t0 < 15000);

    t0 = lst_mono_ms();
    lst_service_destroy(st.s);
    CHECK(lst_mono_ms() - t0 < 5000); /* the final flush of a dead producer is bounded */
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(rk);
}

static void test_setup(void)
{
    lst_log_init("test_service_faults", LST_LOG_ERROR);
}

LST_TEST_MAIN(T(test_setup), T(test_fatal_producer_ends_run))
