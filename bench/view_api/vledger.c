/* The benchmark's records through the ledger core (vledger.h). */
#include <stdio.h>
#include <string.h>

#include "vledger.h"

#define FLUSH_AT 400

/* Says why the codec refused a generated record (a bug in the generator). */
#define WHY(rec)                                                                                   \
    static void why_##rec(const struct lst_##rec *r)                                               \
    {                                                                                              \
        struct lst_buf why;                                                                        \
        lst_buf_init(&why);                                                                        \
        lst_##rec##_validate(r, &why);                                                             \
        fprintf(stderr, "vb_feed: %s record refused: %s\n", #rec, why.data ? why.data : "?");      \
        lst_buf_cleanup(&why);                                                                     \
    }
WHY(message)
WHY(outbound)
WHY(sent)
WHY(inbound)

void vb_feed_init(struct vb_feed *f, struct ledger_core *core)
{
    memset(f, 0, sizeof(*f));
    f->core = core;
    lst_buf_init(&f->rec);
}

void vb_feed_cleanup(struct vb_feed *f)
{
    lst_buf_cleanup(&f->rec);
}

lst_err vb_feed_flush(struct vb_feed *f)
{
    const struct ledger_done *done = NULL;
    size_t n = 0;
    lst_err err = ledger_core_flush(f->core, &done, &n);
    for (size_t i = 0; i < n && err == LST_OK; i++) {
        if (done[i].outcome != LEDGER_APPLIED) {
            fprintf(stderr, "vb_feed: record %d@%lld not applied (%d)\n", (int)done[i].topic,
                    (long long)done[i].offset, (int)done[i].outcome);
            err = LST_ERR_REDIS;
        }
    }
    return err;
}

/* Queues the encoded record in f->rec under key; flushes now and then. */
static lst_err add(struct vb_feed *f, enum ledger_topic t, const char *key, lst_err encoded)
{
    if (encoded != LST_OK)
        return encoded;
    struct ledger_rec r = {.topic = t,
                           .partition = 0,
                           .offset = f->next[t]++,
                           .key = key,
                           .keylen = strlen(key),
                           .value = f->rec.data,
                           .len = f->rec.len};
    lst_err err = ledger_core_add(f->core, &r);
    if (err == LST_OK && ledger_core_pending(f->core) >= FLUSH_AT)
        err = vb_feed_flush(f);
    return err;
}

lst_err vb_feed_directory(struct vb_feed *f, const struct vb_dir *d, int64_t at)
{
    lst_err err = LST_OK;
    for (size_t i = 0; i < d->n && err == LST_OK; i++)
        err = add(f, LEDGER_T_EMPLOYEES, d->e[i].id, vb_employee_record(&d->e[i], at, &f->rec));
    return err == LST_OK ? vb_feed_flush(f) : err;
}

static char *dup(const char *s)
{
    return s != NULL ? lst_strdup(s) : NULL;
}

static lst_err message_record(const struct vb_dir *d, const struct vb_msg *m, struct lst_buf *out)
{
    struct lst_message r = {0};
    char idem[40];
    snprintf(idem, sizeof(idem), "idem-%s", m->mid);
    r.message_id = dup(m->mid);
    r.created_at = m->at;
    r.dispatcher = dup(m->disp);
    r.dispatcher_name = dup(m->disp_name);
    r.department = dup(m->dep);
    r.category = dup(m->cat);
    r.idempotency_key = dup(idem);
    r.content.kind = LST_CONTENT_TEXT;
    r.content.text = dup(m->text);
    for (size_t k = 0; k < m->n; k++) {
        lst_strv_push(&r.audience.recipients, d->e[m->r[k].emp].id);
        if (m->sel_dep == NULL)
            lst_strv_push(&r.audience.selector.employee_ids, d->e[m->r[k].emp].id);
    }
    if (m->sel_dep != NULL) {
        lst_strv_push(&r.audience.selector.departments, m->sel_dep);
        lst_strv_push(&r.audience.selector.tags, m->sel_tag);
    }
    lst_buf_reset(out);
    lst_err err = lst_message_encode(&r, out);
    if (err != LST_OK)
        why_message(&r);
    lst_message_cleanup(&r);
    return err;
}

static lst_err outbound_record(const struct vb_emp *e, const struct vb_msg *m, struct lst_buf *out)
{
    struct lst_outbound o = {0};
    struct lst_buf rid;
    lst_buf_init(&rid);
    lst_request_id_format(&rid, m->mid, e->id);
    o.request_id = lst_buf_steal(&rid);
    o.message_id = dup(m->mid);
    o.employee_id = dup(e->id);
    o.to.threema_id = dup(e->tid);
    o.to.phone = dup(e->phone);
    o.to.email = dup(e->email);
    o.content.kind = LST_CONTENT_TEXT;
    o.content.text = dup(m->text);
    o.created_at = m->at;
    lst_buf_reset(out);
    lst_err err = lst_outbound_encode(&o, out);
    if (err != LST_OK)
        why_outbound(&o);
    lst_outbound_cleanup(&o);
    lst_buf_cleanup(&rid);
    return err;
}

static lst_err sent_record(const struct vb_emp *e, const struct vb_msg *m, const struct vb_rcpt *r,
                           struct lst_buf *out)
{
    struct lst_sent s = {0};
    struct lst_buf rid;
    lst_buf_init(&rid);
    lst_request_id_format(&rid, m->mid, e->id);
    s.request_id = lst_buf_steal(&rid);
    s.message_id = dup(m->mid);
    s.employee_id = dup(e->id);
    s.attempts = 1;
    if (r->failed) {
        s.outcome = LST_SENT_FAILED;
        s.at = r->f;
        s.failure.code = dup("http_404");
        s.failure.reason = dup("the recipient is unknown");
        s.failure.final = true;
        s.failure.has_http_status = true;
        s.failure.http_status = 404;
    } else {
        s.outcome = LST_SENT_ACCEPTED;
        s.at = r->s;
        s.threema_message_id = dup(r->tmid);
        s.threema_id = dup(e->tid);
    }
    lst_buf_reset(out);
    lst_err err = lst_sent_encode(&s, out);
    if (err != LST_OK)
        why_sent(&s);
    lst_sent_cleanup(&s);
    lst_buf_cleanup(&rid);
    return err;
}

static lst_err receipt(struct vb_feed *f, const struct vb_emp *e, const struct vb_rcpt *r,
                       int status, int64_t at)
{
    struct lst_inbound in = {0};
    struct lst_buf eid;
    char rid[17];
    const char *from = e->tid != NULL ? e->tid : "ECHOECHO";
    snprintf(rid, sizeof(rid), "%016llx", (unsigned long long)++f->receipt_seq);
    lst_buf_init(&eid);
    lst_event_id_format(&eid, from, rid);
    in.event_id = lst_buf_steal(&eid);
    in.kind = LST_INBOUND_RECEIPT;
    in.from = dup(from);
    in.to = dup("*LEITST1");
    in.threema_message_id = dup(rid);
    in.date = at / 1000;
    in.received_at = at;
    in.receipt.status = status;
    lst_strv_push(&in.receipt.message_ids, r->tmid);
    lst_buf_reset(&f->rec);
    lst_err enc = lst_inbound_encode(&in, &f->rec);
    if (enc != LST_OK)
        why_inbound(&in);
    lst_err err = add(f, LEDGER_T_INBOUND, from, enc);
    lst_inbound_cleanup(&in);
    lst_buf_cleanup(&eid);
    return err;
}

static lst_err recipient(struct vb_feed *f, const struct vb_emp *e, const struct vb_msg *m,
                         const struct vb_rcpt *r)
{
    lst_err err = add(f, LEDGER_T_OUTBOUND, e->id, outbound_record(e, m, &f->rec));
    if (err == LST_OK)
        err = add(f, LEDGER_T_SENT, e->id, sent_record(e, m, r, &f->rec));
    const int64_t steps[] = {r->d, r->r, r->a, r->x};
    for (int st = 0; st < 4 && err == LST_OK; st++) {
        if (steps[st] != 0)
            err = receipt(f, e, r, st + 1, steps[st]);
    }
    return err;
}

lst_err vb_feed_message(struct vb_feed *f, const struct vb_dir *d, const struct vb_msg *m)
{
    lst_err err = add(f, LEDGER_T_MESSAGE, m->mid, message_record(d, m, &f->rec));
    for (size_t k = 0; k < m->n && err == LST_OK; k++)
        err = recipient(f, &d->e[m->r[k].emp], m, &m->r[k]);
    return err;
}

/* The j-th driver with a Threema ID, round robin with a stride (neighbours in the CSV share a
 * depot; a stride spreads the replies over departments). */
static const struct vb_emp *replier(const struct vb_dir *d, uint64_t j)
{
    for (size_t k = 0; k < d->n; k++) {
        const struct vb_emp *e = &d->e[(j * 7 + k) % d->n];
        if (e->tid != NULL && e->active)
            return e;
    }
    return NULL;
}

lst_err vb_feed_reply(struct vb_feed *f, const struct vb_dir *d, uint64_t j, int64_t step_ms)
{
    struct lst_inbound in = {0};
    struct lst_buf eid;
    char tmid[17], text[64];
    const struct vb_emp *e = replier(d, j);
    int64_t at = VB_T0 + (int64_t)j * step_ms + 3500;
    if (e == NULL)
        return LST_ERR_INVALID;
    snprintf(tmid, sizeof(tmid), "%016llx", (unsigned long long)(0x8000000000000000ULL | j));
    snprintf(text, sizeof(text), "Antwort %llu: verstanden", (unsigned long long)j);
    lst_buf_init(&eid);
    lst_event_id_format(&eid, e->tid, tmid);
    in.event_id = lst_buf_steal(&eid);
    in.kind = LST_INBOUND_MESSAGE;
    in.from = dup(e->tid);
    in.to = dup("*LEITST1");
    in.threema_message_id = dup(tmid);
    in.date = at / 1000;
    in.received_at = at;
    in.content.kind = LST_CONTENT_TEXT;
    in.content.text = dup(text);
    lst_buf_reset(&f->rec);
    lst_err enc = lst_inbound_encode(&in, &f->rec);
    if (enc != LST_OK)
        why_inbound(&in);
    lst_err err = add(f, LEDGER_T_INBOUND, e->tid, enc);
    lst_inbound_cleanup(&in);
    lst_buf_cleanup(&eid);
    return err;
}
