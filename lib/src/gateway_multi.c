/* Gateway client, many send_e2e and send_e2e_bulk transfers on one thread (curl multi). The
 * requests, the transport setup and the classification are the blocking client's
 * (gateway_client.c, gateway_endpoints.c, gateway_bulk.c); this file only adds the slots and
 * the event loop around them. */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway_internal.h"
#include "lst/gateway.h"
#include "lst/gateway_config.h"

/* One slot: an easy handle and what its running transfer borrows. */
struct slot {
    struct lst_gw_xfer x;
    struct lst_gw_request rq;
    struct lst_buf form;   /* the running send's body; holds the secret, wiped at the end */
    struct lst_buf answer; /* the running send's 2xx answer */
    /* a running send_e2e_bulk: where its items' answers go (the caller's, borrowed) */
    struct lst_gateway_bulk_item *items;
    size_t nitems;
    int64_t started; /* lst_mono_ms of lst_gateway_multi_send_e2e */
    bool busy;
};

struct lst_gateway_multi {
    /* The configuration: validated, copied and its secret registered by lst_gateway_create,
     * so the multi client cannot drift from the blocking one. Its own handle stays unused. */
    struct lst_gateway *gw;
    CURLM *multi;
    struct slot *slots;
    unsigned nslots;
    unsigned running;
};

void lst_gateway_multi_destroy(struct lst_gateway_multi *m)
{
    if (m == NULL)
        return;
    for (unsigned i = 0; m->slots != NULL && i < m->nslots; i++) {
        struct slot *s = &m->slots[i];
        if (s->busy) {
            curl_multi_remove_handle(m->multi, s->x.curl);
            lst_gw_xfer_end(&s->x);
        }
        lst_gw_wipe(&s->form);
        lst_buf_cleanup(&s->answer);
        lst_gw_xfer_cleanup(&s->x);
    }
    if (m->multi != NULL)
        curl_multi_cleanup(m->multi);
    free(m->slots);
    lst_gateway_destroy(m->gw);
    free(m);
}

/* The pool keeps one idle connection per slot. libcurl's default limit is 4 per handle added
 * at the moment a connection goes back to the pool: with more than 4 slots and few transfers
 * still added, it would close idle connections the next sends need. */
static lst_err make_multi(struct lst_gateway_multi *m)
{
    m->multi = curl_multi_init();
    if (m->multi == NULL)
        return LST_ERR_HTTP;
    if (curl_multi_setopt(m->multi, CURLMOPT_MAXCONNECTS, (long)m->nslots) != CURLM_OK)
        return LST_ERR_HTTP;
    for (unsigned i = 0; i < m->nslots; i++) {
        struct slot *s = &m->slots[i];
        lst_buf_init(&s->form);
        lst_buf_init(&s->answer);
        lst_err err = lst_gw_xfer_init(&s->x);
        if (err != LST_OK)
            return err;
    }
    return LST_OK;
}

lst_err lst_gateway_multi_create(const struct lst_gateway_config *cfg, unsigned slots,
                                 struct lst_gateway_multi **out)
{
    if (slots == 0 || slots > LST_GATEWAY_MULTI_SLOTS_MAX)
        return LST_ERR_CONFIG;
    struct lst_gateway_multi *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return LST_ERR_NOMEM;
    lst_err err = lst_gateway_create(cfg, &m->gw);
    if (err != LST_OK)
        goto out;
    m->slots = calloc(slots, sizeof(*m->slots));
    if (m->slots == NULL) {
        err = LST_ERR_NOMEM;
        goto out;
    }
    m->nslots = slots;
    err = make_multi(m);
    if (err != LST_OK)
        goto out;
    *out = m;
    m = NULL;
out:
    lst_gateway_multi_destroy(m);
    return err;
}

lst_err lst_gateway_settings_multi(const struct lst_gateway_settings *s, unsigned slots,
                                   struct lst_gateway_multi **out)
{
    struct lst_gateway_config cfg;
    lst_gateway_settings_client_config(s, &cfg);
    return lst_gateway_multi_create(&cfg, slots, out);
}

/* A send that could not start for a reason that is not the message's: RETRY, nothing sent. */
static lst_err not_started(struct lst_gateway_result *res, lst_err err, const char *why)
{
    memset(res, 0, sizeof(*res));
    res->outcome = LST_GATEWAY_RETRY;
    res->err = err;
    snprintf(res->reason, sizeof(res->reason), "%s", why);
    return err;
}

/* Hands the transfer of s for its request s->rq (built by the caller) to the multi handle. */
static lst_err start(struct lst_gateway_multi *m, struct slot *s, struct lst_gateway_result *res)
{
    lst_buf_reset(&s->answer);
    lst_err err = lst_gw_xfer_begin(m->gw, &s->x, &s->rq, &s->answer, res);
    if (err != LST_OK)
        return err;
    if (curl_easy_setopt(s->x.curl, CURLOPT_PRIVATE, (void *)s) != CURLE_OK ||
        curl_multi_add_handle(m->multi, s->x.curl) != CURLM_OK) {
        lst_gw_xfer_end(&s->x);
        s->x.primed = false; /* the handle may be in any state */
        return not_started(res, LST_ERR_HTTP, "could not start the transfer");
    }
    return LST_OK;
}

