/* Running a plan: inputs into the arena, one parallel region per step,
 * borrowed outputs. Nothing here allocates. */
#include <omp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "io/dtype.h"
#include "loader/plan_internal.h"

/* Kernels read the hook through moai_kernel_runtime_t at ex->runtime. */
_Static_assert(offsetof(moai_plan_t, kernel_status) ==
                       offsetof(moai_kernel_runtime_t, kernel_status) &&
                   offsetof(moai_plan_t, allreduce) == offsetof(moai_kernel_runtime_t, allreduce) &&
                   offsetof(moai_plan_t, allreduce_user) ==
                       offsetof(moai_kernel_runtime_t, allreduce_user) &&
                   offsetof(moai_plan_t, grad_ready) ==
                       offsetof(moai_kernel_runtime_t, grad_ready) &&
                   offsetof(moai_plan_t, grad_ready_user) ==
                       offsetof(moai_kernel_runtime_t, grad_ready_user),
               "moai_plan_t must start like moai_kernel_runtime_t");

const moai_manifest_t *moai_plan_manifest(const moai_plan_t *plan) { return plan->manifest; }

size_t moai_plan_input_count(const moai_plan_t *plan) { return plan->manifest->input_count; }

const moai_tensor_desc_t *moai_plan_input_desc(const moai_plan_t *plan, size_t i) {
  return i < plan->manifest->input_count ? &plan->manifest->inputs[i] : NULL;
}

size_t moai_plan_output_count(const moai_plan_t *plan) { return plan->manifest->output_count; }

const moai_tensor_desc_t *moai_plan_output_desc(const moai_plan_t *plan, size_t i) {
  return i < plan->manifest->output_count ? &plan->manifest->outputs[i] : NULL;
}

long moai_plan_find_input(const moai_plan_t *plan, const char *name) {
  for (size_t i = 0; name && i < plan->manifest->input_count; ++i)
    if (strcmp(plan->manifest->inputs[i].name, name) == 0) return (long)i;
  return -1;
}

/* "a, b, c" (truncated with "..."). */
static void list_inputs(const moai_plan_t *plan, char *buf, size_t size) {
  size_t used = 0;
  buf[0] = '\0';
  for (size_t i = 0; i < plan->manifest->input_count; ++i) {
    int n = snprintf(buf + used, size - used, "%s%s", i ? ", " : "",
                     plan->manifest->inputs[i].name);
    if (n < 0 || (size_t)n >= size - used) {
      snprintf(buf + (size > 4 ? size - 4 : 0), size > 4 ? 4 : size, "...");
      return;
    }
    used += (size_t)n;
  }
  if (!used) snprintf(buf, size, "none");
}

moai_status_t moai_plan_set_input(moai_plan_t *plan, const char *name, int32_t dtype,
                                  int32_t rank, const int64_t *dims, const void *data) {
  long index = moai_plan_find_input(plan, name);
  if (index < 0) {
    char names[256];
    list_inputs(plan, names, sizeof(names));
    return MOAI_STATUS(MOAI_NOT_FOUND, "the plan has no input '%s' (its inputs: %s)",
                       name ? name : "(null)", names);
  }
  const moai_tensor_desc_t *want = &plan->manifest->inputs[index];
  if (dtype != want->dtype) {
    const char *given = moai_abi_dtype_name(dtype);
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT,
                       "input '%s': dtype %s does not match the plan's %s", name,
                       given ? given : "unknown", moai_abi_dtype_name(want->dtype));
  }
  bool same = rank == want->rank;
  for (int32_t i = 0; same && i < rank; ++i) same = dims[i] == want->dims[i];
  if (!same) {
    char got[160], need[160];
    if (rank < 0 || rank > MOAI_MAX_RANK) snprintf(got, sizeof(got), "of rank %d", (int)rank);
    else moai_shape_format(rank, dims, got, sizeof(got));
    moai_shape_format(want->rank, want->dims, need, sizeof(need));
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "input '%s': shape %s does not match the plan's %s",
                       name, got, need);
  }
  if (want->nbytes && !data)
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "input '%s': no data", name);
  const moai_tensor_t *t = &plan->table->inputs[index].tensor;
  if (want->nbytes) memcpy(plan->arena + t->offset, data, (size_t)want->nbytes);
  plan->input_set[index] = true;
  plan->has_run = false;
  return moai_ok_status();
}

