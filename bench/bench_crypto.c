/* bench_crypto: operations per second on one core for a typical 200-byte text message.
 *
 * Ours, the full path of lst/threema.h:
 *   seal   lst_threema_msg_seal: encode the text body, pad (random 1..255 from the CSPRNG),
 *          fresh random nonce, crypto_box with the precomputed shared key;
 *   open   lst_threema_msg_open + cleanup: crypto_box open with the shared key, unpad, decode
 *          (UTF-8 check, copy of the text).
 * Raw libsodium on the same bytes (a container of the mean padded size, 1 + 200 + 128), each
 * with a fresh random nonce as any real send needs:
 *   crypto_box_easy                (X25519 on every call), crypto_box_easy_afternm (shared key),
 *   crypto_box_open_easy_afternm.
 * The figure is ours / *_afternm: what the container, padding and buffers cost on top of the
 * cipher itself.
 *
 * Each measurement runs batches until about --seconds (default 1) have passed or a fixed cap of
 * iterations is reached; it is repeated --runs (default 5) times and the median printed.
 * --quick: 0.05 s and 1 run (a smoke check for the test command). Single-threaded. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "lst/threema.h"
#include "lst/util.h"

#define TEXT_LEN   200
#define MEAN_PAD   128
#define RAW_LEN    (1 + TEXT_LEN + MEAN_PAD)
#define BATCH      64
#define MAX_ITERS  50000000L
#define MAX_RUNS   15
#define EXIT_USAGE 2

struct opts {
    double seconds;
    int runs;
};

/* Everything one measurement needs; built once. */
struct fixture {
    struct lst_threema_shared sh;
    uint8_t sk_a[crypto_box_SECRETKEYBYTES], pk_a[crypto_box_PUBLICKEYBYTES];
    uint8_t sk_b[crypto_box_SECRETKEYBYTES], pk_b[crypto_box_PUBLICKEYBYTES];
    uint8_t kab[crypto_box_BEFORENMBYTES];
    struct lst_threema_msg msg;
    uint8_t nonce[LST_THREEMA_NONCE_SIZE];
    struct lst_buf box; /* a sealed text for the open measurements */
    uint8_t raw[RAW_LEN];
    uint8_t raw_box[RAW_LEN + crypto_box_MACBYTES];    /* written by the raw seal runs */
    uint8_t raw_sealed[RAW_LEN + crypto_box_MACBYTES]; /* sealed with nonce, for raw open */
    struct lst_buf tmp;
    unsigned long sink; /* keeps results alive */
};

typedef int (*op_fn)(struct fixture *f);

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int op_seal(struct fixture *f)
{
    uint8_t nonce[LST_THREEMA_NONCE_SIZE];
    if (lst_threema_msg_seal(&f->msg, &f->sh, nonce, &f->tmp, NULL) != LST_OK)
        return -1;
    f->sink += f->tmp.len + nonce[0];
    return 0;
}

static int op_open(struct fixture *f)
{
    struct lst_threema_msg m;
    if (lst_threema_msg_open(&f->sh, f->nonce, (const uint8_t *)f->box.data, f->box.len, &m,
                             NULL) != LST_OK)
        return -1;
    f->sink += m.text_len;
    lst_threema_msg_cleanup(&m);
    return 0;
}

static int op_box_easy(struct fixture *f)
{
    uint8_t nonce[crypto_box_NONCEBYTES];
    randombytes_buf(nonce, sizeof(nonce));
    if (crypto_box_easy(f->raw_box, f->raw, RAW_LEN, nonce, f->pk_b, f->sk_a) != 0)
        return -1;
    f->sink += f->raw_box[0];
    return 0;
}

static int op_box_afternm(struct fixture *f)
{
    uint8_t nonce[crypto_box_NONCEBYTES];
    randombytes_buf(nonce, sizeof(nonce));
    if (crypto_box_easy_afternm(f->raw_box, f->raw, RAW_LEN, nonce, f->kab) != 0)
        return -1;
    f->sink += f->raw_box[0];
    return 0;
}

static int op_open_afternm(struct fixture *f)
{
    uint8_t plain[RAW_LEN];
    if (crypto_box_open_easy_afternm(plain, f->raw_sealed, sizeof(f->raw_sealed), f->nonce,
                                     f->kab) != 0)
        return -1;
    f->sink += plain[0];
    return 0;
}

