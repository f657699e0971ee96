/* The read paths' Redis connections (timeline, history, message detail).
 *
 * Why not the library's lst_redis: a timeline page is ~60 HGETALL replies of ~45 elements,
 * and hiredis's default reply builder makes one calloc per element plus one malloc per
 * string, all freed again a moment later: with 32 concurrent requests that allocation storm
 * was two thirds of the view-api's CPU (perf, docs/view-api.md "Benchmark"). These
 * connections build replies in an arena owned by the connection, emptied when the next page
 * begins, and keep hiredis's read buffer instead of freeing it after every large reply. And
 * the service's single connection serialized every request behind its lock; VA_READ_CONNS of
 * these (each with its own lock) let pages overlap.
 *
 * Rules (hiredis 0.14.1, docs/pitfalls.md): after an I/O error or a protocol error the
 * context is dropped and the next va_rconn_begin connects again; the timeout applies to
 * connect, reads and writes; keepalive on. Replies are borrowed until va_rconn_end. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "lst/log.h"
#include "view_api.h"

#define CHUNK_MIN (256 * 1024)
#define KEEP_MAX  (8 * 1024 * 1024) /* arena memory kept between pages */

struct chunk {
    struct chunk *next;
    size_t cap, used;
    max_align_t data[];
};

struct va_rconn {
    pthread_mutex_t lock;
    redisContext *c;
    struct chunk *chunks; /* in use: the first; spare ones follow */
    redisReply **replies;
    size_t nreplies, capreplies, queued;
    char *host, *password;
    int port, db, timeout_ms;
    bool (*on_connect)(void *ud);
    void *ud;
};

/* ---- the arena ---- */

