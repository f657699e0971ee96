/* Gateway endpoints with form bodies or plain-text answers: send_simple, send_e2e, pubkeys,
 * lookups, capabilities, credits, upload_blob, blobs. Each one validates its input (a request
 * the Gateway would refuse is refused here, PERMANENT, without spending a request), builds the
 * request, lets lst_gw_perform run and classify it, and validates the answer strictly. */
#include <string.h>

#include "gateway_internal.h"
#include "lst/gateway.h"

#define PHONE_MAX_DIGITS 15  /* E.164 */
#define EMAIL_MAX_LEN    254 /* RFC 5321 path limit */

/* Form bodies and URLs carry the secret: zero them before the memory goes back. */
void lst_gw_wipe(struct lst_buf *b)
{
    if (b->data != NULL)
        memset(b->data, 0, b->cap);
    lst_buf_cleanup(b);
}

static bool valid_phone(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > PHONE_MAX_DIGITS)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
    }
    return true;
}

static bool valid_email(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > EMAIL_MAX_LEN || strchr(s, '@') == NULL)
        return false;
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)s[i] <= ' ' || s[i] == 0x7f)
            return false;
    }
    return true;
}

enum lst_gateway_outcome lst_gw_take_msgid(struct lst_buf *answer, bool post, char *msgid,
                                           struct lst_gateway_result *res)
{
    char tmp[LST_GATEWAY_MSGID_HEX + 1];
    lst_gw_trim_answer(answer);
    if (answer->data == NULL || answer->len != strlen(answer->data) ||
        !lst_gw_hex_copy(answer->data, LST_GATEWAY_MSGID_HEX, tmp))
        return lst_gw_malformed(res, post, "message id is not 16 hex");
    memcpy(msgid, tmp, sizeof(tmp));
    return res->outcome;
}

void lst_gw_form_request(struct lst_gw_request *rq, const char *endpoint, const char *path,
                         const struct lst_buf *form)
{
    *rq = (struct lst_gw_request){
        .endpoint = endpoint,
        .post = true,
        .path = path,
        .content_type = "application/x-www-form-urlencoded",
        .body = form->data,
        .body_len = form->len,
        .max_answer = LST_GW_TEXT_ANSWER_MAX,
    };
}

/* Runs a form POST (from and secret in the body) and takes the message ID answer. */
static enum lst_gateway_outcome post_form_send(struct lst_gateway *gw, const char *endpoint,
                                               const char *path, struct lst_buf *form, char *msgid,
                                               struct lst_gateway_result *res)
{
    struct lst_buf answer;
    lst_buf_init(&answer);
    struct lst_gw_request rq;
    lst_gw_form_request(&rq, endpoint, path, form);
    if (lst_gw_perform(gw, &rq, &answer, res) == LST_GATEWAY_OK)
        lst_gw_take_msgid(&answer, true, msgid, res);
    lst_buf_cleanup(&answer);
    return res->outcome;
}

static const char *recipient_field(enum lst_gateway_recipient kind, const char *recipient)
{
    switch (kind) {
    case LST_GATEWAY_TO_ID:
        return lst_gw_valid_id(recipient) ? "to" : NULL;
    case LST_GATEWAY_TO_PHONE:
        return valid_phone(recipient) ? "phone" : NULL;
    case LST_GATEWAY_TO_EMAIL:
        return valid_email(recipient) ? "email" : NULL;
    }
    return NULL;
}

