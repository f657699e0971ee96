/* The shared Gateway settings section: names, defaults, required key variant, the client and
 * private-key helpers. */
#include <string.h>

#include "lst/gateway_config.h"
#include "lst_test.h"

struct kv {
    const char *k, *v;
};

static const char *env_get(const char *name, void *ud)
{
    for (const struct kv *e = ud; e->k != NULL; e++)
        if (strcmp(e->k, name) == 0)
            return e->v;
    return NULL;
}

#define SK "private:40627ae49d3f0d0b7b3c6a3e1b4f0a5e2d9c8b7a6f5e4d3c2b1a0f9e8d7c6b5a"

static lst_err load(struct lst_config_section sec, struct kv *env, struct lst_buf *errors)
{
    struct lst_config_source src = {env_get, env};
    lst_buf_reset(errors);
    return lst_config_load(&sec, 1, &src, errors);
}

static void test_defaults_and_names(void)
{
    struct lst_gateway_settings s;
    struct lst_buf errors;
    memset(&s, 0, sizeof(s));
    lst_buf_init(&errors);
    struct kv env[] = {{"LST_GATEWAY_ID", "*LSTDEMO"}, {"LST_GATEWAY_SECRET", "s3cr3t"}, {0}};
    struct lst_config_section sec = lst_gateway_config_section(&s);
    CHECK_EQ(load(sec, env, &errors), LST_OK);
    CHECK_STREQ(s.url, "http://127.0.0.1:18090");
    CHECK_STREQ(s.gateway_id, "*LSTDEMO");
    CHECK_STREQ(s.secret, "s3cr3t");
    CHECK(s.private_key == NULL);
    CHECK_EQ(s.connect_timeout_ms, 5000);
    CHECK_EQ(s.timeout_ms, 30000);
    CHECK(s.ca_file == NULL);
    CHECK_EQ(s.max_blob, 20971520);

    struct lst_gateway *gw = NULL;
    CHECK_EQ(lst_gateway_settings_client(&s, &gw), LST_OK);
    CHECK(gw != NULL);
    lst_gateway_destroy(gw);

    uint8_t sk[LST_THREEMA_KEY_SIZE];
    CHECK_EQ(lst_gateway_settings_private_key(&s, sk, &errors), LST_ERR_CONFIG);
    lst_config_cleanup(&sec, 1);
    lst_buf_cleanup(&errors);
}

static void test_key_required_and_checks(void)
{
    struct lst_gateway_settings s;
    struct lst_buf errors;
    memset(&s, 0, sizeof(s));
    lst_buf_init(&errors);
    struct lst_config_section sec = lst_gateway_config_section_with_key(&s);
    struct kv bad[] = {{"LST_GATEWAY_ID", "LSTDEMO"},
                       {"LST_GATEWAY_SECRET", "x"},
                       {"LST_GATEWAY_URL", "ftp://x"},
                       {0}};
    CHECK_EQ(load(sec, bad, &errors), LST_ERR_CONFIG);
    CHECK(strstr(errors.data, "LST_GATEWAY_ID") != NULL);
    CHECK(strstr(errors.data, "LST_GATEWAY_URL") != NULL);
    CHECK(strstr(errors.data, "LST_PRIVATE_KEY") != NULL);
    lst_config_cleanup(&sec, 1);

    struct kv good[] = {{"LST_GATEWAY_ID", "*LSTDEMO"},
                        {"LST_GATEWAY_SECRET", "x"},
                        {"LST_PRIVATE_KEY", SK},
                        {"LST_GATEWAY_TIMEOUT_MS", "1500"},
                        {0}};
    CHECK_EQ(load(sec, good, &errors), LST_OK);
    CHECK_EQ(s.timeout_ms, 1500);
    uint8_t sk[LST_THREEMA_KEY_SIZE];
    CHECK_EQ(lst_gateway_settings_private_key(&s, sk, &errors), LST_OK);
    CHECK_EQ(sk[0], 0x40);
    CHECK_EQ(sk[31], 0x5a);
    struct lst_gateway_config cc;
    lst_gateway_settings_client_config(&s, &cc);
    CHECK_EQ(cc.timeout_ms, 1500);
    CHECK_STREQ(cc.gateway_id, "*LSTDEMO");
    lst_config_cleanup(&sec, 1);
    lst_buf_cleanup(&errors);
}

/* The two tables differ only in LST_PRIVATE_KEY's REQUIRED flag. */
static void test_tables_agree(void)
{
    struct lst_gateway_settings s;
    struct lst_config_section a = lst_gateway_config_section(&s);
    struct lst_config_section b = lst_gateway_config_section_with_key(&s);
    REQUIRE(a.n == b.n);
    CHECK_EQ(a.n, lst_gateway_config_nentries);
    for (size_t i = 0; i < a.n; i++) {
        const struct lst_config_entry *x = &a.entries[i], *y = &b.entries[i];
        CHECK_STREQ(x->name, y->name);
        CHECK_EQ(x->type, y->type);
        CHECK(x->def == y->def || (x->def && y->def && strcmp(x->def, y->def) == 0));
        CHECK_EQ(x->min, y->min);
        CHECK_EQ(x->max, y->max);
        CHECK_EQ(x->max_len, y->max_len);
        CHECK_EQ(x->offset, y->offset);
        CHECK(x->check == y->check);
        if (strcmp(x->name, "LST_PRIVATE_KEY") == 0) {
            CHECK_EQ(x->flags, LST_CONFIG_SENSITIVE);
            CHECK_EQ(y->flags, LST_CONFIG_SENSITIVE | LST_CONFIG_REQUIRED);
        } else {
            CHECK_EQ(x->flags, y->flags);
        }
    }
}

LST_TEST_MAIN(T(test_defaults_and_names), T(test_key_required_and_checks), T(test_tables_agree))
