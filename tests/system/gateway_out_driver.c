/* System-test and benchmark helper of gateway-out: produces lst.outbound requests and collects
 * lst.sent outcomes through the shared Kafka module.
 *
 *   gateway_out_driver produce TOPIC RECIPIENTS_TSV [options]
 *       RECIPIENTS_TSV lines: employee_id TAB threema_id TAB phone TAB email ("-" = none)
 *       --count N          requests (cycling through the recipients; default one each)
 *       --address id|phone|email   which address field each request carries [id]
 *       --kind text|location|file|image   [text]
 *       --text S           the text [a short text with the sequence number]
 *       --per-message M    M consecutive requests share one message ID (a fan-out) [1]
 *       --blob SHA --mime M --size N [--thumb SHA]   file/image content
 *       --no-receipts --no-push
 *       --raw VALUE        produce VALUE as is (key "raw"), once, instead of requests
 *       --repeat-file F    produce the values of F (one per line, key before a TAB) again
 *       --save F           write "key TAB value" of every produced record to F
 *     prints the request IDs, one per line, on stdout.
 *   gateway_out_driver collect TOPIC EXPECT TIMEOUT_MS
 *       reads TOPIC from the start with a fresh group until EXPECT distinct request IDs were
 *       seen (or the timeout), printing one TSV line per record:
 *       request_id outcome code http_status possible_duplicate threema_message_id attempts
 *       exit 0 when EXPECT were seen, 1 otherwise. A TOPIC ending in ".dlq" prints
 *       "source_offset error reason" instead and counts records.
 *
 * Environment: LST_KAFKA_BROKERS [127.0.0.1:19092]. Exit 2 for usage errors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lst/kafka.h"
#include "lst/log.h"
#include "lst/records.h"
#include "lst/util.h"

#define MAX_RCPT 4096

struct rcpt {
    char *employee, *id, *phone, *email;
    char *line; /* owns the strings above */
};

struct opts {
    int64_t count;
    char *address, *kind, *text, *blob, *mime, *thumb, *raw, *save, *repeat;
    int64_t size, per_message;
    bool no_receipts, no_push;
};

static char *field(char **p)
{
    char *s = *p, *tab = strchr(s, '\t');
    if (tab != NULL) {
        *tab = '\0';
        *p = tab + 1;
    } else {
        *p = s + strlen(s);
    }
    return strcmp(s, "-") == 0 || s[0] == '\0' ? NULL : s;
}

static size_t load_rcpts(const char *path, struct rcpt *r)
{
    FILE *f = fopen(path, "r");
    size_t n = 0;
    char line[1024];
    if (f == NULL)
        return 0;
    while (n < MAX_RCPT && fgets(line, sizeof(line), f) != NULL) {
        line[strcspn(line, "\r\n")] = '\0';
        char *copy = lst_strdup(line), *p = copy;
        if (copy == NULL)
            break;
        r[n].employee = field(&p);
        r[n].id = field(&p);
        r[n].phone = field(&p);
        r[n].email = field(&p);
        r[n].line = copy;
        if (r[n].employee != NULL)
            n++;
        else
            free(copy);
    }
    fclose(f);
    return n;
}

static char s_place[] = "Depot Hannover", s_address[] = "Lahe 1, Hannover", s_pdf[] = "tour.pdf",
            s_jpg[] = "photo.jpg", s_caption[] = "Leitstand", s_jpeg[] = "image/jpeg",
            s_id[] = "id", s_text[] = "text", s_mime[] = "application/pdf", s_none[] = "ZZZZZZZZ";

