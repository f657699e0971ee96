/* The field tables of every Kafka record type (the C side of proto/schemas/), the ID pattern
 * checkers, the cross-field checks and the typed lst_<rec>_* wrappers. The engine that walks
 * these tables is records_codec.c. Field names in JSON are the C member names (#member). */
#include "lst/records.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* ---- patterns: a checker per regex; the regex text is what the schemas say ------------ */

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_upper(char c)
{
    return c >= 'A' && c <= 'Z';
}

static bool is_lower(char c)
{
    return c >= 'a' && c <= 'z';
}

static bool is_alnum(char c)
{
    return is_digit(c) || is_upper(c) || is_lower(c);
}

static bool is_lower_hex(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f');
}

static bool is_crockford(char c)
{
    return is_digit(c) || (is_upper(c) && c != 'I' && c != 'L' && c != 'O' && c != 'U');
}

static bool all_of(const char *s, size_t len, bool (*pred)(char))
{
    for (size_t i = 0; i < len; i++) {
        if (!pred(s[i]))
            return false;
    }
    return true;
}

static bool match_ulid(const char *s, size_t len)
{
    /* 48 bits of time in 10 base32 chars leave the first char at most 7 */
    return len == LST_MESSAGE_ID_LEN && s[0] >= '0' && s[0] <= '7' && all_of(s, len, is_crockford);
}

static bool is_employee_char(char c)
{
    return is_alnum(c) || c == '.' || c == '_' || c == '-';
}

static bool match_employee_id(const char *s, size_t len)
{
    return len > 0 && is_alnum(s[0]) && all_of(s, len, is_employee_char);
}

static bool is_user_char(char c)
{
    return is_employee_char(c) || c == '@' || c == '+';
}

static bool match_user_id(const char *s, size_t len)
{
    return len > 0 && is_alnum(s[0]) && all_of(s, len, is_user_char);
}

static bool is_slug_char(char c)
{
    return is_digit(c) || is_lower(c) || c == '.' || c == '_' || c == '-';
}

static bool match_slug(const char *s, size_t len)
{
    return len > 0 && (is_digit(s[0]) || is_lower(s[0])) && all_of(s, len, is_slug_char);
}

static bool is_printable(char c)
{
    return c >= '!' && c <= '~';
}

static bool match_printable(const char *s, size_t len)
{
    return len > 0 && all_of(s, len, is_printable);
}

static bool is_threema_char(char c)
{
    return is_digit(c) || is_upper(c);
}

static bool match_threema_id(const char *s, size_t len)
{
    return len == LST_THREEMA_ID_LEN && (s[0] == '*' || is_threema_char(s[0])) &&
           all_of(s + 1, len - 1, is_threema_char);
}

static bool match_msgid(const char *s, size_t len)
{
    return len == LST_THREEMA_MSGID_LEN && all_of(s, len, is_lower_hex);
}

static bool match_sha256(const char *s, size_t len)
{
    return len == LST_BLOB_REF_LEN && all_of(s, len, is_lower_hex);
}

static bool match_blob_id(const char *s, size_t len)
{
    return len == LST_THREEMA_BLOB_ID_LEN && all_of(s, len, is_lower_hex);
}

static bool match_phone(const char *s, size_t len)
{
    return len >= 3 && len <= LST_PHONE_MAX && s[0] == '+' && s[1] >= '1' && s[1] <= '9' &&
           all_of(s + 1, len - 1, is_digit);
}

static bool is_email_char(char c)
{
    /* the schema's \s, restricted to ASCII: UTF-8 bytes of non-ASCII letters pass */
    return c != '@' && c != ' ' && !(c >= '\t' && c <= '\r');
}

static bool match_email(const char *s, size_t len)
{
    const char *at = memchr(s, '@', len);
    if (at == NULL || at == s || at == s + len - 1)
        return false;
    size_t local = (size_t)(at - s);
    return all_of(s, local, is_email_char) && all_of(at + 1, len - local - 1, is_email_char);
}

/* "<left>:<right>" where each side matches its own checker. */
static bool match_pair(const char *s, size_t len, bool (*left)(const char *, size_t),
                       bool (*right)(const char *, size_t))
{
    const char *colon = memchr(s, ':', len);
    if (colon == NULL)
        return false;
    size_t l = (size_t)(colon - s);
    return left(s, l) && right(colon + 1, len - l - 1);
}

static bool match_request_id(const char *s, size_t len)
{
    return match_pair(s, len, match_ulid, match_employee_id);
}

static bool match_event_id(const char *s, size_t len)
{
    return match_pair(s, len, match_threema_id, match_msgid);
}

/* our message ID or an inbound event ID: every item of the timeline */
static bool match_item_id(const char *s, size_t len)
{
    return match_ulid(s, len) || match_event_id(s, len);
}

static bool is_topic_char(char c)
{
    return is_alnum(c) || c == '.' || c == '_' || c == '-';
}

static bool match_topic(const char *s, size_t len)
{
    return len > 0 && all_of(s, len, is_topic_char);
}

static bool is_base64_char(char c)
{
    return is_alnum(c) || c == '+' || c == '/';
}

static bool match_base64(const char *s, size_t len)
{
    size_t pad = 0;
    while (pad < 2 && pad < len && s[len - 1 - pad] == '=')
        pad++;
    return len % 4 == 0 && all_of(s, len - pad, is_base64_char);
}

#define ULID_RE       "[0-7][0-9A-HJKMNP-TV-Z]{25}"
#define EMPLOYEE_RE   "[A-Za-z0-9][A-Za-z0-9._-]*"
#define THREEMA_ID_RE "[0-9A-Z*][0-9A-Z]{7}"
#define MSGID_RE      "[0-9a-f]{16}"