/* One parallel region in which every thread calls fn (the step or the
 * update); the first kernel failure becomes the status. */
static moai_status_t run_region(moai_plan_t *plan, int threads,
                                void (*fn)(const moai_exec_t *, int, int), const char *what) {
  if (threads <= 0) threads = omp_get_max_threads();
  memset(&plan->kernel_status, 0, sizeof(plan->kernel_status));
  const moai_exec_t *ex = &plan->exec;
  int used = 0;
  /* Exactly `threads` threads unless the OpenMP implementation cannot give
   * them (thread limit): dynamic adjustment is off for the region. The step
   * gets the real count either way. */
  int dynamic = omp_get_dynamic();
  omp_set_dynamic(0);
#pragma omp parallel num_threads(threads)
  {
    int ith = omp_get_thread_num(), nth = omp_get_num_threads();
    if (ith == 0) used = nth;
    fn(ex, ith, nth);
  }
  omp_set_dynamic(dynamic);
  plan->last_threads = used;
  const moai_kernel_status_t *ks = &plan->kernel_status;
  if (__atomic_load_n(&ks->failed, __ATOMIC_ACQUIRE))
    return MOAI_STATUS(MOAI_UNIMPLEMENTED, "%s: %s failed at op %u '%s': %s", plan->dir, what,
                       ks->op_index, ks->op_name, ks->message);
  return moai_ok_status();
}

/* Runs fn (the step or the forward) over the inputs set since the last run. */
static moai_status_t run_inputs(moai_plan_t *plan, int threads,
                                void (*fn)(const moai_exec_t *, int, int), const char *what) {
  for (size_t i = 0; i < plan->manifest->input_count; ++i)
    if (!plan->input_set[i])
      return MOAI_STATUS(MOAI_FAILED_PRECONDITION,
                         "input '%s' is not set: every input must be set before each run",
                         plan->manifest->inputs[i].name);
  plan->has_run = false;
  moai_status_t status = run_region(plan, threads, fn, what);
  /* A step may have reused input memory: the next run needs fresh inputs. */
  memset(plan->input_set, 0, plan->manifest->input_count * sizeof(bool));
  if (!status) plan->has_run = true;
  return status;
}

moai_status_t moai_plan_run(moai_plan_t *plan, int threads) {
  plan->forward_only = false;
  return run_inputs(plan, threads, plan->table->step, "step");
}

void moai_plan_set_allreduce(moai_plan_t *plan, moai_plan_allreduce_fn fn, void *user) {
  plan->allreduce = fn;
  plan->allreduce_user = fn ? user : NULL;
}

void moai_plan_set_grad_ready(moai_plan_t *plan, moai_plan_grad_ready_fn fn, void *user) {
  plan->grad_ready = fn;
  plan->grad_ready_user = fn ? user : NULL;
}

int moai_plan_grad_bucket(const moai_plan_t *plan, size_t i) {
  const moai_device_training_t *tr = plan->table->training;
  size_t w = plan->table->num_weights;
  if (!tr || i < w || i - w >= tr->num_state) return -1;
  const moai_state_desc_t *st = &tr->state[i - w];
  return st->role == MOAI_STATE_GRAD && st->grad_bucket && st->grad_bucket <= INT32_MAX
             ? (int)(st->grad_bucket - 1)
             : -1;
}

int moai_plan_grad_bucket_count(const moai_plan_t *plan) {
  int count = 0;
  for (size_t i = 0; i < moai_plan_tensor_count(plan); ++i) {
    int b = moai_plan_grad_bucket(plan, i);
    if (b >= count) count = b + 1;
  }
  return count;
}

/* The training table's forward entry when it is usable, else NULL. */
static const moai_device_training_t *forward_table(const moai_plan_t *plan) {
  const moai_device_training_t *tr = plan->table->training;
  if (!tr || !tr->forward || tr->forward_output >= plan->table->num_outputs ||
      tr->forward_output >= plan->manifest->output_count ||
      tr->num_forward_ops > plan->table->num_ops)
    return NULL;
  return tr;
}

long moai_plan_forward_output(const moai_plan_t *plan) {
  const moai_device_training_t *tr = forward_table(plan);
  return tr ? (long)tr->forward_output : -1;
}