/* The idle slot for a new send with request_id, or NULL with res filled. */
static struct slot *take_slot(struct lst_gateway_multi *m, unsigned slot, const char *request_id,
                              struct lst_gateway_result *res)
{
    if (slot >= m->nslots) {
        not_started(res, LST_ERR_RANGE, "no such slot");
        return NULL;
    }
    struct slot *s = &m->slots[slot];
    if (s->busy) {
        not_started(res, LST_ERR_STATE, "slot busy");
        return NULL;
    }
    if (lst_gw_set_request_id(&s->x, request_id) != LST_OK) {
        lst_gw_reject(res, LST_ERR_INVALID, "malformed request id");
        return NULL;
    }
    return s;
}

/* Starts s's request (its body in s->form); on failure the body is wiped. */
static lst_err launch(struct lst_gateway_multi *m, struct slot *s, int64_t started,
                      struct lst_gateway_result *res)
{
    memset(res, 0, sizeof(*res));
    lst_err err = start(m, s, res);
    if (err != LST_OK) {
        lst_gw_wipe(&s->form);
        return err;
    }
    s->started = started;
    s->busy = true;
    m->running++;
    return LST_OK;
}

lst_err lst_gateway_multi_send_e2e(struct lst_gateway_multi *m, unsigned slot,
                                   const struct lst_gateway_e2e *msg, const char *request_id,
                                   struct lst_gateway_result *res)
{
    int64_t started = lst_mono_ms();
    struct slot *s = take_slot(m, slot, request_id, res);
    if (s == NULL)
        return res->err;
    lst_err err = lst_gw_e2e_form(m->gw, msg, &s->form, res);
    if (err != LST_OK)
        return err;
    s->items = NULL;
    s->nitems = 0;
    lst_gw_form_request(&s->rq, "send_e2e", "/send_e2e", &s->form);
    return launch(m, s, started, res);
}

lst_err lst_gateway_multi_send_e2e_bulk(struct lst_gateway_multi *m, unsigned slot,
                                        const struct lst_gateway_e2e *msgs, size_t n,
                                        const char *request_id, struct lst_gateway_bulk_item *items,
                                        struct lst_gateway_result *res)
{
    int64_t started = lst_mono_ms();
    struct slot *s = take_slot(m, slot, request_id, res);
    if (s == NULL)
        return res->err;
    lst_buf_reset(&s->form);
    lst_err err = lst_gw_bulk_body(msgs, n, &s->form, res);
    if (err != LST_OK) {
        lst_gw_wipe(&s->form);
        return err;
    }
    s->items = items;
    s->nitems = n;
    lst_gw_json_request(&s->rq, "send_e2e_bulk", "/send_e2e_bulk", &s->form);
    return launch(m, s, started, res);
}

/* Classifies the finished transfer of s as lst_gw_perform and the send_e2e endpoint do, frees
 * the slot and reports. */
static void complete(struct lst_gateway_multi *m, struct slot *s, CURLcode rc,
                     lst_gateway_multi_done done, void *ud)
{
    struct lst_gateway_result res;
    char msgid[LST_GATEWAY_MSGID_HEX + 1] = "";
    memset(&res, 0, sizeof(res));
    curl_multi_remove_handle(m->multi, s->x.curl);
    lst_gw_xfer_finish(m->gw, &s->x, rc, &res);
    res.elapsed_ms = lst_mono_ms() - s->started;
    if (lst_gw_report(&s->rq, &s->answer, &res) == LST_GATEWAY_OK) {
        if (s->items != NULL)
            lst_gw_bulk_answer(&s->answer, s->nitems, s->items, &res);
        else
            lst_gw_take_msgid(&s->answer, true, msgid, &res);
    }
    lst_gw_wipe(&s->form);
    s->busy = false;
    m->running--;
    done(ud, (unsigned)(s - m->slots), msgid, &res);
}

int lst_gateway_multi_run(struct lst_gateway_multi *m, int timeout_ms, lst_gateway_multi_done done,
                          void *ud)
{
    int still = 0;
    CURLMcode mc = curl_multi_poll(m->multi, NULL, 0, timeout_ms < 0 ? 0 : timeout_ms, NULL);
    if (mc == CURLM_OK)
        mc = curl_multi_perform(m->multi, &still);
    if (mc != CURLM_OK)
        return -(int)LST_ERR_HTTP;
    CURLMsg *msg;
    int left = 0;
    while ((msg = curl_multi_info_read(m->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        /* msg does not survive curl_multi_remove_handle: take what is needed first. */
        CURL *easy = msg->easy_handle;
        CURLcode rc = msg->data.result;
        char *p = NULL;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, &p);
        complete(m, (struct slot *)(void *)p, rc, done, ud);
    }
    return (int)m->running;
}

void lst_gateway_multi_wakeup(struct lst_gateway_multi *m)
{
    curl_multi_wakeup(m->multi);
}

unsigned lst_gateway_multi_running(const struct lst_gateway_multi *m)
{
    return m->running;
}
