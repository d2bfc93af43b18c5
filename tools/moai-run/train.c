/* moai-run's training mode (docs/training.md, "Running training"): the
 * loop that feeds micro-batches from runtime/train's dataset and sampler to
 * a training plan, runs the optimizer, reports progress and saves
 * checkpoints. Everything that needs no plan lives in runtime/train; this
 * file only calls the plan.
 *
 * Meshes (docs/training.md, "Data parallelism" and "Meshes"): a plan whose
 * mesh is dp x tp x pp runs one rank per mesh coordinate, each on its own
 * instance of its device's plan, as threads of this process or as the
 * processes of an MPI job. A step's dp x K x B examples are cut in dp
 * order; the tp ranks of a pipeline stage feed the same micro-batches and
 * reduce inside their plan (the tp group bound to its all-reduce ops); the
 * pp stages of a (dp, tp) pair pass activations forward and gradients back
 * under a 1F1B schedule. After its micro-batches every rank sets its loss
 * weight to the step's total, sums its gradients over its dp group and runs
 * the update. Rank 0 alone reports, and saves full tensors it gathers from
 * every device (mesh.c). */
#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "comm/comm.h"
#include "io/dtype.h"
#include "mesh.h"
#include "moai_run.h"
#include "overlap.h"
#include "train/checkpoint.h"
#include "train/dataset.h"
#include "train/progress.h"
#include "train/sampler.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Everything a rank's run holds; freed by train_state_free. */
typedef struct train_state_t {
  mesh_rank_t *mr;
  moai_dataset_t *data;
  moai_sampler_t sampler;
  moai_tensor_desc_t *inputs; /* the data inputs (not the pipeline's recv, recv_grad) */
  void **buffers;             /* one micro-batch per data input */
  uint64_t *indices;          /* one step's example indices */
  moai_plan_tensor_t *tensors;
  moai_checkpoint_slice_t *slices; /* where each tensor lies in the full one */
  size_t input_count, tensor_count;
  uint32_t micro_batches;     /* K */
  bool filler;                /* --no-drop-last and this plan has the labels */
  long loss_out, weight_out;  /* output indices */
  /* Pipelining (mr->device->pipeline present): the stage's I/O. */
  const moai_manifest_pipeline_t *pipe;
  const moai_tensor_desc_t *recv, *recv_grad;
  long send_out, send_grad_out;
  void **stash;               /* stage > 0: micro-batch m's received activation */
  void *grad_buf, *zeros;     /* recv_grad: received, and all zero for forwards */
  mesh_gather_t gather;
  overlap_t *overlap;         /* dp > 1: the gradient thread, or NULL */
  /* ZeRO-1 (zero_setup), else NULL: per tensor, the dp rank that updates a
   * trained weight (-1 for other tensors) and its gradient state's index. */
  int *zero_owner;
  long *zero_grad;
  moai_checkpoint_position_t run; /* the run's settings and position */
} train_state_t;

static void train_state_free(train_state_t *s) {
  for (size_t i = 0; s->buffers && i < s->input_count; ++i) free(s->buffers[i]);
  for (uint32_t m = 0; s->stash && m < s->micro_batches; ++m) free(s->stash[m]);
  free(s->stash);
  free(s->grad_buf);
  free(s->zeros);
  free(s->buffers);
  free(s->inputs);
  free(s->indices);
  free(s->tensors);
  free(s->slices);
  free(s->zero_owner);
  free(s->zero_grad);
  mesh_gather_close(&s->gather);
  moai_sampler_deinit(&s->sampler);
  moai_dataset_close(s->data);
}

/* The index of output `name`, or an error. */
static moai_status_t find_output(const moai_plan_t *plan, const char *name, long *out) {
  for (size_t i = 0; i < moai_plan_output_count(plan); ++i)
    if (strcmp(moai_plan_output_desc(plan, i)->name, name) == 0) {
      *out = (long)i;
      return moai_ok_status();
    }
  return MOAI_STATUS(MOAI_NOT_FOUND, "the plan has no output '%s'", name);
}

/* The index of the f32 scalar output `name`. */
static moai_status_t find_scalar_output(const moai_plan_t *plan, const char *name, long *out) {
  MOAI_RETURN_IF_ERROR_CTX(find_output(plan, name, out),
                           "(named by its manifest's training section)");
  const moai_tensor_desc_t *d = moai_plan_output_desc(plan, (size_t)*out);
  if (d->dtype != MOAI_ABI_F32 || d->nbytes != 4)
    return MOAI_STATUS(MOAI_UNIMPLEMENTED, "the plan's output '%s' is not a float32 scalar",
                       name);
  return moai_ok_status();
}

static float read_scalar(const moai_plan_t *plan, long index, moai_status_t *status) {
  const moai_tensor_desc_t *desc = NULL;
  const void *data = NULL;
  float v = 0;
  if (*status) return v;
  *status = moai_plan_output(plan, (size_t)index, &desc, &data);
  if (!*status) memcpy(&v, data, 4);
  return v;
}

static bool is_last_stage(const train_state_t *s) { return s->mr->s + 1 == s->mr->pp; }

/* The pipeline stage's inputs and outputs, checked against the role the
 * top manifest gives it. */