enum lst_gateway_outcome lst_gateway_send_simple(struct lst_gateway *gw,
                                                 enum lst_gateway_recipient kind,
                                                 const char *recipient, const char *text,
                                                 char msgid[LST_GATEWAY_MSGID_HEX + 1],
                                                 struct lst_gateway_result *res)
{
    const char *field = recipient_field(kind, recipient);
    if (field == NULL)
        return lst_gw_reject(res, LST_ERR_INVALID, "malformed recipient");
    size_t len = text ? strlen(text) : 0;
    if (len == 0)
        return lst_gw_reject(res, LST_ERR_INVALID, "empty text");
    if (len > LST_GATEWAY_TEXT_MAX)
        return lst_gw_reject(res, LST_ERR_TOO_LARGE, "text above 3500 bytes");
    if (!lst_utf8_valid(text, len))
        return lst_gw_reject(res, LST_ERR_UTF8, "text is not valid UTF-8");
    struct lst_buf form;
    lst_buf_init(&form);
    lst_gw_auth_form(gw, &form);
    lst_gw_form_add(&form, field, recipient);
    if (lst_gw_form_add(&form, "text", text) != LST_OK || lst_buf_failed(&form)) {
        lst_gw_wipe(&form);
        return lst_gw_reject(res, LST_ERR_NOMEM, "out of memory");
    }
    post_form_send(gw, "send_simple", "/send_simple", &form, msgid, res);
    lst_gw_wipe(&form);
    return res->outcome;
}

/* Shared by send_e2e and the bulk send. Writes a reason into why on failure. */
bool lst_gw_e2e_valid(const struct lst_gateway_e2e *m, const char **why)
{
    size_t box_len = m->box_hex ? strlen(m->box_hex) : 0;
    *why = NULL;
    if (!lst_gw_valid_id(m->to))
        *why = "malformed recipient id";
    else if (m->nonce_hex == NULL || strlen(m->nonce_hex) != LST_GATEWAY_NONCE_HEX ||
             !lst_gw_is_hex(m->nonce_hex, LST_GATEWAY_NONCE_HEX))
        *why = "nonce is not 48 hex";
    else if (box_len == 0 || box_len % 2 != 0 || !lst_gw_is_hex(m->box_hex, box_len))
        *why = "box is not hex";
    return *why == NULL;
}

/* Appends a hex value lowercased (the wire form). hex has been checked to be hex digits only:
 * setting bit 0x20 maps 'A'-'F' to 'a'-'f' and leaves digits and 'a'-'f' as they are, without
 * a branch per character (boxes are up to 8000 characters). */
static void add_hex_field(struct lst_buf *form, const char *name, const char *hex, size_t len)
{
    lst_buf_append(form, "&", 1);
    lst_buf_puts(form, name);
    lst_buf_append(form, "=", 1);
    size_t at = form->len;
    if (lst_buf_append(form, hex, len) != LST_OK)
        return;
    for (size_t i = at; i < form->len; i++)
        form->data[i] = (char)(form->data[i] | 0x20);
}

lst_err lst_gw_e2e_form(const struct lst_gateway *gw, const struct lst_gateway_e2e *msg,
                        struct lst_buf *form, struct lst_gateway_result *res)
{
    const char *why = NULL;
    if (msg == NULL || !lst_gw_e2e_valid(msg, &why)) {
        lst_gw_reject(res, LST_ERR_INVALID, why ? why : "no message");
        return LST_ERR_INVALID;
    }
    size_t box_len = strlen(msg->box_hex);
    if (box_len / 2 > LST_GATEWAY_BOX_MAX) {
        lst_gw_reject(res, LST_ERR_TOO_LARGE, "box above 4000 bytes");
        return LST_ERR_TOO_LARGE;
    }
    lst_gw_auth_form(gw, form);
    lst_gw_form_add(form, "to", msg->to);
    add_hex_field(form, "nonce", msg->nonce_hex, LST_GATEWAY_NONCE_HEX);
    add_hex_field(form, "box", msg->box_hex, box_len);
    if (msg->no_delivery_receipts)
        lst_buf_puts(form, "&noDeliveryReceipts=1");
    if (msg->no_push)
        lst_buf_puts(form, "&noPush=1");
    if (lst_buf_failed(form)) {
        lst_gw_wipe(form);
        lst_gw_reject(res, LST_ERR_NOMEM, "out of memory");
        return LST_ERR_NOMEM;
    }
    return LST_OK;
}

