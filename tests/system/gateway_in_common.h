/* Helpers of the gateway-in system tests (and its benchmark): start the real gateway-in binary
 * against the running stack (Kafka, Redis, the Gateway simulator), talk HTTP to both, build
 * signed callbacks as the Gateway would, and read back what landed in Kafka.
 *
 * Environment: LST_KAFKA_BROKERS, LST_REDIS_PORT, LST_SIM_PORT (the stack), GWIN_BIN (the
 * gateway-in binary), GWIN_ADMIN (lst-admin), LST_SOURCE_DIR (the repo), GWIN_WORK (a
 * scratch folder in the build dir). Every wait polls until a deadline. */
#ifndef LST_TEST_GATEWAY_IN_COMMON_H
#define LST_TEST_GATEWAY_IN_COMMON_H

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lst/kafka.h"
#include "lst/log.h"
#include "lst/records.h"
#include "lst/threema.h"
#include "lst/util.h"

#define GWIN_SECRET     "lst-demo-secret-DEMO-ONLY" /* the simulator's default */
#define GWIN_GATEWAY_ID "*LSTDEMO"

struct gwin_env {
    const char *brokers, *bin, *admin, *src, *work;
    int redis_port, sim_port;
    char prefix[64];     /* topic prefix of this run */
    char key_prefix[64]; /* Redis key prefix of this run */
    char blob_dir[512];
    int port;  /* gateway-in's HTTP port */
    pid_t pid; /* gateway-in */
    char log[512];
    char url[128]; /* callback URL */
    char sim[64];  /* http://127.0.0.1:<sim port> */
    uint8_t gw_pk[LST_THREEMA_KEY_SIZE];
};

static inline const char *gwin_getenv(const char *name, const char *def)
{
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0' ? v : def;
}

static inline int gwin_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

/* ---- HTTP ---- */

static inline size_t gwin_sink(char *p, size_t size, size_t n, void *ud)
{
    if (ud != NULL)
        lst_buf_append(ud, p, size * n);
    return size * n;
}

/* One request; returns the status (0 on a transport error). out may be NULL. */
static inline long gwin_http(const char *method, const char *url, const char *body, size_t len,
                             struct lst_buf *out)
{
    CURL *c = curl_easy_init();
    long code = 0;
    if (c == NULL)
        return 0;
    if (out != NULL)
        lst_buf_reset(out);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 30000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, gwin_sink);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body != NULL ? body : "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)len);
    }
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_cleanup(c);
    return code;
}

static inline long gwin_post_callback(const struct gwin_env *e, const char *body, size_t len)
{
    return gwin_http("POST", e->url, body, len, NULL);
}

/* A member of a JSON object answer as a new string (free()), NULL when absent. */
static inline char *gwin_json_str(const struct lst_buf *b, const char *key)
{
    json_object *doc = json_tokener_parse(b->data != NULL ? b->data : "");
    json_object *v = NULL;
    char *s = NULL;
    if (doc != NULL && json_object_object_get_ex(doc, key, &v))
        s = lst_strdup(json_object_get_string(v));
    json_object_put(doc);
    return s;
}

/* /_sim/stats callbacks.<key> (sent, failedAttempts, dropped, queued, inFlight). */
static inline long long gwin_sim_cb_stat(const struct gwin_env *e, const char *key)
{
    char url[160];
    struct lst_buf b;
    lst_buf_init(&b);
    snprintf(url, sizeof(url), "%s/_sim/stats", e->sim);
    long long n = -1;
    if (gwin_http("GET", url, NULL, 0, &b) == 200) {
        json_object *doc = json_tokener_parse(b.data), *cb = NULL, *v = NULL;
        if (json_object_object_get_ex(doc, "callbacks", &cb) &&
            json_object_object_get_ex(cb, key, &v))
            n = json_object_get_int64(v);
        json_object_put(doc);
    }
    lst_buf_cleanup(&b);
    return n;
}

static inline bool gwin_sim_faults(const struct gwin_env *e, const char *json)
{
    char url[160];
    snprintf(url, sizeof(url), "%s/_sim/faults", e->sim);
    return gwin_http("POST", url, json, strlen(json), NULL) == 200;
}

/* Makes simulated user `from` send kind ("text", "location", "photo", "receipt") now; the
 * new message ID goes to msgid. extra: more JSON members, e.g. "\"status\":2". */
