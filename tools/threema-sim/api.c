/* The Gateway endpoints, with the parameter placement and status codes of the reference doc
 * (docs threema-gateway.md, section 2): from/secret in the form body for send_simple and
 * send_e2e, in the query string for every GET, upload_blob and the JSON bulk calls. Answers
 * are plain text (IDs, keys, numbers) or JSON (bulk); error bodies carry nothing useful, as
 * on the real Gateway.
 *
 * Every request passes through gateway(): the fault draw (429 from the token bucket, injected
 * 500s and timeouts), the endpoint, then the journal and the metrics. An endpoint is split
 * into auth, validate, act; a send takes its credit only once everything else is valid. */
#include <json-c/json.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lst/log.h"
#include "lst/threema.h"
#include "sim.h"

#define TEXT_PLAIN "text/plain; charset=utf-8"

/* What one endpoint did, for the journal. */
struct outcome {
    int status;
    char to[SIM_ID_LEN + 1];
    char message_id[2 * SIM_MSGID_LEN + 1];
};

typedef void (*endpoint_fn)(struct sim *sim, const struct lst_http_request *req,
                            struct lst_http_response *resp, struct outcome *oc);

/* ---- helpers ---- */

static void reply_text(struct lst_http_response *resp, struct outcome *oc, int status,
                       const char *text)
{
    lst_http_reply(resp, status, TEXT_PLAIN, text, strlen(text));
    oc->status = status;
}

/* An error answer: the status and a short body, as the Gateway gives nothing more. */
static void fail(struct lst_http_response *resp, struct outcome *oc, int status)
{
    const char *text = status == 400   ? "bad request"
                       : status == 401 ? "unauthorized"
                       : status == 402 ? "no credits"
                       : status == 404 ? "not found"
                       : status == 413 ? "too large"
                       : status == 429 ? "rate limited"
                                       : "internal error";
    reply_text(resp, oc, status, text);
}

static bool secret_ok(const struct sim *sim, const char *from, const char *secret)
{
    if (from == NULL || secret == NULL || strcmp(from, sim->cfg.gateway_id) != 0)
        return false;
    size_t n = strlen(sim->cfg.secret);
    return strlen(secret) == n && sodium_memcmp(secret, sim->cfg.secret, n) == 0;
}

static bool query_auth_ok(const struct sim *sim, const struct lst_http_request *req)
{
    return secret_ok(sim, lst_http_query(req, "from"), lst_http_query(req, "secret"));
}

static bool form_auth_ok(const struct sim *sim, const struct sim_form *f)
{
    const struct sim_form_field *from = sim_form_get(f, "from");
    const struct sim_form_field *secret = sim_form_get(f, "secret");
    return from != NULL && secret != NULL && secret_ok(sim, from->value, secret->value);
}

/* The path after the route's prefix, e.g. the ID of /pubkeys/{id}. */
static const char *path_arg(const struct lst_http_request *req)
{
    return req->path + strlen(req->route);
}

static void new_msgid(char out[2 * SIM_MSGID_LEN + 1])
{
    uint8_t raw[SIM_MSGID_LEN];
    randombytes_buf(raw, sizeof(raw));
    lst_threema_hex_encode(raw, sizeof(raw), out, 2 * SIM_MSGID_LEN + 1);
}

static bool flag_set(const struct sim_form *f, const char *name)
{
    const struct sim_form_field *v = sim_form_get(f, name);
    bool b = false;
    return v != NULL && lst_parse_bool(v->value, &b) == LST_OK && b;
}

static bool is_hash(const char *s)
{
    uint8_t raw[32];
    return strlen(s) == SIM_HASH_HEX_LEN &&
           lst_threema_hex_decode(s, SIM_HASH_HEX_LEN, raw, sizeof(raw)) == LST_OK;
}

static json_object *parse_json(const struct lst_http_request *req)
{
    json_tokener *tok = json_tokener_new();
    if (tok == NULL)
        return NULL;
    json_object *doc = json_tokener_parse_ex(tok, req->body, (int)req->body_len);
    bool complete = json_tokener_get_error(tok) == json_tokener_success &&
                    json_tokener_get_parse_end(tok) == req->body_len;
    json_tokener_free(tok);
    if (!complete) {
        json_object_put(doc);
        return NULL;
    }
    return doc;
}

