/* Service tier of the live stream (GET /api/stream) and read tracking
 * visibility (LST_VIEW_READ_VISIBILITY): the view-api in-process against its
 * own redis-server seeded in the ledger's layout, change stream entries
 * appended exactly as the ledger's scripts do (XADD <P>ev * t <type> id <item>
 * [eid <eid> st <state>]). The SSE client is a raw socket speaking HTTP/1.0, so
 * the body arrives without chunk framing, byte for byte as sent. */
#define _GNU_SOURCE /* strcasestr */

#include "view_api_common.h"

static struct harness H;

/* ---- seeding (docs/ledger.md) ---- */

/* XADD to the change stream; the new ID goes to out. */
static void ev_add(char out[64], const char *t, const char *id, const char *eid, const char *st)
{
    redisReply *r =
        eid != NULL ? redisCommand(H.rc, "XADD lst:lg:ev * t %s id %s eid %s st %s", t, id, eid, st)
                    : redisCommand(H.rc, "XADD lst:lg:ev * t %s id %s", t, id);
    out[0] = '\0';
    if (r != NULL && r->type == REDIS_REPLY_STRING)
        snprintf(out, 64, "%s", r->str);
    else
        fprintf(stderr, "XADD failed\n");
    if (r != NULL)
        freeReplyObject(r);
}

/* An outgoing message of category cat to e1 (read at 40) and e2 (delivered at
 * 30), sent by a dispatcher of department dep. */
static void seed_message(const char *id, long long at, const char *cat, const char *dep)
{
    rcmd(&H,
         "HSET lst:lg:m:%s dir out id %s at %lld msg 1 cat %s kind text text "
         "hello disp anna "
         "dep %s n 2 s:read 1 s:delivered 1 audience 2",
         id, id, at, cat, dep);
    rcmd(&H, "HSET lst:lg:r:%s e1 %s e2 %s", id,
         "{\"st\":\"read\",\"q\":10,\"s\":20,\"d\":30,\"r\":40,\"tm\":\"aa\"}",
         "{\"st\":\"delivered\",\"q\":10,\"s\":20,\"d\":30,\"tm\":\"bb\"}");
    seed_ix(&H, id, at, cat, "all");
    seed_ix(&H, id, at, cat, "dir:out");
    seed_ix(&H, id, at, cat, "emp:e1");
    seed_ix(&H, id, at, cat, "emp:e2");
    char k[80];
    snprintf(k, sizeof(k), "dep:%s", dep);
    seed_ix(&H, id, at, cat, k);
    seed_ix(&H, id, at, cat, "st:unread");
}

static size_t count(const struct lst_buf *b, const char *needle)
{
    size_t n = 0;
    for (const char *p = b->data; p != NULL && (p = strstr(p, needle)) != NULL; p++)
        n++;
    return n;
}

/* Until the streams of earlier steps gave their slots back (their peers are gone). */
static void wait_slots(void)
{
    int64_t until = lst_mono_ms() + 5000;
    while (atomic_load(&H.api.streams) > 0 && lst_mono_ms() < until)
        lst_sleep_ms(20, NULL);
    CHECK_EQ(atomic_load(&H.api.streams), 0);
}

/* ---- tests ---- */

static void test_stream_auth_and_errors(void)
{
    struct http_result r;
    CHECK_EQ(get(&H, "/api/stream", NULL, &r), 401);
    CHECK(has_header(&r, "WWW-Authenticate: Bearer"));
    http_result_cleanup(&r);
    CHECK_EQ(get(&H, "/api/stream", "wrong-token", &r), 401);
    http_result_cleanup(&r);
    CHECK_EQ(get(&H, "/api/stream?direction=sideways", TOKEN_DISPATCHER, &r), 400);
    CHECK_STREQ(S(jstr(r.json, "type")), "urn:leitstand:problem:invalid-query");
    http_result_cleanup(&r);
    CHECK_EQ(get(&H, "/api/stream?last_event_id=yesterday", TOKEN_DISPATCHER, &r), 400);
    http_result_cleanup(&r);
    CHECK_EQ(get(&H, "/api/stream?view=nope", TOKEN_DISPATCHER, &r), 404);
    CHECK_STREQ(S(jstr(r.json, "type")), "urn:leitstand:problem:view-not-found");
    http_result_cleanup(&r);
    /* unread where read information is off */
    CHECK_EQ(get(&H, "/api/stream?status=unread&category=hr", TOKEN_DISPATCHER, &r), 400);
    CHECK_STREQ(S(jstr(r.json, "type")), "urn:leitstand:problem:read-status-hidden");
    http_result_cleanup(&r);
}

