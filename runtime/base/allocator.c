#include "allocator.h"

#include <stdlib.h>
#include <string.h>

static void *system_fn(void *self, void *ptr, size_t size) {
  (void)self;
  if (size == 0) {
    free(ptr);
    return NULL;
  }
  return ptr ? realloc(ptr, size) : malloc(size);
}

moai_allocator_t moai_allocator_system(void) {
  return (moai_allocator_t){.self = NULL, .fn = system_fn};
}

moai_status_t moai_allocator_malloc(moai_allocator_t allocator, size_t size,
                                    void **out_ptr) {
  void *p = allocator.fn(allocator.self, NULL, size ? size : 1);
  if (!p)
    return MOAI_STATUS(MOAI_OUT_OF_MEMORY, "out of memory allocating %zu bytes",
                       size);
  memset(p, 0, size);
  *out_ptr = p;
  return moai_ok_status();
}

moai_status_t moai_allocator_realloc(moai_allocator_t allocator, size_t size,
                                     void **inout_ptr) {
  void *p = allocator.fn(allocator.self, *inout_ptr, size ? size : 1);
  if (!p)
    return MOAI_STATUS(MOAI_OUT_OF_MEMORY,
                       "out of memory growing a buffer to %zu bytes", size);
  *inout_ptr = p;
  return moai_ok_status();
}

moai_status_t moai_allocator_strdup(moai_allocator_t allocator, const char *s,
                                    char **out_str) {
  size_t n = strlen(s) + 1;
  void *p = NULL;
  MOAI_RETURN_IF_ERROR(moai_allocator_malloc(allocator, n, &p));
  memcpy(p, s, n);
  *out_str = p;
  return moai_ok_status();
}

void moai_allocator_free(moai_allocator_t allocator, void *ptr) {
  if (ptr) allocator.fn(allocator.self, ptr, 0);
}

static void *fault_fn(void *self, void *ptr, size_t size) {
  moai_fault_allocator_t *state = self;
  if (size == 0) {
    if (ptr) state->live--;
    return state->base.fn(state->base.self, ptr, 0);
  }
  state->count++;
  if (state->fail_at && state->count >= state->fail_at) return NULL;
  void *p = state->base.fn(state->base.self, ptr, size);
  if (p && !ptr) state->live++;
  return p;
}

moai_allocator_t moai_fault_allocator(moai_fault_allocator_t *state) {
  if (!state->base.fn) state->base = moai_allocator_system();
  return (moai_allocator_t){.self = state, .fn = fault_fn};
}