static moai_status_t pipeline_setup(const run_args_t *a, train_state_t *s) {
  const mesh_rank_t *r = s->mr;
  const moai_plan_t *plan = r->plan;
  const moai_manifest_pipeline_t *p = s->pipe;
  uint32_t k = r->device->index;
  if (p->stage != r->s || p->stages != r->pp)
    return MOAI_STATUS(MOAI_DATA_LOSS, "%s/manifest.json: device %u is pipeline stage %u of %u, "
                       "but its mesh coordinates say %u of %u: recompile the plan", a->plan_dir,
                       k, p->stage, p->stages, r->s, r->pp);
  bool first = r->s == 0, last = is_last_stage(s);
  const char *missing = !first && !p->recv ? "recv" : !first && !p->send_grad ? "send_grad"
                        : !last && !p->send ? "send" : !last && !p->recv_grad ? "recv_grad"
                                                                               : NULL;
  if (missing)
    return MOAI_STATUS(MOAI_DATA_LOSS, "%s/manifest.json: device %u (pipeline stage %u of %u) "
                       "has no '%s': recompile the plan", a->plan_dir, k, r->s, r->pp, missing);
  long in = -1;
  if (!first) {
    if ((in = moai_plan_find_input(plan, p->recv)) < 0)
      return MOAI_STATUS(MOAI_NOT_FOUND, "device %u's plan has no input '%s' (its pipeline "
                         "recv)", k, p->recv);
    s->recv = moai_plan_input_desc(plan, (size_t)in);
    MOAI_RETURN_IF_ERROR_CTX(find_output(plan, p->send_grad, &s->send_grad_out),
                             "(device %u's pipeline send_grad)", k);
    s->stash = calloc(s->micro_batches, sizeof(*s->stash));
    if (!s->stash) return MOAI_STATUS(MOAI_OUT_OF_MEMORY, "out of memory");
    for (uint32_t m = 0; m < s->micro_batches; ++m)
      if (!(s->stash[m] = malloc(s->recv->nbytes ? s->recv->nbytes : 1)))
        return MOAI_STATUS(MOAI_OUT_OF_MEMORY, "out of memory");
  }
  if (!last) {
    if ((in = moai_plan_find_input(plan, p->recv_grad)) < 0)
      return MOAI_STATUS(MOAI_NOT_FOUND, "device %u's plan has no input '%s' (its pipeline "
                         "recv_grad)", k, p->recv_grad);
    s->recv_grad = moai_plan_input_desc(plan, (size_t)in);
    MOAI_RETURN_IF_ERROR_CTX(find_output(plan, p->send, &s->send_out),
                             "(device %u's pipeline send)", k);
    size_t bytes = s->recv_grad->nbytes ? s->recv_grad->nbytes : 1;
    if (!(s->grad_buf = malloc(bytes)) || !(s->zeros = calloc(1, bytes)))
      return MOAI_STATUS(MOAI_OUT_OF_MEMORY, "out of memory");
  }
  return moai_ok_status();
}

/* Whether plan input `name` is fed by the data (not by the pipeline). */
static bool is_data_input(const train_state_t *s, const char *name) {
  return !s->pipe || ((!s->pipe->recv || strcmp(name, s->pipe->recv) != 0) &&
                      (!s->pipe->recv_grad || strcmp(name, s->pipe->recv_grad) != 0));
}

/* The data-parallel rank that updates weight `name` at this rank's (tp, pp)
 * under ZeRO-1 (the first device of the dp group listing it), or -1. */
static int zero_owner(const mesh_rank_t *mr, const char *name) {
  for (uint32_t d = 0; d < mr->dp; ++d) {
    size_t k = ((size_t)d * mr->pp + mr->s) * mr->tp + mr->t;
    if (k >= mr->top->device_count) return -1;
    const moai_manifest_device_t *dev = &mr->top->devices[k];
    for (size_t i = 0; i < dev->owned_count; ++i)
      if (strcmp(dev->owned[i], name) == 0) return (int)d;
  }
  return -1;
}

/* ZeRO-1: each trained weight's owner and gradient state, found once. A
 * weight no rank owns means an edited manifest. */
static moai_status_t zero_setup(train_state_t *s) {
  const mesh_rank_t *mr = s->mr;
  if (!mr->device || !mr->device->zero || mr->dp == 1) return moai_ok_status();
  size_t n = s->tensor_count ? s->tensor_count : 1;
  s->zero_owner = malloc(n * sizeof(*s->zero_owner));
  s->zero_grad = malloc(n * sizeof(*s->zero_grad));
  if (!s->zero_owner || !s->zero_grad) return MOAI_STATUS(MOAI_OUT_OF_MEMORY, "out of memory");
  for (size_t i = 0; i < s->tensor_count; ++i) {
    const moai_plan_tensor_t *t = &s->tensors[i];
    s->zero_owner[i] = -1;
    s->zero_grad[i] = -1;
    if (t->kind != MOAI_PLAN_TENSOR_TRAINABLE) continue;
    s->zero_owner[i] = zero_owner(mr, t->name);
    if (s->zero_owner[i] < 0)
      return MOAI_STATUS(MOAI_DATA_LOSS, "ZeRO-1: no data-parallel rank of the plan updates "
                         "'%s' (the manifest's zero_owned lists); recompile the plan", t->name);
    for (size_t j = 0; j < s->tensor_count; ++j) {
      const moai_plan_tensor_t *g = &s->tensors[j];
      if (g->kind == MOAI_PLAN_TENSOR_STATE && g->role == MOAI_STATE_GRAD && g->param &&
          strcmp(g->param, t->name) == 0)
        s->zero_grad[i] = (long)j;
    }
  }
  return moai_ok_status();
}

