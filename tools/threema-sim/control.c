/* The control and inspection API under /_sim/ (JSON), for tests, benchmarks and the chaos
 * checker. Not part of the Gateway: no from/secret, no faults, no journal entries.
 *
 *   GET  /_sim/users              the directory: id, employeeNo, publicKey, profile
 *   GET  /_sim/users/{id}         one user, with the private key (tests act as the phone)
 *   GET  /_sim/inbox/{id}         what that phone received and decrypted
 *   POST /_sim/reply              {"from":ID,"kind":"text|location|photo|receipt","text":..,
 *                                  "lat":..,"lon":..,"status":N,"messageId":HEX} -> now
 *   GET  /_sim/faults             the failure settings
 *   POST /_sim/faults             {"credits","rateLimit","rateBurst","retryAfterS","error500Rate",
 *                                  "timeoutRate","timeoutAfterRate","timeoutMs","callbackUrl",
 *                                  "callbacksPaused","callbackRetries","callbackRetryIntervalMs"}
 *   GET  /_sim/credits            {"credits":N}
 *   GET  /_sim/log?since=N&limit=M the request journal
 *   GET  /_sim/stats              counters of every part
 *   POST /_sim/reset              inboxes, journal, blobs, queued callbacks, faults, credits
 *                                 back to the start-up state */
#include <json-c/json.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lst/threema.h"
#include "sim.h"

static void json_reply(struct lst_http_response *resp, struct lst_buf *b)
{
    if (lst_buf_failed(b))
        lst_http_problem(resp, 500, "internal-error", "Internal Server Error", "out of memory");
    else
        lst_http_reply(resp, 200, "application/json", b->data, b->len);
}

static void bad_request(struct lst_http_response *resp, const char *detail)
{
    lst_http_problem(resp, 400, "bad-request", "Bad Request", "%s", detail);
}

static const struct sim_user *user_arg(struct sim *sim, const struct lst_http_request *req,
                                       struct lst_http_response *resp)
{
    const struct sim_user *u = sim_directory_by_id(&sim->dir, req->path + strlen(req->route));
    if (u == NULL)
        lst_http_problem(resp, 404, "not-found", "Not Found", "no such simulated user");
    return u;
}

static json_object *body_object(const struct lst_http_request *req)
{
    json_tokener *tok = json_tokener_new();
    if (tok == NULL)
        return NULL;
    json_object *doc = json_tokener_parse_ex(tok, req->body, (int)req->body_len);
    bool ok = json_tokener_get_error(tok) == json_tokener_success &&
              json_tokener_get_parse_end(tok) == req->body_len &&
              json_object_is_type(doc, json_type_object);
    json_tokener_free(tok);
    if (!ok) {
        json_object_put(doc);
        return NULL;
    }
    return doc;
}

/* ---- users and inboxes ---- */

static void user_json(const struct sim_user *u, bool with_private, struct lst_buf *b)
{
    char pk[LST_THREEMA_KEY_STR_SIZE];
    lst_threema_key_format(LST_THREEMA_KEY_PUBLIC, u->pk, pk);
    lst_buf_printf(b, "{\"identity\":\"%s\",\"employeeNo\":", u->id);
    lst_buf_json_str(b, u->employee_no, strlen(u->employee_no));
    lst_buf_printf(b, ",\"publicKey\":\"%s\",\"readReceipts\":%s,\"capabilities\":\"%s\"", pk,
                   u->read_receipts ? "true" : "false", sim_user_capabilities(u));
    lst_buf_printf(b, ",\"hasPhone\":%s,\"hasEmail\":%s", u->phone ? "true" : "false",
                   u->email ? "true" : "false");
    if (with_private) {
        char sk[LST_THREEMA_KEY_STR_SIZE];
        lst_threema_key_format(LST_THREEMA_KEY_PRIVATE, u->sk, sk);
        lst_buf_printf(b, ",\"privateKey\":\"%s\"", sk);
        if (u->phone != NULL)
            lst_buf_printf(b, ",\"phone\":\"%s\"", u->phone);
        if (u->email != NULL) {
            lst_buf_puts(b, ",\"email\":");
            lst_buf_json_str(b, u->email, strlen(u->email));
        }
        lst_threema_wipe(sk, sizeof(sk));
    }
    lst_buf_puts(b, "}");
}

static void users(void *ud, const struct lst_http_request *req, struct lst_http_response *resp)
{
    struct sim *sim = ud;
    struct lst_buf b;
    (void)req;
    lst_buf_init(&b);
    lst_buf_puts(&b, "[");
    for (size_t i = 0; i < sim->dir.n; i++) {
        if (i > 0)
            lst_buf_puts(&b, ",");
        user_json(&sim->dir.users[i], false, &b);
    }
    lst_buf_puts(&b, "]");
    json_reply(resp, &b);
    lst_buf_cleanup(&b);
}

static void user(void *ud, const struct lst_http_request *req, struct lst_http_response *resp)
{
    struct sim *sim = ud;
    const struct sim_user *u = user_arg(sim, req, resp);
    if (u == NULL)
        return;
    struct lst_buf b;
    lst_buf_init(&b);
    user_json(u, true, &b);
    json_reply(resp, &b);
    lst_buf_cleanup(&b);
}