static inline bool gwin_sim_reply(const struct gwin_env *e, const char *from, const char *kind,
                                  const char *extra, char msgid[LST_THREEMA_MSGID_HEX + 1])
{
    char url[160], body[512];
    struct lst_buf b;
    lst_buf_init(&b);
    snprintf(url, sizeof(url), "%s/_sim/reply", e->sim);
    int n = snprintf(body, sizeof(body), "{\"from\":\"%s\",\"kind\":\"%s\"%s%s}", from, kind,
                     extra != NULL ? "," : "", extra != NULL ? extra : "");
    bool ok = gwin_http("POST", url, body, (size_t)n, &b) == 200;
    char *id = ok ? gwin_json_str(&b, "messageId") : NULL;
    ok = id != NULL && strlen(id) == LST_THREEMA_MSGID_HEX;
    if (ok)
        memcpy(msgid, id, LST_THREEMA_MSGID_HEX + 1);
    free(id);
    lst_buf_cleanup(&b);
    return ok;
}

/* The n-th simulated user's ID and private key (tests act as that phone). */
static inline bool gwin_sim_user(const struct gwin_env *e, size_t index,
                                 char id[LST_THREEMA_ID_SIZE + 1], uint8_t sk[LST_THREEMA_KEY_SIZE])
{
    char url[160];
    struct lst_buf b;
    lst_buf_init(&b);
    snprintf(url, sizeof(url), "%s/_sim/users", e->sim);
    bool ok = false;
    if (gwin_http("GET", url, NULL, 0, &b) == 200) {
        json_object *doc = json_tokener_parse(b.data), *u = NULL, *v = NULL;
        if (json_object_is_type(doc, json_type_array) && index < json_object_array_length(doc) &&
            (u = json_object_array_get_idx(doc, index)) != NULL &&
            json_object_object_get_ex(u, "identity", &v)) {
            snprintf(id, LST_THREEMA_ID_SIZE + 1, "%s", json_object_get_string(v));
            ok = true;
        }
        json_object_put(doc);
    }
    if (ok) {
        snprintf(url, sizeof(url), "%s/_sim/users/%s", e->sim, id);
        ok = gwin_http("GET", url, NULL, 0, &b) == 200;
        char *key = ok ? gwin_json_str(&b, "privateKey") : NULL;
        ok = key != NULL && lst_threema_key_parse(key, LST_THREEMA_KEY_PRIVATE, sk, NULL) == LST_OK;
        if (key != NULL)
            lst_threema_wipe(key, strlen(key));
        free(key);
    }
    lst_buf_cleanup(&b);
    return ok;
}

/* ---- callbacks built as the Gateway builds them ---- */

static inline void gwin_random_msgid(char out[LST_THREEMA_MSGID_HEX + 1])
{
    uint8_t rnd[LST_THREEMA_KEY_SIZE]; /* the CSPRNG through the one random API exported */
    lst_threema_blob_keygen(rnd);
    lst_threema_hex_encode(rnd, LST_THREEMA_MSGID_SIZE, out, LST_THREEMA_MSGID_HEX + 1);
}

/* A signed callback carrying `padded` (type, body, padding: already framed) encrypted from sk
 * to the Gateway key. msgid NULL: a random one (written back when out_msgid != NULL). */
static inline lst_err gwin_build(const struct gwin_env *e, const char *from,
                                 const uint8_t sk[LST_THREEMA_KEY_SIZE], const uint8_t *padded,
                                 size_t len, char msgid[LST_THREEMA_MSGID_HEX + 1],
                                 struct lst_buf *body)
{
    struct lst_threema_shared sh;
    struct lst_threema_callback cb;
    struct lst_buf box;
    memset(&cb, 0, sizeof(cb));
    lst_buf_init(&box);
    lst_err err = lst_threema_shared_init(&sh, sk, e->gw_pk);
    if (err == LST_OK)
        err = lst_threema_encrypt(&sh, padded, len, cb.nonce, &box);
    if (err == LST_OK) {
        if (msgid[0] == '\0')
            gwin_random_msgid(msgid);
        snprintf(cb.from, sizeof(cb.from), "%s", from);
        snprintf(cb.to, sizeof(cb.to), "%s", GWIN_GATEWAY_ID);
        memcpy(cb.message_id, msgid, LST_THREEMA_MSGID_HEX + 1);
        lst_threema_hex_decode(msgid, LST_THREEMA_MSGID_HEX, cb.message_id_bytes,
                               LST_THREEMA_MSGID_SIZE);
        cb.date = lst_wall_ms() / 1000;
        cb.box = (uint8_t *)box.data;
        cb.box_len = box.len;
        cb.nickname = (char *)(uintptr_t) "Testfahrer";
        lst_buf_reset(body);
        err = lst_threema_callback_build(&cb, GWIN_SECRET, body, NULL);
    }
    lst_threema_shared_cleanup(&sh);
    lst_buf_cleanup(&box);
    return err;
}

