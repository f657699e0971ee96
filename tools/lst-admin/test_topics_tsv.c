/* Unit tests of lst-admin's topic-table parser, including the real proto/topics.tsv. */
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "lst_test.h"

static void test_parses_rows_comments_and_blank_lines(void)
{
    struct lst_admin_topics t = {0};
    char err[256] = "";
    const char *text = "# header\tcomment\n"
                       "\n"
                       "a.b\t6\tdelete\tkey\tp\tc\n"
                       "   # indented comment\n"
                       "c_d-e\t3\tcompact\r\n"
                       "last\t1\tdelete"; /* no final newline */
    REQUIRE(lst_admin_topics_parse(text, NULL, &t, err, sizeof(err)) == LST_OK);
    REQUIRE(t.n == 3);
    CHECK_STREQ(t.v[0].name, "a.b");
    CHECK_EQ(t.v[0].partitions, 6);
    CHECK_STREQ(t.v[0].cleanup, "delete");
    CHECK_STREQ(t.v[1].name, "c_d-e");
    CHECK_STREQ(t.v[1].cleanup, "compact");
    CHECK_STREQ(t.v[2].name, "last");
    CHECK_EQ(t.v[2].partitions, 1);
    lst_admin_topics_cleanup(&t);
    CHECK(t.v == NULL && t.n == 0);
}

static void test_prefix_is_applied(void)
{
    struct lst_admin_topics t = {0};
    char err[256] = "";
    REQUIRE(lst_admin_topics_parse("x\t2\tdelete\n", "test1-", &t, err, sizeof(err)) == LST_OK);
    REQUIRE(t.n == 1);
    CHECK_STREQ(t.v[0].name, "test1-x");
    lst_admin_topics_cleanup(&t);
}

static void expect_error(const char *text, const char *prefix, lst_err want, const char *needle)
{
    struct lst_admin_topics t = {0};
    char err[256] = "";
    lst_err e = lst_admin_topics_parse(text, prefix, &t, err, sizeof(err));
    CHECK_EQ(e, want);
    CHECK(t.n == 0 && t.v == NULL);
    if (strstr(err, needle) == NULL) {
        fprintf(stderr, "error '%s' lacks '%s'\n", err, needle);
        CHECK(0);
    }
}

static void test_rejects_bad_rows(void)
{
    expect_error("a\t0\tdelete\n", NULL, LST_ERR_RANGE, "line 1: partitions '0'");
    expect_error("a\t10001\tdelete\n", NULL, LST_ERR_RANGE, "partitions");
    expect_error("# c\na\tsix\tdelete\n", NULL, LST_ERR_INVALID, "line 2: partitions 'six'");
    expect_error("a\t6x\tdelete\n", NULL, LST_ERR_INVALID, "partitions");
    expect_error("a\t-1\tdelete\n", NULL, LST_ERR_RANGE, "partitions");
    expect_error("a\t\tdelete\n", NULL, LST_ERR_INVALID, "partitions");
    expect_error("a 6 delete\n", NULL, LST_ERR_INVALID, "columns");
    expect_error("a\t6\n", NULL, LST_ERR_INVALID, "columns");
    expect_error("a\t6\tkeep\n", NULL, LST_ERR_INVALID, "cleanup 'keep'");
    expect_error("a/b\t6\tdelete\n", NULL, LST_ERR_INVALID, "not a valid Kafka topic name");
    expect_error("\t6\tdelete\n", NULL, LST_ERR_INVALID, "not a valid Kafka topic name");
    expect_error("a\t6\tdelete\n", "bad prefix ", LST_ERR_INVALID, "not a valid");
    expect_error("a\t6\tdelete\nb\t1\tdelete\na\t2\tdelete\n", NULL, LST_ERR_INVALID,
                 "line 3: topic 'a' is listed twice");
    expect_error("# only comments\n\n", NULL, LST_ERR_INVALID, "no topics");
}

static void test_topic_name_rules(void)
{
    CHECK(lst_admin_topic_name_valid("lst.outbound"));
    CHECK(lst_admin_topic_name_valid("A-Z_0.9"));
    CHECK(!lst_admin_topic_name_valid(""));
    CHECK(!lst_admin_topic_name_valid("."));
    CHECK(!lst_admin_topic_name_valid(".."));
    CHECK(!lst_admin_topic_name_valid("a b"));
    char longname[251];
    memset(longname, 'a', 250);
    longname[250] = '\0';
    CHECK(!lst_admin_topic_name_valid(longname));
    longname[249] = '\0';
    CHECK(lst_admin_topic_name_valid(longname));
}

static void test_loads_the_project_table(void)
{
    const char *src = getenv("LST_SOURCE_DIR");
    REQUIRE(src != NULL);
    char path[1024];
    snprintf(path, sizeof(path), "%s/proto/topics.tsv", src);
    struct lst_admin_topics t = {0};
    char err[256] = "";
    lst_err e = lst_admin_topics_load(path, NULL, &t, err, sizeof(err));
    if (e != LST_OK)
        fprintf(stderr, "load: %s\n", err);
    REQUIRE(e == LST_OK);
    int outbound = 0;
    for (size_t i = 0; i < t.n; i++) {
        if (strcmp(t.v[i].name, "lst.outbound") == 0)
            outbound = t.v[i].partitions;
    }
    CHECK(outbound >= 6);
    lst_admin_topics_cleanup(&t);
}

static void test_missing_file(void)
{
    struct lst_admin_topics t = {0};
    char err[256] = "";
    CHECK_EQ(lst_admin_topics_load("/nonexistent/topics.tsv", NULL, &t, err, sizeof(err)),
             LST_ERR_IO);
    CHECK(strstr(err, "cannot open") != NULL);
}

LST_TEST_MAIN(T(test_parses_rows_comments_and_blank_lines), T(test_prefix_is_applied),
              T(test_rejects_bad_rows), T(test_topic_name_rules), T(test_loads_the_project_table),
              T(test_missing_file))