/* ---- sending ---- */

/* The recipient of send_simple: exactly one of to / phone / email. 0 when found, else the
 * status to answer (400 bad or ambiguous recipient, 404 phone/e-mail unknown). */
static int simple_recipient(struct sim *sim, const struct sim_form *f, const struct sim_user **u)
{
    const struct sim_form_field *to = sim_form_get(f, "to");
    const struct sim_form_field *phone = sim_form_get(f, "phone");
    const struct sim_form_field *email = sim_form_get(f, "email");
    if ((to != NULL) + (phone != NULL) + (email != NULL) != 1)
        return 400;
    if (to != NULL) {
        *u = sim_directory_by_id(&sim->dir, to->value);
        return *u != NULL ? 0 : 400;
    }
    *u = phone != NULL ? sim_directory_by_phone(&sim->dir, phone->value)
                       : sim_directory_by_email(&sim->dir, email->value);
    return *u != NULL ? 0 : 404;
}

static void send_simple(struct sim *sim, const struct lst_http_request *req,
                        struct lst_http_response *resp, struct outcome *oc)
{
    struct sim_form f = {0};
    const struct sim_user *u = NULL;
    int status = 0;
    if (sim_form_parse_urlencoded(&f, req->body, req->body_len) != LST_OK)
        status = 400;
    else if (!form_auth_ok(sim, &f))
        status = 401;
    const struct sim_form_field *text = sim_form_get(&f, "text");
    if (status == 0)
        status = simple_recipient(sim, &f, &u);
    if (status == 0 &&
        (text == NULL || text->value_len == 0 || !lst_utf8_valid(text->value, text->value_len)))
        status = 400;
    if (status == 0 && text->value_len > SIM_MAX_TEXT_BYTES)
        status = 413;
    if (status == 0 && !sim_faults_take_credits(&sim->faults, 1))
        status = 402;
    if (status != 0) {
        fail(resp, oc, status);
    } else {
        memcpy(oc->to, u->id, sizeof(oc->to));
        new_msgid(oc->message_id);
        sim_phones_deliver_simple(sim->phones, u, oc->message_id, text->value, text->value_len);
        reply_text(resp, oc, 200, oc->message_id);
    }
    sim_form_cleanup(&f);
}

/* Validates to/nonce/box of one E2E message. 0 when fine, else the status (400/413). The box
 * bytes go into box. */
static int e2e_item(struct sim *sim, const char *to, const uint8_t *nonce_ok, size_t box_len,
                    const struct sim_user **u)
{
    *u = to != NULL ? sim_directory_by_id(&sim->dir, to) : NULL;
    if (*u == NULL || nonce_ok == NULL)
        return 400;
    if (box_len > SIM_MAX_BOX_BYTES)
        return 413;
    return box_len == 0 ? 400 : 0;
}

static void send_e2e(struct sim *sim, const struct lst_http_request *req,
                     struct lst_http_response *resp, struct outcome *oc)
{
    struct sim_form f = {0};
    struct lst_buf box;
    uint8_t nonce[LST_THREEMA_NONCE_SIZE];
    const struct sim_user *u = NULL;
    int status = 0;
    lst_buf_init(&box);
    if (sim_form_parse_urlencoded(&f, req->body, req->body_len) != LST_OK)
        status = 400;
    else if (!form_auth_ok(sim, &f))
        status = 401;
    const struct sim_form_field *to = sim_form_get(&f, "to");
    const struct sim_form_field *nonce_hex = sim_form_get(&f, "nonce");
    const struct sim_form_field *box_hex = sim_form_get(&f, "box");
    bool nonce_ok =
        nonce_hex != NULL && lst_threema_hex_decode(nonce_hex->value, nonce_hex->value_len, nonce,
                                                    sizeof(nonce)) == LST_OK;
    if (status == 0 && box_hex != NULL && box_hex->value_len > 2 * SIM_MAX_BOX_BYTES)
        status = 413;
    if (status == 0 && (box_hex == NULL || lst_threema_hex_decode_buf(
                                               box_hex->value, box_hex->value_len, &box) != LST_OK))
        status = 400;
    if (status == 0)
        status = e2e_item(sim, to->value, nonce_ok ? nonce : NULL, box.len, &u);
    if (status == 0 && !sim_faults_take_credits(&sim->faults, 1))
        status = 402;
    if (status != 0) {
        fail(resp, oc, status);
    } else {
        memcpy(oc->to, u->id, sizeof(oc->to));
        new_msgid(oc->message_id);
        sim_phones_deliver(sim->phones, u, oc->message_id, nonce, (const uint8_t *)box.data,
                           box.len, flag_set(&f, "noDeliveryReceipts"), flag_set(&f, "noPush"));
        reply_text(resp, oc, 200, oc->message_id);
    }
    lst_buf_cleanup(&box);
    sim_form_cleanup(&f);
}

