/* The JSON bulk endpoints: send_e2e_bulk, pubkeys/bulk, lookup/bulk. from & secret travel in
 * the query string; bodies are built with lst_buf_json_str and answers parsed with json-c and
 * validated item by item (a malformed item makes the whole answer malformed: RETRY). */
#include <json-c/json.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "gateway_internal.h"
#include "lst/gateway.h"

void lst_gw_json_request(struct lst_gw_request *rq, const char *endpoint, const char *path,
                         const struct lst_buf *body)
{
    *rq = (struct lst_gw_request){
        .endpoint = endpoint,
        .post = true,
        .path = path,
        .auth_in_query = true,
        .content_type = "application/json",
        .body = body->data,
        .body_len = body->len,
        .max_answer = LST_GW_JSON_ANSWER_MAX,
    };
}

/* Parses a 2xx answer into a JSON array (*arr, owned by the caller); anything else makes res
 * RETRY (in doubt: every JSON endpoint is a POST). */
static enum lst_gateway_outcome parse_array(const struct lst_buf *answer, json_object **arr,
                                            struct lst_gateway_result *res)
{
    *arr = NULL;
    json_tokener *tok = json_tokener_new();
    if (tok == NULL)
        return lst_gw_malformed(res, true, "out of memory parsing json");
    json_object *doc =
        json_tokener_parse_ex(tok, answer->data ? answer->data : "", (int)answer->len);
    bool complete = json_tokener_get_error(tok) == json_tokener_success &&
                    json_tokener_get_parse_end(tok) == answer->len;
    json_tokener_free(tok);
    if (doc == NULL || !complete || !json_object_is_type(doc, json_type_array)) {
        json_object_put(doc);
        return lst_gw_malformed(res, true, "answer is not a json array");
    }
    *arr = doc;
    return res->outcome;
}

/* Runs a JSON POST and parses the answer into a JSON array (*arr, owned by the caller). */
static enum lst_gateway_outcome post_json(struct lst_gateway *gw, const char *endpoint,
                                          const char *path, const struct lst_buf *body,
                                          json_object **arr, struct lst_gateway_result *res)
{
    struct lst_buf answer;
    struct lst_gw_request rq;
    lst_buf_init(&answer);
    *arr = NULL;
    lst_gw_json_request(&rq, endpoint, path, body);
    if (lst_gw_perform(gw, &rq, &answer, res) == LST_GATEWAY_OK)
        parse_array(&answer, arr, res);
    lst_buf_cleanup(&answer);
    return res->outcome;
}

/* A string member copied into out when it is exactly n hex chars (lowercased). */
static bool get_hex(json_object *obj, const char *key, size_t n, char *out)
{
    json_object *v = NULL;
    if (!json_object_object_get_ex(obj, key, &v) || !json_object_is_type(v, json_type_string))
        return false;
    return lst_gw_hex_copy(json_object_get_string(v), n, out);
}

static bool get_id(json_object *obj, const char *key, char *out)
{
    json_object *v = NULL;
    if (!json_object_object_get_ex(obj, key, &v) || !json_object_is_type(v, json_type_string))
        return false;
    const char *s = json_object_get_string(v);
    if (!lst_gw_valid_id(s))
        return false;
    memcpy(out, s, LST_GATEWAY_ID_LEN + 1);
    return true;
}

/* ---- send_e2e_bulk ---- */

/* Appends "key":"<base64 of the hex>" (valid hex checked by the caller). A text message's box
 * fits the stack buffers: in the bulk benchmark this function took 11 % of gateway-out's event
 * loop with two allocations and a printf of the base64 per item, 8 % without. */
#define B64_STACK_BIN 2048

