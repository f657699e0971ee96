/* Category rules of incoming messages. Keyword rules are decided here (the text
 * is at hand); department rules need the sender's department, which only Redis
 * knows, so the inbound script evaluates them (and evaluates them again when a
 * sender becomes known later). */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledger.h"

static void rule_cleanup(struct ledger_rule *r)
{
    free(r->category);
    for (size_t i = 0; i < r->nwords; i++)
        free(r->words[i]);
    free(r->words);
}

void ledger_rules_cleanup(struct ledger_rules *r)
{
    for (size_t i = 0; i < r->n; i++)
        rule_cleanup(&r->items[i]);
    free(r->items);
    r->items = NULL;
    r->n = 0;
}

static char *dup_trim(const char *s, size_t len, bool lower)
{
    while (len > 0 && isspace((unsigned char)*s)) {
        s++;
        len--;
    }
    while (len > 0 && isspace((unsigned char)s[len - 1]))
        len--;
    char *out = malloc(len + 1);
    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < len; i++)
        out[i] = lower ? (char)tolower((unsigned char)s[i]) : s[i];
    out[len] = '\0';
    return out;
}

static bool slug_ok(const char *s)
{
    if (!isalnum((unsigned char)s[0]) || strlen(s) > LST_SLUG_MAX)
        return false;
    for (; *s; s++) {
        if (!(islower((unsigned char)*s) || isdigit((unsigned char)*s) || *s == '.' || *s == '_' ||
              *s == '-'))
            return false;
    }
    return true;
}

static lst_err push_word(struct ledger_rule *r, const char *s, size_t len, bool lower)
{
    char *w = dup_trim(s, len, lower);
    if (w == NULL)
        return LST_ERR_NOMEM;
    if (w[0] == '\0' || strchr(w, '\t') != NULL || strchr(w, '\n') != NULL) {
        free(w);
        return LST_ERR_INVALID;
    }
    char **words = realloc(r->words, (r->nwords + 1) * sizeof(*words));
    if (words == NULL) {
        free(w);
        return LST_ERR_NOMEM;
    }
    r->words = words;
    r->words[r->nwords++] = w;
    return LST_OK;
}

/* "<cat>=keyword:a,b" or "<cat>=department:X" (one entry, not NUL-terminated).
 */
static lst_err parse_one(struct ledger_rule *r, const char *s, size_t len, struct lst_buf *why)
{
    const char *eq = memchr(s, '=', len);
    const char *colon = eq ? memchr(eq, ':', len - (size_t)(eq - s)) : NULL;
    lst_err err = LST_ERR_INVALID;

    if (eq == NULL || colon == NULL) {
        lst_buf_printf(why, "rule without '<category>=<kind>:<value>'");
        return LST_ERR_INVALID;
    }
    r->category = dup_trim(s, (size_t)(eq - s), false);
    char *kind = dup_trim(eq + 1, (size_t)(colon - eq - 1), true);
    const char *val = colon + 1;
    size_t vlen = len - (size_t)(val - s);
    if (r->category == NULL || kind == NULL) {
        free(kind);
        return LST_ERR_NOMEM;
    }
    if (!slug_ok(r->category)) {
        lst_buf_printf(why, "category must match ^[a-z0-9][a-z0-9._-]*$");
    } else if (strcmp(kind, "keyword") == 0) {
        r->kind = LEDGER_RULE_KEYWORD;
        err = LST_OK;
        while (err == LST_OK && vlen > 0) {
            const char *comma = memchr(val, ',', vlen);
            size_t wlen = comma ? (size_t)(comma - val) : vlen;
            err = push_word(r, val, wlen, true);
            vlen -= comma ? wlen + 1 : wlen;
            val += comma ? wlen + 1 : wlen;
        }
        if (err == LST_OK && r->nwords == 0)
            err = LST_ERR_INVALID;
        if (err == LST_ERR_INVALID)
            lst_buf_printf(why, "keyword rule needs non-empty words");
    } else if (strcmp(kind, "department") == 0) {
        r->kind = LEDGER_RULE_DEPARTMENT;
        err = push_word(r, val, vlen, false);
        if (err == LST_ERR_INVALID)
            lst_buf_printf(why, "department rule needs a department name");
    } else {
        lst_buf_printf(why, "rule kind must be keyword or department");
    }
    free(kind);
    return err;
}

