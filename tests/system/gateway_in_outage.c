/* Kafka down, nothing lost: gateway-in answers 503 while the broker is stopped, the
 * simulator's retry rule (3 retries, 5 s apart, configured through /_sim/faults)
 * delivers the callbacks again once the broker is back, and every callback the simulator sent
 * ends up in lst.inbound exactly once. The service stays up throughout.
 *
 * Runs against its OWN stack (tests/system/gateway_in_outage.sh brings it up on separate ports
 * and folder), because it stops that stack's Kafka: it sends SIGTERM to the broker recorded in
 * $LST_STACK_DIR/kafka/kafka.pid (after checking that process is that stack's broker) and
 * starts it again with scripts/stack.sh up. */
#include "gateway_in_common.h"
#include "lst_test.h"

#define BEFORE 5 /* callbacks while Kafka is up */
#define DURING 8 /* callbacks while it is down */

static struct gwin_env E;
static char user[LST_THREEMA_ID_SIZE + 1];
static uint8_t user_sk[LST_THREEMA_KEY_SIZE];
static char ids[BEFORE + DURING + 1][LST_THREEMA_MSGID_HEX + 1];
static size_t nids;
/* The real Gateway waits 5 minutes between attempts; the test compresses that to 5 s, which
 * with 3 retries (a window of about 20 s) still outlasts the broker's restart on a busy
 * 2-core machine (5-14 s measured). */
static int64_t retry_ms = 5000;

/* The broker's pid when the pid file names a process that is this stack's broker. */
static pid_t kafka_pid(void)
{
    char path[512], cmd[4096];
    snprintf(path, sizeof(path), "%s/kafka/kafka.pid",
             gwin_getenv("LST_STACK_DIR", "/nonexistent"));
    FILE *f = fopen(path, "r");
    long long pid = -1;
    if (f == NULL)
        return -1;
    if (fscanf(f, "%lld", &pid) != 1)
        pid = -1;
    fclose(f);
    snprintf(path, sizeof(path), "/proc/%lld/cmdline", pid);
    f = fopen(path, "r");
    if (f == NULL)
        return -1;
    size_t n = fread(cmd, 1, sizeof(cmd) - 1, f);
    fclose(f);
    for (size_t i = 0; i < n; i++)
        if (cmd[i] == '\0')
            cmd[i] = ' ';
    cmd[n] = '\0';
    bool ours = strstr(cmd, "kafka.Kafka") != NULL &&
                strstr(cmd, gwin_getenv("LST_STACK_DIR", "/nonexistent")) != NULL;
    return ours ? (pid_t)pid : -1;
}

static bool stop_kafka(void)
{
    pid_t pid = kafka_pid();
    if (pid <= 0)
        return false;
    kill(pid, SIGTERM);
    char stat[64];
    snprintf(stat, sizeof(stat), "/proc/%ld", (long)pid);
    for (int64_t end = lst_mono_ms() + 40000; lst_mono_ms() < end; lst_sleep_ms(100, NULL)) {
        if (access(stat, F_OK) != 0)
            return true;
        if (kafka_pid() != pid) /* gone, or a zombie whose cmdline is empty */
            return true;
    }
    return false;
}

static bool start_kafka(void)
{
    char script[512];
    snprintf(script, sizeof(script), "%s/scripts/stack.sh", E.src);
    const char *argv[] = {"/bin/bash", script, "up", NULL};
    return gwin_run(argv) == 0;
}

static void test_setup(void)
{
    REQUIRE(curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK);
    REQUIRE(lst_threema_init() == LST_OK);
    lst_log_init("gwin-outage", LST_LOG_WARN);
    int64_t v = 0;
    if (lst_parse_i64(gwin_getenv("GWIN_OUTAGE_RETRY_MS", "10000"), 100, 60000, &v) == LST_OK)
        retry_ms = v;
    REQUIRE(gwin_env_init(&E, "gwin-outage"));
    const char *extra[] = {"LST_CALLBACK_ACK_TIMEOUT_MS=2000", NULL};
    REQUIRE(gwin_start(&E, extra));
    REQUIRE(gwin_sim_user(&E, 5, user, user_sk));
    char body[320];
    snprintf(body, sizeof(body),
             "{\"callbackUrl\":\"%s\",\"callbackRetries\":3,\"callbackRetryIntervalMs\":%lld}",
             E.url, (long long)retry_ms);
    REQUIRE(gwin_sim_faults(&E, body));
}

