/* GET /api/stream: live updates as Server-Sent Events.
 *
 * Tails the ledger's change stream <P>ev (docs/ledger.md: t=message, t=status,
 * t=annotation, t=erased) and sends the entries whose item matches the request's filter
 * (the timeline's parameters or a saved view, checked by the timeline's own
 * rules, feed.c) as events whose SSE id is the Redis stream ID, so a browser
 * reconnecting with Last-Event-ID (or ?last_event_id=) resumes exactly after
 * the last event it got. When that ID is no longer in the stream (trimmed by
 * MAXLEN, or the projections were rebuilt) the stream says "event: reset"
 * (reload the views) and goes on live.
 *
 * Each stream runs on its connection's own thread (lst_http_stream) with its
 * own Redis connection: XREAD BLOCK for at most LST_VIEW_STREAM_BLOCK_MS, so a
 * shutdown waits at most that long. Reading is one script per batch that checks
 * for a gap and reads the entries after the position in one atomic step. At
 * most LST_VIEW_MAX_STREAMS streams at once (503 beyond). Read tracking
 * visibility (readvis.c) applies to every event. While the ledger refills the
 * projections (refill.c) no event goes out; afterwards the stream skips to the
 * newest entry and sends "event: reset". */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lst/log.h"
#include "view_api.h"

#define READ_COUNT    "100"
#define ID_MAX        48
#define PAUSE_POLL_MS 200 /* how often a paused stream asks whether the refill is over */

/* KEYS[1] the stream, ARGV[1] the position ("0-0": from the start, no gap
 * check), ARGV[2] how many. {"reset", <last id>, <cause>} when entries after the
 * position may be gone: "trimmed" (the position is older than the first entry),
 * "future" (newer than the last: this stream never had it), "empty" (no stream);
 * else {"ok", "", <entries after the position>}. Read-only. */
static const char READ_LUA[] =
    "local key, after, n = KEYS[1], ARGV[1], tonumber(ARGV[2])\n"
    "local function parse(id)\n"
    "  local a, b = string.match(id, '^(%d+)-(%d+)$')\n"
    "  return tonumber(a), tonumber(b)\n"
    "end\n"
    "local function less(x, y)\n"
    "  local xa, xb = parse(x)\n"
    "  local ya, yb = parse(y)\n"
    "  return xa < ya or (xa == ya and xb < yb)\n"
    "end\n"
    "local first = redis.call('XRANGE', key, '-', '+', 'COUNT', 1)[1]\n"
    "local last = redis.call('XREVRANGE', key, '+', '-', 'COUNT', 1)[1]\n"
    "if after ~= '0-0' and first == nil then\n"
    "  return {'reset', '0-0', 'empty'}\n"
    "end\n"
    "if after ~= '0-0' and less(after, first[1]) then\n"
    "  return {'reset', last[1], 'trimmed'}\n"
    "end\n"
    "if after ~= '0-0' and less(last[1], after) then\n"
    "  return {'reset', last[1], 'future'}\n"
    "end\n"
    "return {'ok', '', redis.call('XRANGE', key, '(' .. after, '+', 'COUNT', "
    "n)}\n";

struct stream {
    struct view_api *ctx;
    struct lst_redis *redis; /* own connection: XREAD BLOCK must not hold the shared one */
    struct lst_redis_script *script;
    struct va_filter f;
    struct lst_buf key;
    char pos[ID_MAX]; /* the last entry handled (sent or filtered out) */
    int64_t last_write_ms;
    unsigned long conns; /* connections of redis at the last round */
    bool paused;         /* the projections were being refilled (refill.c) */
};

static void stream_free(void *ud)
{
    struct stream *st = ud;
    if (st == NULL)
        return;
    atomic_fetch_sub(&st->ctx->streams, 1);
    lst_redis_script_destroy(st->script);
    lst_redis_destroy(st->redis);
    va_filter_cleanup(&st->f);
    lst_buf_cleanup(&st->key);
    free(st);
}

/* ---- events ---- */

