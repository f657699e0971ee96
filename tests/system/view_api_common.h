/* Helpers of the view-api tests: an in-process view-api on a loopback port against a
 * redis-server of the test's own, a libcurl client, and writers of the ledger's projection
 * keys (docs/ledger.md) so reads can be tested without a running ledger. */
#ifndef LST_TEST_VIEW_API_COMMON_H
#define LST_TEST_VIEW_API_COMMON_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>
#include <sodium.h>

#include "lst/log.h"
#include "lst_test.h"
#include "redis_fixture.h"
#include "view_api.h"

#define TOKEN_DISPATCHER "disp-secret-token-1"
#define TOKEN_ADMIN      "admin-secret-token-1"
#define ORIGIN_OK        "https://dispo.example.com"

struct env_kv {
    const char *name, *value;
};

struct harness {
    struct redis_fixture redis;
    struct view_api api;
    struct lst_config_section sections[2];
    char dir[64];
    char tokens_path[128];
    char port_s[16];
    char blob_dir[128];
    struct env_kv env[16];
    size_t nenv;
    uint16_t port;
    redisContext *rc;
};

static inline const char *env_get(const char *name, void *ud)
{
    struct harness *h = ud;
    for (size_t i = 0; i < h->nenv; i++) {
        if (strcmp(h->env[i].name, name) == 0)
            return h->env[i].value;
    }
    return NULL;
}

static inline void env_set(struct harness *h, const char *name, const char *value)
{
    h->env[h->nenv].name = name;
    h->env[h->nenv].value = value;
    h->nenv++;
}

static inline void hash_hex(const char *token, char out[65])
{
    unsigned char d[32];
    crypto_hash_sha256(d, (const unsigned char *)token, strlen(token));
    sodium_bin2hex(out, 65, d, sizeof(d));
}

static inline bool write_tokens(struct harness *h)
{
    char a[65], d[65];
    FILE *f;
    hash_hex(TOKEN_DISPATCHER, d);
    hash_hex(TOKEN_ADMIN, a);
    snprintf(h->tokens_path, sizeof(h->tokens_path), "%s/tokens", h->dir);
    f = fopen(h->tokens_path, "w");
    if (f == NULL)
        return false;
    /* anna's line with a display name, the admin's without (the older format) */
    fprintf(f,
            "# test tokens\n%s dispatcher anna Dispo-Nord  Anna Schmidt \n\n%s admin erp-admin -\n",
            d, a);
    return fclose(f) == 0;
}

/* Starts redis-server, then the view-api with brokers (NULL: an unreachable one). extra
 * settings come as name/value pairs ending with NULL. */
static inline bool harness_start(struct harness *h, const char *brokers, const char *topic_prefix,
                                 ...)
{
    va_list ap;
    struct lst_buf errors;
    memset(h, 0, sizeof(*h));
    (void)redis_fixture_restart; /* part of the fixture; these tests do not restart Redis */
    if (sodium_init() < 0 || !redis_fixture_start(&h->redis, NULL))
        return false;
    snprintf(h->dir, sizeof(h->dir), "/tmp/lst-view-api-XXXXXX");
    if (mkdtemp(h->dir) == NULL || !write_tokens(h))
        return false;
    snprintf(h->port_s, sizeof(h->port_s), "%d", h->redis.port);
    snprintf(h->blob_dir, sizeof(h->blob_dir), "%s/blobs", h->dir);
    env_set(h, "LST_REDIS_PORT", h->port_s);
    env_set(h, "LST_KAFKA_BROKERS", brokers != NULL ? brokers : "127.0.0.1:1");
    env_set(h, "LST_VIEW_TOKENS_FILE", h->tokens_path);
    env_set(h, "LST_VIEW_CORS_ORIGINS", ORIGIN_OK ", https://other.example.com");
    env_set(h, "LST_BLOB_DIR", h->blob_dir);
    env_set(h, "LST_LOG_LEVEL", getenv("LST_TEST_LOG") ? "debug" : "error");
    if (topic_prefix != NULL)
        env_set(h, "LST_TOPIC_PREFIX", topic_prefix);
    va_start(ap, topic_prefix);
    for (const char *n = va_arg(ap, const char *); n != NULL; n = va_arg(ap, const char *))
        env_set(h, n, va_arg(ap, const char *));
    va_end(ap);
    h->sections[0] = lst_common_config_section(&h->api.cfg.common);
    h->sections[1] = view_api_config_section(&h->api.cfg);
    struct lst_config_source src = {env_get, h};
    lst_buf_init(&errors);
    lst_err err = lst_config_load(h->sections, 2, &src, &errors);
    if (err != LST_OK)
        fprintf(stderr, "config: %s\n", errors.data ? errors.data : "?");
    lst_buf_cleanup(&errors);
    if (err != LST_OK || view_api_create(&h->api, 0) != LST_OK)
        return false;
    h->port = view_api_port(&h->api);
    struct timeval tv = {2, 0};
    h->rc = redisConnectWithTimeout("127.0.0.1", h->redis.port, tv);
    return h->rc != NULL && h->rc->err == 0;
}

