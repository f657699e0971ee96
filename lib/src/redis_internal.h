/* Internals shared by redis.c (connection, commands) and redis_batch.c (pipelines, scripts).
 * Not a public header. */
#ifndef LST_REDIS_INTERNAL_H
#define LST_REDIS_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include "lst/redis.h"

/* One command in RESP wire format, as produced by redisFormatCommand*; buf is malloc'ed by
 * hiredis and freed with redisFreeCommand. */
struct redis_fcmd {
    char *buf;
    size_t len;
};

/* Formats argv into cmd. LST_ERR_INVALID for argc < 1, LST_ERR_NOMEM otherwise on failure. */
lst_err redis_format_argv(struct redis_fcmd *cmd, int argc, const char **argv,
                          const size_t *argvlen);
/* Formats a hiredis format string into cmd. */
lst_err redis_format_va(struct redis_fcmd *cmd, const char *fmt, va_list ap);
void redis_fcmd_free(struct redis_fcmd *cmd);

/* Whether a formatted command may be replayed (command name on the allow-list, no option
 * that makes it relative such as ZADD ... INCR). */
bool redis_fcmd_idempotent(const struct redis_fcmd *cmd);

/* Sends n commands as one pipeline and reads n replies into replies[] (caller frees them),
 * under r's lock. Connects first when needed; when the connection fails after sending and
 * replayable is true, reconnects and replays the whole batch once. Returns LST_OK (replies
 * complete, may contain error replies), LST_ERR_REDIS/LST_ERR_CONFIG (no replies held) or
 * LST_ERR_NOMEM. */
lst_err redis_run(struct lst_redis *r, const struct redis_fcmd *cmds, size_t n,
                  redisReply **replies, bool replayable);

/* The two halves of redis_run for one pipeline in flight: redis_send writes the n commands
 * (connecting first when needed) and returns without waiting; until redis_recv has read their
 * n replies, every other use of r waits, so the caller must not use r in between itself.
 * redis_send fails (LST_ERR_REDIS, nothing in flight) when it cannot connect or write;
 * redis_recv gives LST_ERR_REDIS when the connection failed (no replies held, an unknown
 * prefix may have run) and LST_ERR_STATE when nothing of n commands is in flight. */
lst_err redis_send(struct lst_redis *r, const struct redis_fcmd *cmds, size_t n);
lst_err redis_recv(struct lst_redis *r, redisReply **replies, size_t n);
/* redis_send on one connection, never replayed. *conn == 0: the current one (connecting when
 * needed), and *conn receives its number; otherwise only connection *conn: LST_ERR_STATE,
 * nothing sent, when r reconnected since or the server closed it. */
lst_err redis_send_on(struct lst_redis *r, const struct redis_fcmd *cmds, size_t n,
                      unsigned long *conn);
/* Whether the last failure was a timeout (then a replay would only wait again). */
bool redis_timed_out(struct lst_redis *r);

/* Records the text of an error reply as r's last error (takes r's lock). */
void redis_note_reply_error(struct lst_redis *r, const redisReply *reply);

/* Classifies a reply from redis_run for a public command function (see lst/redis.h: an error
 * reply turns LST_OK into LST_ERR_INVALID) and hands it to *reply, or frees it when reply is
 * NULL. Returns the final code. */
lst_err redis_hand_out(struct lst_redis *r, redisReply *rep, redisReply **reply, lst_err err);

/* True for an error reply starting with the given code, e.g. "NOSCRIPT". */
bool redis_reply_is_error(const redisReply *reply, const char *code);

#endif