static const char *field(const redisReply *fields, const char *name)
{
    for (size_t i = 0;
         fields != NULL && fields->type == REDIS_REPLY_ARRAY && i + 1 < fields->elements; i += 2) {
        if (fields->element[i]->type == REDIS_REPLY_STRING &&
            strcmp(fields->element[i]->str, name) == 0 &&
            fields->element[i + 1]->type == REDIS_REPLY_STRING)
            return fields->element[i + 1]->str;
    }
    return NULL;
}

static bool entry_ok(const redisReply *e)
{
    return e != NULL && e->type == REDIS_REPLY_ARRAY && e->elements == 2 &&
           e->element[0]->type == REDIS_REPLY_STRING && e->element[0]->len < ID_MAX &&
           e->element[1]->type == REDIS_REPLY_ARRAY;
}

/* What an event shows besides the entry: the item's hash, read visibility and the current
 * name of the employee the item is about (NULL: none). */
struct shown {
    const redisReply *hash;
    const struct va_readvis_cfg *rv;
    const char *name;
};

/* One event: "id: ..\nevent: ..\ndata: {..}\n\n". The item JSON never holds a
 * newline (every string is escaped), so one data line carries it. */
static void event(struct lst_buf *out, const char *sid, const char *type, const char *item_id,
                  const char *eid, const char *state, const struct shown *sh)
{
    lst_buf_printf(out, "id: %s\nevent: %s\ndata: {\"type\":\"%s\"", sid, type, type);
    va_json_kv(out, true, "id", item_id);
    va_json_kv(out, true, "employee_id", eid);
    va_json_kv(out, true, "state", state);
    lst_buf_puts(out, ",\"item\":");
    va_item_json_vis(out, sh->hash, sh->rv);
    if (sh->name != NULL && !lst_buf_failed(out)) {
        out->len--; /* reopen the item object */
        va_json_kv(out, true, "employee_name", sh->name);
        lst_buf_puts(out, "}");
    }
    lst_buf_puts(out, "}\n\n");
}

/* The event of one matching entry under the item's read visibility. A status
 * change to read, acknowledged or declined is read information: under counts
 * only the new aggregates go out (event "counts", no employee), under off
 * nothing does. */
static void entry_event(struct lst_buf *out, const char *sid, const redisReply *fields,
                        const struct shown *sh)
{
    const char *t = field(fields, "t"), *id = field(fields, "id");
    if (t == NULL || id == NULL)
        return;
    if (strcmp(t, "status") != 0) {
        event(out, sid, strcmp(t, "message") == 0 ? "message" : "annotation", id, NULL, NULL, sh);
        return;
    }
    const char *state = field(fields, "st");
    enum va_readvis vis = va_readvis_of(sh->rv, va_feed_hget(sh->hash, "cat"));
    const char *shown = va_readvis_state(vis, state);
    if (shown == state)
        event(out, sid, "status", id, field(fields, "eid"), state, sh);
    else if (vis == VA_READ_COUNTS)
        event(out, sid, "counts", id, NULL, NULL, sh);
}

/* The employee a status entry names, NULL for any other entry. */
static const char *status_eid(const redisReply *e)
{
    const char *t = entry_ok(e) ? field(e->element[1], "t") : NULL;
    return t != NULL && strcmp(t, "status") == 0 ? field(e->element[1], "eid") : NULL;
}

/* GDPR: drops (match false) the status entries of employees erased by now. The
 * ledger removes an erased employee's entries from the stream, but a batch read
 * just before the erasure would still carry them; this check runs after the items
 * were read, so nothing of hers goes out after the erasure became visible. One
 * SMISMEMBER per batch that has status entries. */
static lst_err drop_erased(struct stream *st, const redisReply *entries, bool *match)
{
    size_t n = entries->elements, k = 0;
    const char **ids = calloc(n ? n : 1, sizeof(*ids));
    size_t *at = calloc(n ? n : 1, sizeof(*at));
    bool *gone = calloc(n ? n : 1, sizeof(*gone));
    lst_err err = ids != NULL && at != NULL && gone != NULL ? LST_OK : LST_ERR_NOMEM;
    for (size_t i = 0; err == LST_OK && i < n; i++) {
        const char *eid = match[i] ? status_eid(entries->element[i]) : NULL;
        if (eid != NULL) {
            at[k] = i;
            ids[k++] = eid;
        }
    }
    if (err == LST_OK)
        err = va_directory_erased(st->ctx, ids, k, gone);
    for (size_t j = 0; err == LST_OK && j < k; j++) {
        if (gone[j])
            match[at[j]] = false;
    }
    free(ids);
    free(at);
    free(gone);
    return err;
}

