/* Unit tests of the explicitly assigned reader (lst/kafka_assign.h) against
 * librdkafka's mock cluster: start offsets come from the callback, a forced
 * refresh seeks every partition to fresh start offsets, topics created later
 * are assigned by a later refresh. The real broker is exercised by the ledger's
 * system test. Every wait is bounded. */
#include <stdio.h>
#include <string.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "lst/kafka.h"
#include "lst/kafka_assign.h"
#include "lst/util.h"
#include "kafka_mock.h"
#include "lst_test.h"

static const char *const fast_extra[] = {"topic.metadata.refresh.interval.ms=500",
                                         "reconnect.backoff.max.ms=200", NULL};

/* The start offsets the test hands out, per partition of topic "a". */
struct starts {
    int64_t a[2];
    int calls;
    bool fail;
};

static lst_err start_cb(const char *topic, int32_t partition, int64_t *offset, void *opaque)
{
    struct starts *s = opaque;
    s->calls++;
    if (s->fail)
        return LST_ERR_REDIS;
    *offset =
        strcmp(topic, "a") == 0 && partition < 2 ? s->a[partition] : LST_KAFKA_OFFSET_BEGINNING;
    return LST_OK;
}

/* Polls until a record of (topic, partition) arrives; its offset, or -1. */
static int64_t next_offset(struct lst_kafka_reader *r, const char *topic, int32_t partition)
{
    int64_t deadline = lst_mono_ms() + 10000;
    while (lst_mono_ms() < deadline) {
        struct lst_kafka_record rec;
        if (lst_kafka_reader_poll(r, 200, &rec) != LST_OK)
            continue;
        int64_t off = rec.offset;
        bool match = strcmp(rec.topic, topic) == 0 && rec.partition == partition;
        CHECK_EQ(lst_kafka_reader_done(r, &rec), LST_OK);
        lst_kafka_record_release(&rec);
        if (match)
            return off;
    }
    return -1;
}

static void produce(struct lst_kafka_producer *p, const char *topic, int32_t partition, int n)
{
    (void)partition;
    for (int i = 0; i < n; i++) {
        char v[16];
        int len = snprintf(v, sizeof(v), "v%d", i);
        /* key "k0" lands in one partition; the test reads whichever that is */
        CHECK_EQ(lst_kafka_produce(p, topic, "k0", 2, v, (size_t)len, 5000, NULL), LST_OK);
    }
}

static void test_start_offsets_and_forced_refresh(void)
{
    struct kafka_mock m;
    struct lst_kafka_producer *p = NULL;
    struct lst_kafka_reader *r = NULL;
    struct starts st = {.a = {3, 3}};
    const char *topics[] = {"a", "b"};

    REQUIRE(kafka_mock_start(&m) == 0);
    REQUIRE(rd_kafka_mock_topic_create(m.mc, "a", 1, 1) == RD_KAFKA_RESP_ERR_NO_ERROR);
    struct lst_kafka_config cfg = {.brokers = m.brokers,
                                   .client_id = "test_kafka_assign",
                                   .message_timeout_ms = 3000,
                                   .flush_timeout_ms = 1000,
                                   .extra = fast_extra};
    struct lst_kafka_reader_opts ro = {.group_id = "g1",
                                       .topics = topics,
                                       .ntopics = 2,
                                       .start = start_cb,
                                       .opaque = &st,
                                       .refresh_ms = 100};
    REQUIRE(lst_kafka_producer_create(&cfg, &p) == LST_OK);
    produce(p, "a", 0, 10);
    REQUIRE(lst_kafka_reader_create(&cfg, &ro, &r) == LST_OK);
    CHECK_EQ(lst_kafka_reader_assigned(r), 0);
    CHECK_EQ(lst_kafka_reader_refresh(r, false), LST_OK);
    CHECK_EQ(lst_kafka_reader_assigned(r), 1); /* "b" does not exist yet */
    CHECK_EQ(st.calls, 1);
    CHECK_EQ(next_offset(r, "a", 0), 3);
    CHECK_EQ(next_offset(r, "a", 0), 4);
    /* a forced refresh asks again and seeks there: back to 1 */
    st.a[0] = 1;
    CHECK_EQ(lst_kafka_reader_refresh(r, true), LST_OK);
    CHECK_EQ(next_offset(r, "a", 0), 1);
    CHECK_EQ(next_offset(r, "a", 0), 2);
    /* a start callback failure aborts the refresh */
    st.fail = true;
    CHECK_EQ(lst_kafka_reader_refresh(r, true), LST_ERR_REDIS);
    st.fail = false;
    /* "b" appears: the next refresh after refresh_ms assigns it (from the
     * beginning) */
    REQUIRE(rd_kafka_mock_topic_create(m.mc, "b", 2, 1) == RD_KAFKA_RESP_ERR_NO_ERROR);
    produce(p, "b", 0, 1);
    int64_t deadline = lst_mono_ms() + 10000;
    while (lst_kafka_reader_assigned(r) != 3 && lst_mono_ms() < deadline) {
        lst_sleep_ms(150, NULL);
        lst_kafka_reader_refresh(r, false);
    }
    CHECK_EQ(lst_kafka_reader_assigned(r), 3);
    /* the high watermark of "a" is 10 */
    int64_t high = -1;
    CHECK_EQ(lst_kafka_reader_high(r, "a", 0, 5000, &high), LST_OK);
    CHECK_EQ(high, 10);
    CHECK_EQ(lst_kafka_reader_ready(r, 3000), LST_OK);
    lst_kafka_reader_destroy(r);
    lst_kafka_producer_destroy(p);
    kafka_mock_stop(&m);
}

