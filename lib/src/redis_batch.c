/* Redis pipelines of idempotent commands and Lua scripts with EVALSHA/NOSCRIPT fallback. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lst/log.h"
#include "lst/redis.h"
#include "redis_internal.h"

/* ---- SHA1 (FIPS 180-4), only to name scripts the way Redis does ---- */

struct sha1 {
    uint32_t h[5];
    uint8_t block[64];
    size_t fill;
    uint64_t total;
};

static uint32_t rol(uint32_t x, int n)
{
    return (x << n) | (x >> (32 - n));
}

static void sha1_block(struct sha1 *s)
{
    uint32_t w[80];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)s->block[4 * i] << 24 | (uint32_t)s->block[4 * i + 1] << 16 |
               (uint32_t)s->block[4 * i + 2] << 8 | (uint32_t)s->block[4 * i + 3];
    for (int i = 16; i < 80; i++)
        w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    uint32_t a = s->h[0], b = s->h[1], c = s->h[2], d = s->h[3], e = s->h[4];
    for (int i = 0; i < 80; i++) {
        uint32_t f, k;
        if (i < 20) {
            f = (b & c) | (~b & d);
            k = 0x5A827999u;
        } else if (i < 40) {
            f = b ^ c ^ d;
            k = 0x6ED9EBA1u;
        } else if (i < 60) {
            f = (b & c) | (b & d) | (c & d);
            k = 0x8F1BBCDCu;
        } else {
            f = b ^ c ^ d;
            k = 0xCA62C1D6u;
        }
        uint32_t t = rol(a, 5) + f + e + k + w[i];
        e = d;
        d = c;
        c = rol(b, 30);
        b = a;
        a = t;
    }
    s->h[0] += a;
    s->h[1] += b;
    s->h[2] += c;
    s->h[3] += d;
    s->h[4] += e;
}

static void sha1_update(struct sha1 *s, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        s->block[s->fill++] = p[i];
        if (s->fill == 64) {
            sha1_block(s);
            s->fill = 0;
        }
    }
    s->total += n;
}

/* Writes 40 lowercase hex digits and a NUL into hex. */
static void sha1_hex(const char *data, size_t len, char hex[41])
{
    struct sha1 s = {.h = {0x67452301u, 0xEFCDAB89u, 0x98BADCFEu, 0x10325476u, 0xC3D2E1F0u}};
    sha1_update(&s, (const uint8_t *)data, len);
    uint64_t bits = s.total * 8;
    uint8_t pad = 0x80;
    sha1_update(&s, &pad, 1);
    pad = 0;
    while (s.fill != 56)
        sha1_update(&s, &pad, 1);
    uint8_t lenbe[8];
    for (int i = 0; i < 8; i++)
        lenbe[i] = (uint8_t)(bits >> (56 - 8 * i));
    sha1_update(&s, lenbe, 8);
    for (int i = 0; i < 5; i++)
        snprintf(hex + 8 * i, 9, "%08x", (unsigned)s.h[i]);
}

/* ---- scripts ---- */

struct lst_redis_script {
    char *lua;
    size_t lua_len;
    bool idempotent;
    char sha[41];
};

lst_err lst_redis_script_create(const char *lua, bool idempotent, struct lst_redis_script **out)
{
    *out = NULL;
    if (lua == NULL)
        return LST_ERR_INVALID;
    struct lst_redis_script *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return LST_ERR_NOMEM;
    s->lua = lst_strdup(lua);
    if (s->lua == NULL) {
        free(s);
        return LST_ERR_NOMEM;
    }
    s->lua_len = strlen(lua);
    s->idempotent = idempotent;
    sha1_hex(s->lua, s->lua_len, s->sha);
    *out = s;
    return LST_OK;
}

void lst_redis_script_destroy(struct lst_redis_script *s)
{
    if (s == NULL)
        return;
    free(s->lua);
    free(s);
}

const char *lst_redis_script_sha(const struct lst_redis_script *s)
{
    return s->sha;
}

/* Formats "<verb> <body> <nkeys> argv..." where body is the SHA (EVALSHA) or the source
 * (EVAL). */