/* Decodes a base64 member of a bulk item into out (replaced); false when absent or bad. */
static bool b64_member(json_object *item, const char *key, struct lst_buf *out)
{
    json_object *v = NULL;
    lst_buf_reset(out);
    if (!json_object_object_get_ex(item, key, &v) || !json_object_is_type(v, json_type_string))
        return false;
    const char *s = json_object_get_string(v);
    size_t slen = strlen(s), cap = slen / 4 * 3 + 3, n = 0;
    if (lst_buf_append(out, NULL, 0) != LST_OK || slen == 0)
        return false;
    unsigned char *tmp = malloc(cap);
    bool ok = tmp != NULL && sodium_base642bin(tmp, cap, s, slen, NULL, &n, NULL,
                                               sodium_base64_VARIANT_ORIGINAL) == 0;
    if (ok)
        ok = lst_buf_append(out, tmp, n) == LST_OK;
    free(tmp);
    return ok;
}

static bool bool_member(json_object *item, const char *key)
{
    json_object *v = NULL;
    return json_object_object_get_ex(item, key, &v) && json_object_get_boolean(v);
}

/* One message of send_e2e_bulk; appends {"messageId":...} or {"errorCode":N}. */
static void bulk_item(struct sim *sim, json_object *item, struct lst_buf *out)
{
    struct lst_buf nonce, box;
    lst_buf_init(&nonce);
    lst_buf_init(&box);
    json_object *to = NULL;
    const struct sim_user *u = NULL;
    int status = 400;
    if (json_object_is_type(item, json_type_object) && json_object_object_get_ex(item, "to", &to) &&
        json_object_is_type(to, json_type_string)) {
        bool nonce_ok = b64_member(item, "nonce", &nonce) && nonce.len == LST_THREEMA_NONCE_SIZE;
        bool box_ok = b64_member(item, "box", &box);
        status = e2e_item(sim, json_object_get_string(to),
                          nonce_ok ? (const uint8_t *)nonce.data : NULL, box_ok ? box.len : 0, &u);
    }
    if (status == 0 && !sim_faults_take_credits(&sim->faults, 1))
        status = 402;
    if (status != 0) {
        lst_buf_printf(out, "{\"errorCode\":%d}", status);
    } else {
        char msgid[2 * SIM_MSGID_LEN + 1];
        new_msgid(msgid);
        sim_phones_deliver(sim->phones, u, msgid, (const uint8_t *)nonce.data,
                           (const uint8_t *)box.data, box.len,
                           bool_member(item, "noDeliveryReceipts"), bool_member(item, "noPush"));
        lst_buf_printf(out, "{\"messageId\":\"%s\"}", msgid);
    }
    lst_buf_cleanup(&nonce);
    lst_buf_cleanup(&box);
}

