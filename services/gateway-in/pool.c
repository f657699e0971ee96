/* A fixed set of connections lent to handler threads one at a time. hiredis contexts and
 * libcurl handles are not thread-safe, and one shared connection behind a mutex would
 * serialise every callback on its round trips; a small pool lets them overlap. */
#include <stdlib.h>

#include "gateway_in.h"

struct gwin_pool {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    void **items; /* all items, for destroy */
    void **free;  /* stack of the items not lent out */
    size_t n, nfree;
    gwin_pool_free_fn free_fn;
};

lst_err gwin_pool_create(size_t n, gwin_pool_make_fn make, gwin_pool_free_fn free_fn, void *ud,
                         struct gwin_pool **out)
{
    lst_err err = LST_ERR_NOMEM;
    struct gwin_pool *p = calloc(1, sizeof(*p));
    *out = NULL;
    if (p == NULL)
        return LST_ERR_NOMEM;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->cond, NULL);
    p->free_fn = free_fn;
    p->items = calloc(n, sizeof(*p->items));
    p->free = calloc(n, sizeof(*p->free));
    if (p->items == NULL || p->free == NULL)
        goto out;
    for (; p->n < n; p->n++) {
        err = make(ud, &p->items[p->n]);
        if (err != LST_OK)
            goto out;
        p->free[p->nfree++] = p->items[p->n];
    }
    err = LST_OK;
    *out = p;
    p = NULL;
out:
    gwin_pool_destroy(p);
    return err;
}

void gwin_pool_destroy(struct gwin_pool *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < p->n; i++)
        p->free_fn(p->items[i]);
    free(p->items);
    free(p->free);
    pthread_cond_destroy(&p->cond);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

void *gwin_pool_take(struct gwin_pool *p)
{
    pthread_mutex_lock(&p->lock);
    while (p->nfree == 0)
        pthread_cond_wait(&p->cond, &p->lock);
    void *item = p->free[--p->nfree];
    pthread_mutex_unlock(&p->lock);
    return item;
}

void gwin_pool_give(struct gwin_pool *p, void *item)
{
    pthread_mutex_lock(&p->lock);
    p->free[p->nfree++] = item;
    pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&p->lock);
}
