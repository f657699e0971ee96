/* System tier of the view-api: the producing routes against a real Kafka (LST_KAFKA_BROKERS,
 * the test stack's) on topics of their own (a unique prefix), a redis-server of the test's
 * own. The test plays the ledger's part for the directory: it applies the lst.employees
 * records it reads back into the projection layout, so the second import and the sends see
 * what the ledger would show.
 *
 *   - the ERP import of demo/erp-export.csv produces 250 lst.employees records; a repeat
 *     changes nothing; a full sync deactivates everyone missing
 *   - a send to a depot plus three named drivers produces one lst.message with the audience
 *     and one lst.outbound per recipient; the Idempotency-Key replay returns the first result
 *     and produces nothing; the key's stored copy names nobody, and a replay after a
 *     recipient's erasure no longer names them; the same key with another body is refused
 *   - an image upload lands in the blob store and its ref travels in the records
 *   - a saved view with a depot, a tag and handled=false produces the lst.views record
 *     holding them; applied as the ledger does (the filter JSON of the record's parameters),
 *     GET /api/views/{id} shows them
 *   - an annotation (handled and a new category) produces one lst.annotations record each,
 *     keyed by the item, with the dispatcher as user; a missing item is 404
 *   - a body member the route does not know (a misspelt "employees", "handeld", "hiden") is
 *     refused with 400 naming it, and nothing is produced */
#include <time.h>

#include "view_api_common.h"

static struct harness H;
/* The idempotency keys' own Redis (LST_VIEW_STATE_REDIS_*), as in the deployment where the
 * projections' Redis runs without AOF (docs/operations.md). */
static struct redis_fixture STATE;
static char state_port[16];
static char prefix[64];
static struct lst_kafka_consumer *consumer;
static char topic_emp[128], topic_msg[128], topic_out[128], topic_views[128], topic_ann[128];
static char topic_aud[128];

struct seen {
    size_t employees, messages, outbound, views, annotations;
    struct lst_annotation ann[4]; /* the first lst.annotations records */
    struct lst_view view;         /* the last lst.views record */
    struct lst_strv emp_keys, out_keys;
    char last_message[8192];
    struct lst_strv out_values;
    size_t audits;
    struct lst_strv audit_lines; /* "<action> <employee> <detail>" of each lst.audit record */
};

static struct seen SEEN;

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    struct lst_buf b;
    char chunk[8192];
    size_t n;
    lst_buf_init(&b);
    if (f == NULL)
        return NULL;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        lst_buf_append(&b, chunk, n);
    fclose(f);
    *len = b.len;
    return lst_buf_steal(&b);
}

/* The ledger's employee upsert, reduced to what the view-api reads. */
static void apply_employee(const struct lst_employee *e)
{
    struct lst_buf tags;
    lst_buf_init(&tags);
    va_json_strv_out(&tags, &e->tags);
    rcmd(&H, "SREM lst:lg:erased %s", e->employee_id); /* a new record re-creates */
    rcmd(&H, "DEL lst:lg:emp:%s", e->employee_id);
    rcmd(&H, "HSET lst:lg:emp:%s id %s name %s active %s tags %s updated_at %lld source %s",
         e->employee_id, e->employee_id, e->name, e->active ? "1" : "0", tags.data,
         (long long)e->updated_at, e->source);
    if (e->department != NULL) {
        rcmd(&H, "HSET lst:lg:emp:%s dep %s", e->employee_id, e->department);
        rcmd(&H, "SADD lst:lg:emp:dep:%s %s", e->department, e->employee_id);
    }
    if (e->vehicle != NULL) {
        rcmd(&H, "HSET lst:lg:emp:%s veh %s", e->employee_id, e->vehicle);
        rcmd(&H, "SADD lst:lg:emp:veh:%s %s", e->vehicle, e->employee_id);
    }
    if (e->threema_id != NULL)
        rcmd(&H, "HSET lst:lg:emp:%s tid %s", e->employee_id, e->threema_id);
    if (e->phone != NULL)
        rcmd(&H, "HSET lst:lg:emp:%s phone %s", e->employee_id, e->phone);
    if (e->email != NULL)
        rcmd(&H, "HSET lst:lg:emp:%s email %s", e->employee_id, e->email);
    for (size_t i = 0; i < e->tags.len; i++)
        rcmd(&H, "SADD lst:lg:emp:tag:%s %s", e->tags.items[i], e->employee_id);
    rcmd(&H, "ZADD lst:lg:emps 0 %s", e->employee_id);
    lst_buf_cleanup(&tags);
}