static void fill_content(const struct opts *o, int64_t seq, struct lst_content *c, char *text,
                         size_t cap)
{
    memset(c, 0, sizeof(*c));
    if (strcmp(o->kind, "location") == 0) {
        c->kind = LST_CONTENT_LOCATION;
        c->lat = 52.3759;
        c->lon = 9.7320;
        c->has_accuracy = true;
        c->accuracy = 12.5;
        c->name = s_place;
        c->address = s_address;
    } else if (strcmp(o->kind, "file") == 0 || strcmp(o->kind, "image") == 0) {
        c->kind = strcmp(o->kind, "file") == 0 ? LST_CONTENT_FILE : LST_CONTENT_IMAGE;
        c->blob = o->blob;
        c->mime = o->mime;
        c->size = o->size;
        c->filename = c->kind == LST_CONTENT_FILE ? s_pdf : s_jpg;
        c->caption = s_caption;
        if (o->thumb != NULL) {
            c->thumbnail_blob = o->thumb;
            c->thumbnail_mime = s_jpeg;
        }
    } else {
        c->kind = LST_CONTENT_TEXT;
        if (o->text != NULL)
            snprintf(text, cap, "%s", o->text);
        else
            snprintf(text, cap, "Leitstand test message %lld: please confirm the tour.",
                     (long long)seq);
        c->text = text;
    }
}

static lst_err produce_one(struct lst_kafka_producer *p, const char *topic, const char *key,
                           const char *value, size_t len, FILE *save)
{
    lst_err err;
    for (int i = 0; i < 1000; i++) {
        err = lst_kafka_produce_async(p, topic, key, strlen(key), value, len, NULL, NULL);
        if (err != LST_ERR_KAFKA)
            break;
        lst_sleep_ms(10, NULL); /* queue full */
    }
    if (err == LST_OK && save != NULL)
        fprintf(save, "%s\t%.*s\n", key, (int)len, value);
    return err;
}

static int produce_requests(struct lst_kafka_producer *p, const char *topic, struct rcpt *r,
                            size_t n, const struct opts *o, FILE *save)
{
    char msgid[LST_MESSAGE_ID_LEN + 1] = "";
    char text[256];
    struct lst_buf out, rid;
    lst_buf_init(&out);
    lst_buf_init(&rid);
    int64_t count = o->count > 0 ? o->count : (int64_t)n;
    int rc = 0;
    for (int64_t i = 0; i < count && rc == 0; i++) {
        const struct rcpt *x = &r[i % (int64_t)n];
        struct lst_outbound ob;
        memset(&ob, 0, sizeof(ob));
        if (i % o->per_message == 0)
            lst_message_id_new(lst_wall_ms(), msgid);
        lst_request_id_format(&rid, msgid, x->employee);
        ob.request_id = rid.data;
        ob.message_id = msgid;
        ob.employee_id = x->employee;
        if (strcmp(o->address, "phone") == 0)
            ob.to.phone = x->phone;
        else if (strcmp(o->address, "email") == 0)
            ob.to.email = x->email;
        else
            ob.to.threema_id = x->id;
        if (ob.to.phone == NULL && ob.to.email == NULL && ob.to.threema_id == NULL)
            ob.to.threema_id = x->id ? x->id : s_none;
        fill_content(o, i, &ob.content, text, sizeof(text));
        ob.no_delivery_receipts = o->no_receipts;
        ob.no_push = o->no_push;
        ob.created_at = lst_wall_ms();
        struct lst_buf why;
        lst_buf_init(&why);
        if (lst_outbound_validate(&ob, &why) != LST_OK ||
            lst_outbound_encode(&ob, &out) != LST_OK) {
            fprintf(stderr, "driver: cannot encode request: %s\n", why.data ? why.data : "?");
            rc = 1;
        } else if (produce_one(p, topic, x->employee, out.data, out.len, save) != LST_OK) {
            fprintf(stderr, "driver: produce failed\n");
            rc = 1;
        } else {
            printf("%s\n", rid.data);
        }
        lst_buf_cleanup(&why);
    }
    lst_buf_cleanup(&out);
    lst_buf_cleanup(&rid);
    return rc;
}

static int repeat_file(struct lst_kafka_producer *p, const char *topic, const char *path)
{
    FILE *f = fopen(path, "r");
    static char line[1 << 20];
    int rc = 0;
    if (f == NULL)
        return 1;
    while (rc == 0 && fgets(line, sizeof(line), f) != NULL) {
        line[strcspn(line, "\n")] = '\0';
        char *tab = strchr(line, '\t');
        if (tab == NULL)
            continue;
        *tab = '\0';
        if (produce_one(p, topic, line, tab + 1, strlen(tab + 1), NULL) != LST_OK)
            rc = 1;
    }
    fclose(f);
    return rc;
}