static lst_err format_script(struct redis_fcmd *cmd, const struct lst_redis_script *s, bool eval,
                             int nkeys, int argc, const char **argv, const size_t *argvlen)
{
    lst_err err = LST_OK;
    const char **v = NULL;
    size_t *vl = NULL;
    char nk[16];
    cmd->buf = NULL;
    cmd->len = 0;
    if (nkeys < 0 || argc < nkeys || (argc > 0 && argv == NULL) || argc > INT32_MAX - 3)
        return LST_ERR_INVALID;
    v = calloc((size_t)argc + 3, sizeof(*v));
    vl = calloc((size_t)argc + 3, sizeof(*vl));
    if (v == NULL || vl == NULL) {
        err = LST_ERR_NOMEM;
        goto out;
    }
    snprintf(nk, sizeof(nk), "%d", nkeys);
    v[0] = eval ? "EVAL" : "EVALSHA";
    vl[0] = strlen(v[0]);
    v[1] = eval ? s->lua : s->sha;
    vl[1] = eval ? s->lua_len : 40;
    v[2] = nk;
    vl[2] = strlen(nk);
    for (int i = 0; i < argc; i++) {
        v[i + 3] = argv[i];
        vl[i + 3] = argvlen != NULL ? argvlen[i] : strlen(argv[i]);
    }
    err = redis_format_argv(cmd, argc + 3, v, vl);
out:
    free(v);
    free(vl);
    return err;
}

lst_err lst_redis_script_call(struct lst_redis *r, struct lst_redis_script *s, redisReply **reply,
                              int nkeys, int argc, const char **argv, const size_t *argvlen)
{
    struct redis_fcmd cmd = {NULL, 0};
    redisReply *rep = NULL;
    if (reply != NULL)
        *reply = NULL;
    lst_err err = format_script(&cmd, s, false, nkeys, argc, argv, argvlen);
    if (err == LST_OK)
        err = redis_run(r, &cmd, 1, &rep, s->idempotent);
    if (err == LST_OK && redis_reply_is_error(rep, "NOSCRIPT")) {
        /* The script did not run (Redis restarted or flushed its cache). EVAL runs it and
         * caches it again, so later EVALSHAs hit. */
        LST_INFO("redis.script.reload", "script %.12s not cached by redis, sending source", s->sha);
        freeReplyObject(rep);
        rep = NULL;
        redis_fcmd_free(&cmd);
        err = format_script(&cmd, s, true, nkeys, argc, argv, argvlen);
        if (err == LST_OK)
            err = redis_run(r, &cmd, 1, &rep, s->idempotent);
    }
    redis_fcmd_free(&cmd);
    return redis_hand_out(r, rep, reply, err);
}

/* ---- pipelines ---- */

struct pipe_entry {
    struct redis_fcmd cmd;
    struct lst_redis_script *script; /* borrowed; NULL for plain commands */
};

struct lst_redis_pipe {
    struct pipe_entry *entries;
    size_t n;
    size_t cap;
    redisReply **replies; /* n replies after a complete exec, else NULL */
    redisReply **pending; /* after lst_redis_pipe_send wrote the commands: their replies' room */
    bool send_timed_out;  /* lst_redis_pipe_send could not write them: the server stalled */
    bool once;            /* any command, never replayed (lst_redis_pipe_create_once) */
};

lst_err lst_redis_pipe_create(struct lst_redis_pipe **out)
{
    *out = calloc(1, sizeof(**out));
    return *out == NULL ? LST_ERR_NOMEM : LST_OK;
}

lst_err lst_redis_pipe_create_once(struct lst_redis_pipe **out)
{
    lst_err err = lst_redis_pipe_create(out);
    if (err == LST_OK)
        (*out)->once = true;
    return err;
}

static void free_replies(struct lst_redis_pipe *p)
{
    if (p->replies == NULL)
        return;
    for (size_t i = 0; i < p->n; i++) {
        if (p->replies[i] != NULL)
            freeReplyObject(p->replies[i]);
    }
    free(p->replies);
    p->replies = NULL;
}

void lst_redis_pipe_reset(struct lst_redis_pipe *p)
{
    free_replies(p);
    for (size_t i = 0; i < p->n; i++)
        redis_fcmd_free(&p->entries[i].cmd);
    p->n = 0;
}

void lst_redis_pipe_destroy(struct lst_redis_pipe *p)
{
    if (p == NULL)
        return;
    lst_redis_pipe_reset(p);
    free(p->pending);
    free(p->entries);
    free(p);
}

size_t lst_redis_pipe_len(const struct lst_redis_pipe *p)
{
    return p->n;
}

/* Takes ownership of cmd (also on failure). */
static lst_err push(struct lst_redis_pipe *p, struct redis_fcmd *cmd,
                    struct lst_redis_script *script)
{
    free_replies(p);
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 8;
        struct pipe_entry *e = realloc(p->entries, cap * sizeof(*e));
        if (e == NULL) {
            redis_fcmd_free(cmd);
            return LST_ERR_NOMEM;
        }
        p->entries = e;
        p->cap = cap;
    }
    p->entries[p->n].cmd = *cmd;
    p->entries[p->n].script = script;
    p->n++;
    cmd->buf = NULL;
    return LST_OK;
}

