/* Redis connection handling and single commands on hiredis 0.14.1. See lst/redis.h for the
 * contract and docs/pitfalls.md for the hiredis quirks this file works around. */
#include "lst/redis.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>

#include "lst/log.h"
#include "redis_internal.h"

#define DEFAULT_ATTEMPTS   3
#define DEFAULT_BACKOFF_MS 50
#define MAX_BACKOFF_MS     1000

struct lst_redis {
    pthread_mutex_t lock;
    bool lock_ready;
    redisContext *ctx; /* NULL when not connected; never reused after an error */
    char *host;
    char *username;
    char *password;
    int port;
    int db;
    int timeout_ms;
    int attempts;
    int backoff_ms;
    unsigned long connects;
    bool timed_out; /* the last failure was a timeout: the server is up but not answering */
    char last_error[160];
    /* Replies still to read for a pipeline sent by redis_send: nobody else may use the
     * connection until redis_recv has read them, so other callers wait on idle. */
    size_t inflight;
    pthread_cond_t idle;
    bool idle_ready;
};

/* ---- formatted commands and the idempotency allow-list ---- */

/* Commands whose replay leaves the same state as running them once. Relative updates
 * (INCR*, HINCRBY*, ZINCRBY, LPUSH/RPUSH, APPEND, SETRANGE, SPOP, ...) are absent on purpose,
 * as are EVAL/EVALSHA/FCALL: scripts carry their own flag (lst_redis_script_create). */
/* clang-format off */
static const char *const idempotent_cmds[] = {
    "DBSIZE", "DEL", "ECHO", "EXISTS", "EXPIRE", "EXPIREAT", "GET", "HDEL", "HEXISTS", "HGET",
    "HGETALL", "HKEYS", "HLEN", "HMGET", "HMSET", "HSCAN", "HSET", "HSETNX", "HVALS", "INFO",
    "LINDEX", "LLEN", "LRANGE", "MGET", "MSET", "PERSIST", "PEXPIRE", "PEXPIREAT", "PING",
    "PSETEX", "PTTL", "SADD", "SCAN", "SCARD", "SCRIPT", "SET", "SETEX", "SETNX", "SISMEMBER",
    "SMEMBERS", "SMISMEMBER", "SREM", "SSCAN", "STRLEN", "TTL", "TYPE", "UNLINK", "ZADD", "ZCARD",
    "ZCOUNT", "ZMSCORE", "ZRANGE", "ZRANGEBYLEX", "ZRANGEBYSCORE", "ZRANK", "ZREM",
    "ZREMRANGEBYLEX", "ZREMRANGEBYSCORE", "ZREVRANGE", "ZREVRANGEBYLEX", "ZREVRANGEBYSCORE",
    "ZREVRANK", "ZSCAN", "ZSCORE",
};
/* clang-format on */

bool lst_redis_cmd_is_idempotent(const char *name)
{
    if (name == NULL)
        return false;
    for (size_t i = 0; i < LST_ARRAY_LEN(idempotent_cmds); i++) {
        if (strcasecmp(name, idempotent_cmds[i]) == 0)
            return true;
    }
    return false;
}

lst_err redis_format_argv(struct redis_fcmd *cmd, int argc, const char **argv,
                          const size_t *argvlen)
{
    cmd->buf = NULL;
    cmd->len = 0;
    if (argc < 1 || argv == NULL)
        return LST_ERR_INVALID;
    int n = redisFormatCommandArgv(&cmd->buf, argc, argv, argvlen);
    if (n < 0)
        return LST_ERR_NOMEM;
    cmd->len = (size_t)n;
    return LST_OK;
}

lst_err redis_format_va(struct redis_fcmd *cmd, const char *fmt, va_list ap)
{
    cmd->buf = NULL;
    cmd->len = 0;
    if (fmt == NULL)
        return LST_ERR_INVALID;
    int n = redisvFormatCommand(&cmd->buf, fmt, ap);
    /* -1: out of memory, -2: invalid format string. */
    if (n == -2)
        return LST_ERR_INVALID;
    if (n < 0)
        return LST_ERR_NOMEM;
    cmd->len = (size_t)n;
    return LST_OK;
}