/* t=erased eid=<id>: the ledger erased an employee (GDPR). Goes to every stream,
 * whatever its filter: the client drops what it shows of that employee. */
static bool erased_event(struct lst_buf *out, const redisReply *e)
{
    const char *t = field(e->element[1], "t"), *eid = field(e->element[1], "eid");
    if (t == NULL || strcmp(t, "erased") != 0 || eid == NULL)
        return false;
    lst_buf_printf(out, "id: %s\nevent: erased\ndata: {\"type\":\"erased\"", e->element[0]->str);
    va_json_kv(out, true, "employee_id", eid);
    lst_buf_puts(out, "}\n\n");
    return true;
}

/* The current names of the employees the matching items are about (their eid), in one
 * round for the batch (names.c): who[i] is the index in names, SIZE_MAX for none. Read after
 * drop_erased and after the items, so a name erased meanwhile is not shown. */
static lst_err batch_names(struct stream *st, const redisReply *entries, const bool *match,
                           struct lst_redis_pipe *hashes, struct va_names *names, size_t *who)
{
    for (size_t i = 0; i < entries->elements; i++) {
        const char *eid = match[i] ? va_feed_hget(lst_redis_pipe_reply(hashes, i), "eid") : NULL;
        who[i] = eid != NULL ? va_names_add(names, eid) : SIZE_MAX;
    }
    return va_names_load(st->ctx, names);
}

/* Sends the matching entries of one batch and advances the position over all of
 * them. false when the projections could not be read (the position stays:
 * retried). */
static bool emit(struct stream *st, struct lst_buf *out, const redisReply *entries)
{
    size_t n = entries->elements;
    const char **ids = calloc(n ? n : 1, sizeof(*ids));
    bool *match = calloc(n ? n : 1, sizeof(*match));
    size_t *who = calloc(n ? n : 1, sizeof(*who));
    struct lst_redis_pipe *hashes = NULL;
    struct va_names names;
    bool ok = ids != NULL && match != NULL && who != NULL;
    va_names_init(&names);
    for (size_t i = 0; ok && i < n; i++) {
        const redisReply *e = entries->element[i];
        const char *id = entry_ok(e) ? field(e->element[1], "id") : NULL;
        ids[i] = id != NULL ? id : "-";
    }
    ok = ok && va_feed_match(st->ctx, &st->f, ids, n, match, &hashes) == LST_OK;
    ok = ok && drop_erased(st, entries, match) == LST_OK;
    ok = ok && batch_names(st, entries, match, hashes, &names, who) == LST_OK;
    for (size_t i = 0; ok && i < n; i++) {
        const redisReply *e = entries->element[i];
        if (!entry_ok(e))
            continue;
        struct shown sh = {lst_redis_pipe_reply(hashes, i), &st->ctx->readvis,
                           who[i] != SIZE_MAX ? va_names_get(&names, who[i]) : NULL};
        if (!erased_event(out, e) && match[i] && strcmp(ids[i], "-") != 0)
            entry_event(out, e->element[0]->str, e->element[1], &sh);
        snprintf(st->pos, sizeof(st->pos), "%s", e->element[0]->str);
    }
    lst_redis_pipe_destroy(hashes);
    va_names_cleanup(&names);
    free(ids);
    free(match);
    free(who);
    return ok;
}

/* ---- reading ---- */

/* Waits (bounded) until something is appended after the position. Its entries
 * are read by the next script call, which also checks for a gap. */
static void wait_for_news(struct stream *st)
{
    char block[24];
    snprintf(block, sizeof(block), "%lld", (long long)st->ctx->cfg.stream_block_ms);
    const char *argv[] = {"XREAD", "COUNT", "1", "BLOCK", block, "STREAMS", st->key.data, st->pos};
    if (lst_redis_cmd(st->redis, NULL, (int)LST_ARRAY_LEN(argv), argv, NULL) == LST_ERR_REDIS)
        lst_sleep_ms(st->ctx->cfg.stream_block_ms, NULL); /* Redis down: retry later, bounded */
}