static void take(const struct lst_kafka_record *rec)
{
    char key[256];
    size_t kl = rec->keylen < sizeof(key) - 1 ? rec->keylen : sizeof(key) - 1;
    memcpy(key, rec->key != NULL ? rec->key : "", kl);
    key[kl] = '\0';
    if (strcmp(rec->topic, topic_emp) == 0) {
        struct lst_employee e;
        SEEN.employees++;
        lst_strv_push(&SEEN.emp_keys, key);
        CHECK(lst_employee_decode(rec->value, rec->len, &e, NULL) == LST_OK);
        CHECK_STREQ(e.employee_id, key);
        apply_employee(&e);
        lst_employee_cleanup(&e);
    } else if (strcmp(rec->topic, topic_msg) == 0) {
        SEEN.messages++;
        snprintf(SEEN.last_message, sizeof(SEEN.last_message), "%.*s", (int)rec->len,
                 (const char *)rec->value);
    } else if (strcmp(rec->topic, topic_views) == 0) {
        SEEN.views++;
        lst_view_cleanup(&SEEN.view);
        CHECK(lst_view_decode(rec->value, rec->len, &SEEN.view, NULL) == LST_OK);
        CHECK_STREQ(S(SEEN.view.view_id), key);
    } else if (strcmp(rec->topic, topic_ann) == 0) {
        if (SEEN.annotations < LST_ARRAY_LEN(SEEN.ann)) {
            struct lst_annotation *a = &SEEN.ann[SEEN.annotations];
            CHECK(lst_annotation_decode(rec->value, rec->len, a, NULL) == LST_OK);
            CHECK_STREQ(S(a->item_id), key);
        }
        SEEN.annotations++;
    } else if (strcmp(rec->topic, topic_aud) == 0) {
        struct lst_audit a;
        char line[256];
        CHECK(lst_audit_decode(rec->value, rec->len, &a, NULL) == LST_OK);
        static const char *const actions[] = {"view", "export", "erase", "readmit"};
        snprintf(line, sizeof(line), "%s %s %s",
                 a.action < LST_ARRAY_LEN(actions) ? actions[a.action] : "other", S(a.employee_id),
                 a.detail != NULL ? a.detail : "-");
        lst_strv_push(&SEEN.audit_lines, line);
        SEEN.audits++;
        lst_audit_cleanup(&a);
    } else if (strcmp(rec->topic, topic_out) == 0) {
        char *v = malloc(rec->len + 1);
        memcpy(v, rec->value, rec->len);
        v[rec->len] = '\0';
        SEEN.outbound++;
        lst_strv_push(&SEEN.out_keys, key);
        lst_strv_push(&SEEN.out_values, v);
        free(v);
    }
}

/* Polls until *counter reaches want or ms pass; returns the counter. */
static size_t consume_until(const size_t *counter, size_t want, int64_t ms)
{
    int64_t deadline = lst_mono_ms() + ms;
    while (*counter < want && lst_mono_ms() < deadline) {
        struct lst_kafka_record rec;
        if (lst_kafka_consumer_poll(consumer, 200, &rec) == LST_OK) {
            take(&rec);
            lst_kafka_record_release(&rec);
        }
    }
    return *counter;
}

static bool setup(void)
{
    const char *brokers = getenv("LST_KAFKA_BROKERS");
    struct lst_kafka_config kc = {.brokers = brokers};
    if (brokers == NULL) {
        fprintf(stderr, "LST_KAFKA_BROKERS is not set (scripts/test.sh starts a stack)\n");
        return false;
    }
    snprintf(prefix, sizeof(prefix), "vatest%ld.%lld.", (long)getpid(), (long long)time(NULL));
    snprintf(topic_emp, sizeof(topic_emp), "%slst.employees", prefix);
    snprintf(topic_msg, sizeof(topic_msg), "%slst.message", prefix);
    snprintf(topic_out, sizeof(topic_out), "%slst.outbound", prefix);
    snprintf(topic_views, sizeof(topic_views), "%slst.views", prefix);
    snprintf(topic_ann, sizeof(topic_ann), "%slst.annotations", prefix);
    snprintf(topic_aud, sizeof(topic_aud), "%slst.audit", prefix);
    if (lst_kafka_create_topic(&kc, topic_emp, 3, 1, 30000) != LST_OK ||
        lst_kafka_create_topic(&kc, topic_msg, 6, 1, 30000) != LST_OK ||
        lst_kafka_create_topic(&kc, topic_out, 12, 1, 30000) != LST_OK ||
        lst_kafka_create_topic(&kc, topic_views, 1, 1, 30000) != LST_OK ||
        lst_kafka_create_topic(&kc, topic_ann, 3, 1, 30000) != LST_OK ||
        lst_kafka_create_topic(&kc, topic_aud, 1, 1, 30000) != LST_OK)
        return false;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (!redis_fixture_start(&STATE, NULL))
        return false;
    snprintf(state_port, sizeof(state_port), "%d", STATE.port);
    if (!harness_start(&H, brokers, prefix, "LST_VIEW_STATE_REDIS_HOST", "127.0.0.1",
                       "LST_VIEW_STATE_REDIS_PORT", state_port, NULL))
        return false;
    const char *topics[] = {topic_emp, topic_msg, topic_out, topic_views, topic_ann, topic_aud};
    char group[96];
    snprintf(group, sizeof(group), "%sreader", prefix);
    struct lst_kafka_consumer_opts o = {.group_id = group, .topics = topics, .ntopics = 6};
    return lst_kafka_consumer_create(&kc, &o, &consumer) == LST_OK;
}

