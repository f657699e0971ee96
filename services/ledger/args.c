/* Script arguments: one buffer holds every string, so a record's call costs no
 * allocation once the buffers have grown to the largest record seen. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledger.h"

void ledger_args_init(struct ledger_args *a)
{
    *a = (struct ledger_args){0};
    lst_buf_init(&a->buf);
}

void ledger_args_cleanup(struct ledger_args *a)
{
    lst_buf_cleanup(&a->buf);
    free(a->off);
    free(a->len);
    free((void *)a->argv);
    free(a->argvlen);
    *a = (struct ledger_args){0};
}

void ledger_args_reset(struct ledger_args *a)
{
    lst_buf_reset(&a->buf);
    a->n = 0;
}

static lst_err grow(struct ledger_args *a)
{
    size_t cap = a->cap ? a->cap * 2 : 64;
    size_t *off = realloc(a->off, cap * sizeof(*off));
    if (off == NULL)
        return LST_ERR_NOMEM;
    a->off = off;
    size_t *len = realloc(a->len, cap * sizeof(*len));
    if (len == NULL)
        return LST_ERR_NOMEM;
    a->len = len;
    a->cap = cap;
    return LST_OK;
}

lst_err ledger_args_add(struct ledger_args *a, const char *s, size_t len)
{
    if (a->n == a->cap && grow(a) != LST_OK)
        return LST_ERR_NOMEM;
    size_t at = a->buf.len;
    if (s != NULL && len > 0 && lst_buf_append(&a->buf, s, len) != LST_OK)
        return LST_ERR_NOMEM;
    a->off[a->n] = at;
    a->len[a->n] = s != NULL ? len : 0;
    a->n++;
    return LST_OK;
}

lst_err ledger_args_str(struct ledger_args *a, const char *s)
{
    return ledger_args_add(a, s, s != NULL ? strlen(s) : 0);
}

lst_err ledger_args_i64(struct ledger_args *a, int64_t v)
{
    char num[24];
    int n = snprintf(num, sizeof(num), "%" PRId64, v);
    return ledger_args_add(a, num, (size_t)n);
}

lst_err ledger_args_dbl(struct ledger_args *a, double v)
{
    char num[40];
    int n = snprintf(num, sizeof(num), "%.17g", v);
    return ledger_args_add(a, num, (size_t)n);
}

lst_err ledger_args_set_i64(struct ledger_args *a, size_t i, int64_t v)
{
    char num[24];
    int n = snprintf(num, sizeof(num), "%" PRId64, v);
    size_t at = a->buf.len;
    if (i >= a->n || lst_buf_append(&a->buf, num, (size_t)n) != LST_OK)
        return LST_ERR_NOMEM;
    a->off[i] = at;
    a->len[i] = (size_t)n;
    return LST_OK;
}

lst_err ledger_args_kv(struct ledger_args *a, const char *k, const char *v, int64_t *count)
{
    if (v == NULL)
        return LST_OK;
    if (ledger_args_str(a, k) != LST_OK || ledger_args_str(a, v) != LST_OK)
        return LST_ERR_NOMEM;
    (*count)++;
    return LST_OK;
}

lst_err ledger_args_kv_i64(struct ledger_args *a, const char *k, int64_t v, int64_t *count)
{
    if (ledger_args_str(a, k) != LST_OK || ledger_args_i64(a, v) != LST_OK)
        return LST_ERR_NOMEM;
    (*count)++;
    return LST_OK;
}

lst_err ledger_args_finish(struct ledger_args *a)
{
    if (lst_buf_failed(&a->buf))
        return LST_ERR_NOMEM;
    if (a->n > a->argcap) {
        const char **argv = realloc((void *)a->argv, a->n * sizeof(*argv));
        if (argv == NULL)
            return LST_ERR_NOMEM;
        a->argv = argv;
        size_t *argvlen = realloc(a->argvlen, a->n * sizeof(*argvlen));
        if (argvlen == NULL)
            return LST_ERR_NOMEM;
        a->argvlen = argvlen;
        a->argcap = a->n;
    }
    for (size_t i = 0; i < a->n; i++) {
        a->argv[i] = a->buf.data != NULL ? a->buf.data + a->off[i] : "";
        a->argvlen[i] = a->len[i];
    }
    return LST_OK;
}