void redis_fcmd_free(struct redis_fcmd *cmd)
{
    if (cmd->buf != NULL)
        redisFreeCommand(cmd->buf);
    cmd->buf = NULL;
    cmd->len = 0;
}

/* A cursor over the bulk strings of a RESP command "*<n>\r\n$<len>\r\n<bytes>\r\n...". */
struct resp_cursor {
    const char *p;
    const char *end;
};

static bool resp_number(struct resp_cursor *c, char lead, size_t *out)
{
    if (c->p >= c->end || *c->p != lead)
        return false;
    c->p++;
    size_t v = 0;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
        if (v > 100000000)
            return false;
        v = v * 10 + (size_t)(*c->p - '0');
        c->p++;
    }
    if (c->end - c->p < 2 || c->p[0] != '\r' || c->p[1] != '\n')
        return false;
    c->p += 2;
    *out = v;
    return true;
}

static bool resp_arg(struct resp_cursor *c, const char **arg, size_t *len)
{
    if (!resp_number(c, '$', len) || (size_t)(c->end - c->p) < *len + 2)
        return false;
    *arg = c->p;
    c->p += *len + 2;
    return true;
}

static bool arg_equals(const char *arg, size_t len, const char *word)
{
    return strlen(word) == len && strncasecmp(arg, word, len) == 0;
}

bool redis_fcmd_idempotent(const struct redis_fcmd *cmd)
{
    struct resp_cursor c = {cmd->buf, cmd->buf + cmd->len};
    size_t argc = 0, len = 0;
    const char *arg = NULL;
    char name[32];
    if (!resp_number(&c, '*', &argc) || argc < 1 || !resp_arg(&c, &arg, &len) ||
        len >= sizeof(name))
        return false;
    memcpy(name, arg, len);
    name[len] = '\0';
    if (!lst_redis_cmd_is_idempotent(name))
        return false;
    if (strcasecmp(name, "ZADD") != 0)
        return true;
    /* ZADD key INCR score member adds to the score: relative. Conservatively refuse any
     * argument spelled INCR. */
    for (size_t i = 1; i < argc; i++) {
        if (!resp_arg(&c, &arg, &len) || arg_equals(arg, len, "INCR"))
            return false;
    }
    return true;
}

/* ---- connection ---- */

static void note_error(struct lst_redis *r, const char *what)
{
    snprintf(r->last_error, sizeof(r->last_error), "%s", what);
}

/* hiredis 0.14 reports I/O errors only as text: errstr is strerror(errno) of the failed
 * call. A read/write hitting SO_RCVTIMEO/SO_SNDTIMEO fails with EAGAIN, a connect that ran
 * out of time with ETIMEDOUT. */
static bool is_timeout(const redisContext *c)
{
    return c->err == REDIS_ERR_IO && (strcmp(c->errstr, strerror(EAGAIN)) == 0 ||
                                      strcmp(c->errstr, strerror(EWOULDBLOCK)) == 0 ||
                                      strcmp(c->errstr, strerror(ETIMEDOUT)) == 0);
}

static void note_io_error(struct lst_redis *r, const redisContext *c)
{
    r->timed_out = is_timeout(c);
    if (r->timed_out)
        snprintf(r->last_error, sizeof(r->last_error), "timeout after %d ms (%s)", r->timeout_ms,
                 c->errstr);
    else
        note_error(r, c->err != 0 ? c->errstr : "no reply");
}

void redis_note_reply_error(struct lst_redis *r, const redisReply *reply)
{
    if (reply == NULL || reply->type != REDIS_REPLY_ERROR || reply->str == NULL)
        return;
    pthread_mutex_lock(&r->lock);
    note_error(r, reply->str);
    pthread_mutex_unlock(&r->lock);
}

bool redis_reply_is_error(const redisReply *reply, const char *code)
{
    size_t n = strlen(code);
    return reply != NULL && reply->type == REDIS_REPLY_ERROR && reply->str != NULL &&
           strncmp(reply->str, code, n) == 0 && (reply->str[n] == ' ' || reply->str[n] == '\0');
}

static void drop_connection(struct lst_redis *r)
{
    if (r->ctx != NULL) {
        redisFree(r->ctx);
        r->ctx = NULL;
    }
}

static struct timeval ms_to_tv(int ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    return tv;
}