/* Opens the data, the sampler, the buffers and the tensor list. */
static moai_status_t train_setup(const run_args_t *a, const moai_manifest_training_t *train,
                                 const moai_log_sink_t *log, train_state_t *s) {
  const mesh_rank_t *r = s->mr;
  moai_plan_t *plan = r->plan;
  s->micro_batches = r->top ? r->top->train.micro_batches : train->micro_batches;
  if (r->device && r->device->pipeline.present) s->pipe = &r->device->pipeline;
  if (s->pipe) MOAI_RETURN_IF_ERROR(pipeline_setup(a, s));
  size_t inputs = moai_plan_input_count(plan);
  s->inputs = calloc(inputs ? inputs : 1, sizeof(*s->inputs));
  s->buffers = calloc(inputs ? inputs : 1, sizeof(*s->buffers));
  if (!s->inputs || !s->buffers) return MOAI_STATUS(MOAI_OUT_OF_MEMORY, "out of memory");
  for (size_t i = 0; i < inputs; ++i)
    if (is_data_input(s, moai_plan_input_desc(plan, i)->name))
      s->inputs[s->input_count++] = *moai_plan_input_desc(plan, i);
  MOAI_RETURN_IF_ERROR(find_scalar_output(plan, train->loss_output, &s->loss_out));
  MOAI_RETURN_IF_ERROR(find_scalar_output(plan, train->loss_weight_output, &s->weight_out));
  /* Rank 0 alone warns about the data: every rank opens the same file. */
  MOAI_RETURN_IF_ERROR(moai_dataset_open(a->data, s->inputs, s->input_count,
                                         r->rank == 0 ? log : NULL, moai_allocator_system(),
                                         &s->data));
  if (!a->drop_last) {
    /* The loss and its labels are the mesh's (the top manifest's): a
     * pipeline stage before the last has neither. */
    if (r->top) train = &r->top->train;
    if (!train->has_ignore_index)
      return MOAI_STATUS(MOAI_FAILED_PRECONDITION, "--no-drop-last needs the plan's loss to have "
                         "an ignore_index for filler rows; use --drop-last");
    /* A stage without the labels has no filler to mark: its rows only feed
     * the stage that counts them. */
    bool labels = false;
    for (size_t i = 0; i < s->input_count && !labels; ++i)
      labels = train->labels_input && strcmp(s->inputs[i].name, train->labels_input) == 0;
    if (labels || !train->labels_input) {
      MOAI_RETURN_IF_ERROR(moai_dataset_enable_filler(s->data, train->loss_weight_kind,
                                                      train->labels_input, train->ignore_index));
      s->filler = true;
    }
  }
  moai_sampler_config_t cfg = {
      .example_count = moai_dataset_example_count(s->data),
      .micro_batch_size = moai_dataset_micro_batch_size(s->data),
      /* A step is every dp rank's micro-batches: dp index d takes the d-th
       * contiguous K x B of the step's order. */
      .micro_batches = s->micro_batches * r->dp, .shuffle = a->shuffle, .seed = a->seed,
      .drop_last = a->drop_last};
  MOAI_RETURN_IF_ERROR_CTX(moai_sampler_init(&cfg, moai_allocator_system(), &s->sampler),
                           "while batching %s", a->data);
  s->indices = calloc((size_t)moai_sampler_step_size(&cfg), sizeof(uint64_t));
  if (!s->indices) return MOAI_STATUS(MOAI_OUT_OF_MEMORY, "out of memory");
  for (size_t i = 0; i < s->input_count; ++i)
    if (!(s->buffers[i] = malloc(s->inputs[i].nbytes ? s->inputs[i].nbytes : 1)))
      return MOAI_STATUS(MOAI_OUT_OF_MEMORY, "out of memory");
  s->tensor_count = moai_plan_tensor_count(plan);
  s->tensors = calloc(s->tensor_count ? s->tensor_count : 1, sizeof(*s->tensors));
  s->slices = calloc(s->tensor_count ? s->tensor_count : 1, sizeof(*s->slices));
  if (!s->tensors || !s->slices) return MOAI_STATUS(MOAI_OUT_OF_MEMORY, "out of memory");
  for (size_t i = 0; i < s->tensor_count; ++i)
    if (!moai_plan_tensor(plan, i, &s->tensors[i]))
      return MOAI_STATUS(MOAI_INTERNAL, "plan tensor %zu of %zu is missing", i, s->tensor_count);
  mesh_rank_slices(r, s->tensors, s->tensor_count, s->slices);
  MOAI_RETURN_IF_ERROR(zero_setup(s));
  if (a->save_dir || a->dump_gradients)
    MOAI_RETURN_IF_ERROR(mesh_gather_open(r, s->tensors, s->slices, s->tensor_count, &s->gather));
  s->run = (moai_checkpoint_position_t){
      .seed = a->seed, .shuffle = a->shuffle, .drop_last = a->drop_last,
      .micro_batches = s->micro_batches, .example_count = cfg.example_count,
      .step_examples = moai_sampler_step_size(&cfg)};
  return moai_ok_status();
}

