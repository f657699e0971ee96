/* Service tier of the credits and GDPR routes: the view-api in-process against
 * its own redis-server seeded in the ledger's layout, Kafka unreachable on
 * purpose. Credits per department and dispatcher over a range (day buckets),
 * the balance null with a reason when the Gateway is not configured; the audit
 * log (filters, cursor walk); auth and role on every new route; malformed
 * queries and IDs 400; export and erasure refuse (503) when their audit record
 * cannot reach Kafka, and then delete nothing; they go on to it (and do not answer 404) for an
 * ID that only skipped sends or the erased list and access log name, and a second erasure
 * says the first one happened. Every response is checked
 * against proto/openapi.yaml by view_api_openapi.sh. */
#include <sys/stat.h>

#include "view_api_common.h"

static struct harness H;

#define DAY INT64_C(86400000)
#define D0  INT64_C(19675) /* a UTC day (days since the epoch) */

static void test_setup(void)
{
    REQUIRE(curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK);
    lst_log_init("test", LST_LOG_ERROR);
    REQUIRE(harness_start(&H, NULL, NULL, "LST_VIEW_KAFKA_WAIT_MS", "500", NULL));
    rcmd(&H, "HSET lst:lg:cr:%lld all 5 dep:Nord 3 dep:Sued 2 disp:anna 4 disp:ben 1",
         (long long)D0);
    rcmd(&H, "HSET lst:lg:cr:%lld all 2 dep:Nord 2 disp:ben 2", (long long)(D0 + 1));
    rcmd(&H, "HSET lst:lg:cr:%lld all 7 dep:Sued 7 disp:carl 7", (long long)(D0 + 5));
    /* a dispatcher token without a department: sends in no department */
    rcmd(&H, "HSET lst:lg:cr:%lld all 3 dep:Nord 1 disp:dora 3", (long long)(D0 + 10));
    for (int i = 0; i < 5; i++) {
        char id[32], json[300];
        snprintf(id, sizeof(id), "01HAUDIT000000000000000%03d", i);
        snprintf(json, sizeof(json),
                 "{\"v\":1,\"event_id\":\"%s\",\"at\":%d,\"actor\":\"%s\",\"role\":"
                 "\"%s\","
                 "\"action\":\"%s\",\"employee_id\":\"%s\"}",
                 id, 1000 + i, i % 2 ? "anna" : "erp-admin", i % 2 ? "dispatcher" : "admin",
                 i == 4 ? "export" : "view", i < 3 ? "10017" : "10018");
        rcmd(&H, "HSET lst:lg:aud:d %s %s", id, json);
        rcmd(&H, "ZADD lst:lg:aud %d %s", 1000 + i, id);
        rcmd(&H, "ZADD lst:lg:aud:emp:%s %d %s", i < 3 ? "10017" : "10018", 1000 + i, id);
    }
    seed_employee(&H, "10017", "Jana", "Nord", "HH-1", "[]", NULL, true, "DRV00017");
}

static int64_t group_credits(struct json_object *o, const char *name)
{
    struct json_object *g = jget(o, "groups");
    for (size_t i = 0; g != NULL && i < json_object_array_length(g); i++) {
        struct json_object *e = json_object_array_get_idx(g, i);
        if (strcmp(S(jstr(e, "name")), name) == 0)
            return jint(e, "credits");
    }
    return -1;
}

