/* Private helpers shared by the threema_*.c files; not part of the public API. */
#ifndef LST_THREEMA_INTERNAL_H
#define LST_THREEMA_INTERNAL_H

#include "lst/threema.h"

/* Replaces why's content with the formatted reason (when why is not NULL); returns err. */
lst_err lst_threema_fail(struct lst_buf *why, lst_err err, const char *fmt, ...) LST_PRINTF(3, 4);

#endif