static void test_stream_filter_resume_reset(void)
{
    struct sse s;
    char id1[64], id2[64], id3[64], id4[64], want[160];
    seed_message("01STREAMA0000000000000000A", 1000, "dispo", "Nord");
    seed_message("01STREAMB0000000000000000B", 1001, "dispo", "Sued");
    REQUIRE(sse_open(&H, &s, "/api/stream?department=Nord", NULL));
    REQUIRE(sse_wait(&s, ": connected\n\n", 3000));
    CHECK(strstr(s.b.data, "HTTP/1.0 200") == s.b.data || strstr(s.b.data, "HTTP/1.1 200"));
    CHECK(strcasestr(s.b.data, "Content-Type: text/event-stream") != NULL);
    CHECK(strcasestr(s.b.data, "Access-Control-Allow-Origin: " ORIGIN_OK) != NULL);
    ev_add(id1, "message", "01STREAMA0000000000000000A", NULL, NULL);
    ev_add(id2, "message", "01STREAMB0000000000000000B", NULL, NULL); /* department Sued */
    ev_add(id3, "status", "01STREAMA0000000000000000A", "e2", "delivered");
    ev_add(id4, "annotation", "01STREAMA0000000000000000A", NULL, NULL);
    snprintf(want, sizeof(want), "id: %s\nevent: annotation\n", id4);
    CHECK(sse_wait(&s, want, 5000));
    snprintf(want, sizeof(want), "id: %s\nevent: message\ndata: {\"type\":\"message\"", id1);
    CHECK(strstr(S(s.b.data), want) != NULL);
    snprintf(want, sizeof(want), "id: %s\nevent: status\n", id3);
    CHECK(strstr(S(s.b.data), want) != NULL);
    CHECK(strstr(S(s.b.data), "\"employee_id\":\"e2\",\"state\":\"delivered\"") != NULL);
    CHECK(strstr(S(s.b.data), id2) == NULL); /* filtered out */
    CHECK_EQ(count(&s.b, "\nevent: "), 3);
    sse_close(&s);

    /* resume after the first event: exactly the later ones, no duplicate, no gap
     */
    REQUIRE(sse_open(&H, &s, "/api/stream?department=Nord", id1));
    snprintf(want, sizeof(want), "id: %s\nevent: annotation\n", id4);
    CHECK(sse_wait(&s, want, 5000));
    CHECK(strstr(S(s.b.data), id1) == NULL);
    snprintf(want, sizeof(want), "id: %s\nevent: status\n", id3);
    CHECK(strstr(S(s.b.data), want) != NULL);
    CHECK_EQ(count(&s.b, "\nevent: "), 2);
    /* and it goes on live */
    char id5[64];
    ev_add(id5, "status", "01STREAMA0000000000000000A", "e1", "read");
    snprintf(want, sizeof(want), "id: %s\nevent: status\n", id5);
    CHECK(sse_wait(&s, want, 5000));
    sse_close(&s);

    /* the query parameter works as the header */
    char path[160];
    snprintf(path, sizeof(path), "/api/stream?department=Nord&last_event_id=%s", id3);
    REQUIRE(sse_open(&H, &s, path, NULL));
    snprintf(want, sizeof(want), "id: %s\nevent: status\n", id5);
    CHECK(sse_wait(&s, want, 5000));
    CHECK_EQ(count(&s.b, "\nevent: "), 2); /* annotation id4, status id5 */
    sse_close(&s);

    /* a position older than the stream's first entry: reset, then live */
    REQUIRE(sse_open(&H, &s, "/api/stream?department=Nord", "1-0"));
    snprintf(want, sizeof(want), "id: %s\nevent: reset\n", id5);
    CHECK(sse_wait(&s, want, 5000));
    CHECK(sse_wait(&s, "no longer available (trimmed from the change stream)", 5000));
    CHECK(strstr(s.b.data, "\"cause\":\"trimmed\"") != NULL);
    char id6[64];
    ev_add(id6, "message", "01STREAMA0000000000000000A", NULL, NULL);
    snprintf(want, sizeof(want), "id: %s\nevent: message\n", id6);
    CHECK(sse_wait(&s, want, 5000));
    CHECK_EQ(count(&s.b, "\nevent: "), 2);
    sse_close(&s);
    /* one from the future (another server, a reset Redis) too, and the reason says so (it
     * said "no longer available", which an ID never available here is not) */
    REQUIRE(sse_open(&H, &s, "/api/stream", "99999999999999-0"));
    snprintf(want, sizeof(want), "id: %s\nevent: reset\n", id6);
    CHECK(sse_wait(&s, want, 5000));
    CHECK(sse_wait(&s,
                   "the last event ID is newer than anything this server's change stream "
                   "holds: it came from another server, or Redis was reset",
                   5000));
    CHECK(strstr(s.b.data, "no longer available") == NULL);
    CHECK(strstr(s.b.data, "\"cause\":\"future\"") != NULL);
    sse_close(&s);
    /* no change stream at all (a reset Redis before the ledger wrote again) */
    rcmd(&H, "RENAME lst:lg:ev lst:lg:ev-aside");
    REQUIRE(sse_open(&H, &s, "/api/stream", id6));
    CHECK(sse_wait(&s, "id: 0-0\nevent: reset\n", 5000));
    CHECK(sse_wait(&s, "this server's change stream holds no events", 5000));
    CHECK(strstr(s.b.data, "\"cause\":\"empty\"") != NULL);
    sse_close(&s);
    rcmd(&H, "RENAME lst:lg:ev-aside lst:lg:ev");
}

