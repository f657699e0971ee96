/* Codecs for every Kafka record type of Leitstand (the contracts in proto/schemas/).
 *
 * One C struct per record type; for each:
 *   lst_<rec>_encode(rec, out)        validates, then writes compact JSON into out (replacing
 *                                     its content; out is empty after a failure)
 *   lst_<rec>_validate(rec, why)      the checks encode runs, with the reason in why
 *   lst_<rec>_decode(data, len, rec, why)  parses and validates; rec is overwritten (it need
 *                                     not be initialised) and owns everything on success; on
 *                                     failure rec is left zeroed (nothing to free) and why
 *                                     holds "<field path>: <reason>"
 *   lst_<rec>_cleanup(rec)            frees every owned string and array and zeroes rec;
 *                                     safe on a zeroed struct and twice in a row
 * why may be NULL everywhere. Errors: LST_ERR_INVALID (not JSON, not an object, trailing data,
 * missing field, wrong type, bad pattern, value not allowed for the record's kind),
 * LST_ERR_VERSION ("v" other than LST_RECORD_VERSION), LST_ERR_TOO_LARGE (string above its
 * byte limit, too many array items, record above LST_RECORD_MAX), LST_ERR_RANGE (number out
 * of bounds), LST_ERR_UTF8 (invalid UTF-8 in any string), LST_ERR_NOMEM.
 *
 * Ownership: every `char *` and every lst_strv inside a record is owned by the record and
 * freed by its _cleanup (so allocate them with malloc/lst_strdup, or use lst_strv_push). NULL
 * means "absent" for optional strings. Optional numbers and objects have a has_<name> flag;
 * when a field is required for the record's kind its flag is ignored by encode and set by
 * decode. Unknown JSON fields are ignored by decode (forward compatibility); JSON null counts
 * as absent for optional fields.
 *
 * The limits below are the numbers in the JSON Schemas; tests/unit/test_records.c checks
 * that the schemas and the field tables at the end of this header agree. String limits are
 * bytes of UTF-8 (the schemas' maxLength counts characters, so the codec is the stricter). */
#ifndef LST_RECORDS_H
#define LST_RECORDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lst/error.h"
#include "lst/util.h"

#define LST_RECORD_VERSION 1
/* Bytes of one encoded record: below librdkafka's default message.max.bytes (1000000) and
 * the broker's default (1048588) with room for the key and the framing. */
#define LST_RECORD_MAX (960 * 1024)

/* Identifiers (fixed lengths exclude the NUL). */
#define LST_MESSAGE_ID_LEN      26 /* ULID: 10 chars ms time + 16 chars random, Crockford */
#define LST_EMPLOYEE_ID_MAX     64
#define LST_REQUEST_ID_MAX      (LST_MESSAGE_ID_LEN + 1 + LST_EMPLOYEE_ID_MAX)
#define LST_USER_ID_MAX         128
#define LST_THREEMA_ID_LEN      8
#define LST_THREEMA_MSGID_LEN   16
#define LST_EVENT_ID_LEN        (LST_THREEMA_ID_LEN + 1 + LST_THREEMA_MSGID_LEN)
#define LST_BLOB_REF_LEN        64 /* sha256 hex of the bytes in the company blob store */
#define LST_THREEMA_BLOB_ID_LEN 32
#define LST_PHONE_MAX           16 /* E.164 with '+' */
#define LST_EMAIL_MAX           254
#define LST_IDEMPOTENCY_KEY_MAX 128
#define LST_SLUG_MAX            64 /* category, failure code, service */
#define LST_SOURCE_MAX          32
#define LST_ERROR_NAME_MAX      32
#define LST_TOPIC_MAX           249

/* Texts and labels. */
#define LST_TEXT_MAX         3500  /* outbound text: the Gateway's limit */
#define LST_INBOUND_TEXT_MAX 16384 /* inbound text: never lose what a phone sent */
#define LST_CAPTION_MAX      3000
#define LST_NAME_MAX         256 /* person name, dispatcher name, nickname, location name */
#define LST_LABEL_MAX        128 /* department, vehicle */
#define LST_TAG_MAX          64
#define LST_MIME_MAX         255
#define LST_FILENAME_MAX     255
#define LST_ADDRESS_MAX      512
#define LST_REASON_MAX       1024