/* The read script's cause of a reset: "trimmed", "future" or "empty" (a client may switch on
 * it; the reason says the same in words). */
static const char *reset_cause(const redisReply *r)
{
    const char *cause =
        r->elements >= 3 && r->element[2]->type == REDIS_REPLY_STRING ? r->element[2]->str : "";
    return strcmp(cause, "future") == 0 || strcmp(cause, "empty") == 0 ? cause : "trimmed";
}

/* The reset event's reason by its cause: what happened, so that whoever reads a client's log
 * can tell a trimmed stream from an ID this server never issued. */
static const char *reset_reason(const char *cause)
{
    if (strcmp(cause, "future") == 0)
        return "the last event ID is newer than anything this server's change stream holds: it "
               "came from another server, or Redis was reset since: reload";
    if (strcmp(cause, "empty") == 0)
        return "this server's change stream holds no events (Redis was reset or the "
               "projections rebuilt): reload";
    return "the changes since the last event are no longer available (trimmed from the change "
           "stream): reload";
}

/* One round: read after the position; send what matches, or a reset; or wait.
 */
static void round_trip(struct stream *st, struct lst_buf *out)
{
    redisReply *r = NULL;
    const char *argv[] = {st->key.data, st->pos, READ_COUNT};
    lst_err err = lst_redis_script_call(st->redis, st->script, &r, 1, 3, argv, NULL);
    if (err != LST_OK || r->type != REDIS_REPLY_ARRAY || r->elements < 2 ||
        r->element[0]->type != REDIS_REPLY_STRING) {
        if (err == LST_OK)
            LST_WARN("view_api.stream.read", "unexpected reply of the stream read");
        lst_sleep_ms(st->ctx->cfg.stream_block_ms, NULL);
    } else if (strcmp(r->element[0]->str, "reset") == 0) {
        const redisReply *last = r->element[1];
        snprintf(st->pos, sizeof(st->pos), "%s",
                 last->type == REDIS_REPLY_STRING && last->len < ID_MAX ? last->str : "0-0");
        const char *cause = reset_cause(r);
        lst_buf_printf(out,
                       "id: %s\nevent: reset\ndata: {\"type\":\"reset\",\"cause\":\"%s\","
                       "\"reason\":\"%s\"}\n\n",
                       st->pos, cause, reset_reason(cause));
    } else if (r->elements < 3 || r->element[2]->type != REDIS_REPLY_ARRAY ||
               r->element[2]->elements == 0) {
        wait_for_news(st);
    } else if (!emit(st, out, r->element[2])) {
        lst_sleep_ms(st->ctx->cfg.stream_block_ms, NULL);
    }
    if (r != NULL)
        freeReplyObject(r);
}

/* After a refill the change stream holds the refill's re-emitted changes, some older than
 * what the client saw: skip to the newest entry and tell the client to reload (event reset).
 * false when the stream could not be read (still paused). */
static bool resume(struct stream *st, struct lst_buf *out)
{
    redisReply *rep = NULL;
    const char *argv[] = {"XREVRANGE", st->key.data, "+", "-", "COUNT", "1"};
    if (lst_redis_cmd(st->redis, &rep, 6, argv, NULL) != LST_OK || rep->type != REDIS_REPLY_ARRAY) {
        if (rep != NULL)
            freeReplyObject(rep);
        return false;
    }
    snprintf(st->pos, sizeof(st->pos), "%s",
             rep->elements > 0 && entry_ok(rep->element[0]) ? rep->element[0]->element[0]->str
                                                            : "0-0");
    freeReplyObject(rep);
    lst_buf_printf(out,
                   "id: %s\nevent: reset\ndata: {\"type\":\"reset\",\"reason\":\"the "
                   "projections were refilled after Redis lost progress: reload\"}\n\n",
                   st->pos);
    return true;
}