static bool reply(const char *kind, const char *extra)
{
    return nids < LST_ARRAY_LEN(ids) && gwin_sim_reply(&E, user, kind, extra, ids[nids++]);
}

static bool sim_idle(void)
{
    return gwin_sim_cb_stat(&E, "queued") == 0 && gwin_sim_cb_stat(&E, "inFlight") == 0;
}

static void wait_idle(int64_t timeout_ms)
{
    int64_t end = lst_mono_ms() + timeout_ms;
    while (!sim_idle() && lst_mono_ms() < end)
        lst_sleep_ms(100, NULL);
}

static void test_outage(void)
{
    for (int i = 0; i < BEFORE; i++)
        CHECK(reply("text", "\"text\":\"vorher\""));
    wait_idle(20000);
    long long sent0 = gwin_sim_cb_stat(&E, "sent");
    CHECK_EQ(sent0, (long long)BEFORE);

    int64_t t0 = lst_mono_ms();
    REQUIRE(stop_kafka());
    printf("kafka stopped in %lld ms\n", (long long)(lst_mono_ms() - t0));
    for (int i = 0; i < DURING; i++)
        CHECK(reply(i % 3 == 0   ? "photo"
                    : i % 3 == 1 ? "receipt"
                                 : "text",
                    i % 3 == 1 ? "\"status\":2,\"messageId\":\"0102030405060708\""
                               : "\"text\":\"waehrenddessen\""));
    /* Every first attempt fails (503); the service stays up while Kafka is away. */
    int64_t end = lst_mono_ms() + 20000;
    while (gwin_sim_cb_stat(&E, "failedAttempts") < DURING && lst_mono_ms() < end)
        lst_sleep_ms(100, NULL);
    CHECK(gwin_sim_cb_stat(&E, "failedAttempts") >= DURING);
    CHECK(gwin_metric(&E, "lst_gateway_in_callbacks_total{result=\"unavailable\"}") >= DURING);
    CHECK(gwin_healthy(&E));
    printf("first attempts answered 503 after %lld ms; starting kafka\n",
           (long long)(lst_mono_ms() - t0));

    t0 = lst_mono_ms();
    CHECK(start_kafka());
    printf("kafka up again in %lld ms\n", (long long)(lst_mono_ms() - t0));
    CHECK(gwin_healthy(&E));
    wait_idle(4 * retry_ms + 60000);
    long long sent = gwin_sim_cb_stat(&E, "sent"), dropped = gwin_sim_cb_stat(&E, "dropped");
    printf("simulator: %lld callbacks sent (200), %lld failed attempts, %lld dropped; %lld ms "
           "after kafka came back\n",
           sent, gwin_sim_cb_stat(&E, "failedAttempts"), dropped, (long long)(lst_mono_ms() - t0));
    CHECK_EQ(dropped, 0LL);
    CHECK_EQ(sent, (long long)(BEFORE + DURING));
}

static bool all_there(const struct gwin_seen *s, void *ud)
{
    (void)ud;
    for (size_t i = 0; i < nids; i++)
        if (gwin_count_event(s, user, ids[i]) == 0)
            return false;
    return true;
}

static void test_nothing_lost(void)
{
    struct gwin_seen s;
    memset(&s, 0, sizeof(s));
    CHECK(gwin_consume(&E, &s, all_there, NULL, 2000, 60000));
    size_t missing = 0, dups = 0;
    for (size_t i = 0; i < nids; i++) {
        size_t n = gwin_count_event(&s, user, ids[i]);
        missing += n == 0;
        dups += n > 1 ? n - 1 : 0;
    }
    printf("%zu callbacks sent by the simulator, %zu records in lst.inbound, %zu missing, %zu "
           "duplicates\n",
           nids, s.nin, missing, dups);
    CHECK_EQ(missing, (size_t)0);
    CHECK_EQ(dups, (size_t)0);
    CHECK_EQ(s.nin, nids);
    gwin_seen_cleanup(&s);
    CHECK(gwin_healthy(&E));
    CHECK_EQ(gwin_stop(&E), 0);
}

LST_TEST_MAIN(T(test_setup), T(test_outage), T(test_nothing_lost))