/* Sends one setup command on a fresh context and expects +OK. LST_ERR_CONFIG when Redis
 * rejects it (wrong password, bad db: retrying will not help), LST_ERR_REDIS on I/O. */
static lst_err setup_cmd(struct lst_redis *r, redisContext *c, int argc, const char **argv)
{
    redisReply *reply = redisCommandArgv(c, argc, argv, NULL);
    lst_err err = LST_OK;
    if (reply == NULL) {
        note_io_error(r, c);
        err = LST_ERR_REDIS;
    } else if (reply->type == REDIS_REPLY_ERROR) {
        /* Never echo AUTH's arguments; the reply text itself holds no secret. */
        snprintf(r->last_error, sizeof(r->last_error), "%s rejected: %s", argv[0],
                 reply->str ? reply->str : "");
        err = LST_ERR_CONFIG;
    }
    if (reply != NULL)
        freeReplyObject(reply);
    return err;
}

/* A fresh connection without AUTH or SELECT is proven with a PING: a connect can complete in
 * the listen backlog of a server that is being killed and only fail at the first command,
 * which for a replayed command was its one replay (test_redis's restart, 1 run in 13). Any
 * answer counts, even an error such as -LOADING: the server is there. */
static lst_err setup_ping(struct lst_redis *r, redisContext *c)
{
    const char *ping[] = {"PING"};
    redisReply *reply = redisCommandArgv(c, 1, ping, NULL);
    if (reply == NULL) {
        note_io_error(r, c);
        return LST_ERR_REDIS;
    }
    freeReplyObject(reply);
    return LST_OK;
}

/* Everything a fresh context needs, on every connect: hiredis's connect timeout does not
 * cover reads and writes, and redisReconnect would not re-apply them either. */
static lst_err setup_context(struct lst_redis *r, redisContext *c)
{
    if (redisSetTimeout(c, ms_to_tv(r->timeout_ms)) != REDIS_OK ||
        redisEnableKeepAlive(c) != REDIS_OK) {
        note_io_error(r, c);
        return LST_ERR_REDIS;
    }
    lst_err err = LST_OK;
    if (r->password != NULL) {
        const char *auth_user[] = {"AUTH", r->username, r->password};
        const char *auth[] = {"AUTH", r->password};
        if (r->username != NULL)
            err = setup_cmd(r, c, 3, auth_user);
        else
            err = setup_cmd(r, c, 2, auth);
    }
    if (err == LST_OK && r->db > 0) {
        char db[16];
        snprintf(db, sizeof(db), "%d", r->db);
        const char *select[] = {"SELECT", db};
        err = setup_cmd(r, c, 2, select);
    }
    if (err == LST_OK && r->password == NULL && r->db <= 0)
        err = setup_ping(r, c);
    return err;
}

/* Reconnects also go through a fresh redisConnectWithTimeout instead of redisReconnect: the
 * old context is freed anyway after an error, and first connects and reconnects share one
 * setup path, so none of them can miss the timeout, keepalive, AUTH or SELECT. */
static lst_err connect_once(struct lst_redis *r)
{
    redisContext *c = redisConnectWithTimeout(r->host, r->port, ms_to_tv(r->timeout_ms));
    lst_err err = LST_OK;
    if (c == NULL) {
        note_error(r, "out of memory");
        err = LST_ERR_NOMEM;
        goto out;
    }
    if (c->err != 0) {
        note_io_error(r, c);
        err = LST_ERR_REDIS;
        goto out;
    }
    err = setup_context(r, c);
    if (err == LST_OK) {
        r->ctx = c;
        c = NULL;
        r->connects++;
    }
out:
    if (c != NULL)
        redisFree(c);
    return err;
}

/* Bounded attempts with a doubling backoff, for fast failures (refused, reset: Redis is
 * restarting). Gives up at once on LST_ERR_CONFIG and on a timeout: a server that accepts but
 * does not answer (paused, overloaded, blackholed) would cost a full timeout per attempt. */