/* A saved view holding a depot (and a direction, which the stream keeps for its whole life):
 * only the changes of items to that depot's drivers. */
#define VIEW_KIEL "01J000000000000000000000SV"
#define MSG_KIEL  "01STREAMK0000000000000000K"
#define MSG_ELSE  "01STREAML0000000000000000L"

static void test_stream_view_depot(void)
{
    struct sse s;
    char in_kiel[64], elsewhere[64], want[160];
    wait_slots();
    seed_message(MSG_KIEL, 2000, "info", "Nord");
    seed_ix(&H, MSG_KIEL, 2000, "info", "tag:depot:Kiel");
    seed_message(MSG_ELSE, 2001, "info", "Nord");
    rcmd(&H, "HSET lst:lg:view:%s id %s owner anna at 1 name Kiel shared 0 filter %s hidden %s",
         VIEW_KIEL, VIEW_KIEL, "{\"depot\":\"Kiel\",\"direction\":\"out\"}", "[]");
    REQUIRE(sse_open(&H, &s, "/api/stream?view=" VIEW_KIEL, NULL));
    REQUIRE(sse_wait(&s, ": connected\n\n", 3000));
    ev_add(elsewhere, "message", MSG_ELSE, NULL, NULL);
    ev_add(in_kiel, "message", MSG_KIEL, NULL, NULL);
    snprintf(want, sizeof(want), "id: %s\nevent: message\n", in_kiel);
    CHECK(sse_wait(&s, want, 5000));
    CHECK(strstr(S(s.b.data), elsewhere) == NULL);
    CHECK_EQ(count(&s.b, "\nevent: "), 1);
    sse_close(&s);
}