static void send_e2e_bulk(struct sim *sim, const struct lst_http_request *req,
                          struct lst_http_response *resp, struct outcome *oc)
{
    if (!query_auth_ok(sim, req)) {
        fail(resp, oc, 401);
        return;
    }
    json_object *doc = parse_json(req);
    if (doc == NULL || !json_object_is_type(doc, json_type_array) ||
        json_object_array_length(doc) == 0) {
        fail(resp, oc, 400);
    } else if (json_object_array_length(doc) > (size_t)sim->cfg.bulk_max) {
        fail(resp, oc, 413);
    } else {
        struct lst_buf out;
        lst_buf_init(&out);
        lst_buf_puts(&out, "[");
        for (size_t i = 0; i < json_object_array_length(doc); i++) {
            if (i > 0)
                lst_buf_puts(&out, ",");
            bulk_item(sim, json_object_array_get_idx(doc, i), &out);
        }
        lst_buf_puts(&out, "]");
        lst_http_reply(resp, 200, "application/json", out.data, out.len);
        oc->status = 200;
        lst_buf_cleanup(&out);
    }
    json_object_put(doc);
}

/* ---- keys, lookups, capabilities, credits ---- */

static void answer_key(const struct sim_user *u, struct lst_http_response *resp, struct outcome *oc)
{
    char hex[2 * SIM_KEY_LEN + 1];
    lst_threema_hex_encode(u->pk, sizeof(u->pk), hex, sizeof(hex));
    reply_text(resp, oc, 200, hex);
}

static void pubkey(struct sim *sim, const struct lst_http_request *req,
                   struct lst_http_response *resp, struct outcome *oc)
{
    const char *id = path_arg(req);
    bool valid = lst_threema_id_valid(id, strlen(id));
    const struct sim_user *u = valid ? sim_directory_by_id(&sim->dir, id) : NULL;
    if (!query_auth_ok(sim, req))
        fail(resp, oc, 401);
    else if (!valid)
        fail(resp, oc, 400);
    else if (u == NULL)
        fail(resp, oc, 404);
    else
        answer_key(u, resp, oc);
}

/* The common shape of the four single lookups: auth, validate the value, find, answer the ID. */
static void lookup(struct sim *sim, const struct lst_http_request *req,
                   struct lst_http_response *resp, struct outcome *oc, bool valid,
                   const struct sim_user *u)
{
    if (!query_auth_ok(sim, req))
        fail(resp, oc, 401);
    else if (!valid)
        fail(resp, oc, 400);
    else if (u == NULL)
        fail(resp, oc, 404);
    else
        reply_text(resp, oc, 200, u->id);
}

static void lookup_phone(struct sim *sim, const struct lst_http_request *req,
                         struct lst_http_response *resp, struct outcome *oc)
{
    const char *v = path_arg(req);
    bool valid = v[0] != '\0' && strspn(v, "0123456789") == strlen(v) && strlen(v) <= 15;
    lookup(sim, req, resp, oc, valid, valid ? sim_directory_by_phone(&sim->dir, v) : NULL);
}

static void lookup_phone_hash(struct sim *sim, const struct lst_http_request *req,
                              struct lst_http_response *resp, struct outcome *oc)
{
    const char *v = path_arg(req);
    bool valid = is_hash(v);
    lookup(sim, req, resp, oc, valid, valid ? sim_directory_by_phone_hash(&sim->dir, v) : NULL);
}

static void lookup_email(struct sim *sim, const struct lst_http_request *req,
                         struct lst_http_response *resp, struct outcome *oc)
{
    const char *v = path_arg(req);
    bool valid = strchr(v, '@') != NULL;
    lookup(sim, req, resp, oc, valid, valid ? sim_directory_by_email(&sim->dir, v) : NULL);
}

static void lookup_email_hash(struct sim *sim, const struct lst_http_request *req,
                              struct lst_http_response *resp, struct outcome *oc)
{
    const char *v = path_arg(req);
    bool valid = is_hash(v);
    lookup(sim, req, resp, oc, valid, valid ? sim_directory_by_email_hash(&sim->dir, v) : NULL);
}