static lst_err connect_locked(struct lst_redis *r)
{
    lst_err err = LST_ERR_REDIS;
    int backoff = r->backoff_ms;
    for (int attempt = 1; attempt <= r->attempts; attempt++) {
        if (attempt > 1) {
            lst_sleep_ms(backoff, NULL);
            backoff = backoff * 2 > MAX_BACKOFF_MS ? MAX_BACKOFF_MS : backoff * 2;
        }
        r->timed_out = false;
        err = connect_once(r);
        if (err == LST_OK) {
            LST_INFO("redis.connected", "connected to redis %s:%d db %d (connection %lu)", r->host,
                     r->port, r->db, r->connects);
            return LST_OK;
        }
        LST_WARN("redis.connect.failed", "redis %s:%d attempt %d/%d: %s", r->host, r->port, attempt,
                 r->attempts, r->last_error);
        if (err == LST_ERR_CONFIG || err == LST_ERR_NOMEM || r->timed_out)
            break;
    }
    return err;
}

/* A connection whose socket is readable while no reply is pending was closed by the server
 * (restart, CLIENT KILL, idle timeout) or is out of sync: drop it before sending, so that even
 * a non-idempotent command goes to a live connection. This narrows, but cannot close, the
 * window in which a command is lost in flight. */
static void drop_if_stale(struct lst_redis *r)
{
    struct pollfd pfd = {.fd = r->ctx->fd, .events = POLLIN};
    int n = poll(&pfd, 1, 0);
    if (n != 0) {
        LST_DEBUG("redis.connection.stale", "redis connection closed by peer, reconnecting");
        drop_connection(r);
    }
}

static lst_err ensure_connected(struct lst_redis *r)
{
    if (r->ctx != NULL)
        drop_if_stale(r);
    if (r->ctx != NULL)
        return LST_OK;
    return connect_locked(r);
}

/* After an I/O error: hiredis contexts are not reusable after one, so the context is dropped. */
static lst_err io_failed(struct lst_redis *r)
{
    note_io_error(r, r->ctx);
    drop_connection(r);
    return LST_ERR_REDIS;
}

/* Queues n commands in the context's output buffer (written by the next read or flush). */
static lst_err append_all(struct lst_redis *r, const struct redis_fcmd *cmds, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (redisAppendFormattedCommand(r->ctx, cmds[i].buf, cmds[i].len) != REDIS_OK)
            return io_failed(r);
    }
    return LST_OK;
}

/* Reads n replies; on failure none are kept and the context is dropped. */
static lst_err read_replies(struct lst_redis *r, redisReply **replies, size_t n)
{
    for (size_t got = 0; got < n; got++) {
        void *reply = NULL;
        if (redisGetReply(r->ctx, &reply) != REDIS_OK || reply == NULL) {
            for (size_t i = 0; i < got; i++) {
                freeReplyObject(replies[i]);
                replies[i] = NULL;
            }
            return io_failed(r);
        }
        replies[got] = reply;
    }
    return LST_OK;
}

/* One round trip of n commands. */
static lst_err exchange(struct lst_redis *r, const struct redis_fcmd *cmds, size_t n,
                        redisReply **replies)
{
    lst_err err = append_all(r, cmds, n);
    return err == LST_OK ? read_replies(r, replies, n) : err;
}

/* Under r->lock: until the replies of a pipeline in flight have been read. */
static void wait_idle(struct lst_redis *r)
{
    while (r->inflight > 0)
        pthread_cond_wait(&r->idle, &r->lock);
}

static void set_idle(struct lst_redis *r)
{
    r->inflight = 0;
    pthread_cond_broadcast(&r->idle);
}

/* Under r->lock, connected: writes n commands and returns without their replies. */
static lst_err send_locked(struct lst_redis *r, const struct redis_fcmd *cmds, size_t n)
{
    lst_err err = append_all(r, cmds, n);
    /* hiredis writes its output buffer only when a reply is read: write it all now, so
     * that the server works on it while the caller goes on. */
    int done = 0;
    while (err == LST_OK && !done) {
        if (redisBufferWrite(r->ctx, &done) != REDIS_OK)
            err = io_failed(r);
    }
    if (err == LST_OK)
        r->inflight = n;
    return err;
}

/* Under r->lock: whether the caller may use connection *conn (0: the current one, connecting
 * when needed, and *conn receives its number). A WATCH belongs to the connection that sent it:
 * never run on another one. */