/* Events only while the projections may be served: during a refill the change stream
 * re-emits older states (a recipient read before shows up as delivered again). A connection
 * that reconnected (maybe to a restarted Redis) asks for a fresh verdict. true when the round
 * may read the stream. */
static bool may_read(struct stream *st, struct lst_buf *out)
{
    unsigned long conns = lst_redis_connect_count(st->redis);
    bool fresh = conns != st->conns;
    st->conns = conns;
    if (va_refill_state(st->ctx, fresh) != VA_PROJ_OK) {
        st->paused = true;
        lst_sleep_ms(PAUSE_POLL_MS, NULL);
        return false;
    }
    if (st->paused && !resume(st, out)) {
        lst_sleep_ms(PAUSE_POLL_MS, NULL);
        return false;
    }
    st->paused = false;
    return true;
}

/* lst_http_stream_fn: bounded by one script call plus one XREAD BLOCK. */
static bool stream_next(void *ud, struct lst_buf *out)
{
    struct stream *st = ud;
    int64_t now;
    if (may_read(st, out) && out->len == 0)
        round_trip(st, out);
    now = lst_mono_ms();
    if (out->len == 0 && now - st->last_write_ms >= st->ctx->cfg.stream_heartbeat_ms)
        lst_buf_puts(out, ": heartbeat\n\n");
    if (out->len > 0)
        st->last_write_ms = now;
    return true;
}

/* ---- the request ---- */

/* The stream's query: the timeline's filter or a saved view, and where to resume. */
static const char *const stream_params[] = {"view", "last_event_id", NULL};
const struct va_query_spec va_stream_query = {"GET", "/api/stream", stream_params, true};

/* The filter: a saved view (view=) or the timeline's parameters, then read
 * visibility. 0 or the HTTP status with the problem set. */
static int parse_filter(struct va_req *r, struct va_filter *f)
{
    struct lst_buf why;
    int status = 0;
    const char *view = lst_http_query(r->http, "view");
    lst_buf_init(&why);
    if (view != NULL)
        status = va_view_filter(r, view, f, &why);
    else if (!va_filter_parse(r->http, f, &why))
        status = 400;
    if (status == 0 && !va_readvis_filter(&r->ctx->readvis, f, &why)) {
        lst_http_problem(r->resp, 400, "read-status-hidden", "Read Status Not Visible", "%s",
                         why.data ? why.data : "read information is off");
        status = 400;
    } else if (status == 404) {
        lst_http_problem(r->resp, 404, "view-not-found", "View Not Found", "no such view");
    } else if (status == 400) {
        lst_http_problem(r->resp, 400, "invalid-query", "Invalid Query Parameter", "%s",
                         why.data ? why.data : "invalid");
    } else if (status != 0) {
        lst_http_problem(r->resp, 503, "store-unavailable", "Store Unavailable",
                         "the projections could not be read");
    }
    lst_buf_cleanup(&why);
    return status;
}

/* "<ms>-<seq>", both decimal. */
static bool stream_id_ok(const char *s)
{
    size_t a = strspn(s, "0123456789");
    if (a == 0 || a > 20 || s[a] != '-')
        return false;
    size_t b = strspn(s + a + 1, "0123456789");
    return b > 0 && b <= 20 && s[a + 1 + b] == '\0';
}

/* The position to start from: the client's last event ID, else the newest entry
 * now (so nothing appended after this request is missed), "0-0" for an empty
 * stream. */
static int start_position(struct va_req *r, struct stream *st)
{
    const char *resume = lst_http_header(r->http, "Last-Event-ID");
    if (resume == NULL)
        resume = lst_http_query(r->http, "last_event_id");
    if (resume != NULL) {
        if (!stream_id_ok(resume)) {
            lst_http_problem(r->resp, 400, "invalid-query", "Invalid Query Parameter",
                             "Last-Event-ID / last_event_id: a stream ID <ms>-<seq>");
            return 400;
        }
        snprintf(st->pos, sizeof(st->pos), "%s", resume);
        return 0;
    }
    redisReply *rep = NULL;
    const char *argv[] = {"XREVRANGE", st->key.data, "+", "-", "COUNT", "1"};
    if (lst_redis_cmd(st->redis, &rep, 6, argv, NULL) != LST_OK || rep->type != REDIS_REPLY_ARRAY) {
        if (rep != NULL)
            freeReplyObject(rep);
        lst_http_problem(r->resp, 503, "store-unavailable", "Store Unavailable",
                         "the change stream could not be read");
        return 503;
    }
    snprintf(st->pos, sizeof(st->pos), "%s",
             rep->elements > 0 && entry_ok(rep->element[0]) ? rep->element[0]->element[0]->str
                                                            : "0-0");
    freeReplyObject(rep);
    st->conns = lst_redis_connect_count(st->redis);
    return 0;
}