static void add_b64(struct lst_buf *b, const char *key, const char *hex)
{
    unsigned char bin_stack[B64_STACK_BIN];
    char b64_stack[sodium_base64_ENCODED_LEN(B64_STACK_BIN, sodium_base64_VARIANT_ORIGINAL)];
    size_t hex_len = strlen(hex), bin_len = 0;
    size_t bin_cap = hex_len / 2 + 1;
    size_t b64_cap = sodium_base64_ENCODED_LEN(bin_cap, sodium_base64_VARIANT_ORIGINAL);
    bool small = bin_cap <= sizeof(bin_stack);
    unsigned char *bin = small ? bin_stack : malloc(bin_cap);
    char *b64 = small ? b64_stack : malloc(b64_cap);
    if (bin == NULL || b64 == NULL ||
        sodium_hex2bin(bin, bin_cap, hex, hex_len, NULL, &bin_len, NULL) != 0) {
        b->oom = true;
        goto out;
    }
    sodium_bin2base64(b64, b64_cap, bin, bin_len, sodium_base64_VARIANT_ORIGINAL);
    lst_buf_append(b, "\"", 1);
    lst_buf_puts(b, key);
    lst_buf_append(b, "\":\"", 3);
    lst_buf_puts(b, b64);
    lst_buf_append(b, "\"", 1);
out:
    if (!small) {
        free(bin);
        free(b64);
    }
}

static void add_e2e_item(struct lst_buf *b, const struct lst_gateway_e2e *m)
{
    lst_buf_puts(b, "{\"to\":");
    lst_buf_json_str(b, m->to, strlen(m->to));
    lst_buf_append(b, ",", 1);
    add_b64(b, "nonce", m->nonce_hex);
    lst_buf_append(b, ",", 1);
    add_b64(b, "box", m->box_hex);
    if (m->no_delivery_receipts)
        lst_buf_puts(b, ",\"noDeliveryReceipts\":true");
    if (m->no_push)
        lst_buf_puts(b, ",\"noPush\":true");
    lst_buf_append(b, "}", 1);
}

/* errorCode as a JSON integer, or a decimal string, within HTTP status range. */
static bool get_error_code(json_object *obj, int *code)
{
    json_object *v = NULL;
    int64_t n = 0;
    if (!json_object_object_get_ex(obj, "errorCode", &v))
        return false;
    if (json_object_is_type(v, json_type_int))
        n = json_object_get_int64(v);
    else if (!json_object_is_type(v, json_type_string) ||
             lst_parse_i64(json_object_get_string(v), 100, 599, &n) != LST_OK)
        return false;
    if (n < 300 || n > 599) /* an error code must be an error */
        return false;
    *code = (int)n;
    return true;
}

static bool take_bulk_item(json_object *obj, struct lst_gateway_bulk_item *item)
{
    struct lst_gateway_bulk_item it = {.outcome = LST_GATEWAY_OK};
    if (!json_object_is_type(obj, json_type_object))
        return false;
    if (!get_hex(obj, "messageId", LST_GATEWAY_MSGID_HEX, it.msgid)) {
        if (json_object_object_get_ex(obj, "messageId", NULL) ||
            !get_error_code(obj, &it.error_code))
            return false;
        it.msgid[0] = '\0';
        it.outcome = lst_gateway_classify(it.error_code, 0);
    }
    *item = it;
    return true;
}

static lst_err validate_e2e_items(const struct lst_gateway_e2e *msgs, size_t n, const char **why)
{
    if (msgs == NULL || n == 0) {
        *why = "no messages";
        return LST_ERR_INVALID;
    }
    for (size_t i = 0; i < n; i++) {
        if (!lst_gw_e2e_valid(&msgs[i], why))
            return LST_ERR_INVALID;
        if (strlen(msgs[i].box_hex) / 2 > LST_GATEWAY_BOX_MAX) {
            *why = "box above 4000 bytes";
            return LST_ERR_TOO_LARGE;
        }
    }
    return LST_OK;
}

lst_err lst_gw_bulk_body(const struct lst_gateway_e2e *msgs, size_t n, struct lst_buf *body,
                         struct lst_gateway_result *res)
{
    const char *why = NULL;
    lst_err err = validate_e2e_items(msgs, n, &why);
    if (err != LST_OK) {
        lst_gw_reject(res, err, why);
        return err;
    }
    lst_buf_append(body, "[", 1);
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            lst_buf_append(body, ",", 1);
        add_e2e_item(body, &msgs[i]);
    }
    lst_buf_append(body, "]", 1);
    if (lst_buf_failed(body)) {
        lst_gw_reject(res, LST_ERR_NOMEM, "out of memory");
        return LST_ERR_NOMEM;
    }
    return LST_OK;
}