/* What a reader marked done and committed on destroy is what the next reader of the group
 * gets from lst_kafka_reader_committed; a partition the group never committed gives -1. */
static void test_committed_offsets(void)
{
    struct kafka_mock m;
    struct lst_kafka_producer *p = NULL;
    struct lst_kafka_reader *r = NULL;
    struct starts st = {.a = {LST_KAFKA_OFFSET_BEGINNING, LST_KAFKA_OFFSET_BEGINNING}};
    const char *topics[] = {"a", "c"};

    REQUIRE(kafka_mock_start(&m) == 0);
    REQUIRE(rd_kafka_mock_topic_create(m.mc, "a", 1, 1) == RD_KAFKA_RESP_ERR_NO_ERROR);
    REQUIRE(rd_kafka_mock_topic_create(m.mc, "c", 1, 1) == RD_KAFKA_RESP_ERR_NO_ERROR);
    struct lst_kafka_config cfg = {.brokers = m.brokers,
                                   .client_id = "test_kafka_assign",
                                   .message_timeout_ms = 3000,
                                   .flush_timeout_ms = 1000,
                                   .extra = fast_extra};
    struct lst_kafka_reader_opts ro = {
        .group_id = "g2", .topics = topics, .ntopics = 2, .start = start_cb, .opaque = &st};
    REQUIRE(lst_kafka_producer_create(&cfg, &p) == LST_OK);
    produce(p, "a", 0, 5);
    REQUIRE(lst_kafka_reader_create(&cfg, &ro, &r) == LST_OK);
    CHECK_EQ(lst_kafka_reader_refresh(r, false), LST_OK);
    int64_t last = -1;
    for (int i = 0; i < 5; i++)
        last = next_offset(r, "a", 0);
    CHECK_EQ(last, 4);
    lst_kafka_reader_destroy(r); /* commits what is stored: 5 */
    r = NULL;
    REQUIRE(lst_kafka_reader_create(&cfg, &ro, &r) == LST_OK);
    int64_t committed = -2;
    CHECK_EQ(lst_kafka_reader_committed(r, "a", 0, 5000, &committed), LST_OK);
    CHECK_EQ(committed, 5);
    committed = -2;
    CHECK_EQ(lst_kafka_reader_committed(r, "c", 0, 5000, &committed), LST_OK);
    CHECK_EQ(committed, -1);
    lst_kafka_reader_destroy(r);
    lst_kafka_producer_destroy(p);
    kafka_mock_stop(&m);
}

static void test_bad_options(void)
{
    struct lst_kafka_config cfg = {.brokers = "127.0.0.1:1"};
    struct lst_kafka_reader *r = (void *)1;
    const char *topics[] = {"a"};
    struct lst_kafka_reader_opts ro = {.group_id = "g", .topics = topics, .ntopics = 1};

    CHECK_EQ(lst_kafka_reader_create(&cfg, &ro, &r), LST_ERR_CONFIG); /* no start callback */
    CHECK(r == NULL);
    ro.start = start_cb;
    ro.group_id = NULL;
    CHECK_EQ(lst_kafka_reader_create(&cfg, &ro, &r), LST_ERR_CONFIG);
    lst_kafka_reader_destroy(NULL);
}

LST_TEST_MAIN(T(test_bad_options), T(test_start_offsets_and_forced_refresh),
              T(test_committed_offsets))
