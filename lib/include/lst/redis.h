/* Redis: a synchronous hiredis 0.14.1 connection that survives Redis restarts.
 *
 * What the wrapper does for you (see docs/pitfalls.md, "hiredis 0.14.1"):
 * - After every connect and reconnect it applies the read/write timeout (redisSetTimeout),
 *   turns on TCP keepalive, sends AUTH when a password is set and SELECTs the database.
 *   hiredis reads block forever without a timeout, and redisReconnect does not re-apply it.
 * - After a NULL reply or a context error the context is never reused: it is dropped and the
 *   next command connects anew (bounded attempts with a short backoff).
 * - A command that failed on the connection (reset, EOF) is retried ONCE after reconnecting,
 *   but only when it is idempotent (see lst_redis_cmd_is_idempotent); the caller learns about
 *   any other failure through LST_ERR_REDIS and decides itself.
 * - A timeout is never retried and stops the connect attempts: a stalled server (paused,
 *   overloaded) would cost a full timeout per try. So a call against a stalled server returns
 *   after about one timeout_ms (two when it also has to reconnect: connect + AUTH/SELECT).
 * - Pipelines accept only idempotent commands, because an interrupted pipeline has run an
 *   unknown prefix of its commands (hiredis drops written-but-unanswered commands on
 *   reconnect), so the only safe recovery is to replay the whole batch.
 * - Scripts are called with EVALSHA; on NOSCRIPT (Redis restarted, SCRIPT FLUSH) they fall back
 *   to EVAL, which also caches them again. NOSCRIPT means the script did not run, so the
 *   fallback is safe for every script.
 *
 * Return codes of every command function:
 *   LST_OK          a reply arrived and it is not an error reply
 *   LST_ERR_INVALID Redis answered with an error reply (WRONGTYPE, a script's error, ...);
 *                   the reply (type REDIS_REPLY_ERROR, text in reply->str) is handed out so
 *                   the caller can read the message
 *   LST_ERR_REDIS   connection or I/O failure (refused, reset, timeout): no reply
 *   LST_ERR_CONFIG  Redis rejected AUTH or SELECT while connecting (wrong password or db)
 *   LST_ERR_NOMEM   allocation failure
 *
 * Reply ownership (hiredis rule, once for the whole project): a reply handed out through a
 * `redisReply **reply` parameter belongs to the caller, who frees the TOP-LEVEL reply with
 * freeReplyObject() once; never free or keep element[i] sub-replies beyond that. *reply is set
 * to NULL on entry and is non-NULL only for LST_OK and LST_ERR_INVALID. Passing reply == NULL
 * discards the reply.
 *
 * Threads: a struct lst_redis may be shared between threads; an internal mutex serialises the
 * commands (a hiredis context is not thread-safe). A slow command therefore delays the others;
 * create one lst_redis per thread where that matters.
 *
 * SIGPIPE: hiredis writes with write(2), so writing to a connection the peer has reset raises
 * SIGPIPE. Every process using this module must ignore SIGPIPE (the service mains do).
 *
 * Logging: only command names are logged, never arguments (they may hold message contents). */
#ifndef LST_REDIS_H
#define LST_REDIS_H

#include <stdbool.h>
#include <stddef.h>

#include <hiredis/hiredis.h>

#include "lst/error.h"
#include "lst/util.h"

struct lst_redis_config {
    const char *host;         /* name or address; NULL means "127.0.0.1" */
    int port;                 /* 1..65535 */
    int db;                   /* SELECTed after every connect when > 0 */
    const char *username;     /* ACL user for AUTH; NULL/"" means the default user */
    const char *password;     /* NULL or "" means no AUTH */
    int timeout_ms;           /* connect timeout and read/write timeout of every command; > 0 */
    int reconnect_attempts;   /* connect attempts per reconnect; 0 means 3 */
    int reconnect_backoff_ms; /* pause before the 2nd attempt, doubled each time up to 1 s;
                                 0 means 50 */
};

struct lst_redis;

/* Copies the configuration (strings included); performs no I/O, so it fails only on a bad
 * configuration (LST_ERR_CONFIG) or LST_ERR_NOMEM. The first command connects; call
 * lst_redis_connect to connect (and learn about a wrong address or password) early. */
lst_err lst_redis_create(const struct lst_redis_config *cfg, struct lst_redis **out);
/* Closes the connection and frees r. NULL is a no-op. */
void lst_redis_destroy(struct lst_redis *r);

/* Connects now unless connected. LST_ERR_REDIS when all attempts failed. */
lst_err lst_redis_connect(struct lst_redis *r);
/* PING for readiness checks: LST_OK when Redis answered PONG. */
lst_err lst_redis_ping(struct lst_redis *r);

/* Copies the text of the last failure (a connection error or an error reply) into out
 * (NUL-terminated, truncated to cap). "" when none. */
void lst_redis_last_error(struct lst_redis *r, char *out, size_t cap);
/* How many connections were established so far (tests, metrics). */
unsigned long lst_redis_connect_count(struct lst_redis *r);

/* True when the command (case-insensitive name) may be replayed: re-running it after an
 * unknown outcome gives the same state (SET, HSET, SADD, DEL, EXPIRE, GET, ...). False for
 * INCR*, HINCRBY*, LPUSH/RPUSH, APPEND, SETRANGE and every command not on the allow-list,
 * and for EVAL/EVALSHA/FCALL (scripts go through lst_redis_script with their own flag). */
bool lst_redis_cmd_is_idempotent(const char *name);

/* One command, argv style (binary-safe; argvlen may be NULL for NUL-terminated strings).
 * Retried once after a reconnect when the command is idempotent. */