static lst_err on_connection(struct lst_redis *r, unsigned long *conn)
{
    if (*conn == 0) {
        lst_err err = ensure_connected(r);
        *conn = r->connects;
        return err;
    }
    if (r->ctx != NULL)
        drop_if_stale(r);
    return r->ctx != NULL && r->connects == *conn ? LST_OK : LST_ERR_STATE;
}

lst_err redis_send(struct lst_redis *r, const struct redis_fcmd *cmds, size_t n)
{
    pthread_mutex_lock(&r->lock);
    wait_idle(r);
    lst_err err = ensure_connected(r);
    if (err == LST_OK)
        err = send_locked(r, cmds, n);
    pthread_mutex_unlock(&r->lock);
    return err;
}

lst_err redis_send_on(struct lst_redis *r, const struct redis_fcmd *cmds, size_t n,
                      unsigned long *conn)
{
    pthread_mutex_lock(&r->lock);
    wait_idle(r);
    lst_err err = on_connection(r, conn);
    if (err == LST_OK)
        err = send_locked(r, cmds, n);
    if (err == LST_ERR_REDIS)
        LST_WARN("redis.command.failed", "redis command failed: %s", r->last_error);
    pthread_mutex_unlock(&r->lock);
    return err;
}

lst_err redis_recv(struct lst_redis *r, redisReply **replies, size_t n)
{
    for (size_t i = 0; i < n; i++)
        replies[i] = NULL;
    pthread_mutex_lock(&r->lock);
    lst_err err = LST_ERR_STATE;
    if (r->inflight == n && r->ctx != NULL) {
        err = read_replies(r, replies, n);
        set_idle(r);
    }
    pthread_mutex_unlock(&r->lock);
    return err;
}

lst_err redis_run(struct lst_redis *r, const struct redis_fcmd *cmds, size_t n,
                  redisReply **replies, bool replayable)
{
    lst_err err = LST_OK;
    for (size_t i = 0; i < n; i++)
        replies[i] = NULL;
    pthread_mutex_lock(&r->lock);
    wait_idle(r);
    for (int round = 0; round < 2; round++) {
        err = ensure_connected(r);
        if (err != LST_OK)
            break;
        err = exchange(r, cmds, n, replies);
        /* No replay after a timeout either: the server is alive but stalled, a second try
         * would double the caller's wait for little chance of success. */
        if (err != LST_ERR_REDIS || !replayable || round == 1 || r->timed_out)
            break;
        LST_WARN("redis.command.retry",
                 "redis connection failed (%s); replaying %zu idempotent "
                 "command(s) after reconnect",
                 r->last_error, n);
    }
    if (err != LST_OK)
        LST_WARN("redis.command.failed", "redis command failed: %s", r->last_error);
    pthread_mutex_unlock(&r->lock);
    return err;
}

/* ---- lifecycle ---- */

static lst_err copy_opt(const char *s, char **out)
{
    *out = NULL;
    if (s == NULL || s[0] == '\0')
        return LST_OK;
    *out = lst_strdup(s);
    return *out == NULL ? LST_ERR_NOMEM : LST_OK;
}

lst_err lst_redis_create(const struct lst_redis_config *cfg, struct lst_redis **out)
{
    lst_err err = LST_OK;
    struct lst_redis *r = NULL;
    *out = NULL;
    if (cfg == NULL || cfg->port < 1 || cfg->port > 65535 || cfg->db < 0 || cfg->timeout_ms <= 0 ||
        cfg->reconnect_attempts < 0 || cfg->reconnect_backoff_ms < 0) {
        err = LST_ERR_CONFIG;
        goto out;
    }
    r = calloc(1, sizeof(*r));
    if (r == NULL) {
        err = LST_ERR_NOMEM;
        goto out;
    }
    if (pthread_mutex_init(&r->lock, NULL) != 0) {
        err = LST_ERR_NOMEM;
        goto out;
    }
    r->lock_ready = true;
    if (pthread_cond_init(&r->idle, NULL) != 0) {
        err = LST_ERR_NOMEM;
        goto out;
    }
    r->idle_ready = true;
    r->port = cfg->port;
    r->db = cfg->db;
    r->timeout_ms = cfg->timeout_ms;
    r->attempts = cfg->reconnect_attempts > 0 ? cfg->reconnect_attempts : DEFAULT_ATTEMPTS;
    r->backoff_ms = cfg->reconnect_backoff_ms > 0 ? cfg->reconnect_backoff_ms : DEFAULT_BACKOFF_MS;
    if (r->backoff_ms > MAX_BACKOFF_MS)
        r->backoff_ms = MAX_BACKOFF_MS;
    err = copy_opt(cfg->host != NULL ? cfg->host : "127.0.0.1", &r->host);
    if (err == LST_OK)
        err = copy_opt(cfg->username, &r->username);
    if (err == LST_OK)
        err = copy_opt(cfg->password, &r->password);
    if (err != LST_OK)
        goto out;
    *out = r;
    r = NULL;
out:
    lst_redis_destroy(r);
    return err;
}