static void test_stream_heartbeat_and_limit(void)
{
    struct sse a, b, c;
    struct http_result r;
    wait_slots();
    REQUIRE(sse_open(&H, &a, "/api/stream?category=nothing-here", NULL));
    CHECK(sse_wait(&a, ": heartbeat\n\n", 3000)); /* LST_VIEW_STREAM_HEARTBEAT_MS=300 */
    REQUIRE(sse_open(&H, &b, "/api/stream", NULL));
    CHECK(sse_wait(&b, ": connected\n\n", 3000));
    /* LST_VIEW_MAX_STREAMS=2 */
    CHECK_EQ(get(&H, "/api/stream", TOKEN_DISPATCHER, &r), 503);
    CHECK_STREQ(S(jstr(r.json, "type")), "urn:leitstand:problem:too-many-streams");
    CHECK(has_header(&r, "Retry-After:"));
    http_result_cleanup(&r);
    /* a closed stream gives its slot back (noticed within a round, not at the
     * heartbeat) */
    sse_close(&a);
    bool opened = false;
    int64_t deadline = lst_mono_ms() + 5000;
    while (!opened && lst_mono_ms() < deadline) {
        REQUIRE(sse_open(&H, &c, "/api/stream", NULL));
        opened = sse_wait(&c, ": connected\n\n", 2000);
        if (!opened) {
            sse_close(&c);
            lst_sleep_ms(100, NULL);
        }
    }
    CHECK(opened);
    sse_close(&c);
    sse_close(&b);
}

/* ---- read tracking visibility: dispo person, personal counts, hr off ---- */

static void test_visibility_detail(void)
{
    struct http_result r;
    seed_message("01VISPERS00000000000000000", 2000, "dispo", "Nord");
    seed_message("01VISCOUNT0000000000000000", 2001, "personal", "Nord");
    seed_message("01VISOFF000000000000000000", 2002, "hr", "Nord");
    rcmd(&H, "SADD lst:lg:rroff e2");

    CHECK_EQ(get(&H, "/api/messages/01VISPERS00000000000000000", TOKEN_DISPATCHER, &r), 200);
    CHECK_STREQ(S(jstr(r.json, "read_visibility")), "person");
    CHECK_STREQ(S(jstr(r.json, "recipients.0.status.state")), "read");
    CHECK_EQ(jint(r.json, "recipients.0.status.read_at"), 40);
    CHECK(jget(r.json, "recipients.1.status.read_unknown") != NULL);
    CHECK_EQ(jint(r.json, "counts.read"), 1);
    CHECK_EQ(jint(r.json, "read_unknown"), 1);
    http_result_cleanup(&r);

    CHECK_EQ(get(&H, "/api/messages/01VISCOUNT0000000000000000", TOKEN_DISPATCHER, &r), 200);
    CHECK_STREQ(S(jstr(r.json, "read_visibility")), "counts");
    CHECK_STREQ(S(jstr(r.json, "recipients.0.status.state")), "delivered");
    CHECK(jget(r.json, "recipients.0.status.read_at") == NULL);
    CHECK_EQ(jint(r.json, "recipients.0.status.delivered_at"), 30);
    CHECK(jget(r.json, "recipients.1.status.read_unknown") == NULL);
    CHECK_EQ(jint(r.json, "counts.read"), 1); /* the aggregate stays */
    CHECK_EQ(jint(r.json, "counts.delivered"), 1);
    http_result_cleanup(&r);

    CHECK_EQ(get(&H, "/api/messages/01VISOFF000000000000000000", TOKEN_DISPATCHER, &r), 200);
    CHECK_STREQ(S(jstr(r.json, "read_visibility")), "off");
    CHECK_STREQ(S(jstr(r.json, "recipients.0.status.state")), "delivered");
    CHECK(jget(r.json, "recipients.0.status.read_at") == NULL);
    CHECK(jget(r.json, "counts.read") == NULL);
    CHECK(jget(r.json, "counts.acknowledged") == NULL);
    CHECK_EQ(jint(r.json, "counts.delivered"), 2); /* read folded into delivered */
    CHECK(jget(r.json, "read_unknown") == NULL);
    CHECK(strstr(S(r.body.data), "read_at") == NULL);
    CHECK(strstr(S(r.body.data), "\"read\"") == NULL);
    http_result_cleanup(&r);
}