lst_err lst_redis_cmd(struct lst_redis *r, redisReply **reply, int argc, const char **argv,
                      const size_t *argvlen);
/* One command, hiredis format string (%s, %b with pointer + size_t length, %d, ...). The
 * format is split at spaces into arguments, so data always goes through %s or %b. */
lst_err lst_redis_cmdf(struct lst_redis *r, redisReply **reply, const char *fmt, ...);

/* ---- Pipelines: batches of idempotent commands, replayed whole after a reconnect. ---- */

struct lst_redis_pipe;
struct lst_redis_script;

lst_err lst_redis_pipe_create(struct lst_redis_pipe **out);
/* Frees the pipeline and the replies it holds. NULL is a no-op. */
void lst_redis_pipe_destroy(struct lst_redis_pipe *p);
/* Drops the queued commands and the replies, for reuse. */
void lst_redis_pipe_reset(struct lst_redis_pipe *p);
/* Queues a command. LST_ERR_INVALID (nothing queued) when it is not idempotent. */
lst_err lst_redis_pipe_add(struct lst_redis_pipe *p, int argc, const char **argv,
                           const size_t *argvlen);
lst_err lst_redis_pipe_addf(struct lst_redis_pipe *p, const char *fmt, ...);
/* Queues a script call (EVALSHA with NOSCRIPT fallback); the script must have been created
 * idempotent, otherwise LST_ERR_INVALID. s is borrowed until the pipeline is reset or freed.
 * argv holds the nkeys keys followed by the arguments. */
lst_err lst_redis_pipe_script(struct lst_redis_pipe *p, struct lst_redis_script *s, int nkeys,
                              int argc, const char **argv, const size_t *argvlen);
size_t lst_redis_pipe_len(const struct lst_redis_pipe *p);
/* Sends all queued commands and reads all replies. On a connection failure reconnects and
 * replays the whole batch once. LST_OK when every reply arrived and none is an error reply;
 * LST_ERR_INVALID when all arrived but at least one is an error reply; LST_ERR_REDIS when the
 * batch could not be completed (then no replies are held and an unknown prefix may have run,
 * which is harmless for idempotent commands). Replies stay in p until reset/destroy/next exec. */
lst_err lst_redis_pipe_exec(struct lst_redis *r, struct lst_redis_pipe *p);
/* lst_redis_pipe_exec in two halves, so that the caller works while Redis does: send writes
 * the queued commands and returns at once; recv reads their replies and gives what exec would
 * have given (after a failed send or a broken connection it runs the batch itself, replayed
 * whole once, as exec does). Until recv, every other user of r waits, so the thread that sent
 * must call recv before it uses r (or resets p) again. */
void lst_redis_pipe_send(struct lst_redis *r, struct lst_redis_pipe *p);
lst_err lst_redis_pipe_recv(struct lst_redis *r, struct lst_redis_pipe *p);
/* The reply to the i-th queued command after lst_redis_pipe_exec, borrowed from p (do not
 * free); NULL when i is out of range or no complete exec happened. */
const redisReply *lst_redis_pipe_reply(const struct lst_redis_pipe *p, size_t i);

/* ---- One-connection pipelines: optimistic transactions ---- */

/* A pipeline that takes any command (MULTI, INCRBY, XADD, any script) and is never replayed:
 * for WATCH, reads, then MULTI ... EXEC, whose WATCH holds only on the connection that sent
 * it, and whose outcome after a broken connection is unknown (the caller re-reads). Run it
 * with lst_redis_pipe_exec_once or _send_once/_recv_once: lst_redis_pipe_exec, _send and _recv
 * would replay it. */
lst_err lst_redis_pipe_create_once(struct lst_redis_pipe **out);
/* Runs p once. *conn == 0: on the current connection (connecting when needed), and *conn
 * receives its number (lst_redis_connect_count). Otherwise only on connection *conn:
 * LST_ERR_STATE, nothing sent, when r reconnected since or the server closed it. Return codes
 * and replies as lst_redis_pipe_exec; no NOSCRIPT fallback (check with SCRIPT EXISTS first). */
lst_err lst_redis_pipe_exec_once(struct lst_redis *r, struct lst_redis_pipe *p,
                                 unsigned long *conn);
/* lst_redis_pipe_exec_once in two halves, as lst_redis_pipe_send and _recv (the caller works
 * while Redis runs p; nobody else uses r until recv), but never replayed: send gives
 * LST_ERR_STATE (nothing sent) for another connection than *conn, or its failure to write;
 * after a failed send, recv gives LST_ERR_STATE. */
lst_err lst_redis_pipe_send_once(struct lst_redis *r, struct lst_redis_pipe *p,
                                 unsigned long *conn);
lst_err lst_redis_pipe_recv_once(struct lst_redis *r, struct lst_redis_pipe *p);

/* ---- Lua scripts ---- */

/* Holds the Lua source (copied) and its SHA1. idempotent: running the script twice with the
 * same arguments gives the same state (e.g. it checks an offset watermark or event ID first);
 * only such scripts are retried after a reconnect and allowed in pipelines. */
lst_err lst_redis_script_create(const char *lua, bool idempotent, struct lst_redis_script **out);
void lst_redis_script_destroy(struct lst_redis_script *s);
/* The SHA1 as 40 lowercase hex digits, valid as long as s. */
const char *lst_redis_script_sha(const struct lst_redis_script *s);
/* EVALSHA sha nkeys argv...; EVAL on NOSCRIPT. Retried after a reconnect only when the script
 * is idempotent. Return codes and reply ownership as for lst_redis_cmd. */
lst_err lst_redis_script_call(struct lst_redis *r, struct lst_redis_script *s, redisReply **reply,
                              int nkeys, int argc, const char **argv, const size_t *argvlen);

#endif
