/* A canonical text dump of every ledger projection key (lst:lg:*) for comparisons: keys
 * sorted, each with its type and content in a fixed order (hash fields and set members sorted,
 * sorted sets by score then member). Used by the unit tests (order independence) and the system
 * tests (rebuild and SIGKILL restart give identical projections). */
#ifndef LST_TEST_LEDGER_DUMP_H
#define LST_TEST_LEDGER_DUMP_H

#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "lst/util.h"

static inline int ledger_dump_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted copies of the string elements of an array reply, joined as "a\x1fb\x1f...". */
static inline void ledger_dump_sorted(struct lst_buf *out, const redisReply *arr, size_t step,
                                      const char *skip)
{
    size_t n = arr->elements / step;
    char **items = calloc(n ? n : 1, sizeof(*items));
    struct lst_buf one;
    lst_buf_init(&one);
    size_t kept = 0;
    for (size_t i = 0; i < n && items; i++) {
        lst_buf_reset(&one);
        const redisReply *first = arr->element[i * step];
        if (skip != NULL && first->str != NULL && strcmp(first->str, skip) == 0)
            continue;
        for (size_t j = 0; j < step; j++) {
            const redisReply *e = arr->element[i * step + j];
            lst_buf_append(&one, e->str ? e->str : "", e->str ? e->len : 0);
            lst_buf_puts(&one, j + 1 < step ? "=" : "");
        }
        items[kept++] = lst_strdup(one.data ? one.data : "");
    }
    if (items)
        qsort(items, kept, sizeof(*items), ledger_dump_cmp);
    for (size_t i = 0; i < kept && items; i++) {
        lst_buf_puts(out, items[i]);
        lst_buf_puts(out, "\x1f");
        free(items[i]);
    }
    free(items);
    lst_buf_cleanup(&one);
}

static inline void ledger_dump_key(redisContext *c, const char *key, struct lst_buf *out)
{
    redisReply *t = redisCommand(c, "TYPE %s", key);
    redisReply *v = NULL;
    if (t == NULL)
        return;
    lst_buf_printf(out, "%s %s: ", key, t->str);
    if (strcmp(t->str, "string") == 0) {
        v = redisCommand(c, "GET %s", key);
        if (v && v->str)
            lst_buf_append(out, v->str, v->len);
    } else if (strcmp(t->str, "hash") == 0) {
        v = redisCommand(c, "HGETALL %s", key);
        if (v)
            /* an item's version v counts the writes, which depends on their order
             * (docs/ledger.md): not part of the projection's content */
            ledger_dump_sorted(out, v, 2, strncmp(key, "lst:lg:m:", 9) == 0 ? "v" : NULL);
    } else if (strcmp(t->str, "set") == 0) {
        v = redisCommand(c, "SMEMBERS %s", key);
        if (v)
            ledger_dump_sorted(out, v, 1, NULL);
    } else if (strcmp(t->str, "zset") == 0) {
        v = redisCommand(c, "ZRANGE %s 0 -1 WITHSCORES", key);
        for (size_t i = 0; v && i + 1 < v->elements; i += 2)
            lst_buf_printf(out, "%s=%s\x1f", v->element[i]->str, v->element[i + 1]->str);
    }
    lst_buf_puts(out, "\n");
    if (v)
        freeReplyObject(v);
    freeReplyObject(t);
}

/* Appends the dump of every lst:lg:* key (skip_wm: without the watermarks) to out. Returns
 * the number of keys, -1 on a connection failure. */
static inline long ledger_dump(redisContext *c, struct lst_buf *out, int skip_wm)
{
    char cursor[32] = "0";
    char **keys = NULL;
    size_t n = 0, cap = 0;
    do {
        redisReply *r = redisCommand(c, "SCAN %s MATCH lst:lg:* COUNT 1000", cursor);
        if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
            if (r)
                freeReplyObject(r);
            for (size_t i = 0; i < n; i++)
                free(keys[i]);
            free(keys);
            return -1;
        }
        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
        for (size_t i = 0; i < r->element[1]->elements; i++) {
            if (n == cap) {
                cap = cap ? cap * 2 : 256;
                keys = realloc(keys, cap * sizeof(*keys));
            }
            keys[n++] = lst_strdup(r->element[1]->element[i]->str);
        }
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    if (n > 0)
        qsort(keys, n, sizeof(*keys), ledger_dump_cmp);
    long count = 0;
    for (size_t i = 0; i < n; i++) {
        if (!(skip_wm && strcmp(keys[i], "lst:lg:wm") == 0)) {
            ledger_dump_key(c, keys[i], out);
            count++;
        }
        free(keys[i]);
    }
    free(keys);
    return count;
}

#endif
