/* Resolving a send's audience against the directory: explicit employee IDs plus a selector
 * over master data (within a list any item matches, across lists all must). Inactive
 * employees never receive (reported as skipped "inactive"), nor do employees without any
 * address (no Threema ID, phone or e-mail: "no_contact"); explicit IDs the directory does not
 * know are skipped as "unknown". */
#include <stdlib.h>
#include <string.h>

#include "view_api.h"

#define CHUNK 500

const char *va_skip_reason_name(enum va_skip_reason r)
{
    switch (r) {
    case VA_SKIP_UNKNOWN:
        return "unknown";
    case VA_SKIP_INACTIVE:
        return "inactive";
    case VA_SKIP_NO_CONTACT:
        return "no_contact";
    }
    return "unknown";
}

void va_audience_cleanup(struct va_audience *a)
{
    lst_strv_cleanup(&a->selector.departments);
    lst_strv_cleanup(&a->selector.vehicles);
    lst_strv_cleanup(&a->selector.tags);
    lst_strv_cleanup(&a->selector.employee_ids);
    for (size_t i = 0; i < a->nrecipients; i++)
        va_employee_cleanup(&a->recipients[i]);
    free(a->recipients);
    for (size_t i = 0; i < a->nskipped; i++)
        free(a->skipped[i].id);
    free(a->skipped);
    memset(a, 0, sizeof(*a));
}

static bool selector_empty(const struct lst_selector *s)
{
    return s->departments.len == 0 && s->vehicles.len == 0 && s->tags.len == 0;
}

static bool selected(const struct lst_selector *s, const struct va_employee *e)
{
    if (selector_empty(s))
        return false;
    if (s->departments.len > 0 && !lst_strv_has(&s->departments, e->department))
        return false;
    if (s->vehicles.len > 0 && !lst_strv_has(&s->vehicles, e->vehicle))
        return false;
    if (s->tags.len > 0) {
        bool any = false;
        for (size_t i = 0; i < e->tags.len && !any; i++)
            any = lst_strv_has(&s->tags, e->tags.items[i]);
        if (!any)
            return false;
    }
    if (s->has_active && s->active != e->active)
        return false;
    return true;
}

/* Candidates of the selector: the members of its first non-empty list's sets. */
static lst_err candidates(struct view_api *ctx, const struct lst_selector *s, struct lst_strv *out)
{
    const struct lst_strv *list = s->departments.len > 0 ? &s->departments
                                  : s->vehicles.len > 0  ? &s->vehicles
                                                         : &s->tags;
    const char *set = s->departments.len > 0 ? "emp:dep:"
                      : s->vehicles.len > 0  ? "emp:veh:"
                                             : "emp:tag:";
    lst_err err = LST_OK;
    for (size_t i = 0; i < list->len && err == LST_OK; i++)
        err = va_directory_set(ctx, set, list->items[i], out);
    return err;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void sort_unique(struct lst_strv *v)
{
    size_t w = 0;
    if (v->len == 0)
        return;
    qsort(v->items, v->len, sizeof(v->items[0]), cmp_str);
    for (size_t i = 0; i < v->len; i++) {
        if (w > 0 && strcmp(v->items[i], v->items[w - 1]) == 0) {
            free(v->items[i]);
            continue;
        }
        v->items[w++] = v->items[i];
    }
    v->len = w;
}

static lst_err skip(struct va_audience *a, const char *id, enum va_skip_reason why)
{
    void *grown = realloc(a->skipped, (a->nskipped + 1) * sizeof(*a->skipped));
    if (grown == NULL)
        return LST_ERR_NOMEM;
    a->skipped = grown;
    a->skipped[a->nskipped].id = lst_strdup(id);
    a->skipped[a->nskipped].reason = why;
    a->nskipped++;
    return LST_OK;
}

static lst_err take(struct va_audience *a, struct va_employee *e)
{
    void *grown = realloc(a->recipients, (a->nrecipients + 1) * sizeof(*a->recipients));
    if (grown == NULL)
        return LST_ERR_NOMEM;
    a->recipients = grown;
    a->recipients[a->nrecipients++] = *e;
    memset(e, 0, sizeof(*e));
    return LST_OK;
}

static lst_err decide(struct va_audience *a, const char *id, bool found, struct va_employee *e)
{
    bool explicit = lst_strv_has(&a->selector.employee_ids, id);
    if (!found)
        return explicit ? skip(a, id, VA_SKIP_UNKNOWN) : LST_OK;
    if (!explicit && !selected(&a->selector, e)) {
        /* an inactive member of the selected group is worth reporting */
        bool was_active = e->active;
        e->active = true;
        bool would = !was_active && !a->selector.has_active && selected(&a->selector, e);
        e->active = was_active;
        return would ? skip(a, id, VA_SKIP_INACTIVE) : LST_OK;
    }
    if (!e->active)
        return skip(a, id, VA_SKIP_INACTIVE);
    if (e->threema_id == NULL && e->phone == NULL && e->email == NULL)
        return skip(a, id, VA_SKIP_NO_CONTACT);
    return take(a, e);
}

lst_err va_audience_resolve(struct view_api *ctx, struct va_audience *a)
{
    struct lst_strv ids = {0};
    lst_err err = LST_OK;
    for (size_t i = 0; i < a->selector.employee_ids.len && err == LST_OK; i++)
        err = lst_strv_push(&ids, a->selector.employee_ids.items[i]);
    if (err == LST_OK && !selector_empty(&a->selector))
        err = candidates(ctx, &a->selector, &ids);
    sort_unique(&ids);
    for (size_t i = 0; i < ids.len && err == LST_OK; i += CHUNK) {
        size_t n = ids.len - i < CHUNK ? ids.len - i : CHUNK;
        struct va_employee *d = calloc(n, sizeof(*d));
        bool *found = calloc(n, sizeof(*found));
        err = d == NULL || found == NULL ? LST_ERR_NOMEM : LST_OK;
        if (err == LST_OK)
            err = va_directory_get(ctx, (const char *const *)ids.items + i, n, d, found);
        for (size_t j = 0; j < n && err == LST_OK; j++)
            err = decide(a, ids.items[i + j], found[j], &d[j]);
        for (size_t j = 0; d != NULL && j < n; j++)
            va_employee_cleanup(&d[j]);
        free(d);
        free(found);
    }
    lst_strv_cleanup(&ids);
    return err;
}
