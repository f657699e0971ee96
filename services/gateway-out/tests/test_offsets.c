/* The per-partition completion watermarks of gateway-out (offsets.c): an offset is stored only
 * once everything below it in its partition is finished; an abandoned record holds the
 * watermark; a revoked partition forgets its records and ignores their late completions. */
#include <stdlib.h>
#include <string.h>

#include "../gateway_out.h"
#include "lst_test.h"

static struct go_job *job(int32_t p, int64_t off)
{
    struct go_job *j = calloc(1, sizeof(*j));
    j->partition = p;
    j->offset = off;
    return j;
}

static void finish(struct go_offsets *o, struct go_job *j, enum go_job_state st)
{
    j->state = st;
    go_offsets_finish(o, j);
}

static void count_job(struct go_job *j, void *ud)
{
    (void)j;
    (*(int *)ud)++;
}

static void test_out_of_order(void)
{
    struct go_offsets *o = NULL;
    REQUIRE(go_offsets_create(&o) == LST_OK);
    struct go_job *a = job(3, 10), *b = job(3, 11), *c = job(3, 15), *d = job(0, 7);
    CHECK_EQ(go_offsets_add(o, a), LST_OK);
    CHECK_EQ(go_offsets_add(o, b), LST_OK);
    CHECK_EQ(go_offsets_add(o, c), LST_OK);
    CHECK_EQ(go_offsets_add(o, d), LST_OK);
    CHECK_EQ(go_offsets_npart(o), 4);
    CHECK_EQ(go_offsets_pending(o, 3), 3);
    finish(o, c, GO_JOB_DONE); /* the last one first: nothing may be stored */
    CHECK_EQ(go_offsets_advance(o, 3), -1);
    finish(o, a, GO_JOB_DONE);
    CHECK_EQ(go_offsets_advance(o, 3), 11); /* one past a */
    CHECK_EQ(go_offsets_advance(o, 3), -1); /* no news */
    finish(o, b, GO_JOB_DONE);
    CHECK_EQ(go_offsets_advance(o, 3), 16); /* b and c: one past c (offsets may have gaps) */
    CHECK_EQ(go_offsets_pending(o, 3), 0);
    CHECK_EQ(go_offsets_advance(o, 0), -1);
    finish(o, d, GO_JOB_DONE);
    CHECK_EQ(go_offsets_advance(o, 0), 8);
    free(a), free(b), free(c), free(d);
    go_offsets_destroy(o);
}

static void test_abandoned_holds_and_reset(void)
{
    struct go_offsets *o = NULL;
    REQUIRE(go_offsets_create(&o) == LST_OK);
    struct go_job *j[200];
    for (int i = 0; i < 200; i++) { /* beyond the first ring capacity */
        j[i] = job(1, 100 + i);
        CHECK_EQ(go_offsets_add(o, j[i]), LST_OK);
    }
    finish(o, j[0], GO_JOB_DONE);
    finish(o, j[1], GO_JOB_ABANDONED);
    for (int i = 2; i < 200; i++)
        finish(o, j[i], GO_JOB_DONE);
    CHECK_EQ(go_offsets_advance(o, 1), 101); /* stops before the abandoned one for good */
    CHECK_EQ(go_offsets_advance(o, 1), -1);
    CHECK_EQ(go_offsets_pending(o, 1), 0);

    struct go_job *late = job(1, 400);
    CHECK_EQ(go_offsets_add(o, late), LST_OK);
    int n = 0;
    go_offsets_each_pending(o, 1, count_job, &n);
    CHECK_EQ(n, 1);
    uint64_t gen = go_offsets_gen(o, 1);
    go_offsets_reset(o, 1); /* revoked */
    CHECK(go_offsets_gen(o, 1) != gen);
    CHECK_EQ(go_offsets_pending(o, 1), 0);
    struct go_job *fresh = job(1, 400); /* the partition comes back, same offset */
    CHECK_EQ(go_offsets_add(o, fresh), LST_OK);
    finish(o, late, GO_JOB_DONE); /* the old generation's completion is ignored */
    CHECK_EQ(go_offsets_advance(o, 1), -1);
    CHECK_EQ(go_offsets_pending(o, 1), 1);
    finish(o, fresh, GO_JOB_DONE);
    CHECK_EQ(go_offsets_advance(o, 1), 401);
    for (int i = 0; i < 200; i++)
        free(j[i]);
    free(late);
    free(fresh);
    go_offsets_destroy(o);
}

LST_TEST_MAIN(T(test_out_of_order), T(test_abandoned_holds_and_reset))