static void test_visibility_history_timeline(void)
{
    struct http_result r;
    /* e1 read all three; their own status on each follows the category */
    CHECK_EQ(get(&H, "/api/employees/e1/history?from=2000&to=2002", TOKEN_DISPATCHER, &r), 200);
    CHECK_EQ(jlen(r.json, "items"), 3);
    CHECK_STREQ(S(jstr(r.json, "items.0.id")), "01VISOFF000000000000000000");
    CHECK_STREQ(S(jstr(r.json, "items.0.recipient_status.state")), "delivered");
    CHECK(jget(r.json, "items.0.recipient_status.read_at") == NULL);
    CHECK(jget(r.json, "items.0.counts.read") == NULL);
    CHECK_STREQ(S(jstr(r.json, "items.1.recipient_status.state")), "delivered");
    CHECK(jget(r.json, "items.1.recipient_status.read_at") == NULL);
    CHECK_EQ(jint(r.json, "items.1.counts.read"), 1);
    CHECK_STREQ(S(jstr(r.json, "items.2.recipient_status.state")), "read");
    CHECK_EQ(jint(r.json, "items.2.recipient_status.read_at"), 40);
    http_result_cleanup(&r);

    /* status=unread skips hr and says so */
    CHECK_EQ(get(&H, "/api/timeline?status=unread&from=2000&to=2002", TOKEN_DISPATCHER, &r), 200);
    CHECK_EQ(jlen(r.json, "items"), 2);
    CHECK(strstr(S(r.body.data), "01VISOFF") == NULL);
    CHECK_STREQ(S(jstr(r.json, "read_hidden_categories.0")), "hr");
    http_result_cleanup(&r);
    CHECK_EQ(get(&H, "/api/timeline?status=unread&category=hr", TOKEN_DISPATCHER, &r), 400);
    CHECK_STREQ(S(jstr(r.json, "type")), "urn:leitstand:problem:read-status-hidden");
    http_result_cleanup(&r);
    CHECK_EQ(get(&H, "/api/employees/e1/history?status=unread&category=hr", TOKEN_DISPATCHER, &r),
             400);
    http_result_cleanup(&r);
    /* other status filters are not read information */
    CHECK_EQ(get(&H, "/api/timeline?category=hr&from=2000&to=2002", TOKEN_DISPATCHER, &r), 200);
    CHECK_EQ(jlen(r.json, "items"), 1);
    CHECK(jget(r.json, "read_hidden_categories") == NULL);
    http_result_cleanup(&r);
}

static void test_visibility_stream(void)
{
    struct sse s;
    char a[64], b[64], c[64], d[64], want[160];
    wait_slots();
    REQUIRE(sse_open(&H, &s, "/api/stream?employee=e1", NULL));
    REQUIRE(sse_wait(&s, ": connected\n\n", 3000));
    ev_add(a, "status", "01VISOFF000000000000000000", "e1", "read");      /* hr: nothing */
    ev_add(b, "status", "01VISCOUNT0000000000000000", "e1", "read");      /* counts only */
    ev_add(c, "status", "01VISPERS00000000000000000", "e1", "read");      /* person */
    ev_add(d, "status", "01VISOFF000000000000000000", "e1", "delivered"); /* not read info */
    snprintf(want, sizeof(want), "id: %s\nevent: status\n", d);
    CHECK(sse_wait(&s, want, 5000));
    CHECK(strstr(S(s.b.data), a) == NULL);
    snprintf(want, sizeof(want), "id: %s\nevent: counts\n", b);
    CHECK(strstr(S(s.b.data), want) != NULL);
    snprintf(want, sizeof(want), "id: %s\nevent: status\n", c);
    CHECK(strstr(S(s.b.data), want) != NULL);
    /* the counts event names nobody; the hr item's aggregates have no read figure
     */
    const char *ce = strstr(S(s.b.data), "event: counts");
    const char *ce_end = ce != NULL ? strstr(ce, "\n\n") : NULL;
    CHECK(ce != NULL && ce_end != NULL);
    if (ce != NULL && ce_end != NULL) {
        char *one = strndup(ce, (size_t)(ce_end - ce));
        CHECK(strstr(one, "employee_id") == NULL);
        CHECK(strstr(one, "\"state\"") == NULL);
        free(one);
    }
    const char *off = strstr(S(s.b.data), want); /* the person event, then the hr delivered */
    CHECK(off != NULL && strstr(off, "\"read\":") != NULL);
    snprintf(want, sizeof(want), "id: %s\nevent: status\n", d);
    const char *hr = strstr(S(s.b.data), want);
    CHECK(hr != NULL && strstr(hr, "\"read\":") == NULL);
    CHECK_EQ(count(&s.b, "\nevent: "), 3);
    sse_close(&s);
}