static void capabilities(struct sim *sim, const struct lst_http_request *req,
                         struct lst_http_response *resp, struct outcome *oc)
{
    const char *id = path_arg(req);
    bool valid = lst_threema_id_valid(id, strlen(id));
    const struct sim_user *u = valid ? sim_directory_by_id(&sim->dir, id) : NULL;
    if (!query_auth_ok(sim, req))
        fail(resp, oc, 401);
    else if (!valid)
        fail(resp, oc, 400);
    else if (u == NULL)
        fail(resp, oc, 404);
    else
        reply_text(resp, oc, 200, sim_user_capabilities(u));
}

static void credits(struct sim *sim, const struct lst_http_request *req,
                    struct lst_http_response *resp, struct outcome *oc)
{
    char num[32];
    if (!query_auth_ok(sim, req)) {
        fail(resp, oc, 401);
        return;
    }
    snprintf(num, sizeof(num), "%lld", (long long)sim_faults_credits(&sim->faults));
    reply_text(resp, oc, 200, num);
}

/* ---- bulk lookups ---- */

static void key_entry(struct lst_buf *out, const struct sim_user *u, const char *hash_key,
                      const char *hash)
{
    char hex[2 * SIM_KEY_LEN + 1];
    lst_threema_hex_encode(u->pk, sizeof(u->pk), hex, sizeof(hex));
    lst_buf_printf(out, "%s{\"identity\":\"%s\",\"publicKey\":\"%s\"", out->len > 1 ? "," : "",
                   u->id, hex);
    if (hash_key != NULL)
        lst_buf_printf(out, ",\"%s\":\"%s\"", hash_key, hash);
    lst_buf_puts(out, "}");
}

/* A JSON array member of strings; NULL when absent, *bad when present but not an array of
 * strings. */
static json_object *string_array(json_object *doc, const char *key, bool *bad)
{
    json_object *arr = NULL;
    if (!json_object_object_get_ex(doc, key, &arr))
        return NULL;
    if (!json_object_is_type(arr, json_type_array)) {
        *bad = true;
        return NULL;
    }
    for (size_t i = 0; i < json_object_array_length(arr); i++) {
        if (!json_object_is_type(json_object_array_get_idx(arr, i), json_type_string))
            *bad = true;
    }
    return arr;
}

static size_t arr_len(json_object *a)
{
    return a != NULL ? json_object_array_length(a) : 0;
}

static void pubkeys_bulk(struct sim *sim, const struct lst_http_request *req,
                         struct lst_http_response *resp, struct outcome *oc)
{
    bool bad = false;
    if (!query_auth_ok(sim, req)) {
        fail(resp, oc, 401);
        return;
    }
    json_object *doc = parse_json(req);
    json_object *ids = doc != NULL ? string_array(doc, "identities", &bad) : NULL;
    if (ids == NULL || bad) {
        fail(resp, oc, 400);
    } else if (arr_len(ids) > (size_t)sim->cfg.bulk_max) {
        fail(resp, oc, 413);
    } else {
        struct lst_buf out;
        lst_buf_init(&out);
        lst_buf_puts(&out, "[");
        for (size_t i = 0; i < arr_len(ids); i++) {
            const char *id = json_object_get_string(json_object_array_get_idx(ids, i));
            const struct sim_user *u = sim_directory_by_id(&sim->dir, id);
            if (u != NULL)
                key_entry(&out, u, NULL, NULL);
        }
        lst_buf_puts(&out, "]");
        lst_http_reply(resp, 200, "application/json", out.data, out.len);
        oc->status = 200;
        lst_buf_cleanup(&out);
    }
    json_object_put(doc);
}

static bool hashes_valid(json_object *arr)
{
    for (size_t i = 0; i < arr_len(arr); i++) {
        if (!is_hash(json_object_get_string(json_object_array_get_idx(arr, i))))
            return false;
    }
    return true;
}