/* One timed run: ops per second, or a negative value when an operation failed. */
static double run_once(op_fn fn, struct fixture *f, double seconds)
{
    long iters = 0;
    double start = now_s(), elapsed = 0;
    while (elapsed < seconds && iters < MAX_ITERS) {
        for (int i = 0; i < BATCH; i++)
            if (fn(f) != 0)
                return -1;
        iters += BATCH;
        elapsed = now_s() - start;
    }
    return (double)iters / elapsed;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median_ops(op_fn fn, struct fixture *f, const struct opts *o)
{
    double v[MAX_RUNS];
    run_once(fn, f, o->seconds / 10); /* warm-up: caches, page faults, CPU frequency */
    for (int i = 0; i < o->runs; i++) {
        v[i] = run_once(fn, f, o->seconds);
        if (v[i] < 0)
            return -1;
    }
    qsort(v, (size_t)o->runs, sizeof(v[0]), cmp_double);
    return v[o->runs / 2];
}

/* A 200-byte German dispatch text (ASCII and umlauts), as a driver gets many of. */
static void make_text(char *text)
{
    static const char base[] = "Tour 4711 Hamburg-Billbrook: bitte heute zuerst Rampe 3 bei "
                               "Müller & Söhne anfahren, Lieferschein liegt vor. Danach weiter "
                               "nach Lübeck-Genin, Ankunft bis 14:30 Uhr. Rückfragen an die "
                               "Disposition, Durchwahl 42. Gute Fahrt! ";
    size_t n = strlen(base);
    for (size_t i = 0; i < TEXT_LEN; i++)
        text[i] = base[i % n];
    /* Do not cut a UTF-8 sequence at the end. */
    size_t end = TEXT_LEN;
    while (end > 0 && ((unsigned char)text[end - 1] & 0xC0) == 0x80)
        end--;
    if (end > 0 && ((unsigned char)text[end - 1] & 0x80) != 0)
        text[end - 1] = '.';
    for (size_t i = end; i < TEXT_LEN; i++)
        text[i] = '.';
}

static int fixture_init(struct fixture *f)
{
    char text[TEXT_LEN];
    memset(f, 0, sizeof(*f));
    lst_buf_init(&f->box);
    lst_buf_init(&f->tmp);
    make_text(text);
    crypto_box_keypair(f->pk_a, f->sk_a);
    crypto_box_keypair(f->pk_b, f->sk_b);
    if (crypto_box_beforenm(f->kab, f->pk_b, f->sk_a) != 0 ||
        lst_threema_shared_init(&f->sh, f->sk_a, f->pk_b) != LST_OK ||
        lst_threema_msg_set_text(&f->msg, text, TEXT_LEN) != LST_OK ||
        lst_threema_msg_seal(&f->msg, &f->sh, f->nonce, &f->box, NULL) != LST_OK)
        return -1;
    /* The raw measurements encrypt the same text's container with the mean padding. */
    if (lst_threema_msg_encode(&f->msg, MEAN_PAD, &f->tmp, NULL) != LST_OK || f->tmp.len != RAW_LEN)
        return -1;
    memcpy(f->raw, f->tmp.data, RAW_LEN);
    /* The raw open measurement opens a box of the same size made with f->nonce. */
    return crypto_box_easy_afternm(f->raw_sealed, f->raw, RAW_LEN, f->nonce, f->kab);
}

static void fixture_cleanup(struct fixture *f)
{
    lst_threema_msg_cleanup(&f->msg);
    lst_threema_shared_cleanup(&f->sh);
    sodium_memzero(f->kab, sizeof(f->kab));
    lst_buf_cleanup(&f->box);
    lst_buf_cleanup(&f->tmp);
}

static int parse_args(int argc, char **argv, struct opts *o)
{
    o->seconds = 1.0;
    o->runs = 5;
    for (int i = 1; i < argc; i++) {
        int64_t runs;
        if (strcmp(argv[i], "--quick") == 0) {
            o->seconds = 0.05;
            o->runs = 1;
        } else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc &&
                   lst_parse_double(argv[i + 1], 0.01, 60, &o->seconds) == LST_OK) {
            i++;
        } else if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc &&
                   lst_parse_i64(argv[i + 1], 1, MAX_RUNS, &runs) == LST_OK) {
            o->runs = (int)runs;
            i++;
        } else {
            fprintf(stderr,
                    "usage: bench_crypto [--quick] [--seconds S (1)] [--runs N (5, odd)]\n");
            return -1;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct opts o;
    struct fixture f;
    int rc = 1;
    memset(&f, 0, sizeof(f));
    if (parse_args(argc, argv, &o) != 0)
        return EXIT_USAGE;
    if (lst_threema_init() != LST_OK || fixture_init(&f) != 0) {
        fprintf(stderr, "bench_crypto: set-up failed\n");
        fixture_cleanup(&f);
        return 1;
    }
    printf("bench_crypto: %d-byte text, raw container %d bytes; median of %d run(s) of %.2f s, "
           "one core\n",
           TEXT_LEN, RAW_LEN, o.runs, o.seconds);
    fflush(stdout);
    double seal = median_ops(op_seal, &f, &o);
    double easy = median_ops(op_box_easy, &f, &o);
    double easy_nm = median_ops(op_box_afternm, &f, &o);
    double open = median_ops(op_open, &f, &o);
    double open_nm = median_ops(op_open_afternm, &f, &o);
    if (seal <= 0 || easy <= 0 || easy_nm <= 0 || open <= 0 || open_nm <= 0) {
        fprintf(stderr, "bench_crypto: an operation failed\n");
        goto out;
    }
    printf("  encrypt+encode  lst_threema_msg_seal            %12.0f ops/s\n", seal);
    printf("  raw             crypto_box_easy                 %12.0f ops/s\n", easy);
    printf("  raw             crypto_box_easy_afternm         %12.0f ops/s\n", easy_nm);
    printf("  ratio seal / crypto_box_easy_afternm            %12.2f\n", seal / easy_nm);
    printf("  decode+decrypt  lst_threema_msg_open            %12.0f ops/s\n", open);
    printf("  raw             crypto_box_open_easy_afternm    %12.0f ops/s\n", open_nm);
    printf("  ratio open / crypto_box_open_easy_afternm       %12.2f\n", open / open_nm);
    rc = 0;
out:
    fixture_cleanup(&f);
    /* sink is never 0; testing it keeps the measured work from being optimised away. */
    return f.sink == 0 ? 1 : rc;
}
