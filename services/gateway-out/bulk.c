/* send_e2e_bulk (LST_GATEWAY_OUT_BULK): the sends of different lanes that are ready at the
 * same moment share one Gateway call.
 *
 * No extra thread: the first lane that arrives while no call is open becomes the leader of a
 * new call ("open"); lanes arriving while it is open join it. The leader waits until the call
 * is full (LST_GATEWAY_OUT_BULK_MAX) or the linger (LST_GATEWAY_OUT_BULK_LINGER_MS) has passed,
 * closes it, sends it with its own Gateway client and writes every item's answer into the
 * joined lanes' slots (which live on their stacks; they wait until theirs is answered, so the
 * leader never writes into a slot that is gone). While a call is in flight the next one opens,
 * so calls overlap.
 *
 * Order and duplicates: a lane blocks on its item, so it has at most one item in one call and
 * an employee (always the same lane) never has two requests in a call or in flight at once.
 * Each item keeps its own outcome: a message ID, or an errorCode classified like an HTTP
 * status (402 pause, 429/5xx retry, 400/404/413 permanent) by the caller's usual path. A whole
 * call that failed transiently (429, 5xx, timeout) is a failure of every item, in doubt when
 * the client says so. A whole call refused as PERMANENT (local rejection, 400, 413) sends each
 * item alone instead, so one bad item cannot fail the others. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gateway_out.h"
#include "lst/log.h"

struct go_bulk_slot {
    const struct lst_gateway_e2e *msg;
    const char *request_id;
    struct lst_gateway_bulk_item *item; /* the joining lane's, written by the leader */
    struct lst_gateway_result *res;
    bool single; /* whole call refused as PERMANENT: send alone */
    bool done;
};

/* The call taking items; lives in the leader's stack frame while open. */
struct open_call {
    struct go_bulk_slot **slots; /* the leader's l->bulk_slots */
    size_t n, max;
};

struct go_bulk {
    pthread_mutex_t lock;
    pthread_cond_t joined;   /* the open call grew (leader waits, monotonic clock) */
    pthread_cond_t answered; /* a call was answered (joined lanes wait) */
    struct open_call *open;  /* NULL when no call takes items */
};

lst_err go_bulk_create(struct gateway_out *ctx)
{
    pthread_condattr_t attr;
    struct go_bulk *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return LST_ERR_NOMEM;
    pthread_mutex_init(&b->lock, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&b->joined, &attr);
    pthread_condattr_destroy(&attr);
    pthread_cond_init(&b->answered, NULL);
    ctx->bulk = b;
    return LST_OK;
}

void go_bulk_destroy(struct gateway_out *ctx)
{
    struct go_bulk *b = ctx->bulk;
    if (b == NULL)
        return;
    pthread_cond_destroy(&b->joined);
    pthread_cond_destroy(&b->answered);
    pthread_mutex_destroy(&b->lock);
    free(b);
    ctx->bulk = NULL;
}

lst_err go_bulk_lane_init(struct go_lane *l)
{
    size_t max = (size_t)l->ctx->cfg.bulk_max;
    lst_buf_init(&l->bulk_rid);
    l->bulk_slots = calloc(max, sizeof(*l->bulk_slots));
    l->bulk_msgs = calloc(max, sizeof(*l->bulk_msgs));
    l->bulk_items = calloc(max, sizeof(*l->bulk_items));
    return l->bulk_slots && l->bulk_msgs && l->bulk_items ? LST_OK : LST_ERR_NOMEM;
}

void go_bulk_lane_cleanup(struct go_lane *l)
{
    free(l->bulk_slots);
    free(l->bulk_msgs);
    free(l->bulk_items);
    lst_buf_cleanup(&l->bulk_rid);
    l->bulk_slots = NULL;
    l->bulk_msgs = NULL;
    l->bulk_items = NULL;
}