static bool blank_or_comment(const char *s, size_t len)
{
    while (len > 0 && isspace((unsigned char)*s)) {
        s++;
        len--;
    }
    return len == 0 || *s == '#';
}

lst_err ledger_rules_parse(struct ledger_rules *r, const char *text, struct lst_buf *why)
{
    const char *s = text;
    while (s != NULL && *s != '\0') {
        size_t len = strcspn(s, ";\n");
        if (!blank_or_comment(s, len)) {
            struct ledger_rule *items = realloc(r->items, (r->n + 1) * sizeof(*items));
            if (items == NULL)
                return LST_ERR_NOMEM;
            r->items = items;
            struct ledger_rule *rule = &r->items[r->n];
            *rule = (struct ledger_rule){0};
            lst_err err = parse_one(rule, s, len, why);
            if (err != LST_OK) {
                rule_cleanup(rule);
                lst_buf_printf(why, " (rule %zu)", r->n + 1);
                return err;
            }
            r->n++;
        }
        s += len;
        if (*s != '\0')
            s++;
    }
    return LST_OK;
}

static lst_err read_file(const char *path, struct lst_buf *out)
{
    FILE *f = fopen(path, "r");
    char chunk[4096];
    size_t n;
    lst_err err = LST_OK;

    if (f == NULL)
        return errno == ENOENT ? LST_ERR_NOT_FOUND : LST_ERR_IO;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0 && err == LST_OK)
        err = lst_buf_append(out, chunk, n);
    if (ferror(f))
        err = LST_ERR_IO;
    fclose(f);
    return err;
}

lst_err ledger_rules_load(struct ledger_rules *r, const char *inline_rules, const char *file,
                          struct lst_buf *why)
{
    struct lst_buf text;
    lst_err err = LST_OK;

    lst_buf_init(&text);
    if (inline_rules != NULL) {
        err = ledger_rules_parse(r, inline_rules, why);
        if (err != LST_OK)
            lst_buf_printf(why, " in LST_LEDGER_RULES");
    }
    if (err == LST_OK && file != NULL) {
        err = read_file(file, &text);
        if (err != LST_OK)
            lst_buf_printf(why, "cannot read %s: %s", file, lst_strerror(err));
        else if (text.len > 0)
            err = ledger_rules_parse(r, text.data, why);
        if (err == LST_ERR_INVALID)
            lst_buf_printf(why, " in %s", file);
    }
    lst_buf_cleanup(&text);
    return err;
}

/* ASCII case-insensitive substring search; word is lowercase already. */
static bool contains(const char *hay, const char *word)
{
    size_t wl = strlen(word);
    if (hay == NULL)
        return false;
    for (const char *p = hay; *p != '\0'; p++) {
        size_t i = 0;
        while (i < wl && p[i] != '\0' && (char)tolower((unsigned char)p[i]) == word[i])
            i++;
        if (i == wl)
            return true;
    }
    return false;
}

lst_err ledger_rules_candidates(const struct ledger_rules *r, const char *text, const char *caption,
                                struct lst_buf *out)
{
    lst_buf_reset(out);
    for (size_t i = 0; i < r->n; i++) {
        const struct ledger_rule *rule = &r->items[i];
        if (rule->kind == LEDGER_RULE_DEPARTMENT) {
            lst_buf_printf(out, "d\t%s\t%s\n", rule->words[0], rule->category);
            continue;
        }
        for (size_t w = 0; w < rule->nwords; w++) {
            if (contains(text, rule->words[w]) || contains(caption, rule->words[w])) {
                lst_buf_printf(out, "k\t%s\n", rule->category);
                return lst_buf_failed(out) ? LST_ERR_NOMEM : LST_OK;
            }
        }
    }
    return lst_buf_failed(out) ? LST_ERR_NOMEM : LST_OK;
}