/* Counts and numbers. */
#define LST_RECIPIENTS_MAX     2000
#define LST_SKIPPED_MAX        2000 /* skipped employees a message records (the first, by ID) */
#define LST_SELECTOR_ITEMS_MAX 500  /* departments, vehicles in a selector */
#define LST_TAGS_MAX           32
#define LST_RECEIPT_IDS_MAX    512
#define LST_FILE_SIZE_MAX      INT64_C(1073741824)
#define LST_TIME_MS_MAX        INT64_C(253402300799999) /* 9999-12-31T23:59:59.999Z */
#define LST_TIME_S_MAX         INT64_C(253402300799)
#define LST_JSON_SAFE_INT_MAX  INT64_C(9007199254740991) /* 2^53 - 1 */
#define LST_ATTEMPTS_MAX       1000
#define LST_ACCURACY_MAX       10000000.0 /* metres */

/* DLQ: the original key/value, cut to LST_DLQ_PAYLOAD_MAX raw bytes so that a DLQ record
 * stays below LST_RECORD_MAX even when both are base64. */
#define LST_DLQ_PAYLOAD_MAX (256 * 1024)
#define LST_DLQ_DATA_MAX    (4 * ((LST_DLQ_PAYLOAD_MAX + 2) / 3))

/* An owned array of owned strings. */
struct lst_strv {
    char **items;
    size_t len;
};

/* Appends a copy of s. */
lst_err lst_strv_push(struct lst_strv *v, const char *s);
void lst_strv_cleanup(struct lst_strv *v);
/* Whether s (NULL: never) is one of the items; linear, for the short lists of a request. */
bool lst_strv_has(const struct lst_strv *v, const char *s);

/* An array of structs described by a sub-table (LST_FT_OBJV): items is a malloc'd array of
 * len structs of the field's item type, owned by the record like a strv. */
struct lst_objv {
    void *items;
    size_t len;
};

/* ---- content: what a message carries, in either direction ----------------------------- */

enum lst_content_kind {
    LST_CONTENT_TEXT = 0,
    LST_CONTENT_FILE,
    LST_CONTENT_IMAGE,
    LST_CONTENT_LOCATION,
    /* inbound only: */
    LST_CONTENT_UNSUPPORTED, /* a container type we do not decode (type holds it) */
    LST_CONTENT_TYPING,      /* typing indicator */
    LST_CONTENT_UNDECODABLE, /* bad padding, bad JSON, ...: reason says why */
    LST_CONTENT__COUNT
};
#define LST_CONTENT_OUT_KINDS 4 /* outbound content allows the first four kinds */

/* "kind" name such as "text"; "unknown" when out of range. */
const char *lst_content_kind_name(enum lst_content_kind kind);

struct lst_content {
    enum lst_content_kind kind;
    char *text; /* text */
    /* file, image */
    char *blob; /* sha256 hex in the company blob store; required outbound, optional inbound */
    char *mime;
    int64_t size; /* plaintext bytes */
    char *filename;
    char *caption;
    char *thumbnail_blob; /* sha256 hex */
    char *thumbnail_mime;
    char *threema_blob_id; /* inbound: the Gateway's blob ID (32 hex) */
    char *blob_error;      /* inbound: why the blob could not be stored (then blob is NULL) */
    /* location */
    double lat;
    double lon;
    bool has_accuracy;
    double accuracy; /* metres */
    char *name;
    char *address;
    /* unsupported (required), undecodable (optional) */
    bool has_type;
    int64_t type; /* Threema container type byte */
    bool typing;  /* typing: true typing, false stopped */
    char *reason; /* undecodable */
};

/* ---- lst.message: one per dispatcher message (key: message_id) -------------------------- */

/* The criteria that produced the audience: within a list any item matches (OR), across
 * lists all must match (AND); employee_ids are added explicitly. */