static void test_credits(void)
{
    struct http_result r;
    char path[200];
    snprintf(path, sizeof(path), "/api/credits?from=%lld&to=%lld", (long long)(D0 * DAY + 5),
             (long long)((D0 + 1) * DAY + 10));
    CHECK_EQ(get(&H, path, TOKEN_DISPATCHER, &r), 200);
    CHECK_EQ(jint(r.json, "total.credits"), 7);
    CHECK_EQ(group_credits(r.json, "Nord"), 5);
    CHECK_EQ(group_credits(r.json, "Sued"), 2);
    CHECK_EQ(jint(r.json, "first_day"), D0 * DAY);
    CHECK(jget(r.json, "balance.credits") == NULL); /* null: no Gateway configured */
    CHECK(strstr(S(jstr(r.json, "balance.error")), "not configured") != NULL);
    http_result_cleanup(&r);
    snprintf(path, sizeof(path), "/api/credits?group=dispatcher&from=%lld&to=%lld",
             (long long)(D0 * DAY), (long long)((D0 + 6) * DAY));
    CHECK_EQ(get(&H, path, TOKEN_DISPATCHER, &r), 200);
    CHECK_EQ(jint(r.json, "total.sends"), 14);
    CHECK_EQ(group_credits(r.json, "carl"), 7);
    CHECK_EQ(group_credits(r.json, "anna"), 4);
    CHECK_EQ(group_credits(r.json, "ben"), 3);
    CHECK_STREQ(S(jstr(json_object_array_get_idx(jget(r.json, "groups"), 0), "name")), "carl");
    http_result_cleanup(&r);
    /* the groups add up to the total: the sends without a department come last, name null */
    snprintf(path, sizeof(path), "/api/credits?from=%lld&to=%lld", (long long)((D0 + 10) * DAY),
             (long long)((D0 + 10) * DAY + 5));
    CHECK_EQ(get(&H, path, TOKEN_DISPATCHER, &r), 200);
    CHECK_EQ(jint(r.json, "total.sends"), 3);
    CHECK_EQ(jlen(r.json, "groups"), 2);
    CHECK_EQ(group_credits(r.json, "Nord"), 1);
    struct json_object *last = json_object_array_get_idx(jget(r.json, "groups"), 1), *name = NULL;
    CHECK(json_object_object_get_ex(last, "name", &name) && name == NULL);
    CHECK_EQ(jint(last, "credits"), 2);
    http_result_cleanup(&r);
    const char *bad[] = {"/api/credits?group=vehicle", "/api/credits?from=x",
                         "/api/credits?from=5000&to=10", "/api/credits?from=0&to=86400000000"};
    for (size_t i = 0; i < LST_ARRAY_LEN(bad); i++) {
        CHECK_EQ(get(&H, bad[i], TOKEN_DISPATCHER, &r), 400);
        CHECK_STREQ(S(jstr(r.json, "type")), "urn:leitstand:problem:invalid-query");
        http_result_cleanup(&r);
    }
}

static void test_audit_log(void)
{
    struct http_result r;
    CHECK_EQ(get(&H, "/api/admin/audit", TOKEN_ADMIN, &r), 200);
    CHECK_EQ(jlen(r.json, "items"), 5);
    CHECK_EQ(jint(json_object_array_get_idx(jget(r.json, "items"), 0), "at"), 1004);
    http_result_cleanup(&r);
    CHECK_EQ(get(&H, "/api/admin/audit?employee=10017&actor=anna", TOKEN_ADMIN, &r), 200);
    CHECK_EQ(jlen(r.json, "items"), 1);
    http_result_cleanup(&r);
    CHECK_EQ(get(&H, "/api/admin/audit?action=export", TOKEN_ADMIN, &r), 200);
    CHECK_EQ(jlen(r.json, "items"), 1);
    http_result_cleanup(&r);
    /* cursor walk, two per page: 5 entries, each once, newest first */
    char path[300] = "/api/admin/audit?limit=2";
    int64_t seen = 0, last = INT64_MAX;
    for (int page = 0; page < 5; page++) {
        CHECK_EQ(get(&H, path, TOKEN_ADMIN, &r), 200);
        struct json_object *items = jget(r.json, "items");
        for (size_t i = 0; items != NULL && i < json_object_array_length(items); i++) {
            int64_t at = jint(json_object_array_get_idx(items, i), "at");
            CHECK(at < last);
            last = at;
            seen++;
        }
        const char *next = jstr(r.json, "next_cursor");
        if (next != NULL)
            snprintf(path, sizeof(path), "/api/admin/audit?limit=2&cursor=%s", next);
        http_result_cleanup(&r);
        if (next == NULL)
            break;
    }
    CHECK_EQ(seen, 5);
    const char *bad[] = {"/api/admin/audit?action=delete", "/api/admin/audit?employee=-x",
                         "/api/admin/audit?cursor=zz", "/api/admin/audit?limit=0"};
    for (size_t i = 0; i < LST_ARRAY_LEN(bad); i++) {
        CHECK_EQ(get(&H, bad[i], TOKEN_ADMIN, &r), 400);
        http_result_cleanup(&r);
    }
}

static void test_auth_and_roles(void)
{
    struct http_result r;
    struct {
        const char *method, *path;
        bool admin;
    } routes[] = {{"GET", "/api/credits", false},
                  {"GET", "/api/admin/audit", true},
                  {"GET", "/api/admin/employees/10017/export", true},
                  {"DELETE", "/api/admin/employees/10017", true}};
    for (size_t i = 0; i < LST_ARRAY_LEN(routes); i++) {
        CHECK_EQ(http(&H, routes[i].method, routes[i].path, NULL, NULL, NULL, 0, NULL, &r), 401);
        http_result_cleanup(&r);
        CHECK_EQ(http(&H, routes[i].method, routes[i].path, "wrong", NULL, NULL, 0, NULL, &r), 401);
        http_result_cleanup(&r);
        if (routes[i].admin) {
            CHECK_EQ(http(&H, routes[i].method, routes[i].path, TOKEN_DISPATCHER, NULL, NULL, 0,
                          NULL, &r),
                     403);
            http_result_cleanup(&r);
        }
    }
    CHECK_EQ(get(&H, "/api/admin/employees/-bad/export", TOKEN_ADMIN, &r), 400);
    http_result_cleanup(&r);
    CHECK_EQ(get(&H, "/api/admin/employees/10017/other", TOKEN_ADMIN, &r), 404);
    http_result_cleanup(&r);
    CHECK_EQ(get(&H, "/api/admin/employees/nobody/export", TOKEN_ADMIN, &r), 404);
    http_result_cleanup(&r);
}