/* Sums every gradient over the rank's dp group, so each holds the whole
 * step's sum of w_k g_k before the update (but those the gradient thread
 * summed: overlap.h). */
static moai_status_t allreduce_gradients(train_state_t *s) {
  if (moai_comm_size(s->mr->dp_group) == 1) return moai_ok_status();
  for (size_t i = 0; i < s->tensor_count; ++i) {
    const moai_plan_tensor_t *t = &s->tensors[i];
    if (t->kind != MOAI_PLAN_TENSOR_STATE || t->role != MOAI_STATE_GRAD) continue;
    if (overlap_owns(s->overlap, i)) continue;
    if (t->dtype != MOAI_ABI_F32)
      return MOAI_STATUS(MOAI_UNIMPLEMENTED, "state '%s' is %s: data parallelism sums float32 "
                         "accumulators only", t->name, moai_abi_dtype_name(t->dtype));
    MOAI_RETURN_IF_ERROR_CTX(
        moai_comm_allreduce_sum(s->mr->dp_group, MOAI_ABI_F32, t->data, (size_t)(t->nbytes / 4)),
        "while summing '%s' over %u dp ranks", t->name, s->mr->dp);
  }
  return moai_ok_status();
}

/* ZeRO-1 after the update: each rank updated only the weights it owns (and
 * zeroed their gradient accumulators); every trained weight is broadcast
 * from its owner over the dp group, and the other ranks zero its gradient
 * accumulator, which their update did not touch. */
static moai_status_t zero_exchange(train_state_t *s) {
  const mesh_rank_t *mr = s->mr;
  if (!s->zero_owner || moai_comm_size(mr->dp_group) == 1) return moai_ok_status();
  for (size_t i = 0; i < s->tensor_count; ++i) {
    const moai_plan_tensor_t *t = &s->tensors[i];
    int owner = s->zero_owner[i];
    if (owner < 0) continue;
    if ((uint32_t)owner != mr->d && s->zero_grad[i] >= 0)
      memset(s->tensors[s->zero_grad[i]].data, 0, (size_t)s->tensors[s->zero_grad[i]].nbytes);
    MOAI_RETURN_IF_ERROR_CTX(moai_comm_broadcast(mr->dp_group, t->data, (size_t)t->nbytes, owner),
                             "while broadcasting '%s' from data-parallel rank %d", t->name, owner);
  }
  return moai_ok_status();
}

/* Every rank's loss weight state := the step's total weight (only the
 * last stage counts weights, and other stages' accumulators are dummies). */
static moai_status_t set_loss_weight(train_state_t *s, double total) {
  for (size_t i = 0; i < s->tensor_count; ++i) {
    const moai_plan_tensor_t *t = &s->tensors[i];
    if (t->kind != MOAI_PLAN_TENSOR_STATE || t->role != MOAI_STATE_LOSS_WEIGHT) continue;
    if (t->dtype != MOAI_ABI_F32 || t->nbytes != 4)
      return MOAI_STATUS(MOAI_UNIMPLEMENTED, "loss weight state '%s' is not a float32 scalar",
                         t->name);
    float w = (float)total;
    memcpy(t->data, &w, 4);
  }
  return moai_ok_status();
}

/* Sets the data inputs to micro-batch m of this rank's dp share. */
static moai_status_t set_data(train_state_t *s, uint32_t m, uint64_t real) {
  uint64_t b = s->sampler.config.micro_batch_size;
  uint64_t first = ((uint64_t)s->mr->d * s->micro_batches + m) * b;
  uint64_t rows_real = real - first < b ? real - first : b;
  /* Without filler marking (a stage without the labels), filler rows are
   * the sampler's copies of a real row, as the dataset makes them. */
  if (!s->filler) rows_real = b;
  for (size_t i = 0; i < s->input_count; ++i) {
    const moai_tensor_desc_t *d = &s->inputs[i];
    MOAI_RETURN_IF_ERROR(moai_dataset_gather(s->data, i, s->indices + first, b, rows_real,
                                             s->buffers[i]));
    MOAI_RETURN_IF_ERROR(
        moai_plan_set_input(s->mr->plan, d->name, d->dtype, d->rank, d->dims, s->buffers[i]));
  }
  return moai_ok_status();
}

static moai_status_t set_pipe_input(train_state_t *s, const moai_tensor_desc_t *d,
                                    const void *data) {
  return moai_plan_set_input(s->mr->plan, d->name, d->dtype, d->rank, d->dims, data);
}

static moai_status_t send_output(train_state_t *s, long out, int dst, int tag) {
  const moai_tensor_desc_t *desc = NULL;
  const void *data = NULL;
  MOAI_RETURN_IF_ERROR(moai_plan_output(s->mr->plan, (size_t)out, &desc, &data));
  return moai_comm_send(s->mr->world, data, (size_t)desc->nbytes, dst, tag);
}

/* A pipeline forward of micro-batch m (stages before the last): its
 * activation goes to the next stage. */
static moai_status_t pipe_forward(train_state_t *s, uint32_t m, uint64_t real) {
  mesh_rank_t *r = s->mr;
  MOAI_RETURN_IF_ERROR(set_data(s, m, real));
  if (r->s > 0) {
    MOAI_RETURN_IF_ERROR(moai_comm_recv(r->world, s->stash[m], s->recv->nbytes,
                                        r->rank - (int)r->tp, mesh_pipeline_tag(m, 0)));
    MOAI_RETURN_IF_ERROR(set_pipe_input(s, s->recv, s->stash[m]));
  }
  MOAI_RETURN_IF_ERROR(set_pipe_input(s, s->recv_grad, s->zeros));
  MOAI_RETURN_IF_ERROR(moai_plan_run_forward(r->plan, r->threads));
  return send_output(s, s->send_out, r->rank + (int)r->tp, mesh_pipeline_tag(m, 0));
}