enum lst_gateway_outcome lst_gateway_send_e2e(struct lst_gateway *gw,
                                              const struct lst_gateway_e2e *msg,
                                              char msgid[LST_GATEWAY_MSGID_HEX + 1],
                                              struct lst_gateway_result *res)
{
    struct lst_buf form;
    lst_buf_init(&form);
    if (lst_gw_e2e_form(gw, msg, &form, res) != LST_OK)
        return res->outcome;
    post_form_send(gw, "send_e2e", "/send_e2e", &form, msgid, res);
    lst_gw_wipe(&form);
    return res->outcome;
}

/* GET {prefix}{encoded value} with from & secret in the query; the trimmed text answer is in
 * answer when the outcome is OK. */
static enum lst_gateway_outcome get_text(struct lst_gateway *gw, const char *endpoint,
                                         const char *prefix, const char *value,
                                         struct lst_buf *answer, struct lst_gateway_result *res)
{
    struct lst_buf path;
    lst_buf_init(&path);
    lst_buf_puts(&path, prefix);
    if (value != NULL)
        lst_gw_urlencode(&path, value, strlen(value));
    if (lst_buf_failed(&path)) {
        lst_buf_cleanup(&path);
        return lst_gw_reject(res, LST_ERR_NOMEM, "out of memory");
    }
    struct lst_gw_request rq = {
        .endpoint = endpoint,
        .path = path.data,
        .auth_in_query = true,
        .max_answer = LST_GW_TEXT_ANSWER_MAX,
    };
    if (lst_gw_perform(gw, &rq, answer, res) == LST_GATEWAY_OK)
        lst_gw_trim_answer(answer);
    lst_buf_cleanup(&path);
    return res->outcome;
}

/* A text answer must not hide a NUL: then strlen and len disagree. */
static bool clean_text(const struct lst_buf *b)
{
    return b->data != NULL && strlen(b->data) == b->len;
}

static bool all_zero_hex(const char *hex)
{
    for (const char *p = hex; *p != '\0'; p++) {
        if (*p != '0')
            return false;
    }
    return true;
}

enum lst_gateway_outcome lst_gateway_pubkey(struct lst_gateway *gw, const char *id,
                                            char key_hex[LST_GATEWAY_KEY_HEX + 1],
                                            struct lst_gateway_result *res)
{
    if (!lst_gw_valid_id(id))
        return lst_gw_reject(res, LST_ERR_INVALID, "malformed threema id");
    struct lst_buf answer;
    lst_buf_init(&answer);
    if (get_text(gw, "pubkeys", "/pubkeys/", id, &answer, res) == LST_GATEWAY_OK) {
        char tmp[LST_GATEWAY_KEY_HEX + 1];
        if (!clean_text(&answer) || !lst_gw_hex_copy(answer.data, LST_GATEWAY_KEY_HEX, tmp))
            lst_gw_malformed(res, false, "public key is not 64 hex");
        else if (all_zero_hex(tmp))
            lst_gw_malformed(res, false, "all-zero public key");
        else
            memcpy(key_hex, tmp, sizeof(tmp));
    }
    lst_buf_cleanup(&answer);
    return res->outcome;
}

/* The lookup path prefix for a kind, after checking the value; NULL when it is malformed. A
 * hash is sent lowercase (written into hash). */
static const char *lookup_prefix(enum lst_gateway_lookup_kind kind, const char *value,
                                 char hash[LST_GATEWAY_HASH_HEX + 1], const char **send)
{
    *send = value;
    switch (kind) {
    case LST_GATEWAY_LOOKUP_PHONE:
        return valid_phone(value) ? "/lookup/phone/" : NULL;
    case LST_GATEWAY_LOOKUP_EMAIL:
        return valid_email(value) ? "/lookup/email/" : NULL;
    case LST_GATEWAY_LOOKUP_PHONE_HASH:
    case LST_GATEWAY_LOOKUP_EMAIL_HASH:
        if (!lst_gw_hex_copy(value, LST_GATEWAY_HASH_HEX, hash))
            return NULL;
        *send = hash;
        return kind == LST_GATEWAY_LOOKUP_PHONE_HASH ? "/lookup/phone_hash/"
                                                     : "/lookup/email_hash/";
    }
    return NULL;
}

