/* Read tracking visibility (LST_VIEW_READ_VISIBILITY): per category, whether the view API shows
 * per-recipient read status (person), only aggregate counts (counts), or no read information
 * at all (off). Read receipts are employee monitoring; works councils decide per category.
 *
 * Syntax: comma-separated "<name>=<person|counts|off>", name "default" or a category slug;
 * blanks around items allowed, each name at most once. Unset or empty: person everywhere. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "view_api.h"

static const char *const NAMES[] = {"person", "counts", "off"};

const char *va_readvis_name(enum va_readvis v)
{
    return NAMES[v];
}

void va_readvis_cleanup(struct va_readvis_cfg *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->items[i].category);
    free(c->items);
    memset(c, 0, sizeof(*c));
}

static bool slug_ok(const char *s, size_t len)
{
    if (len == 0 || len > LST_SLUG_MAX ||
        !(islower((unsigned char)s[0]) || isdigit((unsigned char)s[0])))
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (!(islower(ch) || isdigit(ch) || ch == '.' || ch == '_' || ch == '-'))
            return false;
    }
    return true;
}

static bool value_of(const char *s, size_t len, enum va_readvis *out)
{
    for (size_t i = 0; i < LST_ARRAY_LEN(NAMES); i++) {
        if (strlen(NAMES[i]) == len && memcmp(s, NAMES[i], len) == 0) {
            *out = (enum va_readvis)i;
            return true;
        }
    }
    return false;
}

static void trim(const char **s, size_t *len)
{
    while (*len > 0 && isspace((unsigned char)**s)) {
        (*s)++;
        (*len)--;
    }
    while (*len > 0 && isspace((unsigned char)(*s)[*len - 1]))
        (*len)--;
}

static bool known(const struct va_readvis_cfg *c, const char *name, size_t len)
{
    for (size_t i = 0; i < c->n; i++) {
        if (strlen(c->items[i].category) == len && memcmp(c->items[i].category, name, len) == 0)
            return true;
    }
    return false;
}

/* One "name=value" item. */
static lst_err parse_item(struct va_readvis_cfg *c, const char *item, size_t len, bool *has_def,
                          struct lst_buf *why)
{
    const char *eq = memchr(item, '=', len);
    enum va_readvis v = VA_READ_PERSON;
    if (eq == NULL) {
        lst_buf_printf(why,
                       "LST_VIEW_READ_VISIBILITY: '%.*s' is not <category>=<person|counts|off>",
                       (int)len, item);
        return LST_ERR_CONFIG;
    }
    const char *name = item, *val = eq + 1;
    size_t nlen = (size_t)(eq - item), vlen = len - nlen - 1;
    trim(&name, &nlen);
    trim(&val, &vlen);
    if (!value_of(val, vlen, &v)) {
        lst_buf_printf(why,
                       "LST_VIEW_READ_VISIBILITY: '%.*s': the value must be person, counts or off",
                       (int)len, item);
        return LST_ERR_CONFIG;
    }
    if (nlen == 7 && memcmp(name, "default", 7) == 0) {
        if (*has_def) {
            lst_buf_puts(why, "LST_VIEW_READ_VISIBILITY: 'default' given twice");
            return LST_ERR_CONFIG;
        }
        *has_def = true;
        c->def = v;
        return LST_OK;
    }
    if (!slug_ok(name, nlen) || known(c, name, nlen)) {
        lst_buf_printf(why,
                       "LST_VIEW_READ_VISIBILITY: '%.*s' is not a category slug ([a-z0-9._-]) or "
                       "is given twice",
                       (int)nlen, name);
        return LST_ERR_CONFIG;
    }
    void *grown = realloc(c->items, (c->n + 1) * sizeof(*c->items));
    if (grown == NULL)
        return LST_ERR_NOMEM;
    c->items = grown;
    c->items[c->n].category = malloc(nlen + 1);
    if (c->items[c->n].category == NULL)
        return LST_ERR_NOMEM;
    memcpy(c->items[c->n].category, name, nlen);
    c->items[c->n].category[nlen] = '\0';
    c->items[c->n].vis = v;
    c->n++;
    return LST_OK;
}

lst_err va_readvis_parse(struct va_readvis_cfg *c, const char *spec, struct lst_buf *why)
{
    bool has_def = false;
    lst_err err = LST_OK;
    memset(c, 0, sizeof(*c));
    c->def = VA_READ_PERSON;
    const char *p = spec;
    size_t total = spec != NULL ? strlen(spec) : 0;
    const char *t = spec;
    trim(&t, &total);
    if (total == 0)
        return LST_OK;
    while (err == LST_OK) {
        size_t len = strcspn(p, ",");
        const char *item = p;
        size_t ilen = len;
        trim(&item, &ilen);
        if (ilen == 0) {
            lst_buf_puts(
                why, "LST_VIEW_READ_VISIBILITY: an empty item (two commas or a trailing comma)");
            err = LST_ERR_CONFIG;
            break;
        }
        err = parse_item(c, item, ilen, &has_def, why);
        if (p[len] == '\0')
            break;
        p += len + 1;
    }
    if (err != LST_OK)
        va_readvis_cleanup(c);
    return err;
}

enum va_readvis va_readvis_of(const struct va_readvis_cfg *c, const char *category)
{
    for (size_t i = 0; category != NULL && i < c->n; i++) {
        if (strcmp(c->items[i].category, category) == 0)
            return c->items[i].vis;
    }
    return c->def;
}

bool va_readvis_any_off(const struct va_readvis_cfg *c)
{
    for (size_t i = 0; i < c->n; i++) {
        if (c->items[i].vis == VA_READ_OFF)
            return true;
    }
    return c->def == VA_READ_OFF;
}

void va_readvis_off_json(const struct va_readvis_cfg *c, struct lst_buf *b)
{
    bool first = true;
    lst_buf_puts(b, "[");
    for (size_t i = 0; i < c->n; i++) {
        if (c->items[i].vis != VA_READ_OFF)
            continue;
        if (!first)
            lst_buf_puts(b, ",");
        lst_buf_json_str(b, c->items[i].category, strlen(c->items[i].category));
        first = false;
    }
    if (c->def == VA_READ_OFF)
        lst_buf_puts(b, first ? "\"*\"" : ",\"*\"");
    lst_buf_puts(b, "]");
}

const char *va_readvis_state(enum va_readvis v, const char *state)
{
    if (v == VA_READ_PERSON || state == NULL)
        return state;
    if (strcmp(state, "read") == 0 || strcmp(state, "acknowledged") == 0 ||
        strcmp(state, "declined") == 0)
        return "delivered";
    return state;
}

bool va_readvis_filter(const struct va_readvis_cfg *c, struct va_filter *f, struct lst_buf *why)
{
    f->readvis = c;
    if (f->status != VA_ST_UNREAD)
        return true;
    for (size_t i = 0; i < f->categories.len; i++) {
        if (va_readvis_of(c, f->categories.items[i]) == VA_READ_OFF) {
            lst_buf_printf(why, "status=unread: read information is off for category '%s'",
                           f->categories.items[i]);
            return false;
        }
    }
    return true;
}