enum lst_gateway_outcome lst_gw_bulk_answer(const struct lst_buf *answer, size_t n,
                                            struct lst_gateway_bulk_item *items,
                                            struct lst_gateway_result *res)
{
    json_object *arr = NULL;
    if (parse_array(answer, &arr, res) != LST_GATEWAY_OK)
        return res->outcome;
    if (json_object_array_length(arr) != n) {
        lst_gw_malformed(res, true, "answer has another number of items than the request");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (!take_bulk_item(json_object_array_get_idx(arr, i), &items[i])) {
            lst_gw_malformed(res, true, "an item has neither a message id nor an error code");
            goto out;
        }
    }
out:
    json_object_put(arr);
    return res->outcome;
}

enum lst_gateway_outcome lst_gateway_send_e2e_bulk(struct lst_gateway *gw,
                                                   const struct lst_gateway_e2e *msgs, size_t n,
                                                   struct lst_gateway_bulk_item *items,
                                                   struct lst_gateway_result *res)
{
    struct lst_buf body, answer;
    struct lst_gw_request rq;
    lst_buf_init(&body);
    lst_buf_init(&answer);
    if (lst_gw_bulk_body(msgs, n, &body, res) == LST_OK) {
        lst_gw_json_request(&rq, "send_e2e_bulk", "/send_e2e_bulk", &body);
        if (lst_gw_perform(gw, &rq, &answer, res) == LST_GATEWAY_OK)
            lst_gw_bulk_answer(&answer, n, items, res);
    }
    lst_buf_cleanup(&answer);
    lst_buf_cleanup(&body);
    return res->outcome;
}

/* ---- pubkeys/bulk ---- */

static bool take_pubkey_entry(json_object *obj, struct lst_gateway_pubkey_entry *e)
{
    if (!json_object_is_type(obj, json_type_object) || !get_id(obj, "identity", e->identity))
        return false;
    return get_hex(obj, "publicKey", LST_GATEWAY_KEY_HEX, e->public_key);
}

/* Allocates *out for the array's entries (NULL when empty) and fills them with take. */
static enum lst_gateway_outcome take_entries(json_object *arr, size_t max, size_t size,
                                             bool (*take)(json_object *, void *), void **out,
                                             size_t *nout, struct lst_gateway_result *res)
{
    size_t n = json_object_array_length(arr);
    char *entries = NULL;
    if (n > max)
        return lst_gw_malformed(res, true, "more entries than asked for");
    if (n > 0) {
        entries = calloc(n, size);
        if (entries == NULL) {
            res->outcome = LST_GATEWAY_RETRY;
            res->err = LST_ERR_NOMEM;
            return res->outcome;
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (!take(json_object_array_get_idx(arr, i), entries + i * size)) {
            free(entries);
            return lst_gw_malformed(res, true, "an entry lacks a valid identity or key");
        }
    }
    *out = entries;
    *nout = n;
    return res->outcome;
}

static bool take_pubkey_cb(json_object *obj, void *e)
{
    return take_pubkey_entry(obj, e);
}

enum lst_gateway_outcome lst_gateway_pubkeys_bulk(struct lst_gateway *gw, const char *const *ids,
                                                  size_t n, struct lst_gateway_pubkey_entry **out,
                                                  size_t *nout, struct lst_gateway_result *res)
{
    if (ids == NULL || n == 0)
        return lst_gw_reject(res, LST_ERR_INVALID, "no identities");
    for (size_t i = 0; i < n; i++) {
        if (!lst_gw_valid_id(ids[i]))
            return lst_gw_reject(res, LST_ERR_INVALID, "malformed threema id");
    }
    struct lst_buf body;
    json_object *arr = NULL;
    lst_buf_init(&body);
    lst_buf_puts(&body, "{\"identities\":[");
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            lst_buf_append(&body, ",", 1);
        lst_buf_json_str(&body, ids[i], strlen(ids[i]));
    }
    lst_buf_puts(&body, "]}");
    if (lst_buf_failed(&body))
        lst_gw_reject(res, LST_ERR_NOMEM, "out of memory");
    else if (post_json(gw, "pubkeys_bulk", "/pubkeys/bulk", &body, &arr, res) == LST_GATEWAY_OK)
        take_entries(arr, n, sizeof(**out), take_pubkey_cb, (void **)out, nout, res);
    json_object_put(arr);
    lst_buf_cleanup(&body);
    return res->outcome;
}