static inline void harness_stop(struct harness *h)
{
    char cmd[200];
    view_api_destroy(&h->api);
    lst_config_cleanup(h->sections, 2);
    if (h->rc != NULL)
        redisFree(h->rc);
    redis_fixture_stop(&h->redis);
    if (h->dir[0] != '\0') {
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", h->dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", h->dir);
    }
}

/* Runs a Redis command on the test's own connection (seeding projections). */
static inline void rcmd(struct harness *h, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(h->rc, fmt, ap);
    va_end(ap);
    if (r == NULL || r->type == REDIS_REPLY_ERROR)
        fprintf(stderr, "redis seed failed: %s\n", r ? r->str : "no reply");
    if (r != NULL)
        freeReplyObject(r);
}

/* ---- HTTP client ---- */

struct http_result {
    long status;
    struct lst_buf body;
    struct lst_buf headers;
    struct json_object *json; /* parsed body or NULL */
};

static inline size_t on_data(char *p, size_t size, size_t n, void *ud)
{
    lst_buf_append(ud, p, size * n);
    return size * n;
}

static inline void http_result_cleanup(struct http_result *r)
{
    lst_buf_cleanup(&r->body);
    lst_buf_cleanup(&r->headers);
    json_object_put(r->json);
    memset(r, 0, sizeof(*r));
}

/* With LST_VIEW_API_DUMP=<file>, every exchange is appended as one line
 * "method TAB path TAB status TAB content type TAB body" for the OpenAPI check
 * (tests/system/view_api_openapi_check.py). */
static inline void dump_exchange(CURL *c, const char *method, const char *path,
                                 const struct http_result *r)
{
    const char *file = getenv("LST_VIEW_API_DUMP");
    char *ct = NULL;
    FILE *f;
    if (file == NULL || (f = fopen(file, "a")) == NULL)
        return;
    curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
    fprintf(f, "%s\t%.*s\t%ld\t%s\t", method, (int)strcspn(path, "?"), path, r->status,
            ct != NULL ? ct : "");
    for (size_t i = 0; i < r->body.len; i++) {
        char ch = r->body.data[i]; /* CR too: a binary body (a blob) must stay on its line */
        fputc(ch == '\n' || ch == '\t' || ch == '\r' ? ' ' : ch, f);
    }
    fputc('\n', f);
    fclose(f);
}

/* One request. token NULL: no Authorization; headers: extra "Name: value" lines or NULL. */
static inline long http(struct harness *h, const char *method, const char *path, const char *token,
                        const char *content_type, const char *body, size_t body_len,
                        const char *const *headers, struct http_result *out)
{
    CURL *c = curl_easy_init();
    struct curl_slist *hl = NULL;
    char url[512], auth[256], ct[128];
    memset(out, 0, sizeof(*out));
    lst_buf_init(&out->body);
    lst_buf_init(&out->headers);
    snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", h->port, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 30000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &out->body);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &out->headers);
    if (token != NULL) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
        hl = curl_slist_append(hl, auth);
    }
    if (content_type != NULL) {
        snprintf(ct, sizeof(ct), "Content-Type: %s", content_type);
        hl = curl_slist_append(hl, ct);
    }
    for (size_t i = 0; headers != NULL && headers[i] != NULL; i++)
        hl = curl_slist_append(hl, headers[i]);
    hl = curl_slist_append(hl, "Expect:");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    if (body != NULL) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    }
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
    else
        out->status = -1;
    dump_exchange(c, method, path, out);
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);
    if (out->body.len > 0)
        out->json = json_tokener_parse(out->body.data);
    return out->status;
}

static inline long get(struct harness *h, const char *path, const char *token,
                       struct http_result *out)
{
    return http(h, "GET", path, token, NULL, NULL, 0, NULL, out);
}

static inline long post_json(struct harness *h, const char *path, const char *token,
                             const char *body, const char *const *headers, struct http_result *out)
{
    return http(h, "POST", path, token, "application/json", body, strlen(body), headers, out);
}

/* A member of the response JSON by dotted path ("counts.read"); NULL when absent. */
static inline struct json_object *jget(struct json_object *o, const char *path)
{
    char part[128];
    while (o != NULL && *path != '\0') {
        size_t n = strcspn(path, ".");
        if (n >= sizeof(part))
            return NULL;
        memcpy(part, path, n);
        part[n] = '\0';
        struct json_object *v = NULL;
        if (json_object_is_type(o, json_type_array)) {
            int64_t idx = 0;
            if (lst_parse_i64(part, 0, 1000000, &idx) != LST_OK)
                return NULL;
            v = json_object_array_get_idx(o, (size_t)idx);
        } else if (!json_object_object_get_ex(o, part, &v)) {
            return NULL;
        }
        o = v;
        path += n;
        if (*path == '.')
            path++;
    }
    return o;
}