static void test_visibility_config(void)
{
    struct va_readvis_cfg c;
    struct lst_buf why;
    lst_buf_init(&why);
    CHECK_EQ(va_readvis_parse(&c, " default = counts , hr=off,personal=person ", &why), LST_OK);
    CHECK_EQ(va_readvis_of(&c, "hr"), VA_READ_OFF);
    CHECK_EQ(va_readvis_of(&c, "personal"), VA_READ_PERSON);
    CHECK_EQ(va_readvis_of(&c, "dispo"), VA_READ_COUNTS);
    CHECK_EQ(va_readvis_of(&c, NULL), VA_READ_COUNTS);
    va_readvis_cleanup(&c);
    CHECK_EQ(va_readvis_parse(&c, NULL, &why), LST_OK);
    CHECK_EQ(va_readvis_of(&c, "x"), VA_READ_PERSON);
    va_readvis_cleanup(&c);
    const char *bad[] = {"hr",
                         "hr=hidden",
                         "hr=off,hr=person",
                         "HR=off",
                         "hr=off,,x=off",
                         "hr=off,",
                         "default=off,default=off",
                         "=off"};
    for (size_t i = 0; i < LST_ARRAY_LEN(bad); i++) {
        lst_buf_reset(&why);
        CHECK_EQ(va_readvis_parse(&c, bad[i], &why), LST_ERR_CONFIG);
        CHECK(why.len > 0 && strstr(why.data, "LST_VIEW_READ_VISIBILITY") != NULL);
    }
    lst_buf_cleanup(&why);
}

/* GDPR: the ledger's t=erased entry goes to every stream (whatever its filter) as event
 * "erased"; a status entry of an employee erased by the time the batch is relayed (it
 * raced with the erasure) does not go out. */
static void test_stream_erased(void)
{
    struct sse s, t;
    char a[64], b[64], want[160];
    wait_slots();
    seed_message("01STREAMER0000000000000000", 3000, "dispo", "Nord");
    REQUIRE(sse_open(&H, &s, "/api/stream?department=Nord", NULL));
    REQUIRE(sse_open(&H, &t, "/api/stream?department=Sued", NULL));
    REQUIRE(sse_wait(&s, ": connected\n\n", 3000) && sse_wait(&t, ": connected\n\n", 3000));
    rcmd(&H, "SADD lst:lg:erased e9");
    ev_add(a, "status", "01STREAMER0000000000000000", "e9", "read"); /* raced: not sent */
    redisReply *r = redisCommand(H.rc, "XADD lst:lg:ev * t erased eid e9");
    snprintf(b, sizeof(b), "%s", r != NULL && r->type == REDIS_REPLY_STRING ? r->str : "?");
    if (r != NULL)
        freeReplyObject(r);
    snprintf(want, sizeof(want),
             "id: %s\nevent: erased\ndata: {\"type\":\"erased\",\"employee_id\":\"e9\"}\n\n", b);
    CHECK(sse_wait(&s, want, 5000));
    CHECK(sse_wait(&t, want, 5000));
    CHECK(strstr(S(s.b.data), a) == NULL);
    CHECK_EQ(count(&s.b, "\nevent: "), 1);
    sse_close(&s);
    sse_close(&t);
    rcmd(&H, "SREM lst:lg:erased e9");
}

/* employee_name: an incoming item's event names its sender as the directory holds her now
 * (a rename shows on the next event); erased (on the erased list, even beside a leftover
 * directory entry) she is not named. */
#define IN_E1 "AAAAAAA1:00000000000000c1"
#define IN_E2 "AAAAAAA2:00000000000000c2"

