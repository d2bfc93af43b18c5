/* moai allocator: passed by value, kept by the object it made (IREE style).
 *
 * An allocator is a function plus an opaque `self`. The system allocator uses
 * malloc; the fault-injecting one (tests) fails the Nth allocation so every
 * error path can be exercised, as SQLite's test suite does. */
#ifndef MOAI_BASE_ALLOCATOR_H
#define MOAI_BASE_ALLOCATOR_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ptr == NULL: allocate `size` bytes; size == 0: free `ptr`; otherwise
 * reallocate. Returns NULL on failure (and on free). */
typedef void *(*moai_allocator_fn_t)(void *self, void *ptr, size_t size);

typedef struct moai_allocator_t {
  void *self;
  moai_allocator_fn_t fn;
} moai_allocator_t;

/* The process allocator (malloc/realloc/free). */
moai_allocator_t moai_allocator_system(void);

/* Allocates `size` zeroed bytes into *out_ptr (untouched on failure). */
moai_status_t moai_allocator_malloc(moai_allocator_t allocator, size_t size,
                                    void **out_ptr) MOAI_MUST_USE;

/* Grows or shrinks *inout_ptr to `size` bytes (new bytes are not zeroed);
 * *inout_ptr is unchanged on failure. */
moai_status_t moai_allocator_realloc(moai_allocator_t allocator, size_t size,
                                     void **inout_ptr) MOAI_MUST_USE;

/* Copies a NUL-terminated string into memory from `allocator`. */
moai_status_t moai_allocator_strdup(moai_allocator_t allocator, const char *s,
                                    char **out_str) MOAI_MUST_USE;

/* Frees memory from `allocator` (NULL is fine). */
void moai_allocator_free(moai_allocator_t allocator, void *ptr);

/* A fault-injecting allocator for tests: allocation number `fail_at`
 * (1-based; 0 = never) and every later one fails; it counts allocations. */
typedef struct moai_fault_allocator_t {
  moai_allocator_t base;
  uint64_t fail_at;
  uint64_t count;
  uint64_t live; /* allocations not yet freed */
} moai_fault_allocator_t;

moai_allocator_t moai_fault_allocator(moai_fault_allocator_t *state);

#ifdef __cplusplus
}
#endif

#endif /* MOAI_BASE_ALLOCATOR_H */