static void teardown(void)
{
    lst_kafka_consumer_destroy(consumer);
    harness_stop(&H);
    redis_fixture_stop(&STATE);
    lst_strv_cleanup(&SEEN.emp_keys);
    lst_strv_cleanup(&SEEN.out_keys);
    lst_strv_cleanup(&SEEN.out_values);
    lst_strv_cleanup(&SEEN.audit_lines);
    lst_view_cleanup(&SEEN.view);
    for (size_t i = 0; i < LST_ARRAY_LEN(SEEN.ann); i++)
        lst_annotation_cleanup(&SEEN.ann[i]);
    curl_global_cleanup();
}

/* demo/erp-export.csv, the ERP export of the 250 demo drivers (NULL when unreadable). */
static char *demo_csv(size_t *len)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/demo/erp-export.csv", getenv("LST_SOURCE_DIR"));
    return read_file(path, len);
}

static void test_import_demo(void)
{
    struct http_result r;
    size_t len = 0;
    char *csv = demo_csv(&len);
    REQUIRE(csv != NULL);
    CHECK_EQ(http(&H, "POST", "/api/admin/erp-import", TOKEN_ADMIN, "text/csv", csv, len, NULL, &r),
             200);
    CHECK_STREQ(jstr(r.json, "mode"), "upsert");
    CHECK_EQ(jint(r.json, "rows"), 250);
    CHECK_EQ(jint(r.json, "created.count"), 250);
    CHECK_EQ(jint(r.json, "produced"), 250);
    CHECK_EQ(jint(r.json, "unchanged.count"), 0);
    http_result_cleanup(&r);
    CHECK_EQ(consume_until(&SEEN.employees, 250, 60000), 250);
    /* one record per employee, keyed by the personnel number */
    struct lst_strv keys = {0};
    for (size_t i = 0; i < SEEN.emp_keys.len; i++) {
        if (!lst_strv_has(&keys, SEEN.emp_keys.items[i]))
            lst_strv_push(&keys, SEEN.emp_keys.items[i]);
    }
    CHECK_EQ(keys.len, 250);
    lst_strv_cleanup(&keys);
    /* what the directory now says about the first row of the export */
    CHECK_EQ(get(&H, "/api/employees/10006", TOKEN_DISPATCHER, &r), 200);
    CHECK_STREQ(jstr(r.json, "name"), "Petra Schulze");
    CHECK_STREQ(jstr(r.json, "department"), "Fernverkehr");
    CHECK_STREQ(jstr(r.json, "vehicle"), "H-LS 6527");
    CHECK_STREQ(jstr(r.json, "phone"), "+4915105866844");
    CHECK_STREQ(jstr(r.json, "tags.0"), "fernverkehr");
    CHECK_STREQ(jstr(r.json, "tags.1"), "depot:Hannover-Lahe");
    CHECK_STREQ(jstr(r.json, "tags.2"), "shift:Spätschicht");
    http_result_cleanup(&r);
    /* the same export again: nothing changed, nothing produced */
    CHECK_EQ(http(&H, "POST", "/api/admin/erp-import", TOKEN_ADMIN, "text/csv", csv, len, NULL, &r),
             200);
    CHECK_EQ(jint(r.json, "unchanged.count"), 250);
    CHECK_EQ(jint(r.json, "produced"), 0);
    http_result_cleanup(&r);
    free(csv);
}

/* GDPR: a routine import does not bring an erased employee back (the ERP keeps former
 * employees); ?readmit= does, with an audit entry. */