static void inbox(void *ud, const struct lst_http_request *req, struct lst_http_response *resp)
{
    struct sim *sim = ud;
    const struct sim_user *u = user_arg(sim, req, resp);
    if (u == NULL)
        return;
    struct lst_buf b;
    lst_buf_init(&b);
    sim_phones_inbox_json(sim->phones, u, &b);
    json_reply(resp, &b);
    lst_buf_cleanup(&b);
}

/* ---- reply ---- */

static const char *str_member(json_object *o, const char *key)
{
    json_object *v = NULL;
    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

static bool num_member(json_object *o, const char *key, double *out)
{
    json_object *v = NULL;
    if (!json_object_object_get_ex(o, key, &v) ||
        !(json_object_is_type(v, json_type_double) || json_object_is_type(v, json_type_int)))
        return false;
    *out = json_object_get_double(v);
    return isfinite(*out);
}

static void reply(void *ud, const struct lst_http_request *req, struct lst_http_response *resp)
{
    struct sim *sim = ud;
    json_object *doc = body_object(req);
    const char *from = doc != NULL ? str_member(doc, "from") : NULL;
    const char *kind = doc != NULL ? str_member(doc, "kind") : NULL;
    const struct sim_user *u = from != NULL ? sim_directory_by_id(&sim->dir, from) : NULL;
    if (u == NULL || kind == NULL) {
        bad_request(resp, "needs a JSON object with from (a simulated user) and kind");
        json_object_put(doc);
        return;
    }
    double lat = 53.5511, lon = 9.9937, status = 2;
    num_member(doc, "lat", &lat);
    num_member(doc, "lon", &lon);
    num_member(doc, "status", &status);
    struct lst_buf answer;
    lst_buf_init(&answer);
    const char *why = NULL;
    lst_err err = sim_phones_reply(sim->phones, u, kind, str_member(doc, "text"), lat, lon,
                                   (int)status, str_member(doc, "messageId"), &answer, &why);
    if (err == LST_OK)
        json_reply(resp, &answer);
    else if (err == LST_ERR_STATE)
        lst_http_problem(resp, 409, "conflict", "Conflict", "%s", why);
    else
        bad_request(resp, why != NULL ? why : lst_strerror(err));
    lst_buf_cleanup(&answer);
    json_object_put(doc);
}

/* ---- faults ---- */

/* A number member within [lo, hi]: *has tells whether it was there; false when out of range. */
static bool bounded(json_object *doc, const char *key, double lo, double hi, bool *has, double *out)
{
    *has = num_member(doc, key, out);
    return !*has || (*out >= lo && *out <= hi);
}

/* Reads the fault members of doc; false (with why) when one is out of range. */
static bool read_fault_update(json_object *doc, struct sim_fault_update *u, const char **why)
{
    double credits = 0, burst = 0, timeout = 0, retry_after = 0;
    memset(u, 0, sizeof(*u));
    *why = "rates must be in [0, 1]; credits, rateLimit, rateBurst (>= 1) and timeoutMs "
           "non-negative; retryAfterS in [0, 3600]";
    bool ok = bounded(doc, "error500Rate", 0, 1, &u->has_500, &u->rate_500);
    ok = ok && bounded(doc, "timeoutRate", 0, 1, &u->has_timeout, &u->rate_timeout);
    ok =
        ok && bounded(doc, "timeoutAfterRate", 0, 1, &u->has_timeout_after, &u->rate_timeout_after);
    ok = ok && bounded(doc, "credits", 0, 1e15, &u->has_credits, &credits);
    ok = ok && bounded(doc, "rateLimit", 0, 1e6, &u->has_rate_limit, &u->rate_limit);
    ok = ok && bounded(doc, "rateBurst", 1, 1e6, &u->has_rate_burst, &burst);
    ok = ok && bounded(doc, "timeoutMs", 0, 600000, &u->has_timeout_ms, &timeout);
    ok = ok && bounded(doc, "retryAfterS", 0, 3600, &u->has_retry_after, &retry_after);
    u->retry_after_s = (int64_t)retry_after;
    u->credits = (int64_t)credits;
    u->rate_burst = (int64_t)burst;
    u->timeout_ms = (int64_t)timeout;
    return ok;
}

static void apply_callback_settings(struct sim *sim, json_object *doc)
{
    json_object *v = NULL;
    double retries = -1, interval = -1;
    if (json_object_object_get_ex(doc, "callbackUrl", &v))
        sim_callbacks_set_url(sim->callbacks, json_object_is_type(v, json_type_string)
                                                  ? json_object_get_string(v)
                                                  : NULL);
    if (json_object_object_get_ex(doc, "callbacksPaused", &v))
        sim_callbacks_set_paused(sim->callbacks, json_object_get_boolean(v));
    num_member(doc, "callbackRetries", &retries);
    num_member(doc, "callbackRetryIntervalMs", &interval);
    if (retries > 100 || interval > 86400000.0)
        return;
    sim_callbacks_set_retry(sim->callbacks, (int64_t)retries, (int64_t)interval);
}

static void faults_json(struct sim *sim, struct lst_buf *b)
{
    lst_buf_puts(b, "{\"gateway\":");
    sim_faults_json(&sim->faults, b);
    lst_buf_puts(b, ",\"callbacks\":");
    sim_callbacks_json(sim->callbacks, b);
    lst_buf_puts(b, "}");
}

static void faults_get(void *ud, const struct lst_http_request *req, struct lst_http_response *resp)
{
    struct lst_buf b;
    (void)req;
    lst_buf_init(&b);
    faults_json(ud, &b);
    json_reply(resp, &b);
    lst_buf_cleanup(&b);
}

static void faults_post(void *ud, const struct lst_http_request *req,
                        struct lst_http_response *resp)
{
    struct sim *sim = ud;
    struct sim_fault_update upd;
    const char *why = NULL;
    json_object *doc = body_object(req);
    if (doc == NULL) {
        bad_request(resp, "needs a JSON object");
        return;
    }
    if (!read_fault_update(doc, &upd, &why)) {
        bad_request(resp, why);
    } else if (!sim_may_hang(&sim->cfg) &&
               ((upd.has_timeout && upd.rate_timeout > 0) ||
                (upd.has_timeout_after && upd.rate_timeout_after > 0))) {
        bad_request(resp, "timeoutRate and timeoutAfterRate need LST_SIM_EVENT_THREADS=0: a "
                          "hanging request would stall every connection of its event thread");
    } else {
        sim_faults_update(&sim->faults, &upd);
        apply_callback_settings(sim, doc);
        lst_gauge_set(sim->m.credits, (double)sim_faults_credits(&sim->faults));
        faults_get(ud, req, resp);
    }
    json_object_put(doc);
}

/* ---- credits, log, stats, reset ---- */

static void credits(void *ud, const struct lst_http_request *req, struct lst_http_response *resp)
{
    struct sim *sim = ud;
    struct lst_buf b;
    (void)req;
    lst_buf_init(&b);
    lst_buf_printf(&b, "{\"credits\":%lld}", (long long)sim_faults_credits(&sim->faults));
    json_reply(resp, &b);
    lst_buf_cleanup(&b);
}

static void log_get(void *ud, const struct lst_http_request *req, struct lst_http_response *resp)
{
    struct sim *sim = ud;
    const char *since_s = lst_http_query(req, "since");
    const char *limit_s = lst_http_query(req, "limit");
    int64_t since = 0, limit = 1000;
    if ((since_s != NULL && lst_parse_i64(since_s, 0, INT64_MAX, &since) != LST_OK) ||
        (limit_s != NULL && lst_parse_i64(limit_s, 1, 100000, &limit) != LST_OK)) {
        bad_request(resp, "since must be >= 0, limit 1..100000");
        return;
    }
    struct lst_buf b;
    lst_buf_init(&b);
    sim_journal_json(&sim->journal, (uint64_t)since, (size_t)limit, &b);
    json_reply(resp, &b);
    lst_buf_cleanup(&b);
}

static void stats(void *ud, const struct lst_http_request *req, struct lst_http_response *resp)
{
    struct sim *sim = ud;
    struct lst_buf b;
    (void)req;
    lst_buf_init(&b);
    lst_buf_printf(&b, "{\"users\":%zu,\"credits\":%lld,\"phones\":", sim->dir.n,
                   (long long)sim_faults_credits(&sim->faults));
    sim_phones_json(sim->phones, &b);
    lst_buf_puts(&b, ",\"callbacks\":");
    sim_callbacks_json(sim->callbacks, &b);
    pthread_mutex_lock(&sim->blobs.lock);
    lst_buf_printf(&b, ",\"blobs\":{\"count\":%zu,\"bytes\":%zu}}", sim->blobs.count,
                   sim->blobs.bytes);
    pthread_mutex_unlock(&sim->blobs.lock);
    json_reply(resp, &b);
    lst_buf_cleanup(&b);
}

static void reset(void *ud, const struct lst_http_request *req, struct lst_http_response *resp)
{
    struct sim *sim = ud;
    sim_callbacks_reset(sim->callbacks);
    sim_phones_reset(sim->phones);
    sim_journal_reset(&sim->journal);
    sim_blobs_clear(&sim->blobs);
    sim_faults_reset(&sim->faults, &sim->cfg);
    lst_gauge_set(sim->m.credits, (double)sim_faults_credits(&sim->faults));
    faults_get(ud, req, resp);
}

const struct lst_http_route sim_control_routes[] = {
    {"GET", "/_sim/users", false, users},       {"GET", "/_sim/users/", true, user},
    {"GET", "/_sim/inbox/", true, inbox},       {"POST", "/_sim/reply", false, reply},
    {"GET", "/_sim/faults", false, faults_get}, {"POST", "/_sim/faults", false, faults_post},
    {"GET", "/_sim/credits", false, credits},   {"GET", "/_sim/log", false, log_get},
    {"GET", "/_sim/stats", false, stats},       {"POST", "/_sim/reset", false, reset},
};
const size_t sim_control_nroutes = LST_ARRAY_LEN(sim_control_routes);