static void lookup_bulk_answer(struct sim *sim, json_object *phones, json_object *emails,
                               struct lst_buf *out)
{
    lst_buf_puts(out, "[");
    for (size_t i = 0; i < arr_len(phones); i++) {
        const char *h = json_object_get_string(json_object_array_get_idx(phones, i));
        const struct sim_user *u = sim_directory_by_phone_hash(&sim->dir, h);
        if (u != NULL)
            key_entry(out, u, "phoneHash", u->phone_hash);
    }
    for (size_t i = 0; i < arr_len(emails); i++) {
        const char *h = json_object_get_string(json_object_array_get_idx(emails, i));
        const struct sim_user *u = sim_directory_by_email_hash(&sim->dir, h);
        if (u != NULL)
            key_entry(out, u, "emailHash", u->email_hash);
    }
    lst_buf_puts(out, "]");
}

static void lookup_bulk(struct sim *sim, const struct lst_http_request *req,
                        struct lst_http_response *resp, struct outcome *oc)
{
    bool bad = false;
    if (!query_auth_ok(sim, req)) {
        fail(resp, oc, 401);
        return;
    }
    json_object *doc = parse_json(req);
    if (doc == NULL || !json_object_is_type(doc, json_type_object))
        bad = true;
    json_object *phones = bad ? NULL : string_array(doc, "phoneHashes", &bad);
    json_object *emails = bad ? NULL : string_array(doc, "emailHashes", &bad);
    if (bad || !hashes_valid(phones) || !hashes_valid(emails)) {
        fail(resp, oc, 400);
    } else if (arr_len(phones) + arr_len(emails) > (size_t)sim->cfg.bulk_max) {
        fail(resp, oc, 413);
    } else {
        struct lst_buf out;
        lst_buf_init(&out);
        lookup_bulk_answer(sim, phones, emails, &out);
        lst_http_reply(resp, 200, "application/json", out.data, out.len);
        oc->status = 200;
        lst_buf_cleanup(&out);
    }
    json_object_put(doc);
}

/* ---- blobs ---- */

static void upload_blob(struct sim *sim, const struct lst_http_request *req,
                        struct lst_http_response *resp, struct outcome *oc)
{
    struct sim_form f = {0};
    const struct sim_form_field *blob = NULL;
    int status = 0;
    if (!query_auth_ok(sim, req))
        status = 401;
    else if (sim_form_parse_multipart(&f, lst_http_header(req, "Content-Type"), req->body,
                                      req->body_len) == LST_OK)
        blob = sim_form_get(&f, "blob");
    if (status == 0 && (blob == NULL || blob->value_len == 0))
        status = 400;
    if (status == 0 && blob->value_len > (size_t)sim->cfg.blob_max_bytes)
        status = 413;
    if (status == 0 && !sim_faults_take_credits(&sim->faults, 1))
        status = 402;
    if (status != 0) {
        fail(resp, oc, status);
    } else {
        const char *persist = lst_http_query(req, "persist");
        char id[2 * SIM_BLOBID_LEN + 1];
        if (sim_blobs_put(&sim->blobs, blob->value, blob->value_len,
                          persist != NULL && strcmp(persist, "1") == 0, id) != LST_OK)
            fail(resp, oc, 500);
        else
            reply_text(resp, oc, 200, id);
    }
    sim_form_cleanup(&f);
}

static void download_blob(struct sim *sim, const struct lst_http_request *req,
                          struct lst_http_response *resp, struct outcome *oc)
{
    const char *id = path_arg(req);
    uint8_t raw[SIM_BLOBID_LEN];
    if (!query_auth_ok(sim, req)) {
        fail(resp, oc, 401);
        return;
    }
    if (lst_threema_hex_decode(id, strlen(id), raw, sizeof(raw)) != LST_OK) {
        fail(resp, oc, 400);
        return;
    }
    resp->status = 200;
    resp->content_type = "application/octet-stream";
    oc->status = 200;
    if (sim_blobs_get(&sim->blobs, id, &resp->body) != LST_OK)
        fail(resp, oc, 404);
}

/* ---- the common path ---- */

/* Sleeps ms, returning early when the simulator stops (handlers must bound their blocking). */
static void hang(struct sim *sim, int64_t ms)
{
    int64_t deadline = lst_mono_ms() + ms;
    while (!sim->stopping && lst_mono_ms() < deadline)
        lst_sleep_ms(deadline - lst_mono_ms() < 50 ? deadline - lst_mono_ms() : 50, &sim->stopping);
}