static lst_err push_checked(struct lst_redis_pipe *p, struct redis_fcmd *cmd)
{
    if (!p->once && !redis_fcmd_idempotent(cmd)) {
        LST_WARN("redis.pipe.rejected", "non-idempotent command refused in a pipeline");
        redis_fcmd_free(cmd);
        return LST_ERR_INVALID;
    }
    return push(p, cmd, NULL);
}

lst_err lst_redis_pipe_add(struct lst_redis_pipe *p, int argc, const char **argv,
                           const size_t *argvlen)
{
    struct redis_fcmd cmd;
    lst_err err = redis_format_argv(&cmd, argc, argv, argvlen);
    if (err != LST_OK)
        return err;
    return push_checked(p, &cmd);
}

lst_err lst_redis_pipe_addf(struct lst_redis_pipe *p, const char *fmt, ...)
{
    struct redis_fcmd cmd;
    va_list ap;
    va_start(ap, fmt);
    lst_err err = redis_format_va(&cmd, fmt, ap);
    va_end(ap);
    if (err != LST_OK)
        return err;
    return push_checked(p, &cmd);
}

lst_err lst_redis_pipe_script(struct lst_redis_pipe *p, struct lst_redis_script *s, int nkeys,
                              int argc, const char **argv, const size_t *argvlen)
{
    struct redis_fcmd cmd;
    if (!s->idempotent && !p->once) {
        LST_WARN("redis.pipe.rejected", "non-idempotent script %.12s refused in a pipeline",
                 s->sha);
        return LST_ERR_INVALID;
    }
    lst_err err = format_script(&cmd, s, false, nkeys, argc, argv, argvlen);
    if (err != LST_OK)
        return err;
    return push(p, &cmd, s);
}

const redisReply *lst_redis_pipe_reply(const struct lst_redis_pipe *p, size_t i)
{
    if (p->replies == NULL || i >= p->n)
        return NULL;
    return p->replies[i];
}

static bool any_noscript(const struct lst_redis_pipe *p, redisReply **replies)
{
    for (size_t i = 0; i < p->n; i++) {
        if (p->entries[i].script != NULL && redis_reply_is_error(replies[i], "NOSCRIPT"))
            return true;
    }
    return false;
}

/* SCRIPT LOAD for every script of the pipeline (idempotent, so replaying it is fine). */
static lst_err load_scripts(struct lst_redis *r, const struct lst_redis_pipe *p)
{
    lst_err err = LST_OK;
    for (size_t i = 0; i < p->n && err == LST_OK; i++) {
        const struct lst_redis_script *s = p->entries[i].script;
        if (s == NULL)
            continue;
        const char *argv[] = {"SCRIPT", "LOAD", s->lua};
        size_t argvlen[] = {6, 4, s->lua_len};
        err = lst_redis_cmd(r, NULL, 3, argv, argvlen);
    }
    return err;
}

/* The commands of p as redis_run/redis_send take them (borrowed buffers); NULL: no memory. */
static struct redis_fcmd *pipe_cmds(const struct lst_redis_pipe *p)
{
    struct redis_fcmd *cmds = calloc(p->n, sizeof(*cmds));
    for (size_t i = 0; cmds != NULL && i < p->n; i++)
        cmds[i] = p->entries[i].cmd;
    return cmds;
}

static lst_err exec_once(struct lst_redis *r, struct lst_redis_pipe *p, redisReply **replies)
{
    struct redis_fcmd *cmds = pipe_cmds(p);
    if (cmds == NULL)
        return LST_ERR_NOMEM;
    /* Every entry was checked idempotent when queued: the batch may be replayed whole. */
    lst_err err = redis_run(r, cmds, p->n, replies, true);
    free(cmds);
    return err;
}

static void free_reply_array(redisReply **replies, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (replies[i] != NULL)
            freeReplyObject(replies[i]);
        replies[i] = NULL;
    }
}

/* After a complete round trip (err == LST_OK): keeps the replies in p and notes error
 * replies (LST_ERR_INVALID); otherwise frees them. Takes replies (may be NULL on failure). */
static lst_err keep_replies(struct lst_redis *r, struct lst_redis_pipe *p, redisReply **replies,
                            lst_err err)
{
    if (err != LST_OK) {
        free_reply_array(replies, replies != NULL ? p->n : 0);
        free(replies);
        return err;
    }
    p->replies = replies;
    for (size_t i = 0; i < p->n; i++) {
        if (replies[i]->type == REDIS_REPLY_ERROR) {
            redis_note_reply_error(r, replies[i]);
            err = LST_ERR_INVALID;
        }
    }
    return err;
}