static inline const char *jstr(struct json_object *o, const char *path)
{
    struct json_object *v = jget(o, path);
    return v != NULL ? json_object_get_string(v) : NULL;
}

static inline int64_t jint(struct json_object *o, const char *path)
{
    struct json_object *v = jget(o, path);
    return v != NULL ? json_object_get_int64(v) : -1;
}

static inline size_t jlen(struct json_object *o, const char *path)
{
    struct json_object *v = jget(o, path);
    return v != NULL && json_object_is_type(v, json_type_array) ? json_object_array_length(v)
                                                                : (size_t)-1;
}

static inline const char *S(const char *s)
{
    return s != NULL ? s : "";
}

/* ASCII case-insensitive: header names are. */
static inline bool has_header(const struct http_result *r, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = r->headers.data; p != NULL && *p != '\0'; p++) {
        if (strncasecmp(p, line, n) == 0)
            return true;
    }
    return false;
}

/* ---- projection writers (the ledger's key layout, docs/ledger.md) ---- */

static inline void seed_employee(struct harness *h, const char *id, const char *name,
                                 const char *dep, const char *veh, const char *tags_json,
                                 const char *tag1, bool active, const char *tid)
{
    rcmd(h,
         "HSET lst:lg:emp:%s id %s name %s dep %s veh %s tags %s active %s updated_at 1 "
         "source erp",
         id, id, name, dep, veh, tags_json, active ? "1" : "0");
    if (tid != NULL) {
        rcmd(h, "HSET lst:lg:emp:%s tid %s", id, tid);
        rcmd(h, "SET lst:lg:emp:tid:%s %s", tid, id);
    } else {
        rcmd(h, "HSET lst:lg:emp:%s phone +4915100000%s", id, id);
    }
    rcmd(h, "ZADD lst:lg:emps 0 %s", id);
    rcmd(h, "SADD lst:lg:emp:dep:%s %s", dep, id);
    rcmd(h, "SADD lst:lg:emp:veh:%s %s", veh, id);
    if (tag1 != NULL)
        rcmd(h, "SADD lst:lg:emp:tag:%s %s", tag1, id);
    if (active)
        rcmd(h, "SADD lst:lg:emp:active %s", id);
}

/* An index entry in x:<k> and xc:<cat>:<k>. */
static inline void seed_ix(struct harness *h, const char *id, long long at, const char *cat,
                           const char *k)
{
    rcmd(h, "ZADD lst:lg:x:%s %lld %s", k, at, id);
    rcmd(h, "ZADD lst:lg:xc:%s:%s %lld %s", cat, k, at, id);
}

/* ---- an SSE client (raw HTTP/1.0, so the test sees the stream's bytes as sent) ---- */

struct sse {
    int fd;
    struct lst_buf b;
};

/* Opens GET path with the dispatcher token and an optional Last-Event-ID, once a stream slot
 * is free (the tests run with LST_VIEW_MAX_STREAMS=2: a stream closed just before gives its
 * slot back within one round of its reader). */
static inline bool sse_open(struct harness *h, struct sse *s, const char *path, const char *last_id)
{
    int64_t until = lst_mono_ms() + 5000;
    while (atomic_load(&h->api.streams) >= 2 && lst_mono_ms() < until)
        lst_sleep_ms(10, NULL);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(h->port)};
    char req[1024];
    lst_buf_init(&s->b);
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (s->fd < 0 || connect(s->fd, (struct sockaddr *)&a, sizeof(a)) != 0)
        return false;
    int n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.0\r\nAuthorization: Bearer " TOKEN_DISPATCHER
                     "\r\nOrigin: " ORIGIN_OK "\r\n%s%s%s\r\n",
                     path, last_id ? "Last-Event-ID: " : "", last_id ? last_id : "",
                     last_id ? "\r\n" : "");
    return write(s->fd, req, (size_t)n) == n;
}

static inline void sse_close(struct sse *s)
{
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
    lst_buf_cleanup(&s->b);
}

/* Reads until the buffer holds want (true) or ms passed / the server closed (false). */
static inline bool sse_wait(struct sse *s, const char *want, int64_t ms)
{
    int64_t deadline = lst_mono_ms() + ms;
    char tmp[4096];
    while (true) {
        if (s->b.data != NULL && strstr(s->b.data, want) != NULL)
            return true;
        int left = (int)(deadline - lst_mono_ms());
        if (left <= 0)
            return false;
        struct pollfd p = {.fd = s->fd, .events = POLLIN};
        if (poll(&p, 1, left) <= 0)
            continue;
        ssize_t n = read(s->fd, tmp, sizeof(tmp));
        if (n <= 0)
            return false;
        lst_buf_append(&s->b, tmp, (size_t)n);
    }
}

#endif