struct lst_selector {
    struct lst_strv departments;
    struct lst_strv vehicles;
    struct lst_strv tags;
    struct lst_strv employee_ids;
    bool has_active;
    bool active;
};

/* Why a targeted employee did not become a recipient (view-api's audience resolution). */
enum lst_skip_reason {
    LST_SKIP_UNKNOWN = 0, /* an explicit ID the directory does not know */
    LST_SKIP_INACTIVE,
    LST_SKIP_NO_CONTACT, /* no Threema ID, phone or e-mail */
    LST_SKIP__COUNT
};

struct lst_skip {
    char *employee_id;
    enum lst_skip_reason reason;
};

struct lst_audience {
    struct lst_selector selector;
    struct lst_strv recipients; /* resolved employee IDs, 1..LST_RECIPIENTS_MAX */
    /* optional: struct lst_skip items, 0..LST_SKIPPED_MAX; absent in older records (len 0) */
    struct lst_objv skipped;
};

/* Appends a copy of employee_id with reason to a->skipped. */
lst_err lst_audience_skip_push(struct lst_audience *a, const char *employee_id,
                               enum lst_skip_reason reason);
const char *lst_skip_reason_name(enum lst_skip_reason reason);

struct lst_message {
    char *message_id;      /* ULID, see lst_message_id_new */
    int64_t created_at;    /* ms since the epoch */
    char *dispatcher;      /* user ID */
    char *dispatcher_name; /* optional */
    char *department;      /* optional: the dispatcher's department */
    char *category;
    char *idempotency_key;
    struct lst_content content; /* kinds text, file, image, location */
    struct lst_audience audience;
};

/* ---- lst.outbound: one per recipient (key: employee_id) --------------------------------- */

struct lst_address { /* at least one; gateway-out prefers threema_id, then phone, then email */
    char *threema_id;
    char *phone; /* E.164 */
    char *email;
};

struct lst_outbound {
    char *request_id; /* "<message_id>:<employee_id>" (checked) */
    char *message_id;
    char *employee_id;
    struct lst_address to;
    struct lst_content content; /* kinds text, file, image, location */
    bool no_delivery_receipts;
    bool no_push;
    int64_t created_at; /* ms */
    bool has_deadline;
    int64_t deadline; /* ms: do not send after this */
};

/* ---- lst.sent: outcome of one send (key: employee_id) ----------------------------------- */

enum lst_sent_outcome { LST_SENT_ACCEPTED = 0, LST_SENT_FAILED, LST_SENT__COUNT };

struct lst_failure {
    char *code; /* slug: "http_404", "lookup_not_found", "deadline", ... */
    bool has_http_status;
    int64_t http_status;
    char *reason; /* human-readable, no message contents */
    bool final;   /* false: gateway-out retries */
};

struct lst_sent {
    char *request_id;
    char *message_id;
    char *employee_id;
    enum lst_sent_outcome outcome;
    char *threema_message_id;   /* accepted only, required */
    char *threema_id;           /* optional: the recipient ID used */
    struct lst_failure failure; /* failed only, required */
    bool possible_duplicate;    /* an earlier attempt may have reached the Gateway */
    int64_t attempts;           /* Gateway calls made for this request */
    int64_t at;                 /* ms */
};

/* ---- lst.inbound: incoming message or receipt (key: from) ------------------------------ */

enum lst_inbound_kind { LST_INBOUND_MESSAGE = 0, LST_INBOUND_RECEIPT, LST_INBOUND__COUNT };

enum lst_receipt_status {
    LST_RECEIPT_RECEIVED = 1,
    LST_RECEIPT_READ = 2,
    LST_RECEIPT_ACKNOWLEDGED = 3,
    LST_RECEIPT_DECLINED = 4,
};
/* "received", "read", "acknowledged", "declined", or "unknown" (the number is kept). */
const char *lst_receipt_status_name(int64_t status);

struct lst_receipt {
    int64_t status;              /* 0..255; unknown values are kept */
    struct lst_strv message_ids; /* Threema message IDs, 16 lowercase hex, 1..512 */
};

