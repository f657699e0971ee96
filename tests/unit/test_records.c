/* Record codecs: round trips of every record type, rejection of bad input with the right
 * error and field path, the ID and DLQ helpers, and the consistency of the codec's field
 * tables with proto/schemas/<record>.schema.json (found through LST_SOURCE_DIR).
 *
 * Set LST_RECORDS_DUMP=<file> to append every encoded sample as "<record>\t<json>" lines,
 * for validating them against the schemas with an external validator (see proto/README.md). */
#include <json-c/json.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lst/records.h"
#include "lst/util.h"
#include "lst_test.h"

#define MID   "01HZX3K4M5N6P7Q8R9STVWXYZ0"
#define EMP   "drv-0042"
#define RID   MID ":" EMP
#define SHA_A "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
#define SHA_B "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752"

static char *S(const char *s)
{
    return lst_strdup(s);
}

static void push(struct lst_strv *v, const char *s)
{
    CHECK_EQ(lst_strv_push(v, s), LST_OK);
}

static void dump(const char *rec, const struct lst_buf *json)
{
    const char *path = getenv("LST_RECORDS_DUMP");
    if (path == NULL || path[0] == '\0')
        return;
    FILE *fp = fopen(path, "a");
    if (fp == NULL)
        return;
    fprintf(fp, "%s\t%s\n", rec, json->data);
    fclose(fp);
}

/* ---- comparisons -------------------------------------------------------------------------- */

#define CHECK_OPTSTR(a, b)                                                                         \
    do {                                                                                           \
        if ((a) == NULL || (b) == NULL)                                                            \
            CHECK((a) == NULL && (b) == NULL);                                                     \
        else                                                                                       \
            CHECK_STREQ(a, b);                                                                     \
    } while (0)

static void cmp_strv(const struct lst_strv *a, const struct lst_strv *b)
{
    CHECK_EQ(a->len, b->len);
    for (size_t i = 0; i < a->len && i < b->len; i++)
        CHECK_STREQ(a->items[i], b->items[i]);
}

/* Compares what the codec carries for this kind (lat/lon only for locations, etc.). */
static void cmp_content(const struct lst_content *a, const struct lst_content *b)
{
    CHECK_EQ(a->kind, b->kind);
    CHECK_OPTSTR(a->text, b->text);
    CHECK_OPTSTR(a->blob, b->blob);
    CHECK_OPTSTR(a->mime, b->mime);
    CHECK_OPTSTR(a->filename, b->filename);
    CHECK_OPTSTR(a->caption, b->caption);
    CHECK_OPTSTR(a->thumbnail_blob, b->thumbnail_blob);
    CHECK_OPTSTR(a->thumbnail_mime, b->thumbnail_mime);
    CHECK_OPTSTR(a->threema_blob_id, b->threema_blob_id);
    CHECK_OPTSTR(a->blob_error, b->blob_error);
    CHECK_OPTSTR(a->name, b->name);
    CHECK_OPTSTR(a->address, b->address);
    CHECK_OPTSTR(a->reason, b->reason);
    if (a->kind == LST_CONTENT_FILE || a->kind == LST_CONTENT_IMAGE)
        CHECK_EQ(a->size, b->size);
    if (a->kind == LST_CONTENT_LOCATION) {
        CHECK(a->lat == b->lat);
        CHECK(a->lon == b->lon);
        CHECK_EQ(a->has_accuracy, b->has_accuracy);
        if (a->has_accuracy && b->has_accuracy)
            CHECK(a->accuracy == b->accuracy);
    }
    if (a->kind == LST_CONTENT_UNSUPPORTED || a->kind == LST_CONTENT_UNDECODABLE) {
        CHECK_EQ(a->has_type, b->has_type);
        if (a->has_type)
            CHECK_EQ(a->type, b->type);
    }
    if (a->kind == LST_CONTENT_TYPING)
        CHECK_EQ(a->typing, b->typing);
}

static void cmp_message(const struct lst_message *a, const struct lst_message *b)
{
    CHECK_STREQ(a->message_id, b->message_id);
    CHECK_EQ(a->created_at, b->created_at);
    CHECK_STREQ(a->dispatcher, b->dispatcher);
    CHECK_OPTSTR(a->dispatcher_name, b->dispatcher_name);
    CHECK_OPTSTR(a->department, b->department);
    CHECK_STREQ(a->category, b->category);
    CHECK_STREQ(a->idempotency_key, b->idempotency_key);
    cmp_content(&a->content, &b->content);
    const struct lst_selector *sa = &a->audience.selector, *sb = &b->audience.selector;
    cmp_strv(&sa->departments, &sb->departments);
    cmp_strv(&sa->vehicles, &sb->vehicles);
    cmp_strv(&sa->tags, &sb->tags);
    cmp_strv(&sa->employee_ids, &sb->employee_ids);
    CHECK_EQ(sa->has_active, sb->has_active);
    if (sa->has_active)
        CHECK_EQ(sa->active, sb->active);
    cmp_strv(&a->audience.recipients, &b->audience.recipients);
    CHECK_EQ(a->audience.skipped.len, b->audience.skipped.len);
    const struct lst_skip *ka = a->audience.skipped.items, *kb = b->audience.skipped.items;
    for (size_t i = 0; i < a->audience.skipped.len && i < b->audience.skipped.len; i++) {
        CHECK_STREQ(ka[i].employee_id, kb[i].employee_id);
        CHECK_EQ(ka[i].reason, kb[i].reason);
    }
}

static void cmp_outbound(const struct lst_outbound *a, const struct lst_outbound *b)
{
    CHECK_STREQ(a->request_id, b->request_id);
    CHECK_STREQ(a->message_id, b->message_id);
    CHECK_STREQ(a->employee_id, b->employee_id);
    CHECK_OPTSTR(a->to.threema_id, b->to.threema_id);
    CHECK_OPTSTR(a->to.phone, b->to.phone);
    CHECK_OPTSTR(a->to.email, b->to.email);
    cmp_content(&a->content, &b->content);
    CHECK_EQ(a->no_delivery_receipts, b->no_delivery_receipts);
    CHECK_EQ(a->no_push, b->no_push);
    CHECK_EQ(a->created_at, b->created_at);
    CHECK_EQ(a->has_deadline, b->has_deadline);
    if (a->has_deadline)
        CHECK_EQ(a->deadline, b->deadline);
}

static void cmp_sent(const struct lst_sent *a, const struct lst_sent *b)
{
    CHECK_STREQ(a->request_id, b->request_id);
    CHECK_STREQ(a->message_id, b->message_id);
    CHECK_STREQ(a->employee_id, b->employee_id);
    CHECK_EQ(a->outcome, b->outcome);
    CHECK_OPTSTR(a->threema_message_id, b->threema_message_id);
    CHECK_OPTSTR(a->threema_id, b->threema_id);
    if (a->outcome == LST_SENT_FAILED) {
        CHECK_STREQ(a->failure.code, b->failure.code);
        CHECK_EQ(a->failure.has_http_status, b->failure.has_http_status);
        if (a->failure.has_http_status)
            CHECK_EQ(a->failure.http_status, b->failure.http_status);
        CHECK_STREQ(a->failure.reason, b->failure.reason);
        CHECK_EQ(a->failure.final, b->failure.final);
    } else {
        CHECK(b->failure.code == NULL && b->failure.reason == NULL);
    }
    CHECK_EQ(a->possible_duplicate, b->possible_duplicate);
    CHECK_EQ(a->attempts, b->attempts);
    CHECK_EQ(a->at, b->at);
}

static void cmp_inbound(const struct lst_inbound *a, const struct lst_inbound *b)
{
    CHECK_STREQ(a->event_id, b->event_id);
    CHECK_EQ(a->kind, b->kind);
    CHECK_STREQ(a->from, b->from);
    CHECK_STREQ(a->to, b->to);
    CHECK_STREQ(a->threema_message_id, b->threema_message_id);
    CHECK_EQ(a->date, b->date);
    CHECK_EQ(a->received_at, b->received_at);
    CHECK_OPTSTR(a->nickname, b->nickname);
    if (a->kind == LST_INBOUND_MESSAGE) {
        cmp_content(&a->content, &b->content);
    } else {
        CHECK_EQ(a->receipt.status, b->receipt.status);
        cmp_strv(&a->receipt.message_ids, &b->receipt.message_ids);
    }
}

static void cmp_employee(const struct lst_employee *a, const struct lst_employee *b)
{
    CHECK_STREQ(a->employee_id, b->employee_id);
    CHECK_STREQ(a->name, b->name);
    CHECK_OPTSTR(a->department, b->department);
    CHECK_OPTSTR(a->vehicle, b->vehicle);
    cmp_strv(&a->tags, &b->tags);
    CHECK_EQ(a->active, b->active);
    CHECK_OPTSTR(a->threema_id, b->threema_id);
    CHECK_OPTSTR(a->phone, b->phone);
    CHECK_OPTSTR(a->email, b->email);
    CHECK_EQ(a->updated_at, b->updated_at);
    CHECK_STREQ(a->source, b->source);
}

static void cmp_payload(const struct lst_dlq_payload *a, const struct lst_dlq_payload *b)
{
    CHECK_EQ(a->encoding, b->encoding);
    CHECK_STREQ(a->data, b->data);
    CHECK_EQ(a->truncated, b->truncated);
    CHECK_EQ(a->size, b->size);
}