/* A form with the given raw field values and a correct MAC over them (mac_ok false: a MAC
 * over other values). */
static inline void gwin_raw_form(const char *from, const char *msgid, const char *nonce_hex,
                                 const char *box_hex, bool mac_ok, struct lst_buf *body)
{
    uint8_t mac[LST_THREEMA_MAC_SIZE];
    char mac_hex[LST_THREEMA_MAC_HEX + 1];
    lst_threema_callback_mac(GWIN_SECRET, from, GWIN_GATEWAY_ID, msgid, "1700000000", nonce_hex,
                             mac_ok ? box_hex : "00", mac);
    lst_threema_hex_encode(mac, sizeof(mac), mac_hex, sizeof(mac_hex));
    lst_buf_reset(body);
    lst_buf_printf(body,
                   "from=%s&to=%%2ALSTDEMO&messageId=%s&date=1700000000&nonce=%s&box=%s&mac=%s",
                   from, msgid, nonce_hex, box_hex, mac_hex);
}

/* ---- the service ---- */

/* Runs a program to completion; returns its exit status (-1 when it did not run). */
static inline int gwin_run(const char *const argv[])
{
    pid_t pid = fork();
    if (pid == 0) {
        execv(argv[0], (char *const *)(uintptr_t)argv);
        _exit(127);
    }
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) != pid)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Reads the stack environment and names this run (topic prefix, Redis key prefix, blob dir). */
static inline bool gwin_env_init(struct gwin_env *e, const char *name)
{
    memset(e, 0, sizeof(*e));
    e->pid = -1;
    e->brokers = gwin_getenv("LST_KAFKA_BROKERS", NULL);
    e->bin = gwin_getenv("GWIN_BIN", NULL);
    e->admin = gwin_getenv("GWIN_ADMIN", NULL);
    e->src = gwin_getenv("LST_SOURCE_DIR", NULL);
    e->work = gwin_getenv("GWIN_WORK", "/tmp");
    int64_t port = 0;
    if (lst_parse_i64(gwin_getenv("LST_REDIS_PORT", "16379"), 1, 65535, &port) == LST_OK)
        e->redis_port = (int)port;
    if (lst_parse_i64(gwin_getenv("LST_SIM_PORT", "18090"), 1, 65535, &port) == LST_OK)
        e->sim_port = (int)port;
    if (e->brokers == NULL || e->bin == NULL || e->admin == NULL || e->src == NULL) {
        fprintf(stderr, "needs LST_KAFKA_BROKERS, GWIN_BIN, GWIN_ADMIN, LST_SOURCE_DIR\n");
        return false;
    }
    long tag = (long)getpid() ^ (long)(lst_wall_ms() % 100000);
    snprintf(e->prefix, sizeof(e->prefix), "test.%s.%ld.", name, tag);
    snprintf(e->key_prefix, sizeof(e->key_prefix), "test:%s:%ld:", name, tag);
    snprintf(e->blob_dir, sizeof(e->blob_dir), "%s/%s-%ld/blobs", e->work, name, tag);
    snprintf(e->log, sizeof(e->log), "%s/%s-%ld.log", e->work, name, tag);
    snprintf(e->sim, sizeof(e->sim), "http://127.0.0.1:%d", e->sim_port);
    mkdir(e->work, 0755);
    char key[256];
    snprintf(key, sizeof(key), "%s/demo/DEMO-ONLY-gateway.public.key", e->src);
    if (lst_threema_key_read_file(key, LST_THREEMA_KEY_PUBLIC, e->gw_pk, NULL) != LST_OK)
        return false;
    char topics[256];
    snprintf(topics, sizeof(topics), "%s/proto/topics.tsv", e->src);
    const char *argv[] = {e->admin, "create-topics", "--brokers", e->brokers, "--file",
                          topics,   "--prefix",      e->prefix,   NULL};
    return gwin_run(argv) == 0;
}