struct lst_inbound {
    char *event_id; /* "<from>:<threema_message_id>" (checked): the dedupe key */
    enum lst_inbound_kind kind;
    char *from;
    char *to;
    char *threema_message_id;
    int64_t date;               /* the Gateway's unix seconds */
    int64_t received_at;        /* ms */
    char *nickname;             /* optional */
    struct lst_content content; /* message only */
    struct lst_receipt receipt; /* receipt only */
};

/* ---- lst.employees: master data (key: employee_id; compacted) --------------------------
 * A tombstone (null value) erases the employee: check for it before calling decode, which
 * rejects an empty value as not JSON. */

struct lst_employee {
    char *employee_id;
    char *name;
    char *department; /* optional */
    char *vehicle;    /* optional */
    struct lst_strv tags;
    bool active;
    char *threema_id;   /* optional */
    char *phone;        /* optional, E.164 */
    char *email;        /* optional */
    int64_t updated_at; /* ms */
    char *source;       /* slug, e.g. "erp" */
};

/* ---- lst.annotations: a dispatcher's note on one timeline item (key: item_id) ----------
 * handled / unhandled: someone takes care of the item (last writer wins by `at`);
 * category: the item's category is changed (last writer wins by `at`). */

enum lst_annotation_kind {
    LST_ANNOTATION_HANDLED = 0,
    LST_ANNOTATION_UNHANDLED,
    LST_ANNOTATION_CATEGORY,
    LST_ANNOTATION__COUNT
};

/* An annotated item: a message ID (ULID, 26) or an inbound event ID (25). */
#define LST_ITEM_ID_MAX LST_MESSAGE_ID_LEN

struct lst_annotation {
    char *item_id; /* our message ID or "<from>:<threema message id>" of an incoming one */
    enum lst_annotation_kind kind;
    char *category;   /* category only: the new category (slug) */
    char *user;       /* who annotated (user ID) */
    char *department; /* optional: that user's department */
    int64_t at;       /* ms */
};

/* ---- lst.views: a dispatcher's saved view (key: view_id) -------------------------------
 * put creates or replaces the view, delete removes it. The filter holds the timeline's
 * query parameters as the API takes them (comma lists as text); the view-api validates them
 * with its own filter parser before producing. */

enum lst_view_kind { LST_VIEW_PUT = 0, LST_VIEW_DELETE, LST_VIEW__COUNT };

#define LST_VIEW_NAME_MAX   128
#define LST_VIEW_PARAM_MAX  2048
#define LST_VIEW_HIDDEN_MAX 64

/* Every member optional (NULL: not set); one per timeline filter parameter of the same name.
 * tag, depot and handled came later: records written before them lack the fields and decode
 * with NULL there. hidden is not a member: a view's hidden categories are lst_view.hidden. */
struct lst_view_filter {
    char *direction;
    char *type;
    char *category;
    char *employee;
    char *department;
    char *vehicle;
    char *dispatcher;
    char *tag;   /* the directory's tags, comma list */
    char *depot; /* depot names, comma list: the tags depot:<depot> */
    char *status;
    char *from;
    char *to;
    char *q;
    char *handled; /* "true" | "false": handled items / the open inbox */
};

/* The filter's parameters by index, 0 .. LST_VIEW_FILTER_PARAMS - 1 in the codec's order, so
 * that the view-api and the ledger walk one list instead of naming every member (a parameter
 * added to the struct and the codec then reaches both). */
#define LST_VIEW_FILTER_PARAMS 14
/* The parameter's name (as in the timeline query and the record); static storage. */
const char *lst_view_filter_name(size_t i);
/* The member of parameter i (borrowed from f). */
char **lst_view_filter_slot(struct lst_view_filter *f, size_t i);
const char *lst_view_filter_get(const struct lst_view_filter *f, size_t i);