/* The step of micro-batch m: recomputes the forward, runs the backward and
 * accumulates; in a pipeline, with the activation and the output's gradient
 * received, and the input's gradient sent back. */
static moai_status_t run_micro_batch(train_state_t *s, uint32_t m, uint64_t real) {
  mesh_rank_t *r = s->mr;
  MOAI_RETURN_IF_ERROR(set_data(s, m, real));
  if (s->pipe && r->s > 0) {
    if (is_last_stage(s))
      MOAI_RETURN_IF_ERROR(moai_comm_recv(r->world, s->stash[m], s->recv->nbytes,
                                          r->rank - (int)r->tp, mesh_pipeline_tag(m, 0)));
    MOAI_RETURN_IF_ERROR(set_pipe_input(s, s->recv, s->stash[m]));
  }
  if (s->pipe && !is_last_stage(s)) {
    MOAI_RETURN_IF_ERROR(moai_comm_recv(r->world, s->grad_buf, s->recv_grad->nbytes,
                                        r->rank + (int)r->tp, mesh_pipeline_tag(m, 1)));
    MOAI_RETURN_IF_ERROR(set_pipe_input(s, s->recv_grad, s->grad_buf));
  }
  MOAI_RETURN_IF_ERROR(moai_plan_run(r->plan, r->threads));
  if (s->pipe && r->s > 0)
    MOAI_RETURN_IF_ERROR(
        send_output(s, s->send_grad_out, r->rank - (int)r->tp, mesh_pipeline_tag(m, 1)));
  return moai_ok_status();
}

/* Adds micro-batch m's loss and weight to the step's sums (last stage, tp
 * index 0 only: every other rank's outputs are copies or meaningless). */
static moai_status_t count_loss(train_state_t *s, double *loss_sum, double *weight_sum) {
  if (!is_last_stage(s) || s->mr->t != 0) return moai_ok_status();
  moai_status_t status = moai_ok_status();
  float loss = read_scalar(s->mr->plan, s->loss_out, &status);
  float w = read_scalar(s->mr->plan, s->weight_out, &status);
  MOAI_RETURN_IF_ERROR(status);
  if (w > 0) *loss_sum += (double)loss * (double)w;
  *weight_sum += (double)w;
  return moai_ok_status();
}

/* The step's micro-batches m < count: one after the other, or on a
 * pipeline 1F1B (PipeDream-Flush, Narayanan et al. 2021): stage s first
 * runs min(pp-1-s, count) forwards, then alternates a forward (while any
 * remain) and a backward, so at most pp - s activations wait per stage. */
static moai_status_t run_micro_batches(train_state_t *s, uint32_t count, uint64_t real,
                                       double *loss_sum, double *weight_sum) {
  if (!s->pipe) {
    for (uint32_t m = 0; m < count; ++m) {
      overlap_arm(s->overlap, m + 1 == count);
      MOAI_RETURN_IF_ERROR(run_micro_batch(s, m, real));
      MOAI_RETURN_IF_ERROR(count_loss(s, loss_sum, weight_sum));
    }
    return moai_ok_status();
  }
  bool last = is_last_stage(s);
  uint32_t warmup = s->mr->pp - 1 - s->mr->s;
  if (warmup > count) warmup = count;
  uint32_t forward = 0, backward = 0;
  for (; forward < warmup; ++forward) MOAI_RETURN_IF_ERROR(pipe_forward(s, forward, real));
  while (backward < count) {
    if (forward < count) {
      if (!last) MOAI_RETURN_IF_ERROR(pipe_forward(s, forward, real));
      ++forward;
    }
    overlap_arm(s->overlap, backward + 1 == count);
    MOAI_RETURN_IF_ERROR(run_micro_batch(s, backward++, real));
    MOAI_RETURN_IF_ERROR(count_loss(s, loss_sum, weight_sum));
  }
  return moai_ok_status();
}

/* Writes the step's full gradients (rank 0, after the dp all-reduce). */
static moai_status_t dump_gradients(const run_args_t *a, train_state_t *s) {
  const moai_plan_tensor_t *t = NULL;
  size_t n = 0;
  MOAI_RETURN_IF_ERROR(mesh_gather_run(s->mr, &s->gather, s->tensors, s->tensor_count,
                                       MESH_GATHER_GRADIENTS, &t, &n));
  if (s->mr->rank != 0) return moai_ok_status();
  return moai_status_annotate(moai_gradients_write(a->dump_gradients, t, n), "while writing %s",
                              a->dump_gradients);
}

/* Writes the checkpoint of full tensors (gathered on rank 0). */
static moai_status_t save_checkpoint(const run_args_t *a, train_state_t *s) {
  const moai_plan_tensor_t *t = NULL;
  size_t n = 0;
  MOAI_RETURN_IF_ERROR(mesh_gather_run(s->mr, &s->gather, s->tensors, s->tensor_count,
                                       MESH_GATHER_CHECKPOINT, &t, &n));
  if (s->mr->rank != 0) return moai_ok_status();
  return moai_checkpoint_save(a->save_dir, t, n, &s->run);
}

