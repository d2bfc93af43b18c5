/* Binding moai-run's --input options to the plan's inputs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/dtype.h"
#include "moai_run.h"

static bool ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), m = strlen(suffix);
  return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* "a, b, c" for messages. */
static void input_names(const moai_plan_t *plan, char *buf, size_t size) {
  size_t used = 0;
  buf[0] = '\0';
  for (size_t i = 0; i < moai_plan_input_count(plan) && used < size; ++i) {
    int n = snprintf(buf + used, size - used, "%s%s", i ? ", " : "",
                     moai_plan_input_desc(plan, i)->name);
    if (n < 0) break;
    used += (size_t)n;
  }
  if (!buf[0]) snprintf(buf, size, "none");
}

static moai_status_t no_such_input(const moai_plan_t *plan, const char *where,
                                   const char *name) {
  char names[512];
  input_names(plan, names, sizeof(names));
  return MOAI_STATUS(MOAI_NOT_FOUND, "%s: the plan has no input '%s' (its inputs: %s)", where,
                     name, names);
}

static moai_status_t bind(const moai_plan_t *plan, input_set_t *set, long index,
                          const char *origin, const char *tensor, int32_t dtype, int32_t rank,
                          const int64_t *dims, const void *data) {
  input_binding_t *b = &set->bindings[index];
  const moai_tensor_desc_t *want = moai_plan_input_desc(plan, (size_t)index);
  char here[1200];
  if (tensor) snprintf(here, sizeof(here), "%s: tensor '%s'", origin, tensor);
  else snprintf(here, sizeof(here), "%s", origin);
  if (b->origin)
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "input '%s' is given twice (%s and %s)",
                       want->name, b->origin, here);
  /* NumPy has no bfloat16: a <u2 array carries its bits (see io/npy.h). */
  if (want->dtype == MOAI_ABI_BF16 && dtype == MOAI_ABI_U16 && !tensor) dtype = MOAI_ABI_BF16;
  snprintf(b->origin_buf, sizeof(b->origin_buf), "%s", here);
  b->origin = b->origin_buf;
  b->dtype = dtype;
  b->rank = rank;
  b->dims = dims;
  b->data = data;
  return moai_ok_status();
}

static moai_status_t open_one(const run_args_t *args, const moai_plan_t *plan,
                              input_set_t *set, const char *value) {
  moai_allocator_t a = moai_allocator_system();
  const char *eq = strchr(value, '=');
  if (eq) {
    const char *path = eq + 1;
    if (eq == value || !*path)
      return MOAI_STATUS(MOAI_INVALID_ARGUMENT,
                         "--input %s: expected NAME=FILE.npy or FILE.safetensors", value);
    if (ends_with(path, ".safetensors"))
      return MOAI_STATUS(MOAI_INVALID_ARGUMENT,
                         "--input %s: a .safetensors file supplies inputs by its tensor names; "
                         "pass it alone: --input %s", value, path);
    char name[512];
    snprintf(name, sizeof(name), "%.*s", (int)(eq - value), value);
    long index = moai_plan_find_input(plan, name);
    if (index < 0) {
      char where[600];
      snprintf(where, sizeof(where), "--input %s", value);
      return no_such_input(plan, where, name);
    }
    moai_npy_t *npy = NULL;
    MOAI_RETURN_IF_ERROR(moai_npy_open(path, a, &npy));
    set->npys[set->npy_count++] = npy;
    const moai_npy_header_t *h = moai_npy_header(npy);
    return bind(plan, set, index, path, NULL, h->dtype, h->rank, h->dims, moai_npy_data(npy));
  }
  if (ends_with(value, ".safetensors")) {
    moai_safetensors_t *st = NULL;
    MOAI_RETURN_IF_ERROR(moai_safetensors_open(value, a, &st));
    set->sts[set->st_count++] = st;
    for (size_t i = 0; i < moai_safetensors_count(st); ++i) {
      const moai_safetensors_entry_t *e = moai_safetensors_entry(st, i);
      long index = moai_plan_find_input(plan, e->name);
      if (index < 0) {
        char where[1100];
        snprintf(where, sizeof(where), "%s: tensor '%s'", value, e->name);
        return no_such_input(plan, where, e->name);
      }
      MOAI_RETURN_IF_ERROR(bind(plan, set, index, value, e->name, e->dtype, e->rank, e->dims,
                                e->nbytes ? moai_safetensors_data(st) + e->offset : NULL));
    }
    return moai_ok_status();
  }
  if (ends_with(value, ".npy") && moai_plan_input_count(plan) == 1) {
    moai_npy_t *npy = NULL;
    MOAI_RETURN_IF_ERROR(moai_npy_open(value, a, &npy));
    set->npys[set->npy_count++] = npy;
    const moai_npy_header_t *h = moai_npy_header(npy);
    return bind(plan, set, 0, value, NULL, h->dtype, h->rank, h->dims, moai_npy_data(npy));
  }
  (void)args;
  if (ends_with(value, ".npy")) {
    char names[512];
    input_names(plan, names, sizeof(names));
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT,
                       "--input %s: say which input it is: --input NAME=%s (the plan's inputs: "
                       "%s)", value, value, names);
  }
  return MOAI_STATUS(MOAI_INVALID_ARGUMENT,
                     "--input %s: expected NAME=FILE.npy or FILE.safetensors", value);
}