/* ---- lookup/bulk ---- */

static bool take_lookup_cb(json_object *obj, void *p)
{
    struct lst_gateway_lookup_entry *e = p;
    if (!json_object_is_type(obj, json_type_object) || !get_id(obj, "identity", e->identity) ||
        !get_hex(obj, "publicKey", LST_GATEWAY_KEY_HEX, e->public_key))
        return false;
    /* The hashes are optional; when present they must be well-formed. */
    if (json_object_object_get_ex(obj, "phoneHash", NULL) &&
        !get_hex(obj, "phoneHash", LST_GATEWAY_HASH_HEX, e->phone_hash))
        return false;
    if (json_object_object_get_ex(obj, "emailHash", NULL) &&
        !get_hex(obj, "emailHash", LST_GATEWAY_HASH_HEX, e->email_hash))
        return false;
    return true;
}

/* Appends "name":[...] of lowercased hashes; false when one is not 64 hex. */
static bool add_hashes(struct lst_buf *b, const char *name, const char *const *h, size_t n)
{
    char tmp[LST_GATEWAY_HASH_HEX + 1];
    lst_buf_printf(b, "\"%s\":[", name);
    for (size_t i = 0; i < n; i++) {
        if (!lst_gw_hex_copy(h[i], LST_GATEWAY_HASH_HEX, tmp))
            return false;
        lst_buf_printf(b, "%s\"%s\"", i > 0 ? "," : "", tmp);
    }
    lst_buf_append(b, "]", 1);
    return true;
}

enum lst_gateway_outcome lst_gateway_lookup_bulk(struct lst_gateway *gw,
                                                 const char *const *phone_hashes, size_t nphone,
                                                 const char *const *email_hashes, size_t nemail,
                                                 struct lst_gateway_lookup_entry **out,
                                                 size_t *nout, struct lst_gateway_result *res)
{
    size_t total = nphone + nemail;
    if (total == 0 || (nphone > 0 && phone_hashes == NULL) || (nemail > 0 && !email_hashes))
        return lst_gw_reject(res, LST_ERR_INVALID, "no hashes");
    if (nphone > LST_GATEWAY_BULK_LOOKUP_MAX || total > LST_GATEWAY_BULK_LOOKUP_MAX)
        return lst_gw_reject(res, LST_ERR_TOO_LARGE,
                             "bulk lookup of more than 1000 hashes (phone + e-mail)");
    struct lst_buf body;
    json_object *arr = NULL;
    lst_buf_init(&body);
    lst_buf_append(&body, "{", 1);
    bool ok = add_hashes(&body, "phoneHashes", phone_hashes, nphone);
    lst_buf_append(&body, ",", 1);
    ok = ok && add_hashes(&body, "emailHashes", email_hashes, nemail);
    lst_buf_append(&body, "}", 1);
    if (!ok)
        lst_gw_reject(res, LST_ERR_INVALID, "a hash is not 64 hex");
    else if (lst_buf_failed(&body))
        lst_gw_reject(res, LST_ERR_NOMEM, "out of memory");
    else if (post_json(gw, "lookup_bulk", "/lookup/bulk", &body, &arr, res) == LST_GATEWAY_OK)
        take_entries(arr, total, sizeof(**out), take_lookup_cb, (void **)out, nout, res);
    json_object_put(arr);
    lst_buf_cleanup(&body);
    return res->outcome;
}