/* One optimizer step: every micro-batch, then the update. */
static moai_status_t train_step(const run_args_t *a, const moai_manifest_training_t *train,
                                train_state_t *s, bool dump, moai_progress_record_t *r) {
  mesh_rank_t *mr = s->mr;
  uint64_t real = 0, epoch = 0;
  moai_sampler_next(&s->sampler, s->indices, &real, &epoch);
  uint64_t b = s->sampler.config.micro_batch_size;
  /* A micro-batch of filler rows only carries zero loss weight: skipping
   * it is exact and avoids a 0/0 mean in the graph. Every rank of a dp
   * index skips the same ones. */
  uint32_t count = 0;
  while (count < s->micro_batches &&
         ((uint64_t)mr->d * s->micro_batches + count) * b < real)
    ++count;
  double sums[2] = {0, 0}; /* sum of loss * w, sum of w */
  MOAI_RETURN_IF_ERROR(run_micro_batches(s, count, real, &sums[0], &sums[1]));
  /* The buckets the last backward did not hand over, then all of them. */
  MOAI_RETURN_IF_ERROR(overlap_finish(s->overlap, &r->overlapped_buckets));
  /* Ranks whose share was all filler ran nothing; they still take part. */
  MOAI_RETURN_IF_ERROR(moai_comm_allreduce_sum(mr->world, MOAI_ABI_F64, sums, 2));
  MOAI_RETURN_IF_ERROR(set_loss_weight(s, sums[1]));
  MOAI_RETURN_IF_ERROR(allreduce_gradients(s));
  if (dump) MOAI_RETURN_IF_ERROR(dump_gradients(a, s));
  r->lr = moai_optimizer_lr(&train->hyper, s->run.step);
  MOAI_RETURN_IF_ERROR(moai_plan_run_update(mr->plan, mr->threads));
  MOAI_RETURN_IF_ERROR(zero_exchange(s));
  s->run.step += 1;
  s->run.epoch = s->sampler.epoch;
  s->run.position = s->sampler.position;
  /* The loss is the mesh's: a stage before the last has none. */
  const moai_manifest_training_t *loss = mr->top ? &mr->top->train : train;
  bool tokens = loss->loss_weight_kind && strcmp(loss->loss_weight_kind, "tokens") == 0;
  r->step = s->run.step;
  r->epoch = epoch;
  r->loss = sums[1] > 0 ? sums[0] / sums[1] : (double)NAN;
  r->tokens = tokens ? sums[1] : (double)real;
  r->examples = real;
  return moai_ok_status();
}

/* Loads the checkpoint to resume from: each rank its own tensors, cut to
 * its shards. */
static moai_status_t resume(const run_args_t *a, train_state_t *s) {
  moai_checkpoint_position_t saved;
  MOAI_RETURN_IF_ERROR(moai_checkpoint_load_part(
      a->resume_dir, s->tensors, s->slices, s->tensor_count, mesh_device_count(s->mr) > 1,
      &s->run, moai_allocator_system(), &saved));
  MOAI_RETURN_IF_ERROR(moai_sampler_seek(&s->sampler, saved.epoch, saved.position));
  s->run.step = saved.step;
  s->run.epoch = saved.epoch;
  s->run.position = saved.position;
  return moai_ok_status();
}

static void print_summary(const train_state_t *s, int64_t first_step, int64_t total,
                          uint64_t examples, double seconds, double loss) {
  const mesh_rank_t *r = s->mr;
  if (s->run.step == first_step) {
    printf("nothing to do: the checkpoint is at step %lld of %lld\n", (long long)s->run.step,
           (long long)total);
    return;
  }
  char mesh[96] = "";
  if (r->ranks > 1) {
    const char *how = strcmp(r->world->backend, "mpi") == 0 ? "MPI ranks" : "thread ranks";
    if (r->tp == 1 && r->pp == 1) snprintf(mesh, sizeof(mesh), " (%s)", how);
    else snprintf(mesh, sizeof(mesh), " (mesh dp=%u tp=%u pp=%u, %s)", r->dp, r->tp, r->pp, how);
  }
  printf("trained %lld steps (%lld to %lld) on %llu examples in %.1f s: final loss %.4f%s\n",
         (long long)(s->run.step - first_step), (long long)first_step + 1, (long long)s->run.step,
         (unsigned long long)examples, seconds, loss, mesh);
}