static void test_erased_stays_erased(void)
{
    struct http_result r;
    size_t len = 0;
    char *csv = demo_csv(&len);
    REQUIRE(csv != NULL);
    /* the ledger's part of an erasure that the import looks at */
    rcmd(&H, "SADD lst:lg:erased 10006");
    rcmd(&H, "DEL lst:lg:emp:10006");
    rcmd(&H, "ZREM lst:lg:emps 10006");
    size_t emps = SEEN.employees, audits = SEEN.audits;
    CHECK_EQ(http(&H, "POST", "/api/admin/erp-import?mode=full", TOKEN_ADMIN, "text/csv", csv, len,
                  NULL, &r),
             200);
    CHECK_EQ(jint(r.json, "erased.count"), 1);
    CHECK_STREQ(jstr(r.json, "erased.ids.0"), "10006");
    CHECK_EQ(jint(r.json, "created.count"), 0);
    CHECK_EQ(jint(r.json, "readmitted.count"), 0);
    CHECK_EQ(jint(r.json, "unchanged.count"), 249);
    CHECK_EQ(jint(r.json, "produced"), 0);
    http_result_cleanup(&r);
    /* force=true produces every row, but still not hers */
    CHECK_EQ(http(&H, "POST", "/api/admin/erp-import?force=true", TOKEN_ADMIN, "text/csv", csv, len,
                  NULL, &r),
             200);
    CHECK_EQ(jint(r.json, "produced"), 249);
    http_result_cleanup(&r);
    CHECK_EQ(consume_until(&SEEN.employees, emps + 249, 30000), emps + 249);
    CHECK_EQ(consume_until(&SEEN.employees, emps + 250, 2000), emps + 249);
    CHECK(strcmp(SEEN.emp_keys.items[SEEN.emp_keys.len - 1], "10006") != 0);
    /* a readmit ID not in the import, or not an ID: refused, nothing produced */
    CHECK_EQ(http(&H, "POST", "/api/admin/erp-import?readmit=10006,99999", TOKEN_ADMIN, "text/csv",
                  csv, len, NULL, &r),
             400);
    CHECK(strstr(S(jstr(r.json, "detail")), "99999 is not in the import") != NULL);
    http_result_cleanup(&r);
    CHECK_EQ(http(&H, "POST", "/api/admin/erp-import?readmit=-x", TOKEN_ADMIN, "text/csv", csv, len,
                  NULL, &r),
             400);
    http_result_cleanup(&r);
    /* named on purpose: created again, and audited */
    CHECK_EQ(http(&H, "POST", "/api/admin/erp-import?readmit=10006", TOKEN_ADMIN, "text/csv", csv,
                  len, NULL, &r),
             200);
    CHECK_EQ(jint(r.json, "created.count"), 1);
    CHECK_STREQ(jstr(r.json, "created.ids.0"), "10006");
    CHECK_STREQ(jstr(r.json, "readmitted.ids.0"), "10006");
    CHECK_EQ(jint(r.json, "erased.count"), 0);
    CHECK_EQ(jint(r.json, "produced"), 1);
    http_result_cleanup(&r);
    CHECK_EQ(consume_until(&SEEN.employees, emps + 250, 30000), emps + 250);
    CHECK_STREQ(SEEN.emp_keys.items[SEEN.emp_keys.len - 1], "10006");
    CHECK_EQ(consume_until(&SEEN.audits, audits + 1, 30000), audits + 1);
    CHECK_STREQ(SEEN.audit_lines.items[SEEN.audit_lines.len - 1], "readmit 10006 erp-import");
    CHECK_EQ(get(&H, "/api/employees/10006", TOKEN_DISPATCHER, &r), 200);
    CHECK_STREQ(jstr(r.json, "name"), "Petra Schulze");
    http_result_cleanup(&r);
    free(csv);
}

#define SEND_BODY                                                                                  \
    "{\"category\":\"dispo\",\"text\":\"Bitte Lieferschein pr\\u00fcfen\","                        \
    "\"employee_ids\":[\"10006\",\"10011\",\"10018\"],"                                            \
    "\"selector\":{\"tags\":[\"depot:Kiel-Wellsee\"]}}"

/* Keys matching pattern on the server at port (-1: no answer). */
static long long count_keys(int port, const char *pattern)
{
    struct timeval tv = {2, 0};
    long long n = -1;
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
    redisReply *r = c != NULL && c->err == 0 ? redisCommand(c, "KEYS %s", pattern) : NULL;
    if (r != NULL && r->type == REDIS_REPLY_ARRAY)
        n = (long long)r->elements;
    if (r != NULL)
        freeReplyObject(r);
    if (c != NULL)
        redisFree(c);
    return n;
}

/* The value of the idempotency key for "anna" and key on the state server (NULL: none). */
static char *idem_entry(const char *key)
{
    struct timeval tv = {2, 0};
    char *v = NULL;
    redisContext *c = redisConnectWithTimeout("127.0.0.1", STATE.port, tv);
    redisReply *r =
        c != NULL && c->err == 0 ? redisCommand(c, "GET lst:va:idem:anna:%s", key) : NULL;
    if (r != NULL && r->type == REDIS_REPLY_STRING)
        v = strdup(r->str);
    if (r != NULL)
        freeReplyObject(r);
    if (c != NULL)
        redisFree(c);
    return v;
}

/* The stored answer holds no names (an erasure would leave them behind for a day); a replay
 * names the recipients from the directory, so an erased one is no longer named in it. */
static void check_replay_names(const struct http_result *first, const char *key)
{
    char *stored = idem_entry(key);
    REQUIRE(stored != NULL);
    CHECK(strstr(stored, "\"employee_id\":\"10006\"") != NULL);
    CHECK(strstr(stored, "\"name\"") == NULL);
    CHECK(strstr(stored, "Petra Schulze") == NULL);
    free(stored);
    const char *erased = jstr(first->json, "recipients.0.employee_id");
    REQUIRE(erased != NULL && jstr(first->json, "recipients.0.name") != NULL);
    char *eid = strdup(erased);
    rcmd(&H, "SADD lst:lg:erased %s", eid); /* what the ledger does with a tombstone */
    struct http_result again;
    const char *hdr[] = {"Idempotency-Key: day-1-send-1", NULL};
    CHECK_EQ(post_json(&H, "/api/messages", TOKEN_DISPATCHER, SEND_BODY, hdr, &again), 202);
    CHECK_STREQ(jstr(again.json, "recipients.0.employee_id"), eid);
    CHECK(jstr(again.json, "recipients.0.name") == NULL);
    CHECK_STREQ(jstr(again.json, "recipients.1.name"), jstr(first->json, "recipients.1.name"));
    CHECK_EQ(jint(again.json, "recipient_count"), jint(first->json, "recipient_count"));
    rcmd(&H, "SREM lst:lg:erased %s", eid);
    free(eid);
    http_result_cleanup(&again);
}