/* Starts gateway-in with the run's settings plus extra "NAME=value" entries (NULL-ended). */
static inline bool gwin_start(struct gwin_env *e, const char *const *extra)
{
    e->port = gwin_free_port();
    snprintf(e->url, sizeof(e->url), "http://127.0.0.1:%d/threema/callback", e->port);
    pid_t pid = fork();
    if (pid == 0) {
        char v[1024];
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = open(e->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        snprintf(v, sizeof(v), "%d", e->port);
        setenv("LST_HTTP_PORT", v, 1);
        setenv("LST_TOPIC_PREFIX", e->prefix, 1);
        setenv("LST_REDIS_KEY_PREFIX", e->key_prefix, 1);
        setenv("LST_BLOB_DIR", e->blob_dir, 1);
        snprintf(v, sizeof(v), "http://127.0.0.1:%d", e->sim_port);
        setenv("LST_GATEWAY_URL", v, 1);
        setenv("LST_GATEWAY_ID", GWIN_GATEWAY_ID, 1);
        setenv("LST_GATEWAY_SECRET", GWIN_SECRET, 1);
        snprintf(v, sizeof(v), "%s/demo/DEMO-ONLY-gateway.private.key", e->src);
        setenv("LST_PRIVATE_KEY", v, 1);
        setenv("LST_LOG_LEVEL", "info", 0);
        for (size_t i = 0; extra != NULL && extra[i] != NULL; i++) {
            const char *eq = strchr(extra[i], '=');
            if (eq == NULL || (size_t)(eq - extra[i]) >= sizeof(v))
                continue;
            memcpy(v, extra[i], (size_t)(eq - extra[i]));
            v[eq - extra[i]] = '\0';
            setenv(v, eq + 1, 1);
        }
        execl(e->bin, e->bin, (char *)NULL);
        _exit(127);
    }
    e->pid = pid;
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/readyz", e->port);
    for (int64_t end = lst_mono_ms() + 30000; lst_mono_ms() < end;) {
        if (gwin_http("GET", url, NULL, 0, NULL) == 200)
            return true;
        if (waitpid(pid, NULL, WNOHANG) == pid) {
            e->pid = -1;
            return false;
        }
        lst_sleep_ms(100, NULL);
    }
    return false;
}

static inline bool gwin_healthy(const struct gwin_env *e)
{
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/healthz", e->port);
    return e->pid > 0 && waitpid(e->pid, NULL, WNOHANG) == 0 &&
           gwin_http("GET", url, NULL, 0, NULL) == 200;
}

/* SIGTERM and wait (bounded); returns the exit status, -1 when it had to be killed. */
static inline int gwin_stop(struct gwin_env *e)
{
    if (e->pid <= 0)
        return -1;
    kill(e->pid, SIGTERM);
    int st = 0;
    for (int64_t end = lst_mono_ms() + 20000; lst_mono_ms() < end;) {
        if (waitpid(e->pid, &st, WNOHANG) == e->pid) {
            e->pid = -1;
            return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        }
        lst_sleep_ms(50, NULL);
    }
    kill(e->pid, SIGKILL);
    waitpid(e->pid, NULL, 0);
    e->pid = -1;
    return -1;
}

/* The value of one metric series in /metrics ("name{labels}"), -1 when absent. */
static inline double gwin_metric(const struct gwin_env *e, const char *series)
{
    char url[128];
    struct lst_buf b;
    lst_buf_init(&b);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", e->port);
    double v = -1;
    if (gwin_http("GET", url, NULL, 0, &b) == 200) {
        size_t n = strlen(series);
        for (const char *p = b.data; p != NULL && *p != '\0';) {
            if (strncmp(p, series, n) == 0 && p[n] == ' ') {
                v = strtod(p + n + 1, NULL);
                break;
            }
            p = strchr(p, '\n');
            p = p != NULL ? p + 1 : NULL;
        }
    }
    lst_buf_cleanup(&b);
    return v;
}

/* ---- reading Kafka ---- */

struct gwin_seen {
    struct lst_inbound *in; /* decoded lst.inbound records */
    size_t nin;
    struct lst_dlq *dlq; /* decoded lst.inbound.dlq records */
    size_t ndlq;
    size_t undecodable; /* records that did not decode (a test failure) */
};

static inline void gwin_seen_cleanup(struct gwin_seen *s)
{
    for (size_t i = 0; i < s->nin; i++)
        lst_inbound_cleanup(&s->in[i]);
    for (size_t i = 0; i < s->ndlq; i++)
        lst_dlq_cleanup(&s->dlq[i]);
    free(s->in);
    free(s->dlq);
    memset(s, 0, sizeof(*s));
}

static inline size_t gwin_count_event(const struct gwin_seen *s, const char *from,
                                      const char *msgid)
{
    size_t n = 0;
    for (size_t i = 0; i < s->nin; i++)
        n += strcmp(s->in[i].from, from) == 0 && strcmp(s->in[i].threema_message_id, msgid) == 0;
    return n;
}

static inline const struct lst_inbound *gwin_find_event(const struct gwin_seen *s,
                                                        const char *msgid)
{
    for (size_t i = 0; i < s->nin; i++)
        if (strcmp(s->in[i].threema_message_id, msgid) == 0)
            return &s->in[i];
    return NULL;
}

/* DLQ records whose raw callback holds messageId=<msgid>. */
static inline size_t gwin_count_dlq(const struct gwin_seen *s, const char *msgid)
{
    char needle[40];
    snprintf(needle, sizeof(needle), "messageId=%s", msgid);
    size_t n = 0;
    for (size_t i = 0; i < s->ndlq; i++)
        n += s->dlq[i].value.data != NULL && strstr(s->dlq[i].value.data, needle) != NULL;
    return n;
}

typedef bool (*gwin_done_fn)(const struct gwin_seen *s, void *ud);

/* Consumes the run's lst.inbound and lst.inbound.dlq from the start until done(s) holds, then
 * settle_ms more (to catch duplicates), at most timeout_ms in all. */
static inline bool gwin_consume(const struct gwin_env *e, struct gwin_seen *s, gwin_done_fn done,
                                void *ud, int64_t settle_ms, int64_t timeout_ms)
{
    char t1[128], t2[128], group[128];
    snprintf(t1, sizeof(t1), "%slst.inbound", e->prefix);
    snprintf(t2, sizeof(t2), "%slst.inbound.dlq", e->prefix);
    snprintf(group, sizeof(group), "%sreader.%lld", e->prefix, (long long)lst_wall_ms());
    const char *topics[] = {t1, t2};
    struct lst_kafka_config kc = {.brokers = e->brokers, .client_id = "gwin-test"};
    struct lst_kafka_consumer_opts o = {.group_id = group, .topics = topics, .ntopics = 2};
    struct lst_kafka_consumer *c = NULL;
    if (lst_kafka_consumer_create(&kc, &o, &c) != LST_OK)
        return false;
    int64_t end = lst_mono_ms() + timeout_ms, settle_end = -1;
    bool ok = false;
    while (lst_mono_ms() < end) {
        if (settle_end < 0 && done(s, ud))
            settle_end = lst_mono_ms() + settle_ms;
        if (settle_end >= 0 && lst_mono_ms() >= settle_end) {
            ok = true;
            break;
        }
        struct lst_kafka_record r;
        lst_err err = lst_kafka_consumer_poll(c, 200, &r);
        if (err == LST_ERR_TIMEOUT)
            continue;
        if (err != LST_OK)
            break;
        if (strcmp(r.topic, t1) == 0) {
            s->in = realloc(s->in, (s->nin + 1) * sizeof(*s->in));
            if (lst_inbound_decode(r.value, r.len, &s->in[s->nin], NULL) == LST_OK)
                s->nin++;
            else
                s->undecodable++;
        } else {
            s->dlq = realloc(s->dlq, (s->ndlq + 1) * sizeof(*s->dlq));
            if (lst_dlq_decode(r.value, r.len, &s->dlq[s->ndlq], NULL) == LST_OK)
                s->ndlq++;
            else
                s->undecodable++;
        }
        lst_kafka_record_release(&r);
    }
    lst_kafka_consumer_destroy(c);
    return ok;
}

#endif