/* One rank's whole run (the only one when r->world is NULL). */
static moai_status_t train_rank(const run_args_t *a, mesh_rank_t *mr,
                                const moai_log_sink_t *log) {
  const moai_manifest_training_t *train = moai_plan_training(mr->plan);
  train_state_t s = {.mr = mr};
  bool lead = mr->rank == 0;
  moai_progress_t progress = {0};
  bool progress_open = false;
  double t0 = now_s();
  moai_status_t status = mesh_rank_join(mr);
  if (!status) status = train_setup(a, train, log, &s);
  if (!status)
    status = overlap_open(mr, a->no_overlap, s.tensors, s.tensor_count, log, &s.overlap);
  if (!status && a->resume_dir) status = resume(a, &s);
  int64_t first_step = s.run.step;
  int64_t total = 0;
  if (!status) {
    total = a->steps > 0 ? a->steps
                         : (int64_t)(a->epochs > 0 ? a->epochs : 1) *
                               (int64_t)moai_sampler_steps_per_epoch(&s.sampler.config);
    moai_progress_options_t po = {.out = stderr, .bar = isatty(STDERR_FILENO) && !a->log_every,
                                  .quiet = a->quiet || !lead, .log_every = a->log_every,
                                  .jsonl = lead ? a->log_jsonl : NULL,
                                  .jsonl_append = a->resume_dir != NULL};
    status = moai_progress_open(&po, &progress);
    progress_open = !status;
  }
  double loss = NAN;
  uint64_t examples = 0;
  bool saved_last = false;
  while (!status && s.run.step < total) {
    moai_progress_record_t r = {.total_steps = total, .first_step = first_step};
    double ts = now_s();
    status = train_step(a, train, &s, a->dump_gradients && s.run.step == first_step, &r);
    if (status) break;
    r.seconds = now_s() - ts;
    r.elapsed = now_s() - t0;
    loss = r.loss;
    examples += r.examples;
    status = moai_progress_step(&progress, &r);
    saved_last = false;
    if (!status && a->save_dir && a->save_every > 0 && s.run.step % a->save_every == 0) {
      status = save_checkpoint(a, &s);
      saved_last = true;
    }
  }
  if (!status && a->save_dir && !saved_last && s.run.step > first_step)
    status = save_checkpoint(a, &s);
  if (progress_open) {
    moai_status_t closed = moai_progress_close(&progress);
    if (!status) status = closed;
    else moai_status_free(closed);
  }
  if (!status && !a->quiet && lead) print_summary(&s, first_step, total, examples, now_s() - t0, loss);
  overlap_close(s.overlap, mr, status != NULL);
  train_state_free(&s);
  mesh_rank_leave(mr);
  return status;
}

/* ---- launching the ranks ------------------------------------------------ */

/* The mesh a run has: the top manifest's (format 3), or the plan's (dp
 * ranks of one device). */
typedef struct mesh_layout_t {
  const moai_manifest_t *top; /* NULL: one device */
  uint32_t dp, tp, pp;
  int ranks;
} mesh_layout_t;

/* Rank r's coordinates and device entry. */
static mesh_rank_t rank_at(const mesh_layout_t *l, int r, int threads) {
  mesh_rank_t m = {.top = l->top, .dp = l->dp, .tp = l->tp, .pp = l->pp, .rank = r,
                   .ranks = l->ranks, .threads = threads};
  m.t = (uint32_t)r % l->tp;
  m.s = ((uint32_t)r / l->tp) % l->pp;
  m.d = (uint32_t)r / (l->tp * l->pp);
  /* The manifest's rank entry names the device (ZeRO-1: the rank's own). */
  if (l->top && (size_t)r < l->top->rank_count && l->top->ranks[r].device < l->top->device_count)
    m.device = &l->top->devices[l->top->ranks[r].device];
  return m;
}

/* Opens rank r's plan: its device of a format-3 plan, else the plan again. */
static moai_status_t open_rank_plan(const run_args_t *a, const mesh_layout_t *l,
                                    const mesh_rank_t *m, const moai_log_sink_t *log,
                                    moai_plan_t **out) {
  moai_plan_options_t options = moai_plan_options_default();
  options.log = log;
  moai_status_t status =
      l->top ? moai_plan_open_device(a->plan_dir, m->device ? m->device->index : 0, &options,
                                     moai_allocator_system(), out)
             : moai_plan_open(a->plan_dir, &options, moai_allocator_system(), out);
  if (!status && !moai_plan_training(*out)) {
    moai_plan_close(*out);
    *out = NULL;
    status = MOAI_STATUS(MOAI_FAILED_PRECONDITION, "device %u of %s is not a training plan: "
                         "recompile the plan", m->device ? m->device->index : 0, a->plan_dir);
  }
  char name[96];
  mesh_rank_name(m, name, sizeof(name));
  return moai_status_annotate(status, "while opening the plan for %s", name);
}

typedef struct rank_thread_t {
  const run_args_t *a;
  mesh_rank_t mr;
  const moai_log_sink_t *log;
  moai_status_t status;
} rank_thread_t;

static void *rank_main(void *arg) {
  rank_thread_t *t = arg;
  t->status = train_rank(t->a, &t->mr, t->log);
  if (t->status) moai_comm_abort(t->mr.world); /* frees the ranks waiting on this one */
  return NULL;
}

/* The threads backend: rank 0 on this thread, the others on their own
 * threads, each with its own instance of its device's plan (arena,
 * persistent region) and threads/ranks OpenMP threads (at least 1): each
 * thread opens its own OpenMP team, so the teams run side by side. `plan`
 * (one-device plans) is rank 0's. */