static void test_send_and_replay(void)
{
    struct http_result r, again;
    const char *key[] = {"Idempotency-Key: day-1-send-1", NULL};
    CHECK_EQ(post_json(&H, "/api/messages", TOKEN_DISPATCHER, SEND_BODY, key, &r), 202);
    const char *mid = jstr(r.json, "message_id");
    REQUIRE(mid != NULL && strlen(mid) == 26);
    int64_t n = jint(r.json, "recipient_count");
    CHECK(n >= 4);
    CHECK_EQ(jlen(r.json, "recipients"), (size_t)n);
    CHECK(has_header(&r, "Location: /api/messages/"));
    for (size_t i = 0; i < jlen(r.json, "skipped"); i++) {
        char p[64];
        snprintf(p, sizeof(p), "skipped.%zu.reason", i);
        const char *why = jstr(r.json, p);
        CHECK(why != NULL && (strcmp(why, "inactive") == 0 || strcmp(why, "no_contact") == 0));
    }
    /* Kafka holds one lst.message and one lst.outbound per recipient */
    CHECK_EQ(consume_until(&SEEN.messages, 1, 30000), 1);
    CHECK_EQ(consume_until(&SEEN.outbound, (size_t)n, 30000), (size_t)n);
    struct lst_message m;
    REQUIRE(lst_message_decode(SEEN.last_message, strlen(SEEN.last_message), &m, NULL) == LST_OK);
    CHECK_STREQ(m.message_id, mid);
    CHECK_STREQ(m.dispatcher, "anna");
    CHECK_STREQ(m.dispatcher_name, "Anna Schmidt"); /* the token file's display name */
    CHECK_STREQ(m.department, "Dispo-Nord");
    CHECK_STREQ(m.category, "dispo");
    CHECK_STREQ(m.idempotency_key, "day-1-send-1");
    CHECK_STREQ(m.content.text, "Bitte Lieferschein prüfen");
    CHECK_EQ(m.audience.recipients.len, (size_t)n);
    CHECK_EQ(m.audience.selector.employee_ids.len, 3);
    CHECK_STREQ(m.audience.selector.tags.items[0], "depot:Kiel-Wellsee");
    for (size_t i = 0; i < m.audience.recipients.len; i++) {
        char p[64];
        snprintf(p, sizeof(p), "recipients.%zu.employee_id", i);
        CHECK_STREQ(m.audience.recipients.items[i], jstr(r.json, p));
        CHECK(lst_strv_has(&SEEN.out_keys, m.audience.recipients.items[i]));
    }
    CHECK(lst_strv_has(&SEEN.out_keys, "10006") && lst_strv_has(&SEEN.out_keys, "10018"));
    for (size_t i = 0; i < SEEN.out_values.len; i++) {
        struct lst_outbound o;
        char rid[128];
        REQUIRE(lst_outbound_decode(SEEN.out_values.items[i], strlen(SEEN.out_values.items[i]), &o,
                                    NULL) == LST_OK);
        snprintf(rid, sizeof(rid), "%s:%s", mid, SEEN.out_keys.items[i]);
        CHECK_STREQ(o.request_id, rid);
        CHECK_STREQ(o.employee_id, SEEN.out_keys.items[i]);
        CHECK_STREQ(o.content.text, "Bitte Lieferschein prüfen");
        CHECK(o.to.threema_id != NULL || o.to.phone != NULL || o.to.email != NULL);
        lst_outbound_cleanup(&o);
    }
    lst_message_cleanup(&m);
    /* the key went to the state Redis, none to the projections' */
    CHECK_EQ(count_keys(STATE.port, "lst:va:*"), 1);
    CHECK_EQ(count_keys(H.redis.port, "lst:va:*"), 0);
    /* the double click: the first result again, nothing new in Kafka */
    CHECK_EQ(post_json(&H, "/api/messages", TOKEN_DISPATCHER, SEND_BODY, key, &again), 202);
    CHECK_STREQ(again.body.data, r.body.data);
    CHECK(has_header(&again, "Idempotent-Replayed: true"));
    char loc[96];
    snprintf(loc, sizeof(loc), "Location: /api/messages/%s", mid);
    CHECK(has_header(&again, loc)); /* the first answer's headers too, not only its body */
    http_result_cleanup(&again);
    check_replay_names(&r, "day-1-send-1");
    size_t before = SEEN.outbound;
    CHECK_EQ(consume_until(&SEEN.messages, 2, 3000), 1);
    CHECK_EQ(SEEN.outbound, before);
    /* the same key for another request */
    post_json(&H, "/api/messages", TOKEN_DISPATCHER,
              "{\"category\":\"dispo\",\"text\":\"other\",\"employee_ids\":[\"10006\"]}", key,
              &again);
    CHECK_EQ(again.status, 422);
    CHECK_STREQ(jstr(again.json, "type"), "urn:leitstand:problem:idempotency-key-reused");
    http_result_cleanup(&again);
    http_result_cleanup(&r);
}