static int cmd_produce(int argc, char **argv, const struct lst_kafka_config *kc)
{
    static struct rcpt r[MAX_RCPT];
    struct opts o = {.address = s_id, .kind = s_text, .per_message = 1, .mime = s_mime};
    if (argc < 4)
        return 2;
    const char *topic = argv[2];
    for (int i = 4; i < argc; i++) {
        const char *a = argv[i];
        char *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool takes = true;
        if (strcmp(a, "--count") == 0 && v)
            lst_parse_i64(v, 0, 100000000, &o.count);
        else if (strcmp(a, "--per-message") == 0 && v)
            lst_parse_i64(v, 1, 2000, &o.per_message);
        else if (strcmp(a, "--size") == 0 && v)
            lst_parse_i64(v, 0, LST_FILE_SIZE_MAX, &o.size);
        else if (strcmp(a, "--address") == 0 && v)
            o.address = v;
        else if (strcmp(a, "--kind") == 0 && v)
            o.kind = v;
        else if (strcmp(a, "--text") == 0 && v)
            o.text = v;
        else if (strcmp(a, "--blob") == 0 && v)
            o.blob = v;
        else if (strcmp(a, "--mime") == 0 && v)
            o.mime = v;
        else if (strcmp(a, "--thumb") == 0 && v)
            o.thumb = v;
        else if (strcmp(a, "--raw") == 0 && v)
            o.raw = v;
        else if (strcmp(a, "--save") == 0 && v)
            o.save = v;
        else if (strcmp(a, "--repeat-file") == 0 && v)
            o.repeat = v;
        else {
            takes = false;
            if (strcmp(a, "--no-receipts") == 0)
                o.no_receipts = true;
            else if (strcmp(a, "--no-push") == 0)
                o.no_push = true;
            else {
                fprintf(stderr, "driver: unknown option %s\n", a);
                return 2;
            }
        }
        if (takes)
            i++;
    }
    struct lst_kafka_producer *p = NULL;
    if (lst_kafka_producer_create(kc, &p) != LST_OK)
        return 1;
    FILE *save = o.save ? fopen(o.save, "w") : NULL;
    int rc;
    if (o.raw != NULL) {
        rc = produce_one(p, topic, "raw", o.raw, strlen(o.raw), save) == LST_OK ? 0 : 1;
    } else if (o.repeat != NULL) {
        rc = repeat_file(p, topic, o.repeat);
    } else {
        size_t n = load_rcpts(argv[3], r);
        rc = n > 0 ? produce_requests(p, topic, r, n, &o, save) : 2;
        for (size_t i = 0; i < n; i++)
            free(r[i].line);
        if (n == 0)
            fprintf(stderr, "driver: no recipients in %s\n", argv[3]);
    }
    if (save != NULL)
        fclose(save);
    if (lst_kafka_producer_flush(p, 60000) != LST_OK)
        rc = 1;
    lst_kafka_producer_destroy(p);
    return rc;
}

/* ---- collect ---- */

struct seen {
    char **ids;
    size_t n, cap;
};

/* Open addressing would be faster; a sorted insert is plenty for tens of thousands. */
static bool seen_add(struct seen *s, const char *id)
{
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(s->ids[mid], id);
        if (c == 0)
            return false;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 1024;
        s->ids = realloc(s->ids, s->cap * sizeof(*s->ids));
    }
    memmove(s->ids + lo + 1, s->ids + lo, (s->n - lo) * sizeof(*s->ids));
    s->ids[lo] = lst_strdup(id);
    s->n++;
    return true;
}