static moai_status_t train_threads(const run_args_t *a, const mesh_layout_t *l,
                                   moai_plan_t *plan, const moai_log_sink_t *log) {
  int n = l->ranks;
  int total = a->threads > 0 ? a->threads : omp_get_max_threads();
  int per = total / n > 0 ? total / n : 1;
  moai_plan_t **plans = calloc((size_t)n, sizeof(*plans));
  rank_thread_t *ranks = calloc((size_t)n, sizeof(*ranks));
  pthread_t *tids = calloc((size_t)n, sizeof(*tids));
  bool *started = calloc((size_t)n, sizeof(*started));
  moai_comm_threads_t *world = NULL;
  moai_status_t status = plans && ranks && tids && started
                             ? moai_comm_threads_create(n, moai_allocator_system(), &world)
                             : MOAI_STATUS(MOAI_OUT_OF_MEMORY, "out of memory");
  for (int r = 0; !status && r < n; ++r) {
    ranks[r] = (rank_thread_t){.a = a, .mr = rank_at(l, r, per), .log = log};
    ranks[r].mr.world = moai_comm_threads_rank(world, r);
    if (r == 0 && plan) plans[r] = plan;
    else status = open_rank_plan(a, l, &ranks[r].mr, log, &plans[r]);
    ranks[r].mr.plan = plans[r];
  }
  for (int r = 1; !status && r < n; ++r) {
    started[r] = pthread_create(&tids[r], NULL, rank_main, &ranks[r]) == 0;
    if (!started[r]) {
      status = MOAI_STATUS(MOAI_FAILED_PRECONDITION, "cannot start the thread of rank %d", r);
      moai_comm_abort(ranks[0].mr.world);
    }
  }
  if (!status) {
    rank_main(&ranks[0]);
    for (int r = 1; r < n; ++r)
      if (started[r]) pthread_join(tids[r], NULL);
    /* The failing rank's own error, not the others' "rank R failed". */
    int failed = moai_comm_threads_failed_rank(world);
    if (failed >= 0) {
      char name[96];
      mesh_rank_name(&ranks[failed].mr, name, sizeof(name));
      status = moai_status_annotate(ranks[failed].status, "on %s", name);
      ranks[failed].status = NULL;
    }
  } else {
    for (int r = 1; r < n; ++r)
      if (started[r]) pthread_join(tids[r], NULL);
  }
  for (int r = 0; ranks && r < n; ++r) moai_status_free(ranks[r].status);
  moai_comm_threads_destroy(world);
  for (int r = 0; plans && r < n; ++r)
    if (plans[r] != plan) moai_plan_close(plans[r]);
  free(plans);
  free(ranks);
  free(tids);
  free(started);
  return status;
}

/* Runs the mesh `l`: one rank here, threads, or this process's rank of an
 * MPI job. */
static moai_status_t train_launch(const run_args_t *a, const mesh_layout_t *l, moai_plan_t *plan,
                                  const moai_log_sink_t *log) {
  int job = moai_comm_mpi_job_size();
  if (job > 0 && job != l->ranks)
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "mpirun started %d processes, but the plan %s "
                       "has dp=%u tp=%u pp=%u, i.e. %d ranks: launch it with mpirun -np %d",
                       job, a->plan_dir, l->dp, l->tp, l->pp, l->ranks, l->ranks);
  if (l->ranks == 1) {
    mesh_rank_t m = rank_at(l, 0, a->threads);
    moai_plan_t *own = NULL;
    moai_status_t status = plan ? moai_ok_status() : open_rank_plan(a, l, &m, log, &own);
    m.plan = plan ? plan : own;
    if (!status) status = train_rank(a, &m, log);
    moai_plan_close(own);
    return status;
  }
  if (job == 0) return train_threads(a, l, plan, log);
  moai_comm_t *comm = NULL;
  MOAI_RETURN_IF_ERROR(moai_comm_mpi_open(NULL, &comm));
  mesh_rank_t m = rank_at(l, comm->rank, a->threads);
  m.world = comm;
  moai_plan_t *own = NULL;
  /* One-device plans: this process's own open of the plan is its rank's. */
  moai_status_t status = plan ? moai_ok_status() : open_rank_plan(a, l, &m, log, &own);
  m.plan = plan ? plan : own;
  if (!status) status = train_rank(a, &m, log);
  if (status) {
    /* The others may wait in a collective for this rank: say why, then end
     * the job (MPI_Abort does not return). */
    char name[96];
    mesh_rank_name(&m, name, sizeof(name));
    fprintf(stderr, "moai-run: %s: ", name);
    moai_status_fprint(stderr, status, false);
    fflush(stderr);
    moai_comm_abort(comm);
  }
  moai_plan_close(own);
  moai_comm_destroy(comm);
  return status;
}

moai_status_t train_run(const run_args_t *a, moai_plan_t *plan, const moai_log_sink_t *log) {
  const moai_manifest_t *m = moai_plan_manifest(plan);
  mesh_layout_t l = {.dp = m->mesh_dp, .tp = 1, .pp = 1, .ranks = (int)m->mesh_dp};
  return train_launch(a, &l, plan, log);
}

moai_status_t train_run_mesh(const run_args_t *a, const moai_manifest_t *top,
                             const moai_log_sink_t *log) {
  if (!top->training)
    return MOAI_STATUS(MOAI_UNIMPLEMENTED, "%s is a multi-device inference plan (mesh dp=%u "
                       "tp=%u pp=%u); moai-run runs multi-device training plans only",
                       a->plan_dir, top->mesh_dp, top->mesh_tp, top->mesh_pp);
  mesh_layout_t l = {.top = top, .dp = top->mesh_dp, .tp = top->mesh_tp, .pp = top->mesh_pp,
                     .ranks = (int)(top->mesh_dp * top->mesh_tp * top->mesh_pp)};
  return train_launch(a, &l, NULL, log);
}