/* After the first round trip (err): NOSCRIPT answered by loading the scripts and replaying,
 * then the replies kept in p and error replies noted. Takes replies. */
static lst_err finish(struct lst_redis *r, struct lst_redis_pipe *p, redisReply **replies,
                      lst_err err)
{
    if (err == LST_OK && any_noscript(p, replies)) {
        /* Some commands of the batch may have run, others not: replay it whole after
         * loading the scripts, which is safe because every entry is idempotent. */
        LST_INFO("redis.script.reload", "pipeline hit NOSCRIPT, loading scripts and replaying");
        free_reply_array(replies, p->n);
        err = load_scripts(r, p);
        if (err == LST_OK)
            err = exec_once(r, p, replies);
    }
    return keep_replies(r, p, replies, err);
}

lst_err lst_redis_pipe_exec(struct lst_redis *r, struct lst_redis_pipe *p)
{
    free_replies(p);
    if (p->n == 0)
        return LST_OK;
    redisReply **replies = calloc(p->n, sizeof(*replies));
    if (replies == NULL)
        return LST_ERR_NOMEM;
    return finish(r, p, replies, exec_once(r, p, replies));
}

void lst_redis_pipe_send(struct lst_redis *r, struct lst_redis_pipe *p)
{
    free_replies(p);
    free(p->pending);
    p->pending = NULL;
    p->send_timed_out = false;
    if (p->n == 0)
        return;
    struct redis_fcmd *cmds = pipe_cmds(p);
    redisReply **replies = calloc(p->n, sizeof(*replies));
    /* A failure here is left to lst_redis_pipe_recv, which then runs the batch itself. */
    if (cmds != NULL && replies != NULL) {
        if (redis_send(r, cmds, p->n) == LST_OK) {
            p->pending = replies;
            replies = NULL;
        } else {
            p->send_timed_out = redis_timed_out(r);
        }
    }
    free(replies);
    free(cmds);
}

lst_err lst_redis_pipe_recv(struct lst_redis *r, struct lst_redis_pipe *p)
{
    free_replies(p);
    redisReply **replies = p->pending;
    p->pending = NULL;
    if (p->n == 0)
        return LST_OK;
    lst_err err = LST_ERR_REDIS;
    bool replay = true;
    if (replies != NULL) {
        err = redis_recv(r, replies, p->n);
        /* as redis_run: no replay after a timeout (the server is alive but stalled) */
        replay = err == LST_ERR_REDIS && !redis_timed_out(r);
    } else {
        /* not sent: a stalled server already cost one timeout, a connect refused is tried
         * again as exec would */
        replay = !p->send_timed_out;
        replies = calloc(p->n, sizeof(*replies));
        if (replies == NULL)
            return LST_ERR_NOMEM;
    }
    if (err != LST_OK && replay)
        err = exec_once(r, p, replies);
    return finish(r, p, replies, err);
}

lst_err lst_redis_pipe_exec_once(struct lst_redis *r, struct lst_redis_pipe *p, unsigned long *conn)
{
    lst_err err = lst_redis_pipe_send_once(r, p, conn);
    return err == LST_OK ? lst_redis_pipe_recv_once(r, p) : err;
}

lst_err lst_redis_pipe_send_once(struct lst_redis *r, struct lst_redis_pipe *p, unsigned long *conn)
{
    free_replies(p);
    free(p->pending);
    p->pending = NULL;
    if (!p->once)
        return LST_ERR_INVALID;
    if (p->n == 0)
        return LST_OK;
    struct redis_fcmd *cmds = pipe_cmds(p);
    redisReply **replies = calloc(p->n, sizeof(*replies));
    lst_err err = cmds == NULL || replies == NULL ? LST_ERR_NOMEM : LST_OK;
    if (err == LST_OK)
        err = redis_send_on(r, cmds, p->n, conn);
    if (err == LST_OK) {
        p->pending = replies;
        replies = NULL;
    }
    free(replies);
    free(cmds);
    return err;
}

lst_err lst_redis_pipe_recv_once(struct lst_redis *r, struct lst_redis_pipe *p)
{
    free_replies(p);
    redisReply **replies = p->pending;
    p->pending = NULL;
    if (!p->once || replies == NULL) {
        free(replies);
        return p->once && p->n == 0 ? LST_OK : LST_ERR_STATE;
    }
    lst_err err = redis_recv(r, replies, p->n);
    if (err == LST_ERR_REDIS) {
        char why[160];
        lst_redis_last_error(r, why, sizeof(why));
        LST_WARN("redis.command.failed", "redis command failed: %s", why);
    }
    return keep_replies(r, p, replies, err);
}