/* Kafka is unreachable: no audit record, so no export and no erasure. */
static void test_gdpr_needs_kafka(void)
{
    struct http_result r;
    CHECK_EQ(get(&H, "/api/admin/employees/10017/export", TOKEN_ADMIN, &r), 503);
    CHECK_STREQ(S(jstr(r.json, "type")), "urn:leitstand:problem:kafka-unavailable");
    http_result_cleanup(&r);
    CHECK_EQ(http(&H, "DELETE", "/api/admin/employees/10017", TOKEN_ADMIN, NULL, NULL, 0, NULL, &r),
             503);
    http_result_cleanup(&r);
    CHECK_EQ(get(&H, "/api/employees/10017", TOKEN_ADMIN, &r), 200); /* still there */
    http_result_cleanup(&r);
    /* what decides between 404 and going on to the audit record (here: 503) */
    rcmd(&H, "ZADD lst:lg:e:T404:skp 1000 01HSKIP0000000000000000000"); /* a mistyped ID */
    rcmd(&H, "SADD lst:lg:erased GONE1");
    rcmd(&H, "ZADD lst:lg:aud:emp:GONE1 1000 01HAUDIT000000000000000000");
    static const char *const paths[][2] = {
        {"/api/admin/employees/T404/export", "kafka-unavailable"},
        {"/api/admin/employees/GONE1/export", "kafka-unavailable"},
        {"/api/admin/employees/NONE1/export", "employee-not-found"},
    };
    for (size_t i = 0; i < LST_ARRAY_LEN(paths); i++) {
        char type[96];
        snprintf(type, sizeof(type), "urn:leitstand:problem:%s", paths[i][1]);
        get(&H, paths[i][0], TOKEN_ADMIN, &r);
        CHECK_STREQ(S(jstr(r.json, "type")), type);
        http_result_cleanup(&r);
    }
    CHECK_EQ(http(&H, "DELETE", "/api/admin/employees/T404", TOKEN_ADMIN, NULL, NULL, 0, NULL, &r),
             503); /* only skipped sends name it: erased like any other */
    http_result_cleanup(&r);
    CHECK_EQ(http(&H, "DELETE", "/api/admin/employees/GONE1", TOKEN_ADMIN, NULL, NULL, 0, NULL, &r),
             404);
    CHECK(strstr(S(jstr(r.json, "detail")), "erased already") != NULL);
    http_result_cleanup(&r);
    CHECK_EQ(http(&H, "DELETE", "/api/admin/employees/NONE1", TOKEN_ADMIN, NULL, NULL, 0, NULL, &r),
             404);
    CHECK(strstr(S(jstr(r.json, "detail")), "nothing is stored") != NULL);
    http_result_cleanup(&r);
}

/* A message the erasure left to nobody (the ledger's cgone, audience 0): no content, marked
 * content_erased, audience_count and counts.recipients agree. */
static void test_content_erased(void)
{
    struct http_result r;
    const char *id = "01HGONE0000000000000000001";
    rcmd(&H,
         "HSET lst:lg:m:%s dir out id %s at 5 msg 1 kind image cat dispo disp anna "
         "audience 0 cgone 1 v 7",
         id, id);
    CHECK_EQ(get(&H, "/api/messages/01HGONE0000000000000000001", TOKEN_DISPATCHER, &r), 200);
    CHECK(json_object_get_boolean(jget(r.json, "content_erased")));
    CHECK(jget(r.json, "text") == NULL && jget(r.json, "blob") == NULL);
    CHECK_EQ(jint(r.json, "audience_count"), 0);
    CHECK_EQ(jint(r.json, "counts.recipients"), 0);
    CHECK_STREQ(S(jstr(r.json, "kind")), "image");
    http_result_cleanup(&r);
}

static void test_teardown(void)
{
    harness_stop(&H);
}

LST_TEST_MAIN(T(test_setup), T(test_credits), T(test_audit_log), T(test_auth_and_roles),
              T(test_gdpr_needs_kafka), T(test_content_erased), T(test_teardown))
