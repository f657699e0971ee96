/* The view API's token file (services/view-api/auth.c): the four-field lines of before still
 * load as they did; an optional display name is the rest of the line (blanks inside kept,
 * around it dropped) and must pass lst.message's dispatcher_name rules (at most 256 bytes of
 * UTF-8, no control characters), refused with the line number otherwise. */
#include <sodium.h>
#include <string.h>

#include "lst_test.h"
#include "view_api.h"

#define H1 "e75bb256f0d50d8ba6093a3f92c66878af759c1e7430494e2fd83a6f1a6a6caa"
#define H2 "0000000000000000000000000000000000000000000000000000000000000001"

/* Parses text; the error message (or "") in why_out. */
static lst_err parse(const char *text, struct va_tokens *t, char *why_out, size_t cap)
{
    struct lst_buf why;
    lst_buf_init(&why);
    memset(t, 0, sizeof(*t));
    lst_err err = va_tokens_parse(t, text, &why);
    snprintf(why_out, cap, "%s", why.data != NULL ? why.data : "");
    lst_buf_cleanup(&why);
    return err;
}

static void test_old_format(void)
{
    struct va_tokens t;
    char why[256];
    CHECK_EQ(parse("# c\n" H1 " admin erp -\n\n" H2 "\tdispatcher anna Dispo-Nord\r\n", &t, why,
                   sizeof(why)),
             LST_OK);
    REQUIRE(t.n == 2);
    CHECK_STREQ(t.items[0].user, "erp");
    CHECK(t.items[0].department == NULL);
    CHECK(t.items[0].name == NULL);
    CHECK_EQ(t.items[1].role, VA_ROLE_DISPATCHER);
    CHECK_STREQ(t.items[1].department, "Dispo-Nord");
    CHECK(t.items[1].name == NULL);
    va_tokens_cleanup(&t);
}

static void test_display_name(void)
{
    struct va_tokens t;
    char why[256];
    CHECK_EQ(parse(H1 " dispatcher anna Dispo-Nord   Anna  Schmidt \t\r\n" H2
                      " dispatcher jörg - Jörg Müller-Lüdenscheidt\n",
                   &t, why, sizeof(why)),
             LST_OK);
    REQUIRE(t.n == 2);
    CHECK_STREQ(t.items[0].name, "Anna  Schmidt");
    CHECK_STREQ(t.items[0].department, "Dispo-Nord");
    CHECK(t.items[1].department == NULL);
    CHECK_STREQ(t.items[1].name, "Jörg Müller-Lüdenscheidt");
    /* the token's entry carries it (the sender of lst.message) */
    const char *tok = "x";
    unsigned char h[32];
    crypto_hash_sha256(h, (const unsigned char *)tok, 1);
    sodium_bin2hex(why, sizeof(why), h, sizeof(h));
    va_tokens_cleanup(&t);
    char line[512];
    snprintf(line, sizeof(line), "%s dispatcher bob Dispo-Süd Bob Baumann\n", why);
    CHECK_EQ(parse(line, &t, why, sizeof(why)), LST_OK);
    const struct va_token *who = va_tokens_find(&t, tok, 1);
    REQUIRE(who != NULL);
    CHECK_STREQ(who->name, "Bob Baumann");
    va_tokens_cleanup(&t);
}

static void refused(const char *text, const char *want)
{
    struct va_tokens t;
    char why[256];
    CHECK_EQ(parse(text, &t, why, sizeof(why)), LST_ERR_CONFIG);
    if (strstr(why, want) == NULL) {
        fprintf(stderr, "  why: %s, want %s\n", why, want);
        lst_test_failed_checks++;
    }
    CHECK_EQ(t.n, 0);
    va_tokens_cleanup(&t);
}

static void test_bad_names(void)
{
    char line[600];
    char name[300];
    memset(name, 'a', 257);
    name[257] = '\0';
    snprintf(line, sizeof(line), H1 " dispatcher anna - %s\n", name);
    refused(line, "line 1: display name longer than 256 bytes");
    name[256] = '\0'; /* 256 bytes: the limit itself is fine */
    snprintf(line, sizeof(line), H1 " dispatcher anna - %s\n", name);
    struct va_tokens t;
    char why[256];
    CHECK_EQ(parse(line, &t, why, sizeof(why)), LST_OK);
    CHECK_EQ(strlen(t.items[0].name), 256);
    va_tokens_cleanup(&t);
    refused("# c\n" H1 " dispatcher anna - Anna\tSchmidt\n", "line 2: display name with a control");
    refused(H1 " dispatcher anna - Anna \xff\n", "display name is not UTF-8");
    refused(H1 " dispatcher anna\n", "expected '<sha256 hex> <role> <user> <department|->");
}

LST_TEST_MAIN(T(test_old_format), T(test_display_name), T(test_bad_names))