static void cmp_dlq(const struct lst_dlq *a, const struct lst_dlq *b)
{
    CHECK_STREQ(a->source_topic, b->source_topic);
    CHECK_EQ(a->source_partition, b->source_partition);
    CHECK_EQ(a->source_offset, b->source_offset);
    CHECK_EQ(a->has_key, b->has_key);
    if (a->has_key && b->has_key)
        cmp_payload(&a->key, &b->key);
    CHECK_EQ(a->has_value, b->has_value);
    if (a->has_value && b->has_value)
        cmp_payload(&a->value, &b->value);
    CHECK_STREQ(a->error, b->error);
    CHECK_STREQ(a->reason, b->reason);
    CHECK_EQ(a->failed_at, b->failed_at);
    CHECK_STREQ(a->service, b->service);
}

/* ---- fixtures ------------------------------------------------------------------------------ */

static void content_text(struct lst_content *c, const char *text)
{
    c->kind = LST_CONTENT_TEXT;
    c->text = S(text);
}

static void content_file(struct lst_content *c, bool full)
{
    c->kind = full ? LST_CONTENT_IMAGE : LST_CONTENT_FILE;
    c->blob = S(SHA_A);
    c->mime = S(full ? "image/jpeg" : "application/pdf");
    c->size = full ? 1234567 : 0;
    if (full) {
        c->filename = S("Schaden \xc3\xa4.jpg");
        c->caption = S("Bitte pr\xc3\xbc"
                       "fen \xe2\x9c\x93");
        c->thumbnail_blob = S(SHA_B);
        c->thumbnail_mime = S("image/jpeg");
    }
}

static void content_location(struct lst_content *c, bool full)
{
    c->kind = LST_CONTENT_LOCATION;
    c->lat = full ? 52.520008 : -90.0;
    c->lon = full ? 13.404954 : 180.0;
    if (full) {
        c->has_accuracy = true;
        c->accuracy = 12.5;
        c->name = S("Depot Nord");
        c->address = S("Hauptstra\xc3\x9f"
                       "e 1\n12345 Berlin");
    }
}

static void message_fixture(struct lst_message *m, int variant)
{
    memset(m, 0, sizeof(*m));
    m->message_id = S(MID);
    m->created_at = 1718000000123;
    m->dispatcher = S("anna.schmidt@leitstand");
    m->category = S("ops.dispatch");
    m->idempotency_key = S("click-7f3a-0001");
    push(&m->audience.recipients, EMP);
    if (variant == 0) {
        content_text(&m->content,
                     "Bitte A7 meiden, Stau bei Kassel \xf0\x9f\x9a\x97 \"quoted\"\n\t\\");
        return;
    }
    m->dispatcher_name = S("Anna Schmidt");
    m->department = S("Disposition S\xc3\xbc"
                      "d");
    push(&m->audience.recipients, "drv-0043");
    push(&m->audience.recipients, "drv_0044.x");
    struct lst_selector *sel = &m->audience.selector;
    push(&sel->departments, "Depot Nord");
    push(&sel->vehicles, "HH-LS 42");
    push(&sel->tags, "fr\xc3\xbc"
                     "hschicht");
    push(&sel->employee_ids, "drv-0043");
    sel->has_active = true;
    sel->active = variant == 1;
    lst_audience_skip_push(&m->audience, "drv-0050", LST_SKIP_INACTIVE);
    if (variant == 2) {
        lst_audience_skip_push(&m->audience, "drv-0051", LST_SKIP_NO_CONTACT);
        lst_audience_skip_push(&m->audience, "nobody.x", LST_SKIP_UNKNOWN);
    }
    if (variant == 1)
        content_file(&m->content, true);
    else
        content_location(&m->content, true);
}

static void outbound_fixture(struct lst_outbound *o, bool full)
{
    memset(o, 0, sizeof(*o));
    o->request_id = S(RID);
    o->message_id = S(MID);
    o->employee_id = S(EMP);
    o->created_at = 1718000000456;
    if (!full) {
        o->to.phone = S("+491701234567");
        content_location(&o->content, false);
        return;
    }
    o->to.threema_id = S("ECHOECHO");
    o->to.phone = S("+41791234567");
    o->to.email = S("fahrer@example.com");
    content_file(&o->content, false);
    o->no_delivery_receipts = true;
    o->no_push = true;
    o->has_deadline = true;
    o->deadline = 1718000600000;
}

static void sent_fixture(struct lst_sent *s, bool failed)
{
    memset(s, 0, sizeof(*s));
    s->request_id = S(RID);
    s->message_id = S(MID);
    s->employee_id = S(EMP);
    s->attempts = failed ? 3 : 1;
    s->at = 1718000001000;
    if (!failed) {
        s->outcome = LST_SENT_ACCEPTED;
        s->threema_message_id = S("0102030405060708");
        return;
    }
    s->outcome = LST_SENT_FAILED;
    s->threema_id = S("*TESTTST");
    s->failure.code = S("http_404");
    s->failure.has_http_status = true;
    s->failure.http_status = 404;
    s->failure.reason = S("no such Threema ID");
    s->failure.final = true;
    s->possible_duplicate = true;
}

static void inbound_fixture(struct lst_inbound *in, enum lst_content_kind kind, bool receipt)
{
    memset(in, 0, sizeof(*in));
    in->event_id = S("ECHOECHO:0102030405060708");
    in->from = S("ECHOECHO");
    in->to = S("*TESTTST");
    in->threema_message_id = S("0102030405060708");
    in->date = 1616950936;
    in->received_at = 1616950936789;
    if (receipt) {
        in->kind = LST_INBOUND_RECEIPT;
        in->receipt.status = 200; /* unknown values are kept */
        push(&in->receipt.message_ids, "a1b2c3d4e5f60718");
        push(&in->receipt.message_ids, "ffffffffffffffff");
        return;
    }
    in->kind = LST_INBOUND_MESSAGE;
    in->nickname = S("Fahrer \xc3\x96zt\xc3\xbcrk");
    struct lst_content *c = &in->content;
    c->kind = kind;
    switch (kind) {
    case LST_CONTENT_TEXT:
        c->text = S("Bin da.");
        break;
    case LST_CONTENT_FILE:
        c->mime = S("application/pdf");
        c->size = 999;
        c->threema_blob_id = S("0123456789abcdef0123456789abcdef");
        c->blob_error = S("blob expired on the Gateway (404)");
        break;
    case LST_CONTENT_IMAGE:
        content_file(c, true);
        c->threema_blob_id = S("0123456789abcdef0123456789abcdef");
        break;
    case LST_CONTENT_LOCATION:
        content_location(c, true);
        break;
    case LST_CONTENT_UNSUPPORTED:
        c->has_type = true;
        c->type = 0x15;
        break;
    case LST_CONTENT_TYPING:
        c->typing = true;
        break;
    case LST_CONTENT_UNDECODABLE:
        c->reason = S("bad padding");
        break;
    case LST_CONTENT__COUNT:
        break;
    }
}

static void employee_fixture(struct lst_employee *e, bool full)
{
    memset(e, 0, sizeof(*e));
    e->employee_id = S(EMP);
    e->name = S("J\xc3\xbcrgen M\xc3\xbcller");
    e->updated_at = 1718000000000;
    e->source = S("erp");
    if (!full)
        return;
    e->department = S("Depot Nord");
    e->vehicle = S("HH-LS 42");
    push(&e->tags, "gefahrgut");
    push(&e->tags, "nacht");
    e->active = true;
    e->threema_id = S("ECHOECHO");
    e->phone = S("+491701234567");
    e->email = S("j.mueller@example.com");
}

/* variant 0: no key, tombstone; 1: text key, binary value; 2: empty key, tombstone */
static void dlq_fixture(struct lst_dlq *d, int variant)
{
    memset(d, 0, sizeof(*d));
    d->source_topic = S("lst.outbound");
    d->source_partition = 11;
    d->source_offset = 123456789;
    d->error = S("invalid");
    d->reason = S("content.text: exceeds 3500 bytes");
    d->failed_at = 1718000002000;
    d->service = S("gateway-out");
    if (variant == 2) {
        d->has_key = true;
        CHECK_EQ(lst_dlq_payload_set(&d->key, "", 0), LST_OK);
    }
    if (variant != 1)
        return;
    d->has_key = true;
    CHECK_EQ(lst_dlq_payload_set(&d->key, EMP, strlen(EMP)), LST_OK);
    d->has_value = true;
    CHECK_EQ(lst_dlq_payload_set(&d->value, "\x00\xff{\"v\":1}", 10), LST_OK);
}

/* ---- round trips ---------------------------------------------------------------------------- */