static const struct lst_pattern pat_ulid = {"^" ULID_RE "$", match_ulid};
static const struct lst_pattern pat_employee = {"^" EMPLOYEE_RE "$", match_employee_id};
static const struct lst_pattern pat_user = {"^[A-Za-z0-9][A-Za-z0-9._@+-]*$", match_user_id};
static const struct lst_pattern pat_slug = {"^[a-z0-9][a-z0-9._-]*$", match_slug};
static const struct lst_pattern pat_printable = {"^[!-~]+$", match_printable};
static const struct lst_pattern pat_threema_id = {"^" THREEMA_ID_RE "$", match_threema_id};
static const struct lst_pattern pat_msgid = {"^" MSGID_RE "$", match_msgid};
static const struct lst_pattern pat_sha256 = {"^[0-9a-f]{64}$", match_sha256};
static const struct lst_pattern pat_blob_id = {"^[0-9a-f]{32}$", match_blob_id};
static const struct lst_pattern pat_phone = {"^\\+[1-9][0-9]{1,14}$", match_phone};
static const struct lst_pattern pat_email = {"^[^@\\s]+@[^@\\s]+$", match_email};
static const struct lst_pattern pat_request = {"^" ULID_RE ":" EMPLOYEE_RE "$", match_request_id};
static const struct lst_pattern pat_event = {"^" THREEMA_ID_RE ":" MSGID_RE "$", match_event_id};
static const struct lst_pattern pat_topic = {"^[A-Za-z0-9._-]+$", match_topic};
static const struct lst_pattern pat_item = {"^(" ULID_RE "|" THREEMA_ID_RE ":" MSGID_RE ")$",
                                            match_item_id};

/* ---- table-building macros -------------------------------------------------------------- */

#define OPT           0u
#define ALL           LST_KINDS_ALL
#define BASE(S, m, t) .name = #m, .type = t, .off = offsetof(struct S, m)
#define NOHAS         .has_off = LST_NO_HAS
#define HAS(S, m)     .has_off = offsetof(struct S, has_##m)

/* clang-format off */
#define F_VER                                                                                      \
    {.name = "v", .type = LST_FT_VERSION, NOHAS, .allow = ALL, .req = ALL,                         \
     .doc = "schema version; readers send unknown versions to the DLQ"}
/* Strings are never empty (optional ones are left out), except where F_STR0 says so. */
#define F_STR(S, m, maxl, pat, al, rq, d)                                                          \
    {BASE(S, m, LST_FT_STR), NOHAS, .allow = al, .req = rq, .min = 1, .max_len = maxl,             \
     .pattern = pat, .doc = d}
#define F_STR0(S, m, maxl, pat, al, rq, d)                                                         \
    {BASE(S, m, LST_FT_STR), NOHAS, .allow = al, .req = rq, .min = 0, .max_len = maxl,             \
     .pattern = pat, .doc = d}
#define F_INT(S, m, lo, hi, al, rq, d)                                                             \
    {BASE(S, m, LST_FT_INT), NOHAS, .allow = al, .req = rq, .min = lo, .max = hi, .doc = d}
#define F_INTH(S, m, lo, hi, al, rq, d)                                                            \
    {BASE(S, m, LST_FT_INT), HAS(S, m), .allow = al, .req = rq, .min = lo, .max = hi, .doc = d}
#define F_NUM(S, m, lo, hi, al, rq, d)                                                             \
    {BASE(S, m, LST_FT_NUM), NOHAS, .allow = al, .req = rq, .dmin = lo, .dmax = hi, .doc = d}
#define F_NUMH(S, m, lo, hi, al, rq, d)                                                            \
    {BASE(S, m, LST_FT_NUM), HAS(S, m), .allow = al, .req = rq, .dmin = lo, .dmax = hi, .doc = d}
#define F_BOOL(S, m, al, rq, d)                                                                    \
    {BASE(S, m, LST_FT_BOOL), NOHAS, .allow = al, .req = rq, .doc = d}
#define F_BOOLH(S, m, al, rq, d)                                                                   \
    {BASE(S, m, LST_FT_BOOL), HAS(S, m), .allow = al, .req = rq, .doc = d}
#define F_ENUM(S, m, nm, n, d)                                                                     \
    {BASE(S, m, LST_FT_ENUM), NOHAS, .allow = ALL, .req = ALL, .names = nm, .names_len = n,        \
     .doc = d}
#define F_STRV(S, m, lo, hi, maxl, pat, al, rq, d)                                                 \
    {BASE(S, m, LST_FT_STRV), NOHAS, .allow = al, .req = rq, .min = lo, .max = hi,                 \
     .max_len = maxl, .pattern = pat, .doc = d}
#define F_OBJ(S, m, tbl, al, rq, d)                                                                \
    {BASE(S, m, LST_FT_OBJ), NOHAS, .allow = al, .req = rq, .sub = &tbl, .doc = d}
#define F_OBJH(S, m, tbl, al, rq, d)                                                               \
    {BASE(S, m, LST_FT_OBJ), HAS(S, m), .allow = al, .req = rq, .sub = &tbl, .doc = d}
#define F_OBJV(S, m, item, tbl, lo, hi, al, rq, d)                                                 \
    {BASE(S, m, LST_FT_OBJV), NOHAS, .allow = al, .req = rq, .min = lo, .max = hi, .sub = &tbl,    \
     .item_size = sizeof(struct item), .doc = d}