static lst_err stream_create(struct view_api *ctx, struct stream **out)
{
    const struct lst_common_config *c = &ctx->cfg.common;
    struct stream *st = calloc(1, sizeof(*st));
    lst_err err = st != NULL ? LST_OK : LST_ERR_NOMEM;
    *out = st;
    if (st == NULL)
        return err;
    st->ctx = ctx; /* from here the stream owns the caller's slot (released by
                      stream_free) */
    lst_buf_init(&st->key);
    st->last_write_ms = lst_mono_ms();
    /* the read timeout must outlast the longest XREAD BLOCK */
    struct lst_redis_config rc = {
        .host = c->redis_host,
        .port = (int)c->redis_port,
        .db = (int)c->redis_db,
        .password = c->redis_password,
        .timeout_ms = (int)(c->redis_timeout_ms + ctx->cfg.stream_block_ms),
    };
    err = va_lkey(ctx, &st->key, "ev");
    if (err == LST_OK)
        err = lst_redis_create(&rc, &st->redis);
    if (err == LST_OK)
        err = lst_redis_script_create(READ_LUA, true, &st->script);
    return err;
}

static void too_many(struct va_req *r)
{
    lst_http_problem(r->resp, 503, "too-many-streams", "Too Many Streams",
                     "at most %lld live streams are open at once; retry later",
                     (long long)r->ctx->cfg.max_streams);
    lst_http_add_header(r->resp, "Retry-After", "10");
}

void va_handle_stream(void *ud, const struct lst_http_request *req, struct lst_http_response *resp)
{
    struct va_req r;
    struct stream *st = NULL;
    if (!va_begin(ud, req, resp, VA_ROLE_DISPATCHER, &r)) /* also the query (va_stream_query) */
        return;
    /* taken before the check, so two requests racing for the last slot cannot
     * both win */
    if (atomic_fetch_add(&r.ctx->streams, 1) >= r.ctx->cfg.max_streams) {
        atomic_fetch_sub(&r.ctx->streams, 1);
        too_many(&r);
        return;
    }
    if (stream_create(r.ctx, &st) != LST_OK) {
        if (st == NULL)
            atomic_fetch_sub(&r.ctx->streams, 1); /* else stream_free gives the slot back */
        lst_http_problem(resp, 503, "store-unavailable", "Store Unavailable",
                         "the live stream could not be set up");
        goto fail;
    }
    if (parse_filter(&r, &st->f) != 0 || start_position(&r, st) != 0)
        goto fail;
    /* GDPR: a stream narrowed to one person shows their traffic like a history */
    bool resumed = lst_http_header(req, "Last-Event-ID") != NULL ||
                   lst_http_query(req, "last_event_id") != NULL;
    va_audit_filter(&r, &st->f, resumed ? "stream: resumed" : "stream: live");
    resp->status = 200;
    resp->content_type = "text/event-stream";
    lst_http_add_header(resp, "Cache-Control", "no-cache");
    lst_http_add_header(resp, "X-Accel-Buffering", "no"); /* nginx: do not buffer the stream */
    /* the browser's reconnect delay; the comment makes the headers go out at once
     */
    lst_buf_puts(&resp->body, "retry: 2000\n: connected\n\n");
    resp->stream.next = stream_next;
    resp->stream.free_ud = stream_free;
    resp->stream.ud = st;
    LST_DEBUG("view_api.stream.open", "live stream for %s from %s", r.who->user, st->pos);
    return;
fail:
    stream_free(st);
}