static struct timespec deadline_after(int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

void go_bulk_request_ids(struct lst_buf *out, size_t n, const char *(*id)(void *ud, size_t i),
                         void *ud)
{
    lst_buf_reset(out);
    for (size_t i = 0; i < n; i++) {
        const char *s = id(ud, i);
        size_t add = strlen(s) + (i > 0);
        if (out->len + add > LST_GATEWAY_REQUEST_ID_MAX)
            break;
        if (i > 0)
            lst_buf_append(out, ",", 1);
        lst_buf_puts(out, s);
    }
}

void go_bulk_item_result(const struct lst_gateway_bulk_item *item, struct lst_gateway_result *res,
                         char msgid[LST_GATEWAY_MSGID_HEX + 1])
{
    if (item->outcome == LST_GATEWAY_OK) {
        memcpy(msgid, item->msgid, LST_GATEWAY_MSGID_HEX + 1);
        return;
    }
    /* The Gateway answered the call and refused this item: it did not send it. */
    res->outcome = item->outcome;
    res->http_status = item->error_code;
    res->err = LST_ERR_HTTP;
    res->in_doubt = false;
    snprintf(res->reason, sizeof(res->reason), "bulk item errorCode %d", item->error_code);
}

/* X-Request-Id of the call: the items' request IDs, comma-separated, as many as fit (the
 * simulator's journal then ties the call to its requests). */
static const char *slot_request_id(void *slots, size_t i)
{
    return ((struct go_bulk_slot **)slots)[i]->request_id;
}

static void set_call_request_id(struct go_lane *l, struct go_bulk_slot **slots, size_t n)
{
    go_bulk_request_ids(&l->bulk_rid, n, slot_request_id, slots);
    lst_gateway_set_request_id(l->gw, lst_buf_failed(&l->bulk_rid) ? NULL : l->bulk_rid.data);
}

/* The leader's call, outside the lock; results go into the slots (still not marked done). */
static void call(struct go_lane *l, struct go_bulk_slot **slots, size_t n, const char *own_rid)
{
    struct lst_gateway_result res;
    for (size_t i = 0; i < n; i++)
        l->bulk_msgs[i] = *slots[i]->msg;
    set_call_request_id(l, slots, n);
    enum lst_gateway_outcome oc =
        lst_gateway_send_e2e_bulk(l->gw, l->bulk_msgs, n, l->bulk_items, &res);
    lst_gateway_set_request_id(l->gw, own_rid);
    if (oc == LST_GATEWAY_PERMANENT)
        LST_WARN("gateway_out.bulk_refused", "send_e2e_bulk of %zu refused (%s): sent alone", n,
                 res.reason);
    for (size_t i = 0; i < n; i++) {
        *slots[i]->res = res;
        slots[i]->single = oc == LST_GATEWAY_PERMANENT;
        if (oc == LST_GATEWAY_OK)
            *slots[i]->item = l->bulk_items[i];
    }
}

/* Leads the call that starts with slot s: waits for others, closes, sends, answers. Called
 * and returns with b->lock held. */
static void lead(struct go_lane *l, struct go_bulk *b, struct go_bulk_slot *s)
{
    struct gateway_out *ctx = l->ctx;
    struct open_call oc = {.slots = l->bulk_slots, .n = 1, .max = (size_t)ctx->cfg.bulk_max};
    oc.slots[0] = s;
    b->open = &oc;
    struct timespec until = deadline_after(ctx->cfg.bulk_linger_ms);
    while (oc.n < oc.max && b->open == &oc) {
        if (pthread_cond_timedwait(&b->joined, &b->lock, &until) == ETIMEDOUT)
            break;
    }
    if (b->open == &oc)
        b->open = NULL;
    pthread_mutex_unlock(&b->lock);
    call(l, oc.slots, oc.n, s->request_id);
    pthread_mutex_lock(&b->lock);
    for (size_t i = 0; i < oc.n; i++)
        oc.slots[i]->done = true;
    pthread_cond_broadcast(&b->answered);
}

bool go_bulk_send(struct go_lane *l, const struct lst_gateway_e2e *msg, const char *request_id,
                  struct lst_gateway_bulk_item *item, struct lst_gateway_result *res)
{
    struct go_bulk *b = l->ctx->bulk;
    struct go_bulk_slot s = {.msg = msg, .request_id = request_id, .item = item, .res = res};
    memset(res, 0, sizeof(*res));
    pthread_mutex_lock(&b->lock);
    struct open_call *oc = b->open;
    if (oc == NULL) {
        lead(l, b, &s);
    } else {
        oc->slots[oc->n++] = &s;
        if (oc->n >= oc->max) {
            b->open = NULL; /* full: the leader sends it now */
            pthread_cond_signal(&b->joined);
        }
        while (!s.done)
            pthread_cond_wait(&b->answered, &b->lock);
    }
    pthread_mutex_unlock(&b->lock);
    return !s.single;
}