#define TABLE(nm, arr, disc_, chk, cln)                                                            \
    {.name = nm, .fields = arr, .count = LST_ARRAY_LEN(arr), .disc = disc_, .check = chk,          \
     .cleanup = cln}
/* clang-format on */

/* The engine reads enums as int. */
_Static_assert(sizeof(enum lst_content_kind) == sizeof(int), "enum size");
_Static_assert(sizeof(enum lst_sent_outcome) == sizeof(int), "enum size");
_Static_assert(sizeof(enum lst_inbound_kind) == sizeof(int), "enum size");
_Static_assert(sizeof(enum lst_dlq_encoding) == sizeof(int), "enum size");
_Static_assert(sizeof(enum lst_audit_action) == sizeof(int), "enum size");
_Static_assert(sizeof(enum lst_annotation_kind) == sizeof(int), "enum size");
_Static_assert(sizeof(enum lst_view_kind) == sizeof(int), "enum size");
_Static_assert(sizeof(enum lst_skip_reason) == sizeof(int), "enum size");

/* ---- content ---------------------------------------------------------------------------- */

static const char *const content_kinds[LST_CONTENT__COUNT] = {
    "text", "file", "image", "location", "unsupported", "typing", "undecodable"};

const char *lst_content_kind_name(enum lst_content_kind kind)
{
    return (unsigned)kind < LST_CONTENT__COUNT ? content_kinds[kind] : "unknown";
}

#define K(x) (1u << LST_CONTENT_##x)
#define FI   (K(FILE) | K(IMAGE))
#define LOC  K(LOCATION)

/* Fields shared by both directions, after kind and text. */
#define CONTENT_MEDIA_AND_LOCATION(blob_req)                                                       \
    F_STR(lst_content, blob, LST_BLOB_REF_LEN, &pat_sha256, FI, blob_req,                          \
          "sha256 (hex) of the file in the company blob store"),                                   \
        F_STR(lst_content, mime, LST_MIME_MAX, NULL, FI, FI, "MIME type"),                         \
        F_INT(lst_content, size, 0, LST_FILE_SIZE_MAX, FI, FI, "file size in bytes"),              \
        F_STR(lst_content, filename, LST_FILENAME_MAX, NULL, FI, OPT, "file name"),                \
        F_STR(lst_content, caption, LST_CAPTION_MAX, NULL, FI, OPT, "caption"),                    \
        F_STR(lst_content, thumbnail_blob, LST_BLOB_REF_LEN, &pat_sha256, FI, OPT,                 \
              "sha256 (hex) of the thumbnail in the company blob store"),                          \
        F_STR(lst_content, thumbnail_mime, LST_MIME_MAX, NULL, FI, OPT, "thumbnail MIME type"),    \
        F_NUM(lst_content, lat, -90.0, 90.0, LOC, LOC, "latitude, degrees"),                       \
        F_NUM(lst_content, lon, -180.0, 180.0, LOC, LOC, "longitude, degrees"),                    \
        F_NUMH(lst_content, accuracy, 0.0, LST_ACCURACY_MAX, LOC, OPT, "accuracy in metres"),      \
        F_STR(lst_content, name, LST_NAME_MAX, NULL, LOC, OPT, "name of the place"),               \
        F_STR(lst_content, address, LST_ADDRESS_MAX, NULL, LOC, OPT, "address of the place")

static const struct lst_field content_in_fields[] = {
    F_ENUM(lst_content, kind, content_kinds, LST_CONTENT__COUNT, "what the message carries"),
    F_STR(lst_content, text, LST_INBOUND_TEXT_MAX, NULL, K(TEXT), K(TEXT), "the text"),
    CONTENT_MEDIA_AND_LOCATION(OPT),
    F_STR(lst_content, threema_blob_id, LST_THREEMA_BLOB_ID_LEN, &pat_blob_id, FI, OPT,
          "the Gateway's blob ID"),
    F_STR(lst_content, blob_error, LST_REASON_MAX, NULL, FI, OPT,
          "why the blob could not be stored (blob is absent then)"),
    F_INTH(lst_content, type, 0, 255, K(UNSUPPORTED) | K(UNDECODABLE), K(UNSUPPORTED),
           "the Threema container type byte"),
    F_BOOL(lst_content, typing, K(TYPING), K(TYPING), "true: started typing, false: stopped"),
    F_STR(lst_content, reason, LST_REASON_MAX, NULL, K(UNDECODABLE), K(UNDECODABLE),
          "why the message could not be decoded"),
};

static lst_err check_inbound_content(const void *rec, const char **field, const char **msg)
{
    const struct lst_content *c = rec;
    if ((c->kind == LST_CONTENT_FILE || c->kind == LST_CONTENT_IMAGE) && c->blob == NULL &&
        c->blob_error == NULL) {
        *field = "blob";
        *msg = "missing (give blob or blob_error)";
        return LST_ERR_INVALID;
    }
    return LST_OK;
}

static const struct lst_table content_in_table =
    TABLE("inbound_content", content_in_fields, 0, check_inbound_content, NULL);

static const struct lst_field content_out_fields[] = {
    F_ENUM(lst_content, kind, content_kinds, LST_CONTENT_OUT_KINDS, "what the message carries"),
    F_STR(lst_content, text, LST_TEXT_MAX, NULL, K(TEXT), K(TEXT), "the text"),
    CONTENT_MEDIA_AND_LOCATION(FI),
};

/* Inbound-only members of lst_content are not part of this table: cleanup uses the inbound
 * table, which names every pointer of the struct. */