static const char *fault_name(enum sim_fault f)
{
    static const char *const names[] = {"none", "429", "500", "timeout", "timeout_after"};
    return names[f];
}

static void journal(struct sim *sim, const struct lst_http_request *req, const struct outcome *oc,
                    enum sim_fault fault)
{
    struct sim_journal_entry e;
    memset(&e, 0, sizeof(e));
    e.time_ms = lst_wall_ms();
    snprintf(e.method, sizeof(e.method), "%s", req->method);
    snprintf(e.endpoint, sizeof(e.endpoint), "%s", req->route);
    e.status = oc->status;
    const char *rid = lst_http_header(req, "X-Request-Id");
    if (rid != NULL)
        snprintf(e.request_id, sizeof(e.request_id), "%s", rid);
    memcpy(e.to, oc->to, sizeof(e.to));
    memcpy(e.message_id, oc->message_id, sizeof(e.message_id));
    e.fault = fault_name(fault);
    sim_journal_add(&sim->journal, &e);
    sim_count_request(sim, req->route, oc->status);
}

static void gateway(void *ud, const struct lst_http_request *req, struct lst_http_response *resp,
                    endpoint_fn fn)
{
    struct sim *sim = ud;
    struct outcome oc;
    memset(&oc, 0, sizeof(oc));
    int64_t hang_ms = 0;
    enum sim_fault fault = sim_faults_draw(&sim->faults, &hang_ms);
    if (fault == SIM_FAULT_429) {
        fail(resp, &oc, 429);
        int64_t ra = sim_faults_retry_after(&sim->faults);
        if (ra > 0) {
            char v[24];
            snprintf(v, sizeof(v), "%lld", (long long)ra);
            lst_http_add_header(resp, "Retry-After", v);
        }
    } else if (fault == SIM_FAULT_500) {
        fail(resp, &oc, 500);
    } else if (fault == SIM_FAULT_TIMEOUT) {
        hang(sim, hang_ms);
        fail(resp, &oc, 500);
    } else {
        fn(sim, req, resp, &oc);
        if (fault == SIM_FAULT_TIMEOUT_AFTER)
            hang(sim, hang_ms);
    }
    journal(sim, req, &oc, fault);
}

#define ROUTE(name)                                                                                \
    static void route_##name(void *ud, const struct lst_http_request *req,                         \
                             struct lst_http_response *resp)                                       \
    {                                                                                              \
        gateway(ud, req, resp, name);                                                              \
    }

ROUTE(send_simple)
ROUTE(send_e2e)
ROUTE(send_e2e_bulk)
ROUTE(pubkey)
ROUTE(pubkeys_bulk)
ROUTE(lookup_phone)
ROUTE(lookup_phone_hash)
ROUTE(lookup_email)
ROUTE(lookup_email_hash)
ROUTE(lookup_bulk)
ROUTE(capabilities)
ROUTE(credits)
ROUTE(upload_blob)
ROUTE(download_blob)

const struct lst_http_route sim_api_routes[] = {
    {"POST", "/send_simple", false, route_send_simple},
    {"POST", "/send_e2e", false, route_send_e2e},
    {"POST", "/send_e2e_bulk", false, route_send_e2e_bulk},
    {"GET", "/pubkeys/", true, route_pubkey},
    {"POST", "/pubkeys/bulk", false, route_pubkeys_bulk},
    {"GET", "/lookup/phone/", true, route_lookup_phone},
    {"GET", "/lookup/phone_hash/", true, route_lookup_phone_hash},
    {"GET", "/lookup/email/", true, route_lookup_email},
    {"GET", "/lookup/email_hash/", true, route_lookup_email_hash},
    {"POST", "/lookup/bulk", false, route_lookup_bulk},
    {"GET", "/capabilities/", true, route_capabilities},
    {"GET", "/credits", false, route_credits},
    {"POST", "/upload_blob", false, route_upload_blob},
    {"GET", "/blobs/", true, route_download_blob},
};
const size_t sim_api_nroutes = LST_ARRAY_LEN(sim_api_routes);
