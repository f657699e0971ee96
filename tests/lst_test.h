/* A minimal unit-test harness: CHECK macros that record failures and keep going, and a main
 * that runs a table of test functions and prints one line per test plus a summary.
 *
 *   static void test_x(void) { CHECK(1 + 1 == 2); CHECK_STREQ(s, "a"); }
 *   LST_TEST_MAIN(T(test_x), T(test_y))
 */
#ifndef LST_TEST_H
#define LST_TEST_H

#include <stdlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int lst_test_failed_checks;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);               \
            lst_test_failed_checks++;                                                              \
        }                                                                                          \
    } while (0)

#define CHECK_EQ(a, b)                                                                             \
    do {                                                                                           \
        long long va_ = (long long)(a), vb_ = (long long)(b);                                      \
        if (va_ != vb_) {                                                                          \
            fprintf(stderr, "%s:%d: CHECK_EQ failed: %s == %lld, %s == %lld\n", __FILE__,          \
                    __LINE__, #a, va_, #b, vb_);                                                   \
            lst_test_failed_checks++;                                                              \
        }                                                                                          \
    } while (0)

#define CHECK_STREQ(a, b)                                                                          \
    do {                                                                                           \
        const char *sa_ = (a), *sb_ = (b);                                                         \
        if (sa_ == NULL || sb_ == NULL || strcmp(sa_, sb_) != 0) {                                 \
            fprintf(stderr, "%s:%d: CHECK_STREQ failed: %s == \"%s\", %s == \"%s\"\n", __FILE__,   \
                    __LINE__, #a, sa_ ? sa_ : "(null)", #b, sb_ ? sb_ : "(null)");                 \
            lst_test_failed_checks++;                                                              \
        }                                                                                          \
    } while (0)

/* Stops the current test function when a precondition for the rest of it fails. */
#define REQUIRE(cond)                                                                              \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: REQUIRE failed: %s\n", __FILE__, __LINE__, #cond);             \
            lst_test_failed_checks++;                                                              \
            return;                                                                                \
        }                                                                                          \
    } while (0)

struct lst_test_case {
    const char *name;
    void (*fn)(void);
};

#define T(fn)                                                                                      \
    {                                                                                              \
#fn, fn                                                                                    \
    }

static inline int lst_test_run(const struct lst_test_case *cases, size_t n)
{
    int passed = 0, failed = 0;
    for (size_t i = 0; i < n; i++) {
        int before = lst_test_failed_checks;
        cases[i].fn();
        if (lst_test_failed_checks == before) {
            passed++;
            printf("ok   %s\n", cases[i].name);
        } else {
            failed++;
            printf("FAIL %s\n", cases[i].name);
        }
        fflush(stdout);
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}

#define LST_TEST_MAIN(...)                                                                         \
    int main(void)                                                                                 \
    {                                                                                              \
        static const struct lst_test_case cases_[] = {__VA_ARGS__};                                \
        return lst_test_run(cases_, sizeof(cases_) / sizeof(cases_[0]));                           \
    }

#endif