moai_status_t inputs_open(const run_args_t *args, const moai_plan_t *plan, input_set_t *out) {
  input_set_t set = {0};
  size_t n = args->input_count ? args->input_count : 1;
  set.npys = calloc(n, sizeof(*set.npys));
  set.sts = calloc(n, sizeof(*set.sts));
  set.bindings = calloc(moai_plan_input_count(plan) + 1, sizeof(*set.bindings));
  moai_status_t status = moai_ok_status();
  if (!set.npys || !set.sts || !set.bindings)
    status = MOAI_STATUS(MOAI_OUT_OF_MEMORY, "out of memory");
  for (size_t i = 0; i < args->input_count && !status; ++i)
    status = open_one(args, plan, &set, args->inputs[i]);
  for (size_t i = 0; i < moai_plan_input_count(plan) && !status; ++i) {
    if (set.bindings[i].origin) continue;
    const moai_tensor_desc_t *d = moai_plan_input_desc(plan, i);
    char shape[160];
    moai_shape_format(d->rank, d->dims, shape, sizeof(shape));
    status = MOAI_STATUS(MOAI_INVALID_ARGUMENT,
                         "input '%s' (%s %s) is not given: pass --input %s=FILE.npy or a "
                         ".safetensors file holding it", d->name, moai_abi_dtype_name(d->dtype),
                         shape, d->name);
  }
  if (status) {
    inputs_close(&set);
    return status;
  }
  *out = set;
  return moai_ok_status();
}

moai_status_t inputs_set(const input_set_t *inputs, moai_plan_t *plan) {
  for (size_t i = 0; i < moai_plan_input_count(plan); ++i) {
    const input_binding_t *b = &inputs->bindings[i];
    moai_status_t status = moai_plan_set_input(plan, moai_plan_input_desc(plan, i)->name,
                                               b->dtype, b->rank, b->dims, b->data);
    if (status) {
      moai_status_t named = MOAI_STATUS(moai_status_code(status), "%s: %s", b->origin,
                                        moai_status_message(status));
      moai_status_free(status);
      return named;
    }
  }
  return moai_ok_status();
}

void inputs_close(input_set_t *inputs) {
  for (size_t i = 0; inputs->npys && i < inputs->npy_count; ++i) moai_npy_close(inputs->npys[i]);
  for (size_t i = 0; inputs->sts && i < inputs->st_count; ++i)
    moai_safetensors_close(inputs->sts[i]);
  free(inputs->npys);
  free(inputs->sts);
  free(inputs->bindings);
  memset(inputs, 0, sizeof(*inputs));
}