static void test_image_upload(void)
{
    struct http_result r;
    /* a 1x1 PNG */
    const char *body =
        "{\"category\":\"fotos\",\"attachment\":{\"mime\":\"image/png\",\"filename\":\"p.png\","
        "\"caption\":\"Rampe 3\",\"data_base64\":\"iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAA"
        "DUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==\"},\"employee_ids\":[\"10006\"]}";
    size_t before = SEEN.outbound;
    CHECK_EQ(post_json(&H, "/api/messages", TOKEN_DISPATCHER, body, NULL, &r), 202);
    CHECK_STREQ(jstr(r.json, "kind"), "image");
    const char *blob = jstr(r.json, "blob");
    REQUIRE(blob != NULL);
    CHECK(lst_blobstore_exists(H.api.blobs, blob));
    CHECK_EQ(consume_until(&SEEN.outbound, before + 1, 30000), before + 1);
    struct lst_outbound o;
    const char *v = SEEN.out_values.items[SEEN.out_values.len - 1];
    REQUIRE(lst_outbound_decode(v, strlen(v), &o, NULL) == LST_OK);
    CHECK(o.content.kind == LST_CONTENT_IMAGE);
    CHECK_STREQ(o.content.blob, blob);
    CHECK_STREQ(o.content.caption, "Rampe 3");
    CHECK_EQ(o.content.size, 70);
    lst_outbound_cleanup(&o);
    http_result_cleanup(&r);
}

static void test_full_sync(void)
{
    struct http_result r, list;
    size_t active = 0;
    /* how many are active now (the directory the test applied) */
    CHECK_EQ(get(&H, "/api/employees?active=true&limit=200", TOKEN_ADMIN, &list), 200);
    active += jlen(list.json, "items");
    const char *next = jstr(list.json, "next_cursor");
    if (next != NULL) {
        char path[256];
        struct http_result more;
        snprintf(path, sizeof(path), "/api/employees?active=true&limit=200&cursor=%s", next);
        CHECK_EQ(get(&H, path, TOKEN_ADMIN, &more), 200);
        active += jlen(more.json, "items");
        http_result_cleanup(&more);
    }
    http_result_cleanup(&list);
    CHECK(active > 200 && active < 250);
    size_t before = SEEN.employees;
    post_json(&H, "/api/admin/erp-import?mode=full", TOKEN_ADMIN,
              "{\"employees\":[{\"employee_id\":\"10006\",\"name\":\"Petra Schulze\","
              "\"department\":\"Fernverkehr\",\"phone\":\"+4915105866844\"},"
              "{\"employee_id\":\"99999\",\"name\":\"Neu Fahrer\",\"tags\":[\"neu\"]}]}",
              NULL, &r);
    CHECK_EQ(r.status, 200);
    CHECK_STREQ(jstr(r.json, "mode"), "full");
    CHECK_EQ(jint(r.json, "created.count"), 1);
    CHECK_EQ(jint(r.json, "updated.count"), 1);
    CHECK_EQ(jint(r.json, "deactivated.count"), (int64_t)active - 1);
    CHECK_EQ(jint(r.json, "produced"), (int64_t)active + 1);
    CHECK_EQ(consume_until(&SEEN.employees, before + active + 1, 60000), before + active + 1);
    http_result_cleanup(&r);
    CHECK_EQ(get(&H, "/api/employees?active=true", TOKEN_ADMIN, &r), 200);
    CHECK_EQ(jlen(r.json, "items"), 2);
    http_result_cleanup(&r);
}

/* The ledger's view apply (services/ledger/apply_annotation.c, view.lua), reduced to what
 * GET /api/views/{id} reads: the filter JSON of the parameters the record sets. */
static void apply_view(const struct lst_view *v)
{
    struct lst_buf filter;
    lst_buf_init(&filter);
    lst_buf_puts(&filter, "{");
    for (size_t i = 0; i < LST_VIEW_FILTER_PARAMS; i++) {
        const char *name = lst_view_filter_name(i), *val = lst_view_filter_get(&v->filter, i);
        if (val == NULL)
            continue;
        if (filter.len > 1)
            lst_buf_puts(&filter, ",");
        lst_buf_json_str(&filter, name, strlen(name));
        lst_buf_puts(&filter, ":");
        lst_buf_json_str(&filter, val, strlen(val));
    }
    lst_buf_puts(&filter, "}");
    rcmd(&H, "HSET lst:lg:view:%s id %s owner %s at %lld name %s shared 0 filter %s hidden []",
         v->view_id, v->view_id, v->owner, (long long)v->at, v->name, filter.data);
    rcmd(&H, "SADD lst:lg:views:u:%s %s", v->owner, v->view_id);
    lst_buf_cleanup(&filter);
}