static const struct lst_table content_out_table =
    TABLE("content", content_out_fields, 0, NULL, &content_in_table);

/* ---- lst.message ------------------------------------------------------------------------ */

static const struct lst_field selector_fields[] = {
    F_STRV(lst_selector, departments, 0, LST_SELECTOR_ITEMS_MAX, LST_LABEL_MAX, NULL, ALL, OPT,
           "any of these departments"),
    F_STRV(lst_selector, vehicles, 0, LST_SELECTOR_ITEMS_MAX, LST_LABEL_MAX, NULL, ALL, OPT,
           "any of these vehicles"),
    F_STRV(lst_selector, tags, 0, LST_TAGS_MAX, LST_TAG_MAX, NULL, ALL, OPT, "any of these tags"),
    F_STRV(lst_selector, employee_ids, 0, LST_RECIPIENTS_MAX, LST_EMPLOYEE_ID_MAX, &pat_employee,
           ALL, OPT, "employees added by name"),
    F_BOOLH(lst_selector, active, ALL, OPT, "only active (true) or inactive (false) employees"),
};
static const struct lst_table selector_table = TABLE("selector", selector_fields, -1, NULL, NULL);

static const char *const skip_reasons[LST_SKIP__COUNT] = {"unknown", "inactive", "no_contact"};

const char *lst_skip_reason_name(enum lst_skip_reason reason)
{
    return (unsigned)reason < LST_SKIP__COUNT ? skip_reasons[reason] : "unknown";
}

static const struct lst_field skip_fields[] = {
    F_STR(lst_skip, employee_id, LST_EMPLOYEE_ID_MAX, &pat_employee, ALL, ALL,
          "the employee ID that was targeted"),
    F_ENUM(lst_skip, reason, skip_reasons, LST_SKIP__COUNT,
           "unknown: an explicit ID the directory did not know; inactive; no_contact: no "
           "Threema ID, phone or e-mail"),
};
static const struct lst_table skip_table = TABLE("skip", skip_fields, -1, NULL, NULL);

static const struct lst_field audience_fields[] = {
    F_OBJ(lst_audience, selector, selector_table, ALL, ALL, "the criteria the dispatcher chose"),
    F_STRV(lst_audience, recipients, 1, LST_RECIPIENTS_MAX, LST_EMPLOYEE_ID_MAX, &pat_employee, ALL,
           ALL, "the employee IDs the selector resolved to when sending"),
    F_OBJV(lst_audience, skipped, lst_skip, skip_table, 0, LST_SKIPPED_MAX, ALL, OPT,
           "employees the dispatcher targeted who were not sent to, and why (in ID order)"),
};
static const struct lst_table audience_table = TABLE("audience", audience_fields, -1, NULL, NULL);

lst_err lst_audience_skip_push(struct lst_audience *a, const char *employee_id,
                               enum lst_skip_reason reason)
{
    char *copy = lst_strdup(employee_id);
    if (copy == NULL)
        return LST_ERR_NOMEM;
    struct lst_skip *items = realloc(a->skipped.items, (a->skipped.len + 1) * sizeof(*items));
    if (items == NULL) {
        free(copy);
        return LST_ERR_NOMEM;
    }
    items[a->skipped.len++] = (struct lst_skip){.employee_id = copy, .reason = reason};
    a->skipped.items = items;
    return LST_OK;
}

static const struct lst_field message_fields[] = {
    F_VER,
    F_STR(lst_message, message_id, LST_MESSAGE_ID_LEN, &pat_ulid, ALL, ALL,
          "our message ID (ULID, time-ordered)"),
    F_INT(lst_message, created_at, 0, LST_TIME_MS_MAX, ALL, ALL, "ms since the epoch"),
    F_STR(lst_message, dispatcher, LST_USER_ID_MAX, &pat_user, ALL, ALL,
          "user ID of the sending dispatcher"),
    F_STR(lst_message, dispatcher_name, LST_NAME_MAX, NULL, ALL, OPT,
          "display name of the dispatcher"),
    F_STR(lst_message, department, LST_LABEL_MAX, NULL, ALL, OPT, "department of the dispatcher"),
    F_STR(lst_message, category, LST_SLUG_MAX, &pat_slug, ALL, ALL,
          "category for filtering and hiding"),
    F_STR(lst_message, idempotency_key, LST_IDEMPOTENCY_KEY_MAX, &pat_printable, ALL, ALL,
          "client key that collapses double submissions"),
    F_OBJ(lst_message, content, content_out_table, ALL, ALL, "what is sent"),
    F_OBJ(lst_message, audience, audience_table, ALL, ALL, "to whom"),
};
static const struct lst_table message_table = TABLE("lst.message", message_fields, -1, NULL, NULL);

/* ---- lst.outbound ----------------------------------------------------------------------- */

static const struct lst_field address_fields[] = {
    F_STR(lst_address, threema_id, LST_THREEMA_ID_LEN, &pat_threema_id, ALL, OPT, "Threema ID"),
    F_STR(lst_address, phone, LST_PHONE_MAX, &pat_phone, ALL, OPT,
          "E.164 phone number, to look the ID up"),
    F_STR(lst_address, email, LST_EMAIL_MAX, &pat_email, ALL, OPT, "e-mail, to look the ID up"),
};

static lst_err check_address(const void *rec, const char **field, const char **msg)
{
    const struct lst_address *a = rec;
    if (a->threema_id == NULL && a->phone == NULL && a->email == NULL) {
        *field = "threema_id";
        *msg = "missing (give threema_id, phone or email)";
        return LST_ERR_INVALID;
    }
    return LST_OK;
}
static const struct lst_table address_table =
    TABLE("address", address_fields, -1, check_address, NULL);