static void *arena_alloc(struct va_rconn *rc, size_t len)
{
    len = (len + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
    struct chunk *ch = rc->chunks;
    while (ch != NULL && ch->cap - ch->used < len)
        ch = ch->next; /* chunks kept from earlier pages are reused before a new one */
    if (ch == NULL) {
        size_t cap = len > CHUNK_MIN ? len : CHUNK_MIN;
        ch = malloc(sizeof(*ch) + cap);
        if (ch == NULL)
            return NULL;
        ch->cap = cap;
        ch->used = 0;
        ch->next = rc->chunks;
        rc->chunks = ch;
    }
    void *p = (char *)ch->data + ch->used;
    ch->used += len;
    return p;
}

/* Empties the arena; keeps chunks up to KEEP_MAX (at least one) for the next page. */
static void arena_reset(struct va_rconn *rc)
{
    size_t kept = 0;
    struct chunk **pp = &rc->chunks;
    while (*pp != NULL) {
        struct chunk *ch = *pp;
        if (kept + ch->cap <= KEEP_MAX || kept == 0) {
            ch->used = 0;
            kept += ch->cap;
            pp = &ch->next;
        } else {
            *pp = ch->next;
            free(ch);
        }
    }
}

static void arena_free(struct va_rconn *rc)
{
    while (rc->chunks != NULL) {
        struct chunk *next = rc->chunks->next;
        free(rc->chunks);
        rc->chunks = next;
    }
}

/* ---- hiredis reply functions building in the arena ---- */

static void *new_reply(const redisReadTask *task, int type)
{
    redisReply *r = arena_alloc(task->privdata, sizeof(*r));
    if (r == NULL)
        return NULL;
    memset(r, 0, sizeof(*r));
    r->type = type;
    if (task->parent != NULL) {
        redisReply *parent = task->parent->obj;
        parent->element[task->idx] = r;
    }
    return r;
}

static void *create_string(const redisReadTask *task, char *str, size_t len)
{
    redisReply *r = new_reply(task, task->type);
    char *s = r != NULL ? arena_alloc(task->privdata, len + 1) : NULL;
    if (s == NULL)
        return NULL;
    memcpy(s, str, len);
    s[len] = '\0';
    r->str = s;
    r->len = len;
    return r;
}

static void *create_array(const redisReadTask *task, int elements)
{
    redisReply *r = new_reply(task, REDIS_REPLY_ARRAY);
    if (r == NULL)
        return NULL;
    if (elements > 0) {
        r->element = arena_alloc(task->privdata, (size_t)elements * sizeof(*r->element));
        if (r->element == NULL)
            return NULL;
        memset(r->element, 0, (size_t)elements * sizeof(*r->element));
    }
    r->elements = (size_t)elements;
    return r;
}

static void *create_integer(const redisReadTask *task, long long value)
{
    redisReply *r = new_reply(task, REDIS_REPLY_INTEGER);
    if (r != NULL)
        r->integer = value;
    return r;
}

static void *create_nil(const redisReadTask *task)
{
    return new_reply(task, REDIS_REPLY_NIL);
}

static void free_object(void *reply)
{
    (void)reply; /* the arena owns it */
}

static redisReplyObjectFunctions ARENA_FNS = {create_string, create_array, create_integer,
                                              create_nil, free_object};

/* ---- the connection ---- */

static void drop(struct va_rconn *rc)
{
    if (rc->c != NULL)
        redisFree(rc->c);
    rc->c = NULL;
}

/* One command on a fresh context (AUTH, SELECT); true on a non-error reply. */
static bool setup_cmd(struct va_rconn *rc, int argc, const char **argv)
{
    void *r = NULL;
    bool ok = redisAppendCommandArgv(rc->c, argc, argv, NULL) == REDIS_OK &&
              redisGetReply(rc->c, &r) == REDIS_OK && r != NULL &&
              ((redisReply *)r)->type != REDIS_REPLY_ERROR;
    return ok;
}

static lst_err connect_now(struct va_rconn *rc)
{
    struct timeval tv = {rc->timeout_ms / 1000, (rc->timeout_ms % 1000) * 1000};
    char db[16];
    rc->c = redisConnectWithTimeout(rc->host != NULL ? rc->host : "127.0.0.1", rc->port, tv);
    if (rc->c == NULL || rc->c->err != 0)
        goto fail;
    redisReader *reader = redisReaderCreateWithFunctions(&ARENA_FNS);
    if (reader == NULL)
        goto fail;
    reader->privdata = rc;
    reader->maxbuf = 0; /* keep the read buffer: large replies are the normal case here */
    redisReaderFree(rc->c->reader);
    rc->c->reader = reader;
    /* the timeout after connecting too (hiredis 0.14: reads block forever otherwise) */
    if (redisSetTimeout(rc->c, tv) != REDIS_OK || redisEnableKeepAlive(rc->c) != REDIS_OK)
        goto fail;
    const char *auth[] = {"AUTH", rc->password};
    if (rc->password != NULL && rc->password[0] != '\0' && !setup_cmd(rc, 2, auth))
        goto fail;
    snprintf(db, sizeof(db), "%d", rc->db);
    const char *sel[] = {"SELECT", db};
    if (rc->db > 0 && !setup_cmd(rc, 2, sel))
        goto fail;
    /* A new connection may be a restarted Redis: nothing is read on it before the projections
     * were checked anew (refill.c). */
    if (rc->on_connect != NULL && !rc->on_connect(rc->ud)) {
        drop(rc);
        return LST_ERR_REDIS;
    }
    return LST_OK;
fail:
    LST_WARN("view_api.read_redis", "read connection to redis %s:%d failed: %s",
             rc->host != NULL ? rc->host : "127.0.0.1", rc->port,
             rc->c != NULL && rc->c->err != 0 ? rc->c->errstr : "setup");
    drop(rc);
    return LST_ERR_REDIS;
}

lst_err va_rconn_create(const struct lst_common_config *c, bool (*on_connect)(void *ud), void *ud,
                        struct va_rconn **out)
{
    struct va_rconn *rc = calloc(1, sizeof(*rc));
    if (rc == NULL || pthread_mutex_init(&rc->lock, NULL) != 0) {
        free(rc);
        return LST_ERR_NOMEM;
    }
    rc->host = c->redis_host != NULL ? lst_strdup(c->redis_host) : NULL;
    rc->password = c->redis_password != NULL ? lst_strdup(c->redis_password) : NULL;
    rc->port = (int)c->redis_port;
    rc->db = (int)c->redis_db;
    rc->timeout_ms = c->redis_timeout_ms > 0 ? (int)c->redis_timeout_ms : 2000;
    rc->on_connect = on_connect;
    rc->ud = ud;
    *out = rc;
    return LST_OK;
}

void va_rconn_destroy(struct va_rconn *rc)
{
    if (rc == NULL)
        return;
    drop(rc);
    arena_free(rc);
    free(rc->replies);
    free(rc->host);
    free(rc->password);
    pthread_mutex_destroy(&rc->lock);
    free(rc);
}

lst_err va_rconn_begin(struct va_rconn *rc)
{
    pthread_mutex_lock(&rc->lock);
    arena_reset(rc);
    rc->nreplies = 0;
    rc->queued = 0;
    if (rc->c == NULL && connect_now(rc) != LST_OK) {
        pthread_mutex_unlock(&rc->lock);
        return LST_ERR_REDIS;
    }
    return LST_OK;
}

void va_rconn_end(struct va_rconn *rc)
{
    /* a connection left with commands queued or unread replies cannot be reused */
    if (rc->queued > 0)
        drop(rc);
    pthread_mutex_unlock(&rc->lock);
}

lst_err va_rconn_add(struct va_rconn *rc, int argc, const char **argv)
{
    if (rc->c == NULL || redisAppendCommandArgv(rc->c, argc, argv, NULL) != REDIS_OK)
        return LST_ERR_REDIS;
    rc->queued++;
    return LST_OK;
}

lst_err va_rconn_exec(struct va_rconn *rc, size_t *first)
{
    *first = rc->nreplies;
    if (rc->nreplies + rc->queued > rc->capreplies) {
        size_t cap = (rc->nreplies + rc->queued) * 2;
        redisReply **r = realloc(rc->replies, cap * sizeof(*r));
        if (r == NULL)
            return LST_ERR_NOMEM;
        rc->replies = r;
        rc->capreplies = cap;
    }
    bool refused = false;
    for (; rc->queued > 0; rc->queued--) {
        void *r = NULL;
        if (rc->c == NULL || redisGetReply(rc->c, &r) != REDIS_OK || r == NULL) {
            /* hiredis 0.14 reports its read timeout as an I/O error with EAGAIN */
            bool timed_out = rc->c != NULL && rc->c->err == REDIS_ERR_IO &&
                             (errno == EAGAIN || errno == EWOULDBLOCK);
            drop(rc);
            rc->queued = 0;
            return timed_out ? LST_ERR_TIMEOUT : LST_ERR_REDIS;
        }
        rc->replies[rc->nreplies++] = r;
        refused = refused || ((redisReply *)r)->type == REDIS_REPLY_ERROR;
    }
    /* An error reply (-LOADING while Redis reads its AOF after a restart, -BUSY, ...) is
     * "cannot answer now", never "not there": taken as data, a detail page said 404 for a
     * message it had shown a second before (chaos suite, redis-restart). The connection
     * stays in sync and usable; the caller answers 503. */
    return refused ? LST_ERR_STATE : LST_OK;
}

const redisReply *va_rconn_reply(const struct va_rconn *rc, size_t i)
{
    return i < rc->nreplies ? rc->replies[i] : NULL;
}