struct lst_view {
    char *view_id; /* ULID */
    enum lst_view_kind kind;
    char *owner;                   /* user ID */
    char *department;              /* optional: the owner's department (sharing scope) */
    char *name;                    /* put only, required */
    bool shared;                   /* put only: visible to the owner's department */
    struct lst_view_filter filter; /* put only */
    struct lst_strv hidden;        /* put only: categories removed entirely */
    int64_t at;                    /* ms */
};

/* ---- lst.audit: who accessed or changed which employee's data (key: employee_id) --------
 * Produced by the view-api (history views, GDPR export, erasure and re-admission), stored by the
 * ledger for the admins' audit log and the employee's data export (docs/view-api.md, GDPR). */

enum lst_audit_action {
    LST_AUDIT_VIEW = 0,
    LST_AUDIT_EXPORT,
    LST_AUDIT_ERASE,
    LST_AUDIT_READMIT, /* an ERP import brought an erased employee back (?readmit=) */
    LST_AUDIT__COUNT
};

struct lst_audit {
    char *event_id; /* ULID (lst_message_id_new), unique per event: the ledger dedupes by it */
    int64_t at;     /* ms since the epoch */
    char *actor;    /* user ID of the token */
    char *role;     /* "dispatcher" | "admin" (slug) */
    enum lst_audit_action action; /* view: opened the history; export; erase; readmit */
    char *employee_id;            /* whose data */
    char *detail;                 /* optional, e.g. "blobs_deleted=2" */
};

/* ---- lst.dlq: a record that can never be processed (on <topic>.dlq, key as source) ---- */

enum lst_dlq_encoding { LST_DLQ_UTF8 = 0, LST_DLQ_BASE64, LST_DLQ__COUNT };

struct lst_dlq_payload {
    enum lst_dlq_encoding encoding;
    char *data;
    bool truncated; /* data holds only the first LST_DLQ_PAYLOAD_MAX bytes */
    int64_t size;   /* original size in bytes */
};

struct lst_dlq {
    char *source_topic;
    int64_t source_partition;
    int64_t source_offset;
    bool has_key;
    struct lst_dlq_payload key; /* absent: the record had no key */
    bool has_value;
    struct lst_dlq_payload value; /* absent: a tombstone */
    char *error;                  /* lst_err_name() of the failure, e.g. "invalid" */
    char *reason;                 /* the decoder's why, e.g. "content.text: exceeds 3500 bytes" */
    int64_t failed_at;            /* ms */
    char *service;
};

/* Fills p from raw bytes: UTF-8 text (valid, no NUL) is kept as is, anything else becomes
 * base64; more than LST_DLQ_PAYLOAD_MAX bytes are cut (at a character boundary for text) and
 * marked truncated. Frees what p held before. */
lst_err lst_dlq_payload_set(struct lst_dlq_payload *p, const void *data, size_t len);
/* Appends the raw bytes of p to out (decoding base64). */
lst_err lst_dlq_payload_get(const struct lst_dlq_payload *p, struct lst_buf *out);

/* ---- the per-record functions --------------------------------------------------------- */

#define LST_RECORD_DECLARE(rec)                                                                    \
    lst_err lst_##rec##_encode(const struct lst_##rec *r, struct lst_buf *out);                    \
    lst_err lst_##rec##_validate(const struct lst_##rec *r, struct lst_buf *why);                  \
    lst_err lst_##rec##_decode(const char *data, size_t len, struct lst_##rec *out,                \
                               struct lst_buf *why);                                               \
    void lst_##rec##_cleanup(struct lst_##rec *r);

LST_RECORD_DECLARE(message)
LST_RECORD_DECLARE(outbound)
LST_RECORD_DECLARE(sent)
LST_RECORD_DECLARE(inbound)
LST_RECORD_DECLARE(employee)
LST_RECORD_DECLARE(annotation)
LST_RECORD_DECLARE(view)
LST_RECORD_DECLARE(dlq)
LST_RECORD_DECLARE(audit)

/* ---- identifiers ---------------------------------------------------------------------- */

/* A new message ID for time now_ms: 26 chars of Crockford base32 (0-9, A-Z without I L O U),
 * 48 bits of milliseconds then 80 random bits, so IDs sort by creation time (IDs made in the
 * same millisecond sort randomly among themselves). */