/* request_id must be exactly "<message_id>:<employee_id>" of the same record. */
static bool request_id_consistent(const char *rid, const char *mid, const char *eid)
{
    size_t ml = strlen(mid);
    return strncmp(rid, mid, ml) == 0 && rid[ml] == ':' && strcmp(rid + ml + 1, eid) == 0;
}

static lst_err check_outbound(const void *rec, const char **field, const char **msg)
{
    const struct lst_outbound *o = rec;
    if (!request_id_consistent(o->request_id, o->message_id, o->employee_id)) {
        *field = "request_id";
        *msg = "must be <message_id>:<employee_id>";
        return LST_ERR_INVALID;
    }
    return LST_OK;
}

static const struct lst_field outbound_fields[] = {
    F_VER,
    F_STR(lst_outbound, request_id, LST_REQUEST_ID_MAX, &pat_request, ALL, ALL,
          "<message_id>:<employee_id>, unique per send"),
    F_STR(lst_outbound, message_id, LST_MESSAGE_ID_LEN, &pat_ulid, ALL, ALL, "our message ID"),
    F_STR(lst_outbound, employee_id, LST_EMPLOYEE_ID_MAX, &pat_employee, ALL, ALL, "the recipient"),
    F_OBJ(lst_outbound, to, address_table, ALL, ALL, "how to reach the recipient"),
    F_OBJ(lst_outbound, content, content_out_table, ALL, ALL, "what to send"),
    F_BOOL(lst_outbound, no_delivery_receipts, ALL, ALL, "ask the phone not to send receipts"),
    F_BOOL(lst_outbound, no_push, ALL, ALL, "no push notification"),
    F_INT(lst_outbound, created_at, 0, LST_TIME_MS_MAX, ALL, ALL, "ms since the epoch"),
    F_INTH(lst_outbound, deadline, 0, LST_TIME_MS_MAX, ALL, OPT,
           "ms since the epoch; not sent after it (failed, code deadline)"),
};
static const struct lst_table outbound_table =
    TABLE("lst.outbound", outbound_fields, -1, check_outbound, NULL);

/* ---- lst.sent --------------------------------------------------------------------------- */

static const char *const sent_outcomes[LST_SENT__COUNT] = {"accepted", "failed"};
#define ACC (1u << LST_SENT_ACCEPTED)
#define FLD (1u << LST_SENT_FAILED)

static const struct lst_field failure_fields[] = {
    F_STR(lst_failure, code, LST_SLUG_MAX, &pat_slug, ALL, ALL,
          "stable code, e.g. http_404, lookup_not_found, deadline"),
    F_INTH(lst_failure, http_status, 100, 599, ALL, OPT, "the Gateway's HTTP status"),
    F_STR(lst_failure, reason, LST_REASON_MAX, NULL, ALL, ALL, "human-readable reason"),
    F_BOOL(lst_failure, final, ALL, ALL, "true: given up; false: will be retried"),
};
static const struct lst_table failure_table = TABLE("failure", failure_fields, -1, NULL, NULL);

static lst_err check_sent(const void *rec, const char **field, const char **msg)
{
    const struct lst_sent *s = rec;
    if (!request_id_consistent(s->request_id, s->message_id, s->employee_id)) {
        *field = "request_id";
        *msg = "must be <message_id>:<employee_id>";
        return LST_ERR_INVALID;
    }
    return LST_OK;
}

static const struct lst_field sent_fields[] = {
    F_VER,
    F_STR(lst_sent, request_id, LST_REQUEST_ID_MAX, &pat_request, ALL, ALL,
          "the request this is the outcome of"),
    F_STR(lst_sent, message_id, LST_MESSAGE_ID_LEN, &pat_ulid, ALL, ALL, "our message ID"),
    F_STR(lst_sent, employee_id, LST_EMPLOYEE_ID_MAX, &pat_employee, ALL, ALL, "the recipient"),
    F_ENUM(lst_sent, outcome, sent_outcomes, LST_SENT__COUNT, "accepted by the Gateway or not"),
    F_STR(lst_sent, threema_message_id, LST_THREEMA_MSGID_LEN, &pat_msgid, ACC, ACC,
          "the Gateway's message ID"),
    F_STR(lst_sent, threema_id, LST_THREEMA_ID_LEN, &pat_threema_id, ALL, OPT,
          "the recipient's Threema ID used"),
    F_OBJ(lst_sent, failure, failure_table, FLD, FLD, "why it failed"),
    F_BOOL(lst_sent, possible_duplicate, ALL, ALL,
           "an earlier attempt may already have reached the Gateway"),
    F_INT(lst_sent, attempts, 0, LST_ATTEMPTS_MAX, ALL, ALL, "Gateway calls made"),
    F_INT(lst_sent, at, 0, LST_TIME_MS_MAX, ALL, ALL, "ms since the epoch"),
};
static const struct lst_table sent_table = TABLE("lst.sent", sent_fields, 4, check_sent, NULL);

/* ---- lst.inbound ------------------------------------------------------------------------ */

static const char *const inbound_kinds[LST_INBOUND__COUNT] = {"message", "receipt"};
#define MSG (1u << LST_INBOUND_MESSAGE)
#define RCP (1u << LST_INBOUND_RECEIPT)

const char *lst_receipt_status_name(int64_t status)
{
    static const char *const names[] = {"unknown", "received", "read", "acknowledged", "declined"};
    return status >= 1 && status <= 4 ? names[status] : names[0];
}