enum lst_gateway_outcome lst_gateway_lookup(struct lst_gateway *gw,
                                            enum lst_gateway_lookup_kind kind, const char *value,
                                            char id[LST_GATEWAY_ID_LEN + 1],
                                            struct lst_gateway_result *res)
{
    char hash[LST_GATEWAY_HASH_HEX + 1];
    const char *send = NULL;
    const char *prefix = lookup_prefix(kind, value, hash, &send);
    if (prefix == NULL)
        return lst_gw_reject(res, LST_ERR_INVALID, "malformed lookup value");
    struct lst_buf answer;
    lst_buf_init(&answer);
    if (get_text(gw, "lookup", prefix, send, &answer, res) == LST_GATEWAY_OK) {
        if (!clean_text(&answer) || !lst_gw_valid_id(answer.data))
            lst_gw_malformed(res, false, "not a threema id");
        else
            memcpy(id, answer.data, LST_GATEWAY_ID_LEN + 1);
    }
    lst_buf_cleanup(&answer);
    return res->outcome;
}

/* ---- capabilities ---- */

static const struct {
    const char *token;
    enum lst_gateway_cap cap;
} cap_table[] = {
    {"text", LST_GATEWAY_CAP_TEXT},           {"image", LST_GATEWAY_CAP_IMAGE},
    {"video", LST_GATEWAY_CAP_VIDEO},         {"audio", LST_GATEWAY_CAP_AUDIO},
    {"file", LST_GATEWAY_CAP_FILE},           {"ballot", LST_GATEWAY_CAP_BALLOT},
    {"group", LST_GATEWAY_CAP_GROUP},         {"call", LST_GATEWAY_CAP_CALL},
    {"videocall", LST_GATEWAY_CAP_VIDEOCALL},
};

const char *lst_gateway_cap_name(enum lst_gateway_cap cap)
{
    for (size_t i = 0; i < LST_ARRAY_LEN(cap_table); i++) {
        if (cap_table[i].cap == cap)
            return cap_table[i].token;
    }
    return NULL;
}

static bool token_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

/* One token, already trimmed and lowercased, into out. */
static lst_err add_token(const char *t, size_t n, struct lst_gateway_caps *out)
{
    if (n == 0)
        return LST_OK;
    for (size_t i = 0; i < n; i++) {
        if (!token_char(t[i]))
            return LST_ERR_INVALID;
    }
    for (size_t i = 0; i < LST_ARRAY_LEN(cap_table); i++) {
        if (strlen(cap_table[i].token) == n && memcmp(cap_table[i].token, t, n) == 0) {
            out->mask |= (uint32_t)cap_table[i].cap;
            return LST_OK;
        }
    }
    out->unknown++;
    return LST_OK;
}

lst_err lst_gateway_caps_parse(const char *s, size_t len, struct lst_gateway_caps *out)
{
    struct lst_gateway_caps caps = {0, 0};
    char tok[32];
    size_t i = 0;
    while (i <= len) {
        size_t start = i;
        while (i < len && s[i] != ',')
            i++;
        size_t a = start, b = i;
        while (a < b && (s[a] == ' ' || s[a] == '\t'))
            a++;
        while (b > a && (s[b - 1] == ' ' || s[b - 1] == '\t'))
            b--;
        if (b - a >= sizeof(tok))
            return LST_ERR_INVALID;
        for (size_t k = a; k < b; k++)
            tok[k - a] = (s[k] >= 'A' && s[k] <= 'Z') ? (char)(s[k] - 'A' + 'a') : s[k];
        if (add_token(tok, b - a, &caps) != LST_OK)
            return LST_ERR_INVALID;
        i++; /* past the comma (or the end) */
    }
    *out = caps;
    return LST_OK;
}