void lst_redis_destroy(struct lst_redis *r)
{
    if (r == NULL)
        return;
    drop_connection(r);
    if (r->lock_ready)
        pthread_mutex_destroy(&r->lock);
    if (r->idle_ready)
        pthread_cond_destroy(&r->idle);
    free(r->host);
    free(r->username);
    free(r->password);
    free(r);
}

lst_err lst_redis_connect(struct lst_redis *r)
{
    pthread_mutex_lock(&r->lock);
    wait_idle(r);
    lst_err err = ensure_connected(r);
    pthread_mutex_unlock(&r->lock);
    return err;
}

void lst_redis_last_error(struct lst_redis *r, char *out, size_t cap)
{
    if (cap == 0)
        return;
    pthread_mutex_lock(&r->lock);
    snprintf(out, cap, "%s", r->last_error);
    pthread_mutex_unlock(&r->lock);
}

bool redis_timed_out(struct lst_redis *r)
{
    pthread_mutex_lock(&r->lock);
    bool t = r->timed_out;
    pthread_mutex_unlock(&r->lock);
    return t;
}

unsigned long lst_redis_connect_count(struct lst_redis *r)
{
    pthread_mutex_lock(&r->lock);
    unsigned long n = r->connects;
    pthread_mutex_unlock(&r->lock);
    return n;
}

/* ---- single commands ---- */

lst_err redis_hand_out(struct lst_redis *r, redisReply *rep, redisReply **reply, lst_err err)
{
    if (err == LST_OK && rep->type == REDIS_REPLY_ERROR) {
        redis_note_reply_error(r, rep);
        err = LST_ERR_INVALID;
    }
    if (reply != NULL)
        *reply = rep;
    else if (rep != NULL)
        freeReplyObject(rep);
    return err;
}

static lst_err run_one(struct lst_redis *r, const struct redis_fcmd *cmd, bool replayable,
                       redisReply **reply)
{
    redisReply *rep = NULL;
    lst_err err = redis_run(r, cmd, 1, &rep, replayable);
    return redis_hand_out(r, rep, reply, err);
}

lst_err lst_redis_cmd(struct lst_redis *r, redisReply **reply, int argc, const char **argv,
                      const size_t *argvlen)
{
    struct redis_fcmd cmd;
    if (reply != NULL)
        *reply = NULL;
    lst_err err = redis_format_argv(&cmd, argc, argv, argvlen);
    if (err == LST_OK)
        err = run_one(r, &cmd, redis_fcmd_idempotent(&cmd), reply);
    redis_fcmd_free(&cmd);
    return err;
}

lst_err lst_redis_cmdf(struct lst_redis *r, redisReply **reply, const char *fmt, ...)
{
    struct redis_fcmd cmd;
    va_list ap;
    if (reply != NULL)
        *reply = NULL;
    va_start(ap, fmt);
    lst_err err = redis_format_va(&cmd, fmt, ap);
    va_end(ap);
    if (err == LST_OK)
        err = run_one(r, &cmd, redis_fcmd_idempotent(&cmd), reply);
    redis_fcmd_free(&cmd);
    return err;
}

lst_err lst_redis_ping(struct lst_redis *r)
{
    redisReply *reply = NULL;
    lst_err err = lst_redis_cmdf(r, &reply, "PING");
    if (err == LST_OK &&
        (reply->type != REDIS_REPLY_STATUS || reply->str == NULL || strcmp(reply->str, "PONG")))
        err = LST_ERR_REDIS;
    if (reply != NULL)
        freeReplyObject(reply);
    return err;
}
