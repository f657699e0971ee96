#include <string.h>

#include "lst/error.h"
#include "lst/log.h"
#include "lst/util.h"
#include "lst_test.h"

static void test_strerror_covers_every_code(void)
{
    for (int e = 0; e < LST_ERR__COUNT; e++) {
        CHECK(strcmp(lst_strerror((lst_err)e), "unknown error") != 0);
        CHECK(strcmp(lst_err_name((lst_err)e), "unknown") != 0);
    }
    CHECK_STREQ(lst_strerror((lst_err)999), "unknown error");
    CHECK_STREQ(lst_err_name(LST_ERR_TOO_LARGE), "too_large");
}

static void test_parse_i64(void)
{
    int64_t v = 0;
    CHECK_EQ(lst_parse_i64("42", 0, 100, &v), LST_OK);
    CHECK_EQ(v, 42);
    CHECK_EQ(lst_parse_i64("-5", -10, 10, &v), LST_OK);
    CHECK_EQ(v, -5);
    CHECK_EQ(lst_parse_i64("101", 0, 100, &v), LST_ERR_RANGE);
    CHECK_EQ(lst_parse_i64("99999999999999999999", 0, INT64_MAX, &v), LST_ERR_RANGE);
    CHECK_EQ(lst_parse_i64("12abc", 0, 100, &v), LST_ERR_INVALID);
    CHECK_EQ(lst_parse_i64(" 12", 0, 100, &v), LST_ERR_INVALID);
    CHECK_EQ(lst_parse_i64("", 0, 100, &v), LST_ERR_INVALID);
}

static void test_parse_double_and_bool(void)
{
    double d = 0;
    bool b = false;
    CHECK_EQ(lst_parse_double("0.5", 0, 1, &d), LST_OK);
    CHECK(d == 0.5);
    CHECK_EQ(lst_parse_double("nan", 0, 1, &d), LST_ERR_INVALID);
    CHECK_EQ(lst_parse_double("2", 0, 1, &d), LST_ERR_RANGE);
    CHECK_EQ(lst_parse_bool("Yes", &b), LST_OK);
    CHECK(b);
    CHECK_EQ(lst_parse_bool("off", &b), LST_OK);
    CHECK(!b);
    CHECK_EQ(lst_parse_bool("maybe", &b), LST_ERR_INVALID);
}

static void test_utf8(void)
{
    CHECK(lst_utf8_valid("h\xC3\xA9llo", 6));
    CHECK(lst_utf8_valid("\xF0\x9F\x9A\x9A", 4));
    CHECK(!lst_utf8_valid("\xC0\xAF", 2));         /* overlong */
    CHECK(!lst_utf8_valid("\xED\xA0\x80", 3));     /* surrogate */
    CHECK(!lst_utf8_valid("\xF4\x90\x80\x80", 4)); /* > U+10FFFF */
    CHECK(!lst_utf8_valid("\xE2\x82", 2));         /* truncated */
}

static void test_buf_json(void)
{
    struct lst_buf b;
    lst_buf_init(&b);
    lst_buf_json_str(&b, "a\"b\\c\n\x01\xFF", 8);
    CHECK_STREQ(b.data, "\"a\\\"b\\\\c\\n\\u0001\xEF\xBF\xBD\"");
    lst_buf_reset(&b);
    for (int i = 0; i < 1000; i++)
        lst_buf_printf(&b, "%d,", i);
    CHECK(!lst_buf_failed(&b));
    CHECK(strncmp(b.data, "0,1,2,", 6) == 0);
    char *s = lst_buf_steal(&b);
    CHECK(b.data == NULL && b.len == 0);
    free(s);
    lst_buf_cleanup(&b);
}

static void test_log_line_and_secret_guard(void)
{
    struct lst_buf out;
    lst_buf_init(&out);
    lst_log_init("unit", LST_LOG_INFO);
    CHECK_EQ(lst_log_add_secret("hunter22secret"), LST_OK);
    lst_log_format(&out, LST_LOG_WARN, "test.event", "token=hunter22secret end \"q\"");
    CHECK(strstr(out.data, "hunter22") == NULL);
    CHECK(strstr(out.data, "[redacted]") != NULL);
    CHECK(strstr(out.data, "\"level\":\"warn\"") != NULL);
    CHECK(strstr(out.data, "\"event\":\"test.event\"") != NULL);
    CHECK(strstr(out.data, "\"service\":\"unit\"") != NULL);
    CHECK(strstr(out.data, "end \\\"q\\\"") != NULL);
    CHECK(out.data[out.len - 1] == '\n');
    /* The longest registered secret wins; registering twice is harmless. */
    CHECK_EQ(lst_log_add_secret("abcd"), LST_OK);
    CHECK_EQ(lst_log_add_secret("abcdefgh"), LST_OK);
    CHECK_EQ(lst_log_add_secret("abcd"), LST_OK);
    lst_buf_reset(&out);
    lst_log_format(&out, LST_LOG_INFO, "test.event", "x abcdefgh y");
    CHECK(strstr(out.data, "efgh") == NULL);
    lst_log_clear_secrets();
    lst_buf_cleanup(&out);
}

static int evaluated;
static int side_effect(void)
{
    return ++evaluated;
}

static void test_log_level_gate(void)
{
    enum lst_log_level lvl;
    CHECK_EQ(lst_log_parse_level("WARNING", &lvl), LST_OK);
    CHECK_EQ(lvl, LST_LOG_WARN);
    CHECK_EQ(lst_log_parse_level("loud", &lvl), LST_ERR_INVALID);
    lst_log_set_level(LST_LOG_ERROR);
    evaluated = 0;
    LST_INFO("test.skipped", "%d", side_effect());
    CHECK_EQ(evaluated, 0);
    lst_log_set_level(LST_LOG_INFO);
}

LST_TEST_MAIN(T(test_strerror_covers_every_code), T(test_parse_i64), T(test_parse_double_and_bool),
              T(test_utf8), T(test_buf_json), T(test_log_line_and_secret_guard),
              T(test_log_level_gate))