enum lst_gateway_outcome lst_gateway_capabilities(struct lst_gateway *gw, const char *id,
                                                  struct lst_gateway_caps *caps,
                                                  struct lst_gateway_result *res)
{
    if (!lst_gw_valid_id(id))
        return lst_gw_reject(res, LST_ERR_INVALID, "malformed threema id");
    struct lst_buf answer;
    lst_buf_init(&answer);
    if (get_text(gw, "capabilities", "/capabilities/", id, &answer, res) == LST_GATEWAY_OK) {
        struct lst_gateway_caps tmp;
        if (answer.len > 0 && (!clean_text(&answer) ||
                               lst_gateway_caps_parse(answer.data, answer.len, &tmp) != LST_OK))
            lst_gw_malformed(res, false, "capabilities are not a token list");
        else if (answer.len == 0)
            *caps = (struct lst_gateway_caps){0, 0};
        else
            *caps = tmp;
    }
    lst_buf_cleanup(&answer);
    return res->outcome;
}

enum lst_gateway_outcome lst_gateway_credits(struct lst_gateway *gw, int64_t *credits,
                                             struct lst_gateway_result *res)
{
    struct lst_buf answer;
    lst_buf_init(&answer);
    if (get_text(gw, "credits", "/credits", NULL, &answer, res) == LST_GATEWAY_OK) {
        int64_t v = 0;
        /* Digits only: lst_parse_i64 (strtoll) would also take a sign. */
        bool digits = clean_text(&answer) && answer.len > 0 &&
                      strspn(answer.data, "0123456789") == answer.len;
        if (!digits || lst_parse_i64(answer.data, 0, INT64_MAX, &v) != LST_OK)
            lst_gw_malformed(res, false, "credits are not a non-negative integer");
        else
            *credits = v;
    }
    lst_buf_cleanup(&answer);
    return res->outcome;
}

/* ---- blobs ---- */

enum lst_gateway_outcome lst_gateway_upload_blob(struct lst_gateway *gw, const void *data,
                                                 size_t len, bool persist,
                                                 char blob_id[LST_GATEWAY_BLOBID_HEX + 1],
                                                 struct lst_gateway_result *res)
{
    if (data == NULL || len == 0)
        return lst_gw_reject(res, LST_ERR_INVALID, "empty blob");
    if (len > gw->max_blob)
        return lst_gw_reject(res, LST_ERR_TOO_LARGE, "blob above the configured maximum");
    struct lst_buf answer;
    lst_buf_init(&answer);
    struct lst_gw_request rq = {
        .endpoint = "upload_blob",
        .post = true,
        .path = "/upload_blob",
        .extra_query = persist ? "persist=1" : NULL,
        .auth_in_query = true,
        .blob = data,
        .blob_len = len,
        .max_answer = LST_GW_TEXT_ANSWER_MAX,
    };
    if (lst_gw_perform(gw, &rq, &answer, res) == LST_GATEWAY_OK) {
        char tmp[LST_GATEWAY_BLOBID_HEX + 1];
        lst_gw_trim_answer(&answer);
        if (!clean_text(&answer) || !lst_gw_hex_copy(answer.data, LST_GATEWAY_BLOBID_HEX, tmp))
            lst_gw_malformed(res, true, "blob id is not 32 hex");
        else
            memcpy(blob_id, tmp, sizeof(tmp));
    }
    lst_buf_cleanup(&answer);
    return res->outcome;
}

enum lst_gateway_outcome lst_gateway_download_blob(struct lst_gateway *gw, const char *blob_id,
                                                   struct lst_buf *out,
                                                   struct lst_gateway_result *res)
{
    char id[LST_GATEWAY_BLOBID_HEX + 1];
    if (!lst_gw_hex_copy(blob_id, LST_GATEWAY_BLOBID_HEX, id))
        return lst_gw_reject(res, LST_ERR_INVALID, "blob id is not 32 hex");
    char path[sizeof("/blobs/") + LST_GATEWAY_BLOBID_HEX];
    memcpy(path, "/blobs/", 7);
    memcpy(path + 7, id, sizeof(id));
    struct lst_gw_request rq = {
        .endpoint = "blobs",
        .path = path,
        .auth_in_query = true,
        .max_answer = gw->max_blob,
        .oversize_permanent = true,
    };
    lst_gw_perform(gw, &rq, out, res);
    if (res->outcome == LST_GATEWAY_OK && out->len == 0)
        lst_gw_malformed(res, false, "empty blob");
    return res->outcome;
}