static const struct lst_field receipt_fields[] = {
    F_INT(lst_receipt, status, 0, 255, ALL, ALL,
          "1 received, 2 read, 3 acknowledged, 4 declined; others kept"),
    F_STRV(lst_receipt, message_ids, 1, LST_RECEIPT_IDS_MAX, LST_THREEMA_MSGID_LEN, &pat_msgid, ALL,
           ALL, "the Threema message IDs the receipt is for"),
};
static const struct lst_table receipt_table = TABLE("receipt", receipt_fields, -1, NULL, NULL);

static lst_err check_inbound(const void *rec, const char **field, const char **msg)
{
    const struct lst_inbound *in = rec;
    size_t fl = strlen(in->from);
    if (strncmp(in->event_id, in->from, fl) != 0 || in->event_id[fl] != ':' ||
        strcmp(in->event_id + fl + 1, in->threema_message_id) != 0) {
        *field = "event_id";
        *msg = "must be <from>:<threema_message_id>";
        return LST_ERR_INVALID;
    }
    return LST_OK;
}

static const struct lst_field inbound_fields[] = {
    F_VER,
    F_STR(lst_inbound, event_id, LST_EVENT_ID_LEN, &pat_event, ALL, ALL,
          "<from>:<threema_message_id>, the dedupe key"),
    F_ENUM(lst_inbound, kind, inbound_kinds, LST_INBOUND__COUNT, "a message or a receipt"),
    F_STR(lst_inbound, from, LST_THREEMA_ID_LEN, &pat_threema_id, ALL, ALL, "sender Threema ID"),
    F_STR(lst_inbound, to, LST_THREEMA_ID_LEN, &pat_threema_id, ALL, ALL, "our Gateway ID"),
    F_STR(lst_inbound, threema_message_id, LST_THREEMA_MSGID_LEN, &pat_msgid, ALL, ALL,
          "the Gateway's message ID"),
    F_INT(lst_inbound, date, 0, LST_TIME_S_MAX, ALL, ALL, "the Gateway's date, unix seconds"),
    F_INT(lst_inbound, received_at, 0, LST_TIME_MS_MAX, ALL, ALL,
          "ms since the epoch when gateway-in took it"),
    F_STR(lst_inbound, nickname, LST_NAME_MAX, NULL, ALL, OPT, "sender's nickname (not MACed)"),
    F_OBJ(lst_inbound, content, content_in_table, MSG, MSG, "the decoded message"),
    F_OBJ(lst_inbound, receipt, receipt_table, RCP, RCP, "the delivery receipt"),
};
static const struct lst_table inbound_table =
    TABLE("lst.inbound", inbound_fields, 2, check_inbound, NULL);

/* ---- lst.employees ---------------------------------------------------------------------- */

static const struct lst_field employee_fields[] = {
    F_VER,
    F_STR(lst_employee, employee_id, LST_EMPLOYEE_ID_MAX, &pat_employee, ALL, ALL,
          "the ERP's employee ID"),
    F_STR(lst_employee, name, LST_NAME_MAX, NULL, ALL, ALL, "display name"),
    F_STR(lst_employee, department, LST_LABEL_MAX, NULL, ALL, OPT, "department"),
    F_STR(lst_employee, vehicle, LST_LABEL_MAX, NULL, ALL, OPT, "vehicle"),
    F_STRV(lst_employee, tags, 0, LST_TAGS_MAX, LST_TAG_MAX, NULL, ALL, OPT, "free tags"),
    F_BOOL(lst_employee, active, ALL, ALL, "false: kept for history, not messaged"),
    F_STR(lst_employee, threema_id, LST_THREEMA_ID_LEN, &pat_threema_id, ALL, OPT, "Threema ID"),
    F_STR(lst_employee, phone, LST_PHONE_MAX, &pat_phone, ALL, OPT, "E.164 phone number"),
    F_STR(lst_employee, email, LST_EMAIL_MAX, &pat_email, ALL, OPT, "e-mail address"),
    F_INT(lst_employee, updated_at, 0, LST_TIME_MS_MAX, ALL, ALL, "ms since the epoch"),
    F_STR(lst_employee, source, LST_SOURCE_MAX, &pat_slug, ALL, ALL,
          "where the data came from, e.g. erp"),
};
static const struct lst_table employee_table =
    TABLE("lst.employees", employee_fields, -1, NULL, NULL);

/* ---- lst.annotations -------------------------------------------------------------------- */

static const char *const annotation_kinds[LST_ANNOTATION__COUNT] = {"handled", "unhandled",
                                                                    "category"};
#define ACAT (1u << LST_ANNOTATION_CATEGORY)

static const struct lst_field annotation_fields[] = {
    F_VER,
    F_STR(lst_annotation, item_id, LST_ITEM_ID_MAX, &pat_item, ALL, ALL,
          "the timeline item: our message ID or an inbound event ID"),
    F_ENUM(lst_annotation, kind, annotation_kinds, LST_ANNOTATION__COUNT,
           "handled, unhandled, or a category change"),
    F_STR(lst_annotation, category, LST_SLUG_MAX, &pat_slug, ACAT, ACAT, "the new category"),
    F_STR(lst_annotation, user, LST_USER_ID_MAX, &pat_user, ALL, ALL, "user ID of the dispatcher"),
    F_STR(lst_annotation, department, LST_LABEL_MAX, NULL, ALL, OPT,
          "department of the dispatcher"),
    F_INT(lst_annotation, at, 0, LST_TIME_MS_MAX, ALL, ALL, "ms since the epoch"),
};
static const struct lst_table annotation_table =
    TABLE("lst.annotations", annotation_fields, 2, NULL, NULL);