static void test_saved_view(void)
{
    struct http_result r;
    char path[96];
    long st = post_json(&H, "/api/views", TOKEN_DISPATCHER,
                        "{\"name\":\"Kiel früh\",\"filter\":{\"depot\":\"Kiel-Wellsee\","
                        "\"tag\":\"shift:Frühschicht\",\"direction\":\"in\","
                        "\"handled\":\"false\"},\"hidden\":[\"dispo\"]}",
                        NULL, &r);
    CHECK_EQ(st, 202);
    REQUIRE(jstr(r.json, "id") != NULL);
    snprintf(path, sizeof(path), "/api/views/%s", jstr(r.json, "id"));
    http_result_cleanup(&r);
    CHECK_EQ(consume_until(&SEEN.views, 1, 30000), 1);
    REQUIRE(SEEN.views == 1);
    CHECK_STREQ(S(SEEN.view.filter.depot), "Kiel-Wellsee");
    CHECK_STREQ(S(SEEN.view.filter.tag), "shift:Frühschicht");
    CHECK_STREQ(S(SEEN.view.filter.direction), "in");
    CHECK_STREQ(S(SEEN.view.filter.handled), "false");
    CHECK(SEEN.view.filter.department == NULL);
    CHECK_EQ(SEEN.view.hidden.len, 1);
    CHECK_STREQ(S(SEEN.view.owner), "anna");
    apply_view(&SEEN.view);
    CHECK_EQ(get(&H, path, TOKEN_DISPATCHER, &r), 200);
    CHECK_STREQ(S(jstr(r.json, "filter.depot")), "Kiel-Wellsee");
    CHECK_STREQ(S(jstr(r.json, "filter.tag")), "shift:Frühschicht");
    CHECK_STREQ(S(jstr(r.json, "filter.handled")), "false");
    CHECK(json_object_get_boolean(jget(r.json, "own")));
    http_result_cleanup(&r);
    /* refused before Kafka: nothing produced */
    CHECK_EQ(post_json(&H, "/api/views", TOKEN_DISPATCHER,
                       "{\"name\":\"x\",\"filter\":{\"depot\":\"a,,b\"}}", NULL, &r),
             400);
    http_result_cleanup(&r);
    CHECK_EQ(consume_until(&SEEN.views, 2, 1500), 1);
}

/* POSTs body to path and checks a 400 of type whose detail names what. */
static void refused(const char *path, const char *body, const char *type, const char *what)
{
    struct http_result r;
    char want[128];
    snprintf(want, sizeof(want), "urn:leitstand:problem:%s", type);
    CHECK_EQ(post_json(&H, path, TOKEN_DISPATCHER, body, NULL, &r), 400);
    CHECK_STREQ(S(jstr(r.json, "type")), want);
    if (jstr(r.json, "detail") == NULL || strstr(jstr(r.json, "detail"), what) == NULL) {
        fprintf(stderr, "  %s %s: detail %s, want %s\n", path, body, S(jstr(r.json, "detail")),
                what);
        lst_test_failed_checks++;
    }
    http_result_cleanup(&r);
}

static void test_annotations(void)
{
    static const char item[] = "01JXT21QZ8AAAAAAAAAAAAAA01";
    struct http_result r;
    rcmd(&H, "HSET lst:lg:m:%s id %s dir in", item, item);
    CHECK_EQ(post_json(&H,
                       "/api/messages/"
                       "01JXT21QZ8AAAAAAAAAAAAAA01"
                       "/annotations",
                       TOKEN_DISPATCHER, "{\"handled\":true,\"category\":\"schaden\"}", NULL, &r),
             202);
    CHECK_STREQ(S(jstr(r.json, "item_id")), item);
    http_result_cleanup(&r);
    CHECK_EQ(consume_until(&SEEN.annotations, 2, 30000), 2);
    REQUIRE(SEEN.annotations == 2);
    CHECK_EQ(SEEN.ann[0].kind, LST_ANNOTATION_HANDLED);
    CHECK_EQ(SEEN.ann[1].kind, LST_ANNOTATION_CATEGORY);
    CHECK_STREQ(S(SEEN.ann[1].category), "schaden");
    CHECK_STREQ(S(SEEN.ann[0].user), "anna");
    CHECK(SEEN.ann[0].at > 0 && SEEN.ann[0].at == SEEN.ann[1].at);
    /* an item the projections do not have: 404, nothing produced */
    CHECK_EQ(post_json(&H, "/api/messages/01JXT21QZ8AAAAAAAAAAAAAA02/annotations", TOKEN_DISPATCHER,
                       "{\"handled\":true}", NULL, &r),
             404);
    http_result_cleanup(&r);
    refused("/api/messages/01JXT21QZ8AAAAAAAAAAAAAA01/annotations", "{\"handeld\":true}",
            "invalid-annotation", "\"handeld\"");
    refused("/api/messages/01JXT21QZ8AAAAAAAAAAAAAA01/annotations", "{\"handled\":\"yes\"}",
            "invalid-annotation", "handled");
    CHECK_EQ(consume_until(&SEEN.annotations, 3, 1500), 2);
}