/* encode -> decode -> compare -> re-encode gives the same bytes. */
#define ROUND_TRIP(rec, fixture_call, cmp)                                                         \
    do {                                                                                           \
        struct lst_##rec a_, b_;                                                                   \
        struct lst_buf j1_, j2_, why_;                                                             \
        lst_buf_init(&j1_);                                                                        \
        lst_buf_init(&j2_);                                                                        \
        lst_buf_init(&why_);                                                                       \
        fixture_call;                                                                              \
        lst_err e1_ = lst_##rec##_encode(&a_, &j1_);                                               \
        CHECK_EQ(e1_, LST_OK);                                                                     \
        if (e1_ != LST_OK) {                                                                       \
            lst_##rec##_validate(&a_, &why_);                                                      \
            fprintf(stderr, "encode: %s\n", why_.data ? why_.data : "");                           \
        }                                                                                          \
        dump("lst." #rec, &j1_);                                                                   \
        lst_err e2_ = lst_##rec##_decode(j1_.data, j1_.len, &b_, &why_);                           \
        CHECK_EQ(e2_, LST_OK);                                                                     \
        if (e2_ != LST_OK)                                                                         \
            fprintf(stderr, "decode: %s\n  in %s\n", why_.data, j1_.data);                         \
        cmp(&a_, &b_);                                                                             \
        CHECK_EQ(lst_##rec##_encode(&b_, &j2_), LST_OK);                                           \
        CHECK_STREQ(j1_.data, j2_.data);                                                           \
        lst_##rec##_cleanup(&a_);                                                                  \
        lst_##rec##_cleanup(&b_);                                                                  \
        lst_##rec##_cleanup(&b_); /* twice is safe */                                              \
        lst_buf_cleanup(&j1_);                                                                     \
        lst_buf_cleanup(&j2_);                                                                     \
        lst_buf_cleanup(&why_);                                                                    \
    } while (0)

static void test_round_trip_message(void)
{
    for (int v = 0; v < 3; v++)
        ROUND_TRIP(message, message_fixture(&a_, v), cmp_message);
}

static void test_round_trip_outbound(void)
{
    ROUND_TRIP(outbound, outbound_fixture(&a_, false), cmp_outbound);
    ROUND_TRIP(outbound, outbound_fixture(&a_, true), cmp_outbound);
}

static void test_round_trip_sent(void)
{
    ROUND_TRIP(sent, sent_fixture(&a_, false), cmp_sent);
    ROUND_TRIP(sent, sent_fixture(&a_, true), cmp_sent);
}

static void test_round_trip_inbound(void)
{
    for (int k = 0; k < LST_CONTENT__COUNT; k++)
        ROUND_TRIP(inbound, inbound_fixture(&a_, (enum lst_content_kind)k, false), cmp_inbound);
    ROUND_TRIP(inbound, inbound_fixture(&a_, LST_CONTENT_TEXT, true), cmp_inbound);
}

static void test_round_trip_employee(void)
{
    ROUND_TRIP(employee, employee_fixture(&a_, false), cmp_employee);
    ROUND_TRIP(employee, employee_fixture(&a_, true), cmp_employee);
}

static void test_round_trip_dlq(void)
{
    for (int v = 0; v < 3; v++)
        ROUND_TRIP(dlq, dlq_fixture(&a_, v), cmp_dlq);
}

/* The wire format itself: field names, order and the absence of optional fields. */
static void test_encoded_shape(void)
{
    struct lst_sent s;
    struct lst_buf out;
    lst_buf_init(&out);
    sent_fixture(&s, false);
    REQUIRE(lst_sent_encode(&s, &out) == LST_OK);
    CHECK_STREQ(out.data, "{\"v\":1,\"request_id\":\"" RID "\",\"message_id\":\"" MID
                          "\",\"employee_id\":\"" EMP "\",\"outcome\":\"accepted\","
                          "\"threema_message_id\":\"0102030405060708\","
                          "\"possible_duplicate\":false,\"attempts\":1,\"at\":1718000001000}");
    lst_sent_cleanup(&s);

    struct lst_outbound o;
    outbound_fixture(&o, false);
    REQUIRE(lst_outbound_encode(&o, &out) == LST_OK);
    CHECK(strstr(out.data, "\"content\":{\"kind\":\"location\",\"lat\":-90,\"lon\":180}") != NULL);
    CHECK(strstr(out.data, "deadline") == NULL);
    lst_outbound_cleanup(&o);

    /* skipped is optional: absent when empty (as in records written before it existed) */
    struct lst_message m;
    message_fixture(&m, 0);
    REQUIRE(lst_message_encode(&m, &out) == LST_OK);
    CHECK(strstr(out.data, "skipped") == NULL);
    lst_message_cleanup(&m);
    message_fixture(&m, 2);
    REQUIRE(lst_message_encode(&m, &out) == LST_OK);
    CHECK(strstr(out.data, "\"recipients\":[\"" EMP "\",\"drv-0043\",\"drv_0044.x\"],"
                           "\"skipped\":[{\"employee_id\":\"drv-0050\",\"reason\":\"inactive\"},"
                           "{\"employee_id\":\"drv-0051\",\"reason\":\"no_contact\"},"
                           "{\"employee_id\":\"nobody.x\",\"reason\":\"unknown\"}]}") != NULL);
    lst_message_cleanup(&m);
    lst_buf_cleanup(&out);
}

/* Doubles survive exactly and print short. */
static void test_double_precision(void)
{
    static const double vals[] = {52.520008, -0.1, 1e-7, 89.99999999999999, 0.30000000000000004};
    for (size_t i = 0; i < LST_ARRAY_LEN(vals); i++) {
        struct lst_outbound o, d;
        struct lst_buf out;
        lst_buf_init(&out);
        outbound_fixture(&o, false);
        o.content.lat = vals[i];
        REQUIRE(lst_outbound_encode(&o, &out) == LST_OK);
        REQUIRE(lst_outbound_decode(out.data, out.len, &d, NULL) == LST_OK);
        CHECK(d.content.lat == vals[i]);
        lst_outbound_cleanup(&o);
        lst_outbound_cleanup(&d);
        lst_buf_cleanup(&out);
    }
}

/* ---- rejection --------------------------------------------------------------------------------
 */

/* A valid outbound record as JSON text, to be mutated by the tests. */
#define OUT_HEAD "{\"v\":1,\"request_id\":\"" RID "\",\"message_id\":\"" MID "\","
#define OUT_TAIL                                                                                   \
    "\"to\":{\"threema_id\":\"ECHOECHO\"},\"content\":{\"kind\":\"text\",\"text\":\"hi\"},"        \
    "\"no_delivery_receipts\":false,\"no_push\":false,\"created_at\":1}"
#define OUT_OK OUT_HEAD "\"employee_id\":\"" EMP "\"," OUT_TAIL

static void expect_err(const struct lst_rec_type *t, const char *data, size_t len, lst_err want,
                       const char *want_why, int line)
{
    struct lst_buf why;
    lst_buf_init(&why);
    union {
        max_align_t align;
        char bytes[1024];
    } rec;
    REQUIRE(t->size <= sizeof(rec));
    memset(&rec, 0x5a, sizeof(rec)); /* decode must not rely on an initialised struct */
    lst_err err = lst_rec_decode(t, data, len, &rec, &why);
    if (err != want || why.data == NULL || strstr(why.data, want_why) == NULL) {
        fprintf(stderr, "line %d: got %s \"%s\", want %s \"%s\"\n", line, lst_err_name(err),
                why.data ? why.data : "", lst_err_name(want), want_why);
        lst_test_failed_checks++;
    }
    /* the struct is zeroed on failure: cleanup is a no-op, nothing leaks */
    lst_rec_cleanup(t, &rec);
    lst_buf_cleanup(&why);
}

#define REJECT(rec, json, err, why)                                                                \
    expect_err(lst_rec_type_find(rec), json, strlen(json), err, why, __LINE__)
#define REJECTN(rec, json, err, why)                                                               \
    expect_err(lst_rec_type_find(rec), json, sizeof(json) - 1, err, why, __LINE__)

static void test_valid_fixture_text(void)
{
    struct lst_outbound o;
    struct lst_buf why;
    lst_buf_init(&why);
    CHECK_EQ(lst_outbound_decode(OUT_OK, strlen(OUT_OK), &o, &why), LST_OK);
    CHECK_STREQ(o.content.text, "hi");
    lst_outbound_cleanup(&o);
    /* unknown fields anywhere are ignored (forward compatibility); null is absent */
    const char *extra = OUT_HEAD "\"employee_id\":\"" EMP "\",\"future\":{\"x\":[1,2]},"
                                 "\"deadline\":null,"
                                 "\"to\":{\"threema_id\":\"ECHOECHO\",\"fax\":\"1\"},"
                                 "\"content\":{\"kind\":\"text\",\"text\":\"hi\",\"z\":1},"
                                 "\"no_delivery_receipts\":false,\"no_push\":false,"
                                 "\"created_at\":1}  \n";
    CHECK_EQ(lst_outbound_decode(extra, strlen(extra), &o, &why), LST_OK);
    CHECK(!o.has_deadline);
    lst_outbound_cleanup(&o);
    lst_buf_cleanup(&why);
}

static void test_reject_missing(void)
{
    REJECT("lst.outbound", OUT_HEAD OUT_TAIL, LST_ERR_INVALID, "employee_id: missing");
    REJECT("lst.inbound",
           "{\"v\":1,\"event_id\":\"ECHOECHO:0102030405060708\",\"kind\":\"receipt\","
           "\"to\":\"*TESTTST\",\"threema_message_id\":\"0102030405060708\",\"date\":1,"
           "\"received_at\":1,\"receipt\":{\"status\":1,\"message_ids\":[\"0102030405060708\"]}}",
           LST_ERR_INVALID, "from: missing");
    REJECT("lst.outbound",
           OUT_HEAD "\"employee_id\":\"" EMP "\",\"to\":{},\"content\":{\"kind\":\"text\"},"
                    "\"no_delivery_receipts\":false,\"no_push\":false,\"created_at\":1}",
           LST_ERR_INVALID, "content.text: missing");
    REJECT("lst.outbound",
           OUT_HEAD "\"employee_id\":\"" EMP "\",\"to\":{},\"content\":{\"kind\":\"text\","
                    "\"text\":\"x\"},\"no_delivery_receipts\":false,\"no_push\":false,"
                    "\"created_at\":1}",
           LST_ERR_INVALID, "to.threema_id: missing (give threema_id, phone or email)");
    /* kind-dependent: accepted needs the Threema message ID, failed needs a failure */
    REJECT("lst.sent",
           "{\"v\":1,\"request_id\":\"" RID "\",\"message_id\":\"" MID "\",\"employee_id\":\"" EMP
           "\",\"outcome\":\"accepted\",\"possible_duplicate\":false,\"attempts\":1,\"at\":1}",
           LST_ERR_INVALID, "threema_message_id: missing");
    REJECT("lst.sent",
           "{\"v\":1,\"request_id\":\"" RID "\",\"message_id\":\"" MID "\",\"employee_id\":\"" EMP
           "\",\"outcome\":\"failed\",\"possible_duplicate\":false,\"attempts\":1,\"at\":1}",
           LST_ERR_INVALID, "failure: missing");
    REJECT("lst.employees", "{\"v\":1}", LST_ERR_INVALID, "employee_id: missing");
    REJECT("lst.employees", "{}", LST_ERR_INVALID, "v: missing");
    REJECT("lst.message",
           "{\"v\":1,\"message_id\":\"" MID "\",\"created_at\":1,\"dispatcher\":\"a\","
           "\"category\":\"c\",\"idempotency_key\":\"k\",\"content\":{\"kind\":\"text\","
           "\"text\":\"t\"},\"audience\":{\"selector\":{},\"recipients\":[]}}",
           LST_ERR_INVALID, "audience.recipients: needs at least 1 items");
}

static void test_reject_wrong_types(void)
{
    REJECT("lst.outbound", OUT_HEAD "\"employee_id\":42," OUT_TAIL, LST_ERR_INVALID,
           "employee_id: expected string");
    REJECT("lst.outbound",
           OUT_HEAD "\"employee_id\":\"" EMP "\",\"to\":[],\"content\":{\"kind\":\"text\","
                    "\"text\":\"x\"},\"no_delivery_receipts\":false,\"no_push\":false,"
                    "\"created_at\":1}",
           LST_ERR_INVALID, "to: expected object");
    REJECT("lst.outbound",
           OUT_HEAD "\"employee_id\":\"" EMP "\",\"to\":{\"phone\":\"+4917012345\"},"
                    "\"content\":{\"kind\":\"text\",\"text\":\"x\"},"
                    "\"no_delivery_receipts\":0,\"no_push\":false,\"created_at\":1}",
           LST_ERR_INVALID, "no_delivery_receipts: expected boolean");
    REJECT("lst.outbound",
           OUT_HEAD "\"employee_id\":\"" EMP "\",\"to\":{\"phone\":\"+4917012345\"},"
                    "\"content\":{\"kind\":\"text\",\"text\":\"x\"},"
                    "\"no_delivery_receipts\":false,\"no_push\":false,\"created_at\":\"1\"}",
           LST_ERR_INVALID, "created_at: expected integer");
    REJECT("lst.outbound",
           OUT_HEAD "\"employee_id\":\"" EMP "\",\"to\":{\"phone\":\"+4917012345\"},"
                    "\"content\":{\"kind\":\"text\",\"text\":\"x\"},"
                    "\"no_delivery_receipts\":false,\"no_push\":false,\"created_at\":1.5}",
           LST_ERR_INVALID, "created_at: expected integer");
    REJECT("lst.outbound", OUT_HEAD "\"employee_id\":null," OUT_TAIL, LST_ERR_INVALID,
           "employee_id: must not be null");
    REJECT("lst.message",
           "{\"v\":1,\"message_id\":\"" MID "\",\"created_at\":1,\"dispatcher\":\"a\","
           "\"category\":\"c\",\"idempotency_key\":\"k\",\"content\":{\"kind\":\"text\","
           "\"text\":\"t\"},\"audience\":{\"selector\":{},\"recipients\":[\"a\",\"b\",\"c\",3]}}",
           LST_ERR_INVALID, "audience.recipients[3]: expected string");
    REJECT("lst.message",
           "{\"v\":1,\"message_id\":\"" MID "\",\"created_at\":1,\"dispatcher\":\"a\","
           "\"category\":\"c\",\"idempotency_key\":\"k\",\"content\":{\"kind\":\"text\","
           "\"text\":\"t\"},\"audience\":{\"selector\":{\"tags\":\"x\"},\"recipients\":[\"a\"]}}",
           LST_ERR_INVALID, "audience.selector.tags: expected array");
    REJECT("lst.message",
           "{\"v\":1,\"message_id\":\"" MID "\",\"created_at\":1,\"dispatcher\":\"a\","
           "\"category\":\"c\",\"idempotency_key\":\"k\",\"content\":{\"kind\":\"text\","
           "\"text\":\"t\"},\"audience\":{\"selector\":{},\"recipients\":[\"a\"],\"skipped\":{}}}",
           LST_ERR_INVALID, "audience.skipped: expected array");
    REJECT("lst.message",
           "{\"v\":1,\"message_id\":\"" MID "\",\"created_at\":1,\"dispatcher\":\"a\","
           "\"category\":\"c\",\"idempotency_key\":\"k\",\"content\":{\"kind\":\"text\","
           "\"text\":\"t\"},\"audience\":{\"selector\":{},\"recipients\":[\"a\"],\"skipped\":["
           "\"a\"]}}",
           LST_ERR_INVALID, "audience.skipped[0]: expected object");
    REJECT("lst.message",
           "{\"v\":1,\"message_id\":\"" MID "\",\"created_at\":1,\"dispatcher\":\"a\","
           "\"category\":\"c\",\"idempotency_key\":\"k\",\"content\":{\"kind\":\"text\","
           "\"text\":\"t\"},\"audience\":{\"selector\":{},\"recipients\":[\"a\"],\"skipped\":[{"
           "\"employee_id\":\"b\"}]}}",
           LST_ERR_INVALID, "audience.skipped[0].reason: missing");
    REJECT("lst.message",
           "{\"v\":1,\"message_id\":\"" MID "\",\"created_at\":1,\"dispatcher\":\"a\","
           "\"category\":\"c\",\"idempotency_key\":\"k\",\"content\":{\"kind\":\"text\","
           "\"text\":\"t\"},\"audience\":{\"selector\":{},\"recipients\":[\"a\"],\"skipped\":[{"
           "\"employee_id\":\"b\",\"reason\":\"gone\"}]}}",
           LST_ERR_INVALID, "audience.skipped[0].reason: unknown value");
    REJECT("lst.message",
           "{\"v\":1,\"message_id\":\"" MID "\",\"created_at\":1,\"dispatcher\":\"a\","
           "\"category\":\"c\",\"idempotency_key\":\"k\",\"content\":{\"kind\":\"text\","
           "\"text\":\"t\"},\"audience\":{\"selector\":{},\"recipients\":[\"a\"],\"skipped\":[{"
           "\"employee_id\":\"-b\",\"reason\":\"inactive\"}]}}",
           LST_ERR_INVALID,
           "audience.skipped[0].employee_id: does not match ^[A-Za-z0-9][A-Za-z0-9._-]*$");
    REJECT("lst.inbound",
           "{\"v\":1,\"event_id\":\"ECHOECHO:0102030405060708\",\"kind\":\"message\","
           "\"from\":\"ECHOECHO\",\"to\":\"*TESTTST\",\"threema_message_id\":\"0102030405060708\","
           "\"date\":1,\"received_at\":1,\"content\":{\"kind\":\"location\",\"lat\":\"52\","
           "\"lon\":13}}",
           LST_ERR_INVALID, "content.lat: expected number");
}

static void test_reject_bad_values(void)
{
    /* unknown kinds; kinds of the other direction; fields that do not belong to the kind */
    REJECT("lst.outbound",
           OUT_HEAD "\"employee_id\":\"" EMP "\",\"to\":{\"threema_id\":\"ECHOECHO\"},"
                    "\"content\":{\"kind\":\"typing\",\"typing\":true},"
                    "\"no_delivery_receipts\":false,\"no_push\":false,\"created_at\":1}",
           LST_ERR_INVALID, "content.kind: unknown value");
    REJECT("lst.outbound",
           OUT_HEAD "\"employee_id\":\"" EMP "\",\"to\":{\"threema_id\":\"ECHOECHO\"},"
                    "\"content\":{\"kind\":\"text\",\"text\":\"x\",\"blob\":\"" SHA_A "\"},"
                    "\"no_delivery_receipts\":false,\"no_push\":false,\"created_at\":1}",
           LST_ERR_INVALID, "content.blob: not allowed when kind is text");
    /* patterns */
    REJECT("lst.outbound",
           OUT_HEAD "\"employee_id\":\"" EMP "\",\"to\":{\"threema_id\":\"echoecho\"},"
                    "\"content\":{\"kind\":\"text\",\"text\":\"x\"},"
                    "\"no_delivery_receipts\":false,\"no_push\":false,\"created_at\":1}",
           LST_ERR_INVALID, "to.threema_id: does not match ^[0-9A-Z*][0-9A-Z]{7}$");
    REJECT("lst.outbound",
           OUT_HEAD "\"employee_id\":\"" EMP "\",\"to\":{\"phone\":\"0170123\"},"
                    "\"content\":{\"kind\":\"text\",\"text\":\"x\"},"
                    "\"no_delivery_receipts\":false,\"no_push\":false,\"created_at\":1}",
           LST_ERR_INVALID, "to.phone: does not match");
    REJECT("lst.outbound", OUT_HEAD "\"employee_id\":\"drv 42\"," OUT_TAIL, LST_ERR_INVALID,
           "employee_id: does not match");
    REJECT("lst.outbound", OUT_HEAD "\"employee_id\":\"drv-0043\"," OUT_TAIL, LST_ERR_INVALID,
           "request_id: must be <message_id>:<employee_id>");
    REJECT("lst.outbound",
           "{\"v\":1,\"request_id\":\"01HZX3K4M5N6P7Q8R9STVWXYZI:" EMP
           "\",\"message_id\":\"01HZX3K4M5N6P7Q8R9STVWXYZI\",\"employee_id\":\"" EMP "\"," OUT_TAIL,
           LST_ERR_INVALID, "request_id: does not match");
    REJECT("lst.inbound",
           "{\"v\":1,\"event_id\":\"ECHOECHO:0102030405060709\",\"kind\":\"receipt\","
           "\"from\":\"ECHOECHO\",\"to\":\"*TESTTST\",\"threema_message_id\":\"0102030405060708\","
           "\"date\":1,\"received_at\":1,\"receipt\":{\"status\":2,"
           "\"message_ids\":[\"0102030405060708\"]}}",
           LST_ERR_INVALID, "event_id: must be <from>:<threema_message_id>");
    REJECT("lst.inbound",
           "{\"v\":1,\"event_id\":\"ECHOECHO:0102030405060708\",\"kind\":\"receipt\","
           "\"from\":\"ECHOECHO\",\"to\":\"*TESTTST\",\"threema_message_id\":\"0102030405060708\","
           "\"date\":1,\"received_at\":1,\"receipt\":{\"status\":2,"
           "\"message_ids\":[\"0102030405060708\",\"0102030405O60708\"]}}",
           LST_ERR_INVALID, "receipt.message_ids[1]: does not match ^[0-9a-f]{16}$");
    /* numbers: bounds, NaN (json-c parses it), integers beyond int64 (json-c clamps) */
    REJECT("lst.outbound",
           OUT_HEAD "\"employee_id\":\"" EMP "\",\"to\":{\"threema_id\":\"ECHOECHO\"},"
                    "\"content\":{\"kind\":\"location\",\"lat\":NaN,\"lon\":1},"
                    "\"no_delivery_receipts\":false,\"no_push\":false,\"created_at\":1}",
           LST_ERR_RANGE, "content.lat: out of range");
    REJECT("lst.outbound",
           OUT_HEAD "\"employee_id\":\"" EMP "\",\"to\":{\"threema_id\":\"ECHOECHO\"},"
                    "\"content\":{\"kind\":\"location\",\"lat\":1,\"lon\":180.5},"
                    "\"no_delivery_receipts\":false,\"no_push\":false,\"created_at\":1}",
           LST_ERR_RANGE, "content.lon: out of range");
    REJECT("lst.outbound",
           OUT_HEAD "\"employee_id\":\"" EMP "\",\"to\":{\"threema_id\":\"ECHOECHO\"},"
                    "\"content\":{\"kind\":\"text\",\"text\":\"x\"},"
                    "\"no_delivery_receipts\":false,\"no_push\":false,"
                    "\"created_at\":99999999999999999999999}",
           LST_ERR_RANGE, "created_at: out of range");
    REJECT("lst.outbound",
           OUT_HEAD "\"employee_id\":\"" EMP "\",\"to\":{\"threema_id\":\"ECHOECHO\"},"
                    "\"content\":{\"kind\":\"text\",\"text\":\"x\"},"
                    "\"no_delivery_receipts\":false,\"no_push\":false,\"created_at\":-1}",
           LST_ERR_RANGE, "created_at: out of range");
    /* empty strings and NUL characters */
    REJECT("lst.outbound", OUT_HEAD "\"employee_id\":\"\"," OUT_TAIL, LST_ERR_INVALID,
           "employee_id: empty");
    REJECT("lst.outbound",
           OUT_HEAD "\"employee_id\":\"" EMP "\",\"to\":{\"threema_id\":\"ECHOECHO\"},"
                    "\"content\":{\"kind\":\"text\",\"text\":\"a\\u0000b\"},"
                    "\"no_delivery_receipts\":false,\"no_push\":false,\"created_at\":1}",
           LST_ERR_INVALID, "content.text: contains a NUL character");
}

static void test_reject_version(void)
{
    REJECT("lst.employees", "{\"v\":2,\"employee_id\":\"x\"}", LST_ERR_VERSION,
           "v: unsupported schema version 2");
    REJECT("lst.sent", "{\"v\":0}", LST_ERR_VERSION, "v: unsupported schema version 0");
    /* the version is checked before anything else, even the kind */
    REJECT("lst.sent", "{\"outcome\":\"teleported\",\"v\":7}", LST_ERR_VERSION,
           "v: unsupported schema version 7");
    REJECT("lst.sent", "{\"v\":\"1\"}", LST_ERR_INVALID, "v: expected integer");
    REJECT("lst.sent", "{\"v\":1.0}", LST_ERR_INVALID, "v: expected integer");
}

/* Builds an outbound record whose text is `text` (raw bytes, inserted as given). */
static char *outbound_with_text(const char *text)
{
    struct lst_buf b;
    lst_buf_init(&b);
    lst_buf_puts(&b, OUT_HEAD "\"employee_id\":\"" EMP "\",\"to\":{\"threema_id\":\"ECHOECHO\"},"
                              "\"content\":{\"kind\":\"text\",\"text\":\"");
    lst_buf_puts(&b, text);
    lst_buf_puts(&b, "\"},\"no_delivery_receipts\":false,\"no_push\":false,\"created_at\":1}");
    return lst_buf_steal(&b);
}

static char *repeat(const char *unit, size_t n)
{
    struct lst_buf b;
    lst_buf_init(&b);
    for (size_t i = 0; i < n; i++)
        lst_buf_puts(&b, unit);
    return lst_buf_steal(&b);
}

static void test_reject_too_large(void)
{
    /* 3500 bytes is fine, 3501 is not; the limit counts bytes, not characters */
    char *ok_text = repeat("\xc3\xa4", 1750);
    char *ok = outbound_with_text(ok_text);
    struct lst_outbound o;
    CHECK_EQ(lst_outbound_decode(ok, strlen(ok), &o, NULL), LST_OK);
    lst_outbound_cleanup(&o);
    char *big_text = repeat("\xe2\x82\xac", 1167); /* 1167 euro signs = 3501 bytes */
    char *big = outbound_with_text(big_text);
    REJECT("lst.outbound", big, LST_ERR_TOO_LARGE, "content.text: exceeds 3500 bytes");
    free(ok_text);
    free(ok);
    free(big_text);
    free(big);

    /* too many recipients */
    struct lst_buf b;
    lst_buf_init(&b);
    lst_buf_puts(&b, "{\"v\":1,\"message_id\":\"" MID "\",\"created_at\":1,\"dispatcher\":\"a\","
                     "\"category\":\"c\",\"idempotency_key\":\"k\",\"content\":{\"kind\":"
                     "\"text\",\"text\":\"t\"},\"audience\":{\"selector\":{},\"recipients\":[");
    for (int i = 0; i <= LST_RECIPIENTS_MAX; i++)
        lst_buf_printf(&b, "%s\"e%d\"", i > 0 ? "," : "", i);
    lst_buf_puts(&b, "]}}");
    REJECT("lst.message", b.data, LST_ERR_TOO_LARGE, "audience.recipients: more than 2000 items");

    /* a record above the cap is refused before parsing */
    lst_buf_reset(&b);
    lst_buf_puts(&b, "{\"v\":1,\"pad\":\"");
    while (b.len <= LST_RECORD_MAX)
        lst_buf_puts(&b, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
    lst_buf_puts(&b, "\"}");
    REJECT("lst.employees", b.data, LST_ERR_TOO_LARGE, "record: exceeds 983040 bytes");
    lst_buf_cleanup(&b);

    /* encode refuses what decode would refuse */
    struct lst_outbound e;
    struct lst_buf out, why;
    lst_buf_init(&out);
    lst_buf_init(&why);
    outbound_fixture(&e, false);
    e.content.kind = LST_CONTENT_TEXT;
    e.content.text = repeat("x", LST_TEXT_MAX + 1);
    CHECK_EQ(lst_outbound_encode(&e, &out), LST_ERR_TOO_LARGE);
    CHECK_EQ(out.len, 0);
    CHECK_EQ(lst_outbound_validate(&e, &why), LST_ERR_TOO_LARGE);
    CHECK_STREQ(why.data, "content.text: exceeds 3500 bytes");
    lst_outbound_cleanup(&e);
    lst_buf_cleanup(&out);
    lst_buf_cleanup(&why);
}

static void test_reject_utf8(void)
{
    static const char *const bad[] = {
        "\xff",             /* never valid */
        "ab\xc3",           /* truncated sequence */
        "\xc0\xaf",         /* overlong '/' */
        "\xed\xa0\x80",     /* surrogate */
        "\xf4\x90\x80\x80", /* above U+10FFFF */
    };
    for (size_t i = 0; i < LST_ARRAY_LEN(bad); i++) {
        char *rec = outbound_with_text(bad[i]);
        REJECT("lst.outbound", rec, LST_ERR_UTF8, "content.text: invalid UTF-8");
        free(rec);
    }
    /* in an array item, in a nested object, in an unknown field, in a key */
    REJECT("lst.employees",
           "{\"v\":1,\"employee_id\":\"e1\",\"name\":\"n\",\"tags\":[\"ok\",\"\xfe\"],"
           "\"active\":true,\"updated_at\":1,\"source\":\"erp\"}",
           LST_ERR_UTF8, "tags[1]: invalid UTF-8");
    REJECT("lst.employees",
           "{\"v\":1,\"employee_id\":\"e1\",\"name\":\"n\",\"x\":\"\xfe\",\"active\":true,"
           "\"updated_at\":1,\"source\":\"erp\"}",
           LST_ERR_UTF8, "record: invalid UTF-8");
    REJECT("lst.employees",
           "{\"v\":1,\"employee_id\":\"e1\",\"name\":\"n\",\"\xfe\":1,\"active\":true,"
           "\"updated_at\":1,\"source\":\"erp\"}",
           LST_ERR_UTF8, "record: invalid UTF-8");
    /* an escaped lone surrogate is turned into U+FFFD by json-c: valid text */
    char *rec = outbound_with_text("\\ud800");
    struct lst_outbound o;
    CHECK_EQ(lst_outbound_decode(rec, strlen(rec), &o, NULL), LST_OK);
    CHECK_STREQ(o.content.text, "\xef\xbf\xbd");
    lst_outbound_cleanup(&o);
    free(rec);
}

static void test_reject_not_json(void)
{
    REJECT("lst.sent", "hello", LST_ERR_INVALID, "record: not JSON");
    REJECT("lst.sent", "{\"v\":1,", LST_ERR_INVALID, "record: not JSON (truncated)");
    REJECT("lst.sent", "{\"v\":1,}", LST_ERR_INVALID, "record: not JSON");
    REJECT("lst.sent", "/* c */{\"v\":1}", LST_ERR_INVALID, "record: not JSON");
    /* json-c accepts 'single quotes' even in strict mode: harmless, our producers never
     * write them, so no test insists on it. */
    REJECT("lst.sent", "", LST_ERR_INVALID, "record: empty");
    REJECTN("lst.sent", "\xff\xfe", LST_ERR_INVALID, "record: not JSON");
    /* nesting deeper than json-c's limit */
    char *deep = repeat("[", 100);
    REJECT("lst.sent", deep, LST_ERR_INVALID, "record: not JSON");
    free(deep);
}

static void test_reject_trailing(void)
{
    REJECT("lst.outbound", OUT_OK " x", LST_ERR_INVALID, "record: not JSON");
    REJECT("lst.outbound", OUT_OK "{}", LST_ERR_INVALID, "record: not JSON");
    REJECTN("lst.outbound", OUT_OK "\0", LST_ERR_INVALID, "record: trailing data at byte");
    REJECTN("lst.outbound", OUT_OK "\0garbage", LST_ERR_INVALID, "record: trailing data");
}

static void test_reject_not_object(void)
{
    static const char *const docs[] = {"[1,2]", "42", "\"s\"", "null", "true"};
    for (size_t i = 0; i < LST_ARRAY_LEN(docs); i++)
        REJECT("lst.inbound", docs[i], LST_ERR_INVALID, "record: expected a JSON object");
}

/* ---- helpers ------------------------------------------------------------------------------------
 */

static void test_message_ids(void)
{
    char a[LST_MESSAGE_ID_LEN + 1], b[LST_MESSAGE_ID_LEN + 1], c[LST_MESSAGE_ID_LEN + 1];
    REQUIRE(lst_message_id_new(1718000000000, a) == LST_OK);
    REQUIRE(lst_message_id_new(1718000000000, b) == LST_OK);
    REQUIRE(lst_message_id_new(1718000000001, c) == LST_OK);
    CHECK_EQ(strlen(a), LST_MESSAGE_ID_LEN);
    CHECK(strcmp(a, b) != 0);
    CHECK(strncmp(a, b, 10) == 0); /* same millisecond, same time prefix */
    CHECK(strcmp(a, c) < 0 && strcmp(b, c) < 0);
    CHECK_EQ(lst_message_id_new(-1, a), LST_ERR_RANGE);
    REQUIRE(lst_message_id_new(LST_TIME_MS_MAX, c) == LST_OK);
    /* generated IDs pass the schema pattern: use one in a record */
    struct lst_message m;
    struct lst_buf out, why;
    lst_buf_init(&out);
    lst_buf_init(&why);
    message_fixture(&m, 0);
    for (int i = 0; i < 200; i++) {
        REQUIRE(lst_message_id_new(lst_wall_ms() + i * 7919, m.message_id) == LST_OK);
        if (lst_message_validate(&m, &why) != LST_OK) {
            fprintf(stderr, "%s: %s\n", m.message_id, why.data);
            lst_test_failed_checks++;
            break;
        }
    }
    CHECK_EQ(lst_request_id_format(&out, m.message_id, EMP), LST_OK);
    CHECK(strncmp(out.data, m.message_id, LST_MESSAGE_ID_LEN) == 0);
    CHECK_STREQ(out.data + LST_MESSAGE_ID_LEN, ":" EMP);
    CHECK_EQ(lst_event_id_format(&out, "ECHOECHO", "0102030405060708"), LST_OK);
    CHECK_STREQ(out.data, "ECHOECHO:0102030405060708");
    lst_message_cleanup(&m);
    lst_buf_cleanup(&out);
    lst_buf_cleanup(&why);
}

static void check_payload_round_trip(const char *data, size_t len, enum lst_dlq_encoding enc,
                                     bool truncated)
{
    struct lst_dlq_payload p = {0};
    struct lst_buf raw;
    lst_buf_init(&raw);
    REQUIRE(lst_dlq_payload_set(&p, data, len) == LST_OK);
    CHECK_EQ(p.encoding, enc);
    CHECK_EQ(p.truncated, truncated);
    CHECK_EQ(p.size, len);
    CHECK_EQ(lst_dlq_payload_get(&p, &raw), LST_OK);
    CHECK(raw.len <= LST_DLQ_PAYLOAD_MAX);
    CHECK(truncated ? raw.len < len : raw.len == len);
    CHECK(raw.len == 0 || memcmp(raw.data, data, raw.len) == 0);
    free(p.data);
    lst_buf_cleanup(&raw);
}

static void test_dlq_payload(void)
{
    check_payload_round_trip("{\"v\":1}", 7, LST_DLQ_UTF8, false);
    check_payload_round_trip("a\0b", 3, LST_DLQ_BASE64, false);
    check_payload_round_trip("\xff\x00\x01", 3, LST_DLQ_BASE64, false);
    check_payload_round_trip("", 0, LST_DLQ_UTF8, false);
    /* oversized text is cut at a character boundary, binary at the byte limit */
    char *text = repeat("\xe2\x82\xac", LST_DLQ_PAYLOAD_MAX / 3 + 10);
    check_payload_round_trip(text, strlen(text), LST_DLQ_UTF8, true);
    free(text);
    size_t n = LST_DLQ_PAYLOAD_MAX + 5;
    char *bin = calloc(1, n);
    REQUIRE(bin != NULL);
    check_payload_round_trip(bin, n, LST_DLQ_BASE64, true);

    /* the largest DLQ record (key and value both at the cap, base64) fits in a record */
    struct lst_dlq d;
    struct lst_buf out, why;
    lst_buf_init(&out);
    lst_buf_init(&why);
    dlq_fixture(&d, 0);
    d.has_key = d.has_value = true;
    REQUIRE(lst_dlq_payload_set(&d.key, bin, n) == LST_OK);
    REQUIRE(lst_dlq_payload_set(&d.value, bin, n) == LST_OK);
    CHECK_EQ(lst_dlq_encode(&d, &out), LST_OK);
    CHECK(out.len < LST_RECORD_MAX);
    /* a utf8 payload above the raw cap and bad base64 are refused */
    free(d.value.data);
    d.value.encoding = LST_DLQ_BASE64;
    d.value.data = S("abc*");
    CHECK_EQ(lst_dlq_validate(&d, &why), LST_ERR_INVALID);
    CHECK_STREQ(why.data, "value.data: not base64");
    free(d.value.data);
    d.value.encoding = LST_DLQ_UTF8;
    d.value.data = repeat("y", LST_DLQ_PAYLOAD_MAX + 1);
    CHECK_EQ(lst_dlq_validate(&d, &why), LST_ERR_TOO_LARGE);
    CHECK_STREQ(why.data, "value.data: exceeds 262144 bytes");
    lst_dlq_cleanup(&d);
    free(bin);
    lst_buf_cleanup(&out);
    lst_buf_cleanup(&why);
}

static void test_names_and_lookup(void)
{
    CHECK_STREQ(lst_content_kind_name(LST_CONTENT_UNDECODABLE), "undecodable");
    CHECK_STREQ(lst_content_kind_name((enum lst_content_kind)99), "unknown");
    CHECK_STREQ(lst_receipt_status_name(LST_RECEIPT_READ), "read");
    CHECK_STREQ(lst_receipt_status_name(9), "unknown");
    CHECK_STREQ(lst_rec_type_find("lst.sent")->name, "lst.sent");
    CHECK_STREQ(lst_rec_type_find("lst.outbound.dlq")->name, "lst.dlq");
    CHECK(lst_rec_type_find("lst.nope") == NULL);
    /* every topic in proto/topics.tsv has a record type */
    const char *src = getenv("LST_SOURCE_DIR");
    REQUIRE(src != NULL);
    char path[4096];
    snprintf(path, sizeof(path), "%s/proto/topics.tsv", src);
    FILE *fp = fopen(path, "r");
    REQUIRE(fp != NULL);
    char line[1024];
    int topics = 0;
    while (fgets(line, sizeof(line), fp) != NULL) {
        if (line[0] == '#' || line[0] == '\n')
            continue;
        char *tab = strchr(line, '\t');
        if (tab == NULL)
            continue;
        *tab = '\0';
        topics++;
        if (lst_rec_type_find(line) == NULL) {
            fprintf(stderr, "topic %s has no record type\n", line);
            lst_test_failed_checks++;
        }
    }
    fclose(fp);
    CHECK(topics >= 10);
}

/* ---- schema consistency ---------------------------------------------------------------------- */

struct schema_ctx {
    struct json_object *root; /* for $ref */
    const char *file;
};

static void mismatch(const struct schema_ctx *c, const char *path, const char *what)
{
    fprintf(stderr, "%s: %s: %s\n", c->file, path[0] != '\0' ? path : "(top)", what);
    lst_test_failed_checks++;
}

static struct json_object *jget(struct json_object *o, const char *key)
{
    struct json_object *v = NULL;
    if (o == NULL || !json_object_object_get_ex(o, key, &v))
        return NULL;
    return v;
}

static bool jint_is(struct json_object *o, const char *key, int64_t want)
{
    struct json_object *v = jget(o, key);
    return v != NULL && json_object_is_type(v, json_type_int) && json_object_get_int64(v) == want;
}

static bool jnum_is(struct json_object *o, const char *key, double want)
{
    struct json_object *v = jget(o, key);
    return v != NULL &&
           (json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double)) &&
           json_object_get_double(v) == want;
}

static bool jstr_is(struct json_object *o, const char *key, const char *want)
{
    struct json_object *v = jget(o, key);
    return v != NULL && json_object_is_type(v, json_type_string) &&
           strcmp(json_object_get_string(v), want) == 0;
}

/* Whether the JSON array arr holds exactly the names of fields selected by pick. */
static bool same_names(struct json_object *arr, const struct lst_table *t, unsigned kb,
                       bool (*pick)(const struct lst_field *, unsigned))
{
    size_t want = 0;
    for (size_t i = 0; i < t->count; i++)
        want += pick(&t->fields[i], kb) ? 1 : 0;
    if (arr == NULL)
        return want == 0;
    if (!json_object_is_type(arr, json_type_array) || json_object_array_length(arr) != want)
        return false;
    for (size_t j = 0; j < want; j++) {
        const char *n = json_object_get_string(json_object_array_get_idx(arr, j));
        bool found = false;
        for (size_t i = 0; i < t->count && !found; i++)
            found = pick(&t->fields[i], kb) && strcmp(t->fields[i].name, n) == 0;
        if (!found)
            return false;
    }
    return true;
}

static bool always_required(const struct lst_field *f, unsigned kb)
{
    (void)kb;
    return f->req == LST_KINDS_ALL;
}

static bool required_for_kind(const struct lst_field *f, unsigned kb)
{
    return f->req != LST_KINDS_ALL && (f->req & kb) != 0;
}

static void compare_table(const struct schema_ctx *c, struct json_object *s,
                          const struct lst_table *t, const char *path);

/* min_len: the field's minimum for a string field, 1 for array items. */
static void compare_string(const struct schema_ctx *c, struct json_object *s,
                           const struct lst_field *f, int64_t min_len, const char *path)
{
    if (!jstr_is(s, "type", "string"))
        mismatch(c, path, "type is not string");
    if (!jint_is(s, "minLength", min_len))
        mismatch(c, path, "minLength differs from the codec");
    if (!jint_is(s, "maxLength", (int64_t)f->max_len))
        mismatch(c, path, "maxLength differs from the codec");
    struct json_object *pat = jget(s, "pattern");
    if (f->pattern == NULL ? pat != NULL : !jstr_is(s, "pattern", f->pattern->regex))
        mismatch(c, path, "pattern differs from the codec");
}

static struct json_object *resolve_ref(const struct schema_ctx *c, struct json_object *s,
                                       const struct lst_table *sub, const char *path)
{
    struct json_object *ref = jget(s, "$ref");
    char want[128];
    snprintf(want, sizeof(want), "#/$defs/%s", sub->name);
    if (ref == NULL || strcmp(json_object_get_string(ref), want) != 0) {
        mismatch(c, path, "expected a $ref to the codec's sub-table");
        return NULL;
    }
    return jget(jget(c->root, "$defs"), sub->name);
}

static void compare_field(const struct schema_ctx *c, struct json_object *s,
                          const struct lst_field *f, const char *path)
{
    if (!json_object_is_type(s, json_type_object)) {
        mismatch(c, path, "not an object");
        return;
    }
    if (jget(s, "description") == NULL)
        mismatch(c, path, "no description");
    switch (f->type) {
    case LST_FT_VERSION:
        if (!jint_is(s, "const", LST_RECORD_VERSION))
            mismatch(c, path, "const is not LST_RECORD_VERSION");
        break;
    case LST_FT_STR:
        compare_string(c, s, f, f->min, path);
        break;
    case LST_FT_INT:
        if (!jstr_is(s, "type", "integer") || !jint_is(s, "minimum", f->min) ||
            !jint_is(s, "maximum", f->max))
            mismatch(c, path, "integer type or bounds differ from the codec");
        break;
    case LST_FT_NUM:
        if (!jstr_is(s, "type", "number") || !jnum_is(s, "minimum", f->dmin) ||
            !jnum_is(s, "maximum", f->dmax))
            mismatch(c, path, "number type or bounds differ from the codec");
        break;
    case LST_FT_BOOL:
        if (!jstr_is(s, "type", "boolean"))
            mismatch(c, path, "type is not boolean");
        break;
    case LST_FT_ENUM: {
        struct json_object *e = jget(s, "enum");
        bool ok = e != NULL && json_object_is_type(e, json_type_array) &&
                  json_object_array_length(e) == f->names_len;
        for (size_t i = 0; ok && i < f->names_len; i++)
            ok = strcmp(json_object_get_string(json_object_array_get_idx(e, i)), f->names[i]) == 0;
        if (!ok)
            mismatch(c, path, "enum differs from the codec");
        break;
    }
    case LST_FT_STRV: {
        if (!jstr_is(s, "type", "array") || !jint_is(s, "minItems", f->min) ||
            !jint_is(s, "maxItems", f->max))
            mismatch(c, path, "array type or item counts differ from the codec");
        char ipath[320];
        snprintf(ipath, sizeof(ipath), "%s[]", path);
        struct json_object *items = jget(s, "items");
        if (items == NULL)
            mismatch(c, ipath, "no items schema");
        else
            compare_string(c, items, f, 1, ipath);
        break;
    }
    case LST_FT_OBJ: {
        struct json_object *def = resolve_ref(c, s, f->sub, path);
        if (def != NULL)
            compare_table(c, def, f->sub, path);
        break;
    }
    case LST_FT_OBJV: {
        if (!jstr_is(s, "type", "array") || !jint_is(s, "minItems", f->min) ||
            !jint_is(s, "maxItems", f->max))
            mismatch(c, path, "array type or item counts differ from the codec");
        char ipath[320];
        snprintf(ipath, sizeof(ipath), "%s[]", path);
        struct json_object *def = resolve_ref(c, jget(s, "items"), f->sub, ipath);
        if (def != NULL)
            compare_table(c, def, f->sub, ipath);
        break;
    }
    }
}

/* For tables with kinds: one allOf entry per kind with if {disc: const} then {required: the
 * fields required only for that kind, properties: false for the fields not allowed}. */
static void compare_kinds(const struct schema_ctx *c, struct json_object *s,
                          const struct lst_table *t, const char *path)
{
    const struct lst_field *d = &t->fields[t->disc];
    struct json_object *all = jget(s, "allOf");
    if (all == NULL || json_object_array_length(all) != d->names_len) {
        mismatch(c, path, "allOf does not have one entry per kind");
        return;
    }
    for (size_t k = 0; k < d->names_len; k++) {
        char kpath[300];
        snprintf(kpath, sizeof(kpath), "%s(%s=%s)", path, d->name, d->names[k]);
        struct json_object *entry = json_object_array_get_idx(all, k);
        struct json_object *cond = jget(jget(jget(entry, "if"), "properties"), d->name);
        if (!jstr_is(cond, "const", d->names[k]))
            mismatch(c, kpath, "allOf entry is not for this kind");
        struct json_object *then = jget(entry, "then");
        if (!same_names(jget(then, "required"), t, 1u << k, required_for_kind))
            mismatch(c, kpath, "required fields for the kind differ from the codec");
        size_t forbidden = 0;
        json_object_object_foreach(jget(then, "properties"), name, val)
        {
            if (!json_object_is_type(val, json_type_boolean))
                continue;
            forbidden++;
            bool ok = false;
            for (size_t i = 0; i < t->count; i++) {
                if (strcmp(t->fields[i].name, name) == 0)
                    ok = (t->fields[i].allow & (1u << k)) == 0;
            }
            if (!ok)
                mismatch(c, kpath, "a field forbidden by the schema is allowed by the codec");
        }
        size_t want = 0;
        for (size_t i = 0; i < t->count; i++)
            want += (t->fields[i].allow & (1u << k)) == 0 ? 1 : 0;
        if (forbidden != want)
            mismatch(c, kpath, "fields not allowed for the kind differ from the codec");
    }
}

static void compare_table(const struct schema_ctx *c, struct json_object *s,
                          const struct lst_table *t, const char *path)
{
    if (!jstr_is(s, "type", "object"))
        mismatch(c, path, "type is not object");
    struct json_object *ap = jget(s, "additionalProperties");
    if (ap == NULL || !json_object_get_boolean(ap))
        mismatch(c, path, "additionalProperties must be true (readers ignore unknown fields)");
    if (!same_names(jget(s, "required"), t, 0, always_required))
        mismatch(c, path, "required differs from the codec");
    struct json_object *props = jget(s, "properties");
    if (props == NULL || (size_t)json_object_object_length(props) != t->count)
        mismatch(c, path, "properties are not exactly the codec's fields");
    for (size_t i = 0; i < t->count; i++) {
        char fpath[300];
        snprintf(fpath, sizeof(fpath), "%s%s%s", path, path[0] ? "." : "", t->fields[i].name);
        struct json_object *fs = jget(props, t->fields[i].name);
        if (fs == NULL)
            mismatch(c, fpath, "missing from the schema");
        else
            compare_field(c, fs, &t->fields[i], fpath);
    }
    if (t->disc >= 0)
        compare_kinds(c, s, t, path);
    else if (jget(s, "allOf") != NULL)
        mismatch(c, path, "allOf on a table without kinds");
}

static void test_schemas_match_codec(void)
{
    const char *src = getenv("LST_SOURCE_DIR");
    REQUIRE(src != NULL);
    size_t n = 0;
    const struct lst_rec_type *types = lst_rec_types(&n);
    CHECK_EQ(n, 9);
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/proto/schemas/%s.schema.json", src, types[i].name);
        struct json_object *root = json_object_from_file(path);
        if (root == NULL) {
            fprintf(stderr, "cannot load %s: %s\n", path, json_util_get_last_err());
            lst_test_failed_checks++;
            continue;
        }
        struct schema_ctx c = {root, path};
        if (!jstr_is(root, "$schema", "https://json-schema.org/draft/2020-12/schema"))
            mismatch(&c, "$schema", "not draft 2020-12");
        if (!jstr_is(root, "title", types[i].name))
            mismatch(&c, "title", "not the record name");
        compare_table(&c, root, types[i].table, "");
        json_object_put(root);
    }
}

/* lst.annotations and lst.views: every kind round-trips; fields of another kind are refused. */
static void test_annotation_and_view(void)
{
    struct lst_annotation a = {0}, a2;
    struct lst_view w = {0}, w2;
    struct lst_buf j, j2, why;
    lst_buf_init(&j);
    lst_buf_init(&j2);
    lst_buf_init(&why);
    a.item_id = lst_strdup("ECHOECHO:0123456789abcdef");
    a.kind = LST_ANNOTATION_CATEGORY;
    a.category = lst_strdup("werkstatt");
    a.user = lst_strdup("anna");
    a.at = 1700000000000;
    CHECK_EQ(lst_annotation_encode(&a, &j), LST_OK);
    CHECK_EQ(lst_annotation_decode(j.data, j.len, &a2, &why), LST_OK);
    CHECK_STREQ(a2.category, "werkstatt");
    CHECK_EQ(lst_annotation_encode(&a2, &j2), LST_OK);
    CHECK_STREQ(j.data, j2.data);
    lst_annotation_cleanup(&a2);
    a.kind = LST_ANNOTATION_HANDLED; /* category not allowed for handled */
    CHECK_EQ(lst_annotation_validate(&a, &why), LST_ERR_INVALID);
    free(a.category);
    a.category = NULL;
    CHECK_EQ(lst_annotation_encode(&a, &j), LST_OK);
    free(a.item_id);
    a.item_id = lst_strdup("not-an-item");
    CHECK_EQ(lst_annotation_validate(&a, &why), LST_ERR_INVALID);
    lst_annotation_cleanup(&a);

    w.view_id = lst_strdup("01HZZZZZZZZZZZZZZZZZZZZZZZ");
    w.kind = LST_VIEW_PUT;
    w.owner = lst_strdup("anna");
    w.department = lst_strdup("Dispo-Nord");
    w.name = lst_strdup("Nord ohne Werkstatt");
    w.shared = true;
    w.filter.department = lst_strdup("Depot Kiel");
    w.filter.status = lst_strdup("unread");
    lst_strv_push(&w.hidden, "werkstatt");
    w.at = 1700000000000;
    CHECK_EQ(lst_view_encode(&w, &j), LST_OK);
    dump("lst.views", &j);
    CHECK_EQ(lst_view_decode(j.data, j.len, &w2, &why), LST_OK);
    CHECK_STREQ(w2.filter.department, "Depot Kiel");
    CHECK_EQ(w2.hidden.len, 1);
    CHECK_EQ(lst_view_encode(&w2, &j2), LST_OK);
    CHECK_STREQ(j.data, j2.data);
    lst_view_cleanup(&w2);
    w.kind = LST_VIEW_DELETE; /* name, filter, ... not allowed */
    CHECK_EQ(lst_view_validate(&w, &why), LST_ERR_INVALID);
    lst_view_cleanup(&w);
    lst_buf_cleanup(&j);
    lst_buf_cleanup(&j2);
    lst_buf_cleanup(&why);
}

/* lst.views' filter holds every timeline filter parameter, tag and depot included; a record
 * written before tag and depot existed still decodes (they are NULL), and a new record read
 * by an old reader only has unknown fields, which readers ignore. */
#define VIEW_HEAD                                                                                  \
    "{\"v\":1,\"view_id\":\"01HZZZZZZZZZZZZZZZZZZZZZZZ\",\"kind\":\"put\",\"owner\":\"bernd\","    \
    "\"name\":\"Kiel\",\"shared\":false,\"at\":1700000000000,"

static void test_view_filter_tag_depot(void)
{
    struct lst_view w = {0}, w2;
    struct lst_buf j, why;
    lst_buf_init(&j);
    lst_buf_init(&why);
    /* every parameter by index: names unique, each slot its own member */
    for (size_t i = 0; i < LST_VIEW_FILTER_PARAMS; i++) {
        char v[32];
        snprintf(v, sizeof(v), "v%zu", i);
        *lst_view_filter_slot(&w.filter, i) = lst_strdup(v);
        for (size_t k = 0; k < i; k++)
            CHECK(strcmp(lst_view_filter_name(i), lst_view_filter_name(k)) != 0);
    }
    CHECK(lst_view_filter_name(LST_VIEW_FILTER_PARAMS) == NULL);
    CHECK_STREQ(w.filter.tag, "v7");
    CHECK_STREQ(lst_view_filter_name(7), "tag");
    CHECK_STREQ(w.filter.depot, "v8");
    CHECK_STREQ(lst_view_filter_name(8), "depot");
    CHECK_STREQ(lst_view_filter_get(&w.filter, 12), w.filter.q);
    lst_view_cleanup(&w);

    memset(&w, 0, sizeof(w));
    w.view_id = lst_strdup("01HZZZZZZZZZZZZZZZZZZZZZZZ");
    w.kind = LST_VIEW_PUT;
    w.owner = lst_strdup("bernd");
    w.name = lst_strdup("Kiel ohne Dispo");
    w.filter.depot = lst_strdup("Kiel-Wellsee,Lübeck-Genin");
    w.filter.tag = lst_strdup("shift:Frühschicht");
    lst_strv_push(&w.hidden, "dispo");
    w.at = 1700000000000;
    CHECK_EQ(lst_view_encode(&w, &j), LST_OK);
    dump("lst.views", &j);
    CHECK(strstr(j.data, "\"depot\":\"Kiel-Wellsee,Lübeck-Genin\"") != NULL);
    CHECK_EQ(lst_view_decode(j.data, j.len, &w2, &why), LST_OK);
    CHECK_STREQ(w2.filter.depot, "Kiel-Wellsee,Lübeck-Genin");
    CHECK_STREQ(w2.filter.tag, "shift:Frühschicht");
    CHECK(w2.filter.department == NULL);
    lst_view_cleanup(&w2);
    /* the bounds of every filter member hold for the new ones */
    free(w.filter.tag);
    w.filter.tag = calloc(LST_VIEW_PARAM_MAX + 2, 1);
    REQUIRE(w.filter.tag != NULL);
    memset(w.filter.tag, 't', LST_VIEW_PARAM_MAX + 1);
    CHECK(lst_view_validate(&w, &why) != LST_OK);
    free(w.filter.tag);
    w.filter.tag = lst_strdup("");
    CHECK_EQ(lst_view_validate(&w, &why), LST_ERR_INVALID);
    lst_view_cleanup(&w);

    /* a record of before: no tag, no depot */
    const char *old =
        VIEW_HEAD "\"filter\":{\"department\":\"Kühllogistik\"},\"hidden\":[\"dispo\"]}";
    CHECK_EQ(lst_view_decode(old, strlen(old), &w2, &why), LST_OK);
    CHECK_STREQ(w2.filter.department, "Kühllogistik");
    CHECK(w2.filter.tag == NULL && w2.filter.depot == NULL);
    lst_view_cleanup(&w2);
    /* wrong types in the new members are refused like in the old ones */
    REJECT("lst.views", VIEW_HEAD "\"filter\":{\"depot\":7}}", LST_ERR_INVALID, "depot");
    REJECT("lst.views", VIEW_HEAD "\"filter\":{\"tag\":[\"a\"]}}", LST_ERR_INVALID, "tag");
    lst_buf_cleanup(&j);
    lst_buf_cleanup(&why);
}

LST_TEST_MAIN(T(test_round_trip_message), T(test_round_trip_outbound), T(test_round_trip_sent),
              T(test_round_trip_inbound), T(test_round_trip_employee), T(test_round_trip_dlq),
              T(test_encoded_shape), T(test_double_precision), T(test_valid_fixture_text),
              T(test_reject_missing), T(test_reject_wrong_types), T(test_reject_bad_values),
              T(test_reject_version), T(test_reject_too_large), T(test_reject_utf8),
              T(test_reject_not_json), T(test_reject_trailing), T(test_reject_not_object),
              T(test_message_ids), T(test_dlq_payload), T(test_names_and_lookup),
              T(test_schemas_match_codec), T(test_annotation_and_view),
              T(test_view_filter_tag_depot))