/* ---- lst.views -------------------------------------------------------------------------- */

static const char *const view_kinds[LST_VIEW__COUNT] = {"put", "delete"};
#define VPUT (1u << LST_VIEW_PUT)

#define F_VPARAM(m)                                                                                \
    F_STR(lst_view_filter, m, LST_VIEW_PARAM_MAX, NULL, ALL, OPT,                                  \
          "the timeline query parameter " #m " as text")

static const struct lst_field view_filter_fields[] = {
    F_VPARAM(direction),  F_VPARAM(type),    F_VPARAM(category),   F_VPARAM(employee),
    F_VPARAM(department), F_VPARAM(vehicle), F_VPARAM(dispatcher), F_VPARAM(tag),
    F_VPARAM(depot),      F_VPARAM(status),  F_VPARAM(from),       F_VPARAM(to),
    F_VPARAM(q),          F_VPARAM(handled),
};
static const struct lst_table view_filter_table =
    TABLE("view_filter", view_filter_fields, -1, NULL, NULL);

_Static_assert(LST_ARRAY_LEN(view_filter_fields) == LST_VIEW_FILTER_PARAMS,
               "LST_VIEW_FILTER_PARAMS is the number of view filter fields");

const char *lst_view_filter_name(size_t i)
{
    return i < LST_VIEW_FILTER_PARAMS ? view_filter_fields[i].name : NULL;
}

char **lst_view_filter_slot(struct lst_view_filter *f, size_t i)
{
    return i < LST_VIEW_FILTER_PARAMS ? (char **)((char *)f + view_filter_fields[i].off) : NULL;
}

const char *lst_view_filter_get(const struct lst_view_filter *f, size_t i)
{
    return i < LST_VIEW_FILTER_PARAMS
               ? *(char *const *)((const char *)f + view_filter_fields[i].off)
               : NULL;
}

static const struct lst_field view_fields[] = {
    F_VER,
    F_STR(lst_view, view_id, LST_MESSAGE_ID_LEN, &pat_ulid, ALL, ALL, "the view's ID (ULID)"),
    F_ENUM(lst_view, kind, view_kinds, LST_VIEW__COUNT, "put (create or replace) or delete"),
    F_STR(lst_view, owner, LST_USER_ID_MAX, &pat_user, ALL, ALL, "user ID of the owner"),
    F_STR(lst_view, department, LST_LABEL_MAX, NULL, ALL, OPT,
          "the owner's department (the scope of sharing)"),
    F_STR(lst_view, name, LST_VIEW_NAME_MAX, NULL, VPUT, VPUT, "display name"),
    F_BOOL(lst_view, shared, VPUT, VPUT, "visible to the owner's department"),
    F_OBJ(lst_view, filter, view_filter_table, VPUT, VPUT, "the timeline filter"),
    F_STRV(lst_view, hidden, 0, LST_VIEW_HIDDEN_MAX, LST_SLUG_MAX, &pat_slug, VPUT, OPT,
           "categories the view removes entirely"),
    F_INT(lst_view, at, 0, LST_TIME_MS_MAX, ALL, ALL, "ms since the epoch"),
};
static const struct lst_table view_table = TABLE("lst.views", view_fields, 2, NULL, NULL);

/* ---- lst.dlq ---------------------------------------------------------------------------- */

static const char *const dlq_encodings[LST_DLQ__COUNT] = {"utf8", "base64"};

static const struct lst_field payload_fields[] = {
    F_ENUM(lst_dlq_payload, encoding, dlq_encodings, LST_DLQ__COUNT,
           "utf8: data is the bytes; base64: data is their base64"),
    F_STR0(lst_dlq_payload, data, LST_DLQ_DATA_MAX, NULL, ALL, ALL,
           "the bytes (empty for an empty key or value)"),
    F_BOOL(lst_dlq_payload, truncated, ALL, ALL, "data holds only the first 262144 bytes"),
    F_INT(lst_dlq_payload, size, 0, LST_JSON_SAFE_INT_MAX, ALL, ALL, "original size in bytes"),
};

static lst_err check_payload(const void *rec, const char **field, const char **msg)
{
    const struct lst_dlq_payload *p = rec;
    size_t len = strlen(p->data);
    *field = "data";
    if (p->encoding == LST_DLQ_BASE64 && !match_base64(p->data, len)) {
        *msg = "not base64";
        return LST_ERR_INVALID;
    }
    if (p->encoding == LST_DLQ_UTF8 && len > LST_DLQ_PAYLOAD_MAX) {
        *msg = "exceeds 262144 bytes";
        return LST_ERR_TOO_LARGE;
    }
    return LST_OK;
}
static const struct lst_table payload_table =
    TABLE("payload", payload_fields, 0, check_payload, NULL);

static const struct lst_field dlq_fields[] = {
    F_VER,
    F_STR(lst_dlq, source_topic, LST_TOPIC_MAX, &pat_topic, ALL, ALL, "topic of the record"),
    F_INT(lst_dlq, source_partition, 0, INT32_MAX, ALL, ALL, "its partition"),
    F_INT(lst_dlq, source_offset, 0, LST_JSON_SAFE_INT_MAX, ALL, ALL, "its offset"),
    F_OBJH(lst_dlq, key, payload_table, ALL, OPT, "its key; absent when it had none"),
    F_OBJH(lst_dlq, value, payload_table, ALL, OPT, "its value; absent for a tombstone"),
    F_STR(lst_dlq, error, LST_ERROR_NAME_MAX, &pat_slug, ALL, ALL,
          "lst_err name, e.g. invalid, version, too_large, utf8"),
    F_STR(lst_dlq, reason, LST_REASON_MAX, NULL, ALL, ALL, "field path and reason"),
    F_INT(lst_dlq, failed_at, 0, LST_TIME_MS_MAX, ALL, ALL, "ms since the epoch"),
    F_STR(lst_dlq, service, LST_SLUG_MAX, &pat_slug, ALL, ALL, "the consumer that gave up"),
};
static const struct lst_table dlq_table = TABLE("lst.dlq", dlq_fields, -1, NULL, NULL);

/* ---- lst.audit ------------------------------------------------------------------------- */

static const char *const audit_actions[LST_AUDIT__COUNT] = {"view", "export", "erase", "readmit"};

static const struct lst_field audit_fields[] = {
    F_VER,
    F_STR(lst_audit, event_id, LST_MESSAGE_ID_LEN, &pat_ulid, ALL, ALL,
          "ULID of the event (the ledger stores each once)"),
    F_INT(lst_audit, at, 0, LST_TIME_MS_MAX, ALL, ALL, "ms since the epoch"),
    F_STR(lst_audit, actor, LST_USER_ID_MAX, &pat_user, ALL, ALL, "user ID of the token"),
    F_STR(lst_audit, role, LST_SLUG_MAX, &pat_slug, ALL, ALL, "role of the token"),
    F_ENUM(lst_audit, action, audit_actions, LST_AUDIT__COUNT,
           "view: opened the employee's history; export; erase; readmit: an ERP import "
           "re-created an erased employee"),
    F_STR(lst_audit, employee_id, LST_EMPLOYEE_ID_MAX, &pat_employee, ALL, ALL,
          "whose data was accessed"),
    F_STR(lst_audit, detail, LST_REASON_MAX, NULL, ALL, OPT, "what else the action did"),
};
static const struct lst_table audit_table = TABLE("lst.audit", audit_fields, -1, NULL, NULL);

/* ---- record types and typed wrappers ---------------------------------------------------- */

enum {
    REC_MESSAGE,
    REC_OUTBOUND,
    REC_SENT,
    REC_INBOUND,
    REC_EMPLOYEE,
    REC_DLQ,
    REC_ANNOTATION,
    REC_VIEW,
    REC_AUDIT,
    REC__COUNT
};

static const struct lst_rec_type rec_types[REC__COUNT] = {
    [REC_MESSAGE] = {"lst.message", "message_id", sizeof(struct lst_message), &message_table},
    [REC_OUTBOUND] = {"lst.outbound", "employee_id", sizeof(struct lst_outbound), &outbound_table},
    [REC_SENT] = {"lst.sent", "employee_id", sizeof(struct lst_sent), &sent_table},
    [REC_INBOUND] = {"lst.inbound", "from", sizeof(struct lst_inbound), &inbound_table},
    [REC_EMPLOYEE] = {"lst.employees", "employee_id", sizeof(struct lst_employee), &employee_table},
    [REC_DLQ] = {"lst.dlq", "the source record's key", sizeof(struct lst_dlq), &dlq_table},
    [REC_AUDIT] = {"lst.audit", "employee_id", sizeof(struct lst_audit), &audit_table},
    [REC_ANNOTATION] = {"lst.annotations", "item_id", sizeof(struct lst_annotation),
                        &annotation_table},
    [REC_VIEW] = {"lst.views", "view_id", sizeof(struct lst_view), &view_table},
};

const struct lst_rec_type *lst_rec_types(size_t *count)
{
    *count = REC__COUNT;
    return rec_types;
}

const struct lst_rec_type *lst_rec_type_find(const char *name)
{
    size_t len = strlen(name);
    if (len > 4 && strcmp(name + len - 4, ".dlq") == 0)
        return &rec_types[REC_DLQ];
    for (size_t i = 0; i < REC__COUNT; i++) {
        if (strcmp(rec_types[i].name, name) == 0)
            return &rec_types[i];
    }
    return NULL;
}

#define RECORD_FUNCS(rec, idx)                                                                     \
    lst_err lst_##rec##_encode(const struct lst_##rec *r, struct lst_buf *out)                     \
    {                                                                                              \
        return lst_rec_encode(&rec_types[idx], r, out);                                            \
    }                                                                                              \
    lst_err lst_##rec##_validate(const struct lst_##rec *r, struct lst_buf *why)                   \
    {                                                                                              \
        return lst_rec_validate(&rec_types[idx], r, why);                                          \
    }                                                                                              \
    lst_err lst_##rec##_decode(const char *data, size_t len, struct lst_##rec *out,                \
                               struct lst_buf *why)                                                \
    {                                                                                              \
        return lst_rec_decode(&rec_types[idx], data, len, out, why);                               \
    }                                                                                              \
    void lst_##rec##_cleanup(struct lst_##rec *r)                                                  \
    {                                                                                              \
        lst_rec_cleanup(&rec_types[idx], r);                                                       \
    }

RECORD_FUNCS(message, REC_MESSAGE)
RECORD_FUNCS(outbound, REC_OUTBOUND)
RECORD_FUNCS(sent, REC_SENT)
RECORD_FUNCS(inbound, REC_INBOUND)
RECORD_FUNCS(employee, REC_EMPLOYEE)
RECORD_FUNCS(dlq, REC_DLQ)
RECORD_FUNCS(audit, REC_AUDIT)
RECORD_FUNCS(annotation, REC_ANNOTATION)
RECORD_FUNCS(view, REC_VIEW)