static void print_record(const struct lst_kafka_record *rec, bool dlq, struct seen *s)
{
    if (dlq) {
        struct lst_dlq d;
        if (lst_dlq_decode(rec->value, rec->len, &d, NULL) == LST_OK) {
            printf("%lld\t%s\t%s\n", (long long)d.source_offset, d.error, d.reason);
            char key[32];
            snprintf(key, sizeof(key), "%lld", (long long)rec->offset);
            seen_add(s, key);
            lst_dlq_cleanup(&d);
        }
        return;
    }
    struct lst_sent x;
    struct lst_buf why;
    lst_buf_init(&why);
    if (lst_sent_decode(rec->value, rec->len, &x, &why) != LST_OK) {
        fprintf(stderr, "driver: undecodable lst.sent record: %s\n", why.data ? why.data : "?");
        lst_buf_cleanup(&why);
        return;
    }
    bool ok = x.outcome == LST_SENT_ACCEPTED;
    printf("%s\t%s\t%s\t%lld\t%s\t%s\t%lld\n", x.request_id, ok ? "accepted" : "failed",
           ok ? "ok" : x.failure.code,
           (long long)(!ok && x.failure.has_http_status ? x.failure.http_status : 0),
           x.possible_duplicate ? "dup" : "-", ok ? x.threema_message_id : "-",
           (long long)x.attempts);
    if (ok || x.failure.final)
        seen_add(s, x.request_id);
    lst_sent_cleanup(&x);
    lst_buf_cleanup(&why);
}

static int cmd_collect(int argc, char **argv, const struct lst_kafka_config *kc)
{
    int64_t expect, timeout;
    if (argc < 5 || lst_parse_i64(argv[3], 0, 100000000, &expect) != LST_OK ||
        lst_parse_i64(argv[4], 0, 86400000, &timeout) != LST_OK)
        return 2;
    const char *topic = argv[2];
    size_t tl = strlen(topic);
    bool dlq = tl > 4 && strcmp(topic + tl - 4, ".dlq") == 0;
    char group[128];
    snprintf(group, sizeof(group), "gwout-driver-%lld-%d", (long long)lst_wall_ms(), rand());
    const char *topics[] = {topic};
    struct lst_kafka_consumer_opts co = {.group_id = group, .topics = topics, .ntopics = 1};
    struct lst_kafka_consumer *c = NULL;
    if (lst_kafka_consumer_create(kc, &co, &c) != LST_OK)
        return 1;
    struct seen s = {0};
    int64_t deadline = lst_mono_ms() + timeout;
    while ((int64_t)s.n < expect && lst_mono_ms() < deadline) {
        struct lst_kafka_record rec;
        if (lst_kafka_consumer_poll(c, 200, &rec) != LST_OK)
            continue;
        if (rec.value != NULL)
            print_record(&rec, dlq, &s);
        lst_kafka_record_release(&rec);
    }
    /* A short grace to catch duplicates that follow right behind. */
    int64_t grace = lst_mono_ms() + 1000;
    while ((int64_t)s.n >= expect && lst_mono_ms() < grace) {
        struct lst_kafka_record rec;
        if (lst_kafka_consumer_poll(c, 100, &rec) != LST_OK)
            continue;
        if (rec.value != NULL)
            print_record(&rec, dlq, &s);
        lst_kafka_record_release(&rec);
    }
    fflush(stdout);
    fprintf(stderr, "driver: %zu of %lld distinct\n", s.n, (long long)expect);
    for (size_t i = 0; i < s.n; i++)
        free(s.ids[i]);
    free(s.ids);
    lst_kafka_consumer_destroy(c);
    return (int64_t)s.n >= expect ? 0 : 1;
}

int main(int argc, char **argv)
{
    const char *brokers = getenv("LST_KAFKA_BROKERS");
    struct lst_kafka_config kc = {
        .brokers = brokers ? brokers : "127.0.0.1:19092",
        .client_id = "gateway-out-driver",
        .session_timeout_ms = 6000,
        .message_timeout_ms = 60000,
    };
    lst_log_init("gateway-out-driver", LST_LOG_WARN);
    int rc = 2;
    if (argc >= 2 && strcmp(argv[1], "produce") == 0)
        rc = cmd_produce(argc, argv, &kc);
    else if (argc >= 2 && strcmp(argv[1], "collect") == 0)
        rc = cmd_collect(argc, argv, &kc);
    if (rc == 2)
        fprintf(stderr, "usage: gateway_out_driver produce TOPIC RECIPIENTS [options] | "
                        "collect TOPIC EXPECT TIMEOUT_MS\n");
    return rc;
}