lst_err lst_message_id_new(int64_t now_ms, char out[LST_MESSAGE_ID_LEN + 1]);
/* "<message_id>:<employee_id>" into out (replaced). */
lst_err lst_request_id_format(struct lst_buf *out, const char *message_id, const char *employee_id);
/* "<from>:<threema_message_id>" into out (replaced). */
lst_err lst_event_id_format(struct lst_buf *out, const char *from, const char *threema_msgid);

/* ---- field tables: the codec's description of every record -----------------------------
 * The codec is driven by these tables; they are public so that tests and tools can compare
 * them with the JSON Schemas and render documentation. */

enum lst_field_type {
    LST_FT_VERSION, /* "v": the schema version, no storage */
    LST_FT_STR,     /* char * */
    LST_FT_INT,     /* int64_t within [min, max] */
    LST_FT_NUM,     /* double within [dmin, dmax] */
    LST_FT_BOOL,    /* bool */
    LST_FT_ENUM,    /* an int-sized enum stored as its index into names */
    LST_FT_STRV,    /* struct lst_strv with [min, max] items of up to max_len bytes */
    LST_FT_OBJ,     /* an embedded struct described by sub */
    LST_FT_OBJV,    /* struct lst_objv of [min, max] structs of item_size described by sub */
};

#define LST_KINDS_ALL (~0u)

struct lst_pattern {
    const char *regex; /* the schema's "pattern" (ECMA-262) */
    bool (*match)(const char *s, size_t len);
};

struct lst_table;

struct lst_field {
    const char *name;
    enum lst_field_type type;
    size_t off;     /* offset of the value in the struct */
    size_t has_off; /* offset of the has_<name> flag, or LST_NO_HAS */
    unsigned allow; /* kinds (bits over the table's discriminator) where the field may appear */
    unsigned req;   /* kinds where it is required (0: optional) */
    size_t max_len; /* STR, STRV items: bytes */
    const struct lst_pattern *pattern; /* STR, STRV items; NULL: any text */
    int64_t min, max;         /* INT: bounds; STRV: item count; STR: min is the least length */
    double dmin, dmax;        /* NUM */
    const char *const *names; /* ENUM */
    size_t names_len;
    const struct lst_table *sub; /* OBJ, OBJV items */
    size_t item_size;            /* OBJV: sizeof an item */
    const char *doc;
};
#define LST_NO_HAS ((size_t)-1)

struct lst_table {
    const char *name; /* the schema's $defs name for sub-objects, the record name at the top */
    const struct lst_field *fields;
    size_t count;
    int disc; /* index of the ENUM field selecting the kind, or -1 */
    /* Cross-field checks the table cannot express (NULL if none): on failure sets *field (the
     * field to blame) and *msg (a constant reason) and returns the error. */
    lst_err (*check)(const void *rec, const char **field, const char **msg);
    /* the table that names every owned pointer of the struct (content is shared) */
    const struct lst_table *cleanup;
};

struct lst_rec_type {
    const char *name; /* "lst.message"; schema file proto/schemas/<name>.schema.json */
    const char *key;  /* what the Kafka key is */
    size_t size;      /* sizeof the struct */
    const struct lst_table *table;
};

/* All record types; *count receives their number. Static storage. */
const struct lst_rec_type *lst_rec_types(size_t *count);
/* The record type for a record or topic name ("lst.sent", "lst.sent.dlq" gives lst.dlq);
 * NULL if none. */
const struct lst_rec_type *lst_rec_type_find(const char *name);

/* The generic engine behind the lst_<rec>_* functions, for tools that work on any record. */
lst_err lst_rec_encode(const struct lst_rec_type *t, const void *rec, struct lst_buf *out);
lst_err lst_rec_validate(const struct lst_rec_type *t, const void *rec, struct lst_buf *why);
lst_err lst_rec_decode(const struct lst_rec_type *t, const char *data, size_t len, void *out,
                       struct lst_buf *why);
void lst_rec_cleanup(const struct lst_rec_type *t, void *rec);

#endif