static void seed_incoming(const char *id, long long at, const char *eid)
{
    rcmd(&H, "HSET lst:lg:m:%s dir in id %s at %lld cat inbox kind text text hallo eid %s dep Nord",
         id, id, at, eid);
    seed_ix(&H, id, at, "inbox", "all");
    seed_ix(&H, id, at, "inbox", "dir:in");
}

static void test_stream_names(void)
{
    struct sse s;
    char a[64], b[64], c[64], want[160];
    wait_slots();
    seed_incoming(IN_E1, 4000, "e1");
    seed_incoming(IN_E2, 4001, "e2");
    REQUIRE(sse_open(&H, &s, "/api/stream?direction=in", NULL));
    REQUIRE(sse_wait(&s, ": connected\n\n", 3000));
    ev_add(a, "message", IN_E1, NULL, NULL);
    ev_add(b, "message", IN_E2, NULL, NULL);
    snprintf(want, sizeof(want), "id: %s\nevent: message\n", b);
    CHECK(sse_wait(&s, want, 5000));
    CHECK_EQ(count(&s.b, "\"employee_name\":\"Eva\"}}"), 1); /* in the item object */
    CHECK_EQ(count(&s.b, "\"employee_name\":\"Emil\""), 1);
    rcmd(&H, "HSET lst:lg:emp:e1 name %s", "Eva Neu");
    rcmd(&H, "SADD lst:lg:erased e2"); /* her entry left: the erased list wins */
    ev_add(a, "annotation", IN_E1, NULL, NULL);
    ev_add(c, "annotation", IN_E2, NULL, NULL);
    snprintf(want, sizeof(want), "id: %s\nevent: annotation\n", c);
    CHECK(sse_wait(&s, want, 5000));
    CHECK_EQ(count(&s.b, "\"employee_name\":\"Eva Neu\""), 1);
    CHECK_EQ(count(&s.b, "\"employee_name\":\"Emil\""), 1); /* the first event's only */
    CHECK_EQ(count(&s.b, "employee_name"), 3);
    sse_close(&s);
    rcmd(&H, "SREM lst:lg:erased e2");
    rcmd(&H, "HSET lst:lg:emp:e1 name Eva");
    rcmd(&H, "DEL lst:lg:m:" IN_E1 " lst:lg:m:" IN_E2);
}

static void test_all(void)
{
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (!harness_start(&H, NULL, NULL, "LST_VIEW_READ_VISIBILITY",
                       "default=person,personal=counts,hr=off", "LST_VIEW_MAX_STREAMS", "2",
                       "LST_VIEW_STREAM_HEARTBEAT_MS", "300", "LST_VIEW_STREAM_BLOCK_MS", "200",
                       NULL)) {
        fprintf(stderr, "harness did not start\n");
        exit(1);
    }
    seed_employee(&H, "e1", "Eva", "Nord", "V1", "[]", NULL, true, "AAAAAAA1");
    seed_employee(&H, "e2", "Emil", "Nord", "V2", "[]", NULL, true, "AAAAAAA2");
    test_visibility_config();
    test_stream_auth_and_errors();
    test_stream_filter_resume_reset();
    test_stream_heartbeat_and_limit();
    test_visibility_detail();
    test_visibility_history_timeline();
    test_visibility_stream();
    test_stream_view_depot(); /* after the visibility counts: its items go to e1 and e2 */
    test_stream_erased();
    test_stream_names();
    struct sse s;
    wait_slots();
    REQUIRE(sse_open(&H, &s, "/api/stream", NULL));
    CHECK(sse_wait(&s, ": connected\n\n", 3000));
    /* an open stream does not hold the HTTP server's shutdown up (drain is 5 s) */
    int64_t t0 = lst_mono_ms();
    lst_http_server_destroy(H.api.svc->http);
    H.api.svc->http = NULL;
    CHECK(lst_mono_ms() - t0 < 1500);
    CHECK_EQ(atomic_load(&H.api.streams), 0);
    CHECK(sse_wait(&s, "this never comes", 2000) == false); /* closed by the server */
    harness_stop(&H);
    sse_close(&s);
    curl_global_cleanup();
}

LST_TEST_MAIN(T(test_all))