moai_status_t moai_plan_run_forward(moai_plan_t *plan, int threads) {
  const moai_device_training_t *tr = forward_table(plan);
  if (!tr)
    return MOAI_STATUS(MOAI_FAILED_PRECONDITION,
                       "%s: the plan has no forward entry (only pipeline stages have one: "
                       "a module with moai.pipeline = {send = ...}); run the whole step with "
                       "moai_plan_run", plan->dir);
  moai_status_t status = run_inputs(plan, threads, tr->forward, "forward");
  plan->forward_only = !status;
  return status;
}

/* ---- training ----------------------------------------------------------------- */

const moai_manifest_training_t *moai_plan_training(const moai_plan_t *plan) {
  return plan->manifest->training ? &plan->manifest->train : NULL;
}

moai_status_t moai_plan_run_update(moai_plan_t *plan, int threads) {
  const moai_device_training_t *tr = plan->table->training;
  if (!tr)
    return MOAI_STATUS(MOAI_FAILED_PRECONDITION,
                       "%s: an inference plan has no optimizer update; compile the model "
                       "with moaicc --train", plan->dir);
  /* The update may use the arena for intermediates: outputs are gone. */
  plan->has_run = false;
  return run_region(plan, threads, tr->update, "update");
}

size_t moai_plan_tensor_count(const moai_plan_t *plan) {
  const moai_device_table_t *t = plan->table;
  return t->num_weights + (t->training ? t->training->num_state : 0);
}

static void fill_tensor(const moai_plan_t *plan, const moai_tensor_t *x, moai_plan_tensor_t *out) {
  out->dtype = x->dtype;
  out->rank = x->rank;
  memcpy(out->dims, x->dims, sizeof(out->dims));
  uint64_t nbytes = 0;
  moai_shape_nbytes(x->dtype, x->rank, x->dims, &nbytes);
  out->nbytes = nbytes;
  out->data = moai_tensor_ptr(&plan->exec, x);
}

bool moai_plan_tensor(const moai_plan_t *plan, size_t i, moai_plan_tensor_t *out) {
  const moai_device_table_t *t = plan->table;
  moai_plan_tensor_t r;
  memset(&r, 0, sizeof(r));
  if (i < t->num_weights) {
    const moai_io_desc_t *w = &t->weights[i];
    r.name = w->name;
    r.writable = w->tensor.region == MOAI_REGION_PERSIST;
    r.kind = r.writable ? MOAI_PLAN_TENSOR_TRAINABLE : MOAI_PLAN_TENSOR_WEIGHT;
    fill_tensor(plan, &w->tensor, &r);
  } else if (t->training && i - t->num_weights < t->training->num_state) {
    const moai_state_desc_t *st = &t->training->state[i - t->num_weights];
    r.name = st->name;
    r.param = st->param;
    r.kind = MOAI_PLAN_TENSOR_STATE;
    r.role = st->role;
    r.writable = true;
    fill_tensor(plan, &st->tensor, &r);
  } else {
    return false;
  }
  *out = r;
  return true;
}

long moai_plan_find_tensor(const moai_plan_t *plan, const char *name) {
  moai_plan_tensor_t t;
  for (size_t i = 0; name && moai_plan_tensor(plan, i, &t); ++i)
    if (strcmp(t.name, name) == 0) return (long)i;
  return -1;
}

int moai_plan_last_thread_count(const moai_plan_t *plan) { return plan->last_threads; }

moai_status_t moai_plan_output(const moai_plan_t *plan, size_t i,
                               const moai_tensor_desc_t **out_desc, const void **out_data) {
  if (i >= plan->manifest->output_count)
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "output %zu does not exist (the plan has %zu)", i,
                       plan->manifest->output_count);
  if (!plan->has_run)
    return MOAI_STATUS(MOAI_FAILED_PRECONDITION,
                       "no outputs: no run has succeeded since the inputs were last set");
  if (plan->forward_only && i != plan->table->training->forward_output)
    return MOAI_STATUS(MOAI_FAILED_PRECONDITION,
                       "output '%s': only '%s' is computed by the forward; run the step for "
                       "the others", plan->manifest->outputs[i].name,
                       plan->manifest->outputs[plan->table->training->forward_output].name);
  *out_desc = &plan->manifest->outputs[i];
  *out_data = moai_tensor_ptr(&plan->exec, &plan->table->outputs[i].tensor);
  return moai_ok_status();
}
