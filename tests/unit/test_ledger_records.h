/* Records for ledger tests and the ledger benchmark, encoded with the project's codecs
 * (lst/records.h), so every record a test feeds is one a real producer could write. Each
 * function replaces out's content with the encoded JSON and returns the codec's result. */
#ifndef LST_TEST_LEDGER_RECORDS_H
#define LST_TEST_LEDGER_RECORDS_H

#include <stdio.h>
#include <string.h>

#include "lst/records.h"
#include "lst/util.h"

static inline char *lrec_dup(const char *s)
{
    return s != NULL ? lst_strdup(s) : NULL;
}

static inline lst_err lrec_outbound(struct lst_buf *out, const char *mid, const char *eid,
                                    const char *tid, int64_t at)
{
    struct lst_outbound o = {0};
    struct lst_buf rid;
    lst_buf_init(&rid);
    lst_request_id_format(&rid, mid, eid);
    o.request_id = lst_buf_steal(&rid);
    o.message_id = lrec_dup(mid);
    o.employee_id = lrec_dup(eid);
    o.to.threema_id = lrec_dup(tid);
    o.content.kind = LST_CONTENT_TEXT;
    o.content.text = lrec_dup("Bitte Tour 7 übernehmen");
    o.created_at = at;
    lst_err err = lst_outbound_encode(&o, out);
    lst_outbound_cleanup(&o);
    lst_buf_cleanup(&rid);
    return err;
}

/* tmid != NULL: accepted with that Threema message ID; else failed with code (final or not). */
static inline lst_err lrec_sent(struct lst_buf *out, const char *mid, const char *eid,
                                const char *tmid, const char *code, bool final, int64_t at)
{
    struct lst_sent s = {0};
    struct lst_buf rid;
    lst_buf_init(&rid);
    lst_request_id_format(&rid, mid, eid);
    s.request_id = lst_buf_steal(&rid);
    s.message_id = lrec_dup(mid);
    s.employee_id = lrec_dup(eid);
    s.attempts = 1;
    s.at = at;
    if (tmid != NULL) {
        s.outcome = LST_SENT_ACCEPTED;
        s.threema_message_id = lrec_dup(tmid);
    } else {
        s.outcome = LST_SENT_FAILED;
        s.failure.code = lrec_dup(code);
        s.failure.reason = lrec_dup("the recipient is unknown");
        s.failure.final = final;
        s.failure.has_http_status = true;
        s.failure.http_status = 404;
    }
    lst_err err = lst_sent_encode(&s, out);
    lst_sent_cleanup(&s);
    lst_buf_cleanup(&rid);
    return err;
}

static inline lst_err lrec_receipt(struct lst_buf *out, const char *from, const char *tmid,
                                   int status, int64_t at, const char *receipt_msgid)
{
    struct lst_inbound in = {0};
    struct lst_buf eid;
    lst_buf_init(&eid);
    lst_event_id_format(&eid, from, receipt_msgid);
    in.event_id = lst_buf_steal(&eid);
    in.kind = LST_INBOUND_RECEIPT;
    in.from = lrec_dup(from);
    in.to = lrec_dup("*LEITST1");
    in.threema_message_id = lrec_dup(receipt_msgid);
    in.date = at / 1000;
    in.received_at = at;
    in.receipt.status = status;
    lst_strv_push(&in.receipt.message_ids, tmid);
    lst_err err = lst_inbound_encode(&in, out);
    lst_inbound_cleanup(&in);
    lst_buf_cleanup(&eid);
    return err;
}

static inline lst_err lrec_text_in(struct lst_buf *out, const char *from, const char *msgid,
                                   const char *text, int64_t at)
{
    struct lst_inbound in = {0};
    struct lst_buf eid;
    lst_buf_init(&eid);
    lst_event_id_format(&eid, from, msgid);
    in.event_id = lst_buf_steal(&eid);
    in.kind = LST_INBOUND_MESSAGE;
    in.from = lrec_dup(from);
    in.to = lrec_dup("*LEITST1");
    in.threema_message_id = lrec_dup(msgid);
    in.date = at / 1000;
    in.received_at = at;
    in.content.kind = LST_CONTENT_TEXT;
    in.content.text = lrec_dup(text);
    lst_err err = lst_inbound_encode(&in, out);
    lst_inbound_cleanup(&in);
    lst_buf_cleanup(&eid);
    return err;
}

static inline lst_err lrec_message(struct lst_buf *out, const char *mid, const char *dispatcher,
                                   const char *department, const char *category,
                                   const char *const *recipients, size_t n, int64_t at)
{
    struct lst_message m = {0};
    char idem[64];
    snprintf(idem, sizeof(idem), "idem-%s", mid);
    m.message_id = lrec_dup(mid);
    m.created_at = at;
    m.dispatcher = lrec_dup(dispatcher);
    m.department = lrec_dup(department);
    m.category = lrec_dup(category);
    m.idempotency_key = lrec_dup(idem);
    m.content.kind = LST_CONTENT_TEXT;
    m.content.text = lrec_dup("Bitte Tour 7 übernehmen");
    for (size_t i = 0; i < n; i++)
        lst_strv_push(&m.audience.recipients, recipients[i]);
    lst_strv_push(&m.audience.selector.employee_ids, recipients[0]);
    lst_err err = lst_message_encode(&m, out);
    lst_message_cleanup(&m);
    return err;
}

/* An active employee from the ERP with the given tags (vehicle optional). */
static inline lst_err lrec_employee_tags(struct lst_buf *out, const char *eid, const char *name,
                                         const char *dep, const char *vehicle, const char *tid,
                                         const char *const *tags, size_t ntags, int64_t at)
{
    struct lst_employee e = {0};
    e.employee_id = lrec_dup(eid);
    e.name = lrec_dup(name);
    e.department = lrec_dup(dep);
    e.vehicle = lrec_dup(vehicle);
    e.threema_id = lrec_dup(tid);
    e.active = true;
    e.updated_at = at;
    e.source = lrec_dup("erp");
    for (size_t i = 0; i < ntags; i++)
        lst_strv_push(&e.tags, tags[i]);
    lst_err err = lst_employee_encode(&e, out);
    lst_employee_cleanup(&e);
    return err;
}

static inline lst_err lrec_employee(struct lst_buf *out, const char *eid, const char *name,
                                    const char *dep, const char *vehicle, const char *tid,
                                    int64_t at)
{
    static const char *const driver[] = {"driver"};
    return lrec_employee_tags(out, eid, name, dep, vehicle, tid, driver, 1, at);
}

/* An lst.annotations record about item (cat: the new category of a category change, else
 * NULL). */
static inline lst_err lrec_annotation(struct lst_buf *out, const char *item,
                                      enum lst_annotation_kind kind, const char *cat,
                                      const char *user, int64_t at)
{
    struct lst_annotation a = {0};
    a.item_id = lrec_dup(item);
    a.kind = kind;
    a.category = lrec_dup(cat);
    a.user = lrec_dup(user);
    a.at = at;
    lst_err err = lst_annotation_encode(&a, out);
    lst_annotation_cleanup(&a);
    return err;
}

/* A ULID-shaped message ID for time ms with a fixed random part derived from seq. */
static inline void lrec_mid(char out[LST_MESSAGE_ID_LEN + 1], int64_t ms, unsigned seq)
{
    static const char b32[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    for (int i = 9; i >= 0; i--) {
        out[i] = b32[ms & 31];
        ms >>= 5;
    }
    for (int i = 25; i >= 10; i--) {
        out[i] = b32[seq & 31];
        seq >>= 5;
    }
    out[26] = '\0';
}

#endif
