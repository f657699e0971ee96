/* Rebuild: every projection key goes (watermarks included), so the ledger's
 * next start reads every topic from its beginning and builds the same
 * projections again. SCAN + UNLINK keeps Redis responsive: no KEYS, no single
 * huge DEL. */
#include <stdio.h>
#include <string.h>

#include "ledger.h"
#include "lst/log.h"

/* UNLINKs the keys of one SCAN reply, at most 1000 per command; *n receives how many. SCAN's
 * COUNT is only a hint: a reply may hold more keys than that, and every one must go (a key
 * left behind survives the rebuild and makes its projection differ). */
static lst_err unlink_keys(struct lst_redis *redis, const redisReply *keys, int64_t *n)
{
    const char *argv[1001];
    size_t argvlen[1001];

    *n = 0;
    argv[0] = "UNLINK";
    argvlen[0] = 6;
    for (size_t i = 0; i < keys->elements;) {
        size_t argc = 1;
        for (; i < keys->elements && argc < LST_ARRAY_LEN(argv); i++) {
            argv[argc] = keys->element[i]->str;
            argvlen[argc++] = keys->element[i]->len;
        }
        lst_err err = lst_redis_cmd(redis, NULL, (int)argc, argv, argvlen);
        if (err != LST_OK)
            return err;
        *n += (int64_t)argc - 1;
    }
    return LST_OK;
}

lst_err ledger_drop_projections(struct lst_redis *redis, int64_t *deleted)
{
    char cursor[32] = "0";
    lst_err err = LST_OK;

    *deleted = 0;
    do {
        redisReply *r = NULL;
        int64_t n = 0;
        err = lst_redis_cmdf(redis, &r, "SCAN %s MATCH " LEDGER_PREFIX "* COUNT 1000", cursor);
        if (err == LST_OK &&
            (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
             r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_ARRAY))
            err = LST_ERR_REDIS;
        if (err == LST_OK) {
            snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
            err = unlink_keys(redis, r->element[1], &n);
            *deleted += n;
        }
        if (r != NULL)
            freeReplyObject(r);
    } while (err == LST_OK && strcmp(cursor, "0") != 0);
    if (err != LST_OK)
        LST_ERROR("ledger.drop_failed", "dropping the projections: %s", lst_strerror(err));
    else
        LST_INFO("ledger.dropped", "%lld projection keys deleted", (long long)*deleted);
    return err;
}