/* A misspelt member would otherwise be ignored: a send with "employees" for "employee_ids"
 * went to the selector's drivers only. Refused before Kafka. */
static void test_unknown_members(void)
{
    size_t messages = SEEN.messages, views = SEEN.views;
    refused("/api/messages",
            "{\"category\":\"dispo\",\"text\":\"hi\",\"selector\":{\"tags\":"
            "[\"depot:Kiel-Wellsee\"]},\"employees\":[\"10011\"]}",
            "invalid-message", "\"employees\": not a known member");
    refused("/api/messages",
            "{\"category\":\"dispo\",\"text\":\"hi\",\"selector\":{\"depot\":"
            "[\"Kiel-Wellsee\"]}}",
            "invalid-message", "selector: \"depot\"");
    refused("/api/messages",
            "{\"category\":\"dispo\",\"employee_ids\":[\"10011\"],\"attachment\":{"
            "\"mime\":\"image/png\",\"data_base64\":\"AAAA\",\"name\":\"a.png\"}}",
            "invalid-message", "attachment: \"name\"");
    refused("/api/views", "{\"name\":\"x\",\"hiden\":[\"dispo\"]}", "invalid-view", "\"hiden\"");
    CHECK_EQ(consume_until(&SEEN.messages, messages + 1, 1500), messages);
    CHECK_EQ(SEEN.views, views);
    /* the same for query strings: a misspelt filter is refused, not the whole timeline shown */
    struct http_result r;
    CHECK_EQ(get(&H, "/api/timeline?departmnet=Fernverkehr&_=1733497200000", TOKEN_DISPATCHER, &r),
             400);
    CHECK_STREQ(S(jstr(r.json, "type")), "urn:leitstand:problem:invalid-query");
    CHECK(strstr(S(jstr(r.json, "detail")), "\"departmnet\": not a known query parameter") != NULL);
    http_result_cleanup(&r);
}

/* GDPR audit: a view of one person's traffic (history, timeline or stream narrowed by
 * employee=) produces one "view" entry per page or stream, with a detail telling the first
 * page from later ones; a refused request (400, an unknown employee's history 404) and a
 * view of a group produce none. */
static void test_audit_views(void)
{
    struct http_result r;
    struct sse s;
    size_t before = consume_until(&SEEN.audits, SIZE_MAX, 1000);
    CHECK_EQ(get(&H, "/api/employees/10006/history", TOKEN_DISPATCHER, &r), 200);
    http_result_cleanup(&r);
    CHECK_EQ(get(&H, "/api/employees/10006/history?cursor=1_x", TOKEN_DISPATCHER, &r), 200);
    http_result_cleanup(&r);
    CHECK_EQ(get(&H, "/api/employees/10006/history?limit=5000", TOKEN_DISPATCHER, &r), 400);
    http_result_cleanup(&r);
    CHECK_EQ(get(&H, "/api/employees/88888/history", TOKEN_DISPATCHER, &r), 404);
    CHECK_STREQ(S(jstr(r.json, "type")), "urn:leitstand:problem:employee-not-found");
    http_result_cleanup(&r);
    CHECK_EQ(get(&H, "/api/timeline?employee=10006,10011", TOKEN_DISPATCHER, &r), 200);
    http_result_cleanup(&r);
    CHECK_EQ(get(&H, "/api/timeline?department=Fernverkehr", TOKEN_DISPATCHER, &r), 200);
    http_result_cleanup(&r);
    CHECK_EQ(get(&H, "/api/timeline?employee=10006&limit=0", TOKEN_DISPATCHER, &r), 400);
    http_result_cleanup(&r);
    REQUIRE(sse_open(&H, &s, "/api/stream?employee=10006", NULL));
    CHECK(sse_wait(&s, ": connected\n\n", 3000));
    sse_close(&s);
    const char *want[] = {"view 10006 history: first page", "view 10006 history: next page",
                          "view 10006 timeline: first page", "view 10011 timeline: first page",
                          "view 10006 stream: live"};
    CHECK_EQ(consume_until(&SEEN.audits, before + LST_ARRAY_LEN(want), 15000),
             before + LST_ARRAY_LEN(want));
    CHECK_EQ(consume_until(&SEEN.audits, SIZE_MAX, 1500), before + LST_ARRAY_LEN(want));
    for (size_t i = 0; i < LST_ARRAY_LEN(want); i++) {
        if (!lst_strv_has(&SEEN.audit_lines, want[i]))
            fprintf(stderr, "  no audit entry \"%s\"\n", want[i]);
        CHECK(lst_strv_has(&SEEN.audit_lines, want[i]));
    }
}

static void test_all(void)
{
    if (!setup()) {
        fprintf(stderr, "set-up failed\n");
        lst_test_failed_checks++;
        teardown();
        return;
    }
    test_import_demo();
    test_erased_stays_erased();
    test_send_and_replay();
    test_image_upload();
    test_full_sync();
    test_saved_view();
    test_annotations();
    test_unknown_members();
    test_audit_views();
    teardown();
}

LST_TEST_MAIN(T(test_all))
