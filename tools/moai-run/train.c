/* moai-run's training mode (docs/training.md, "Running training"): the
 * loop that feeds micro-batches from runtime/train's dataset and sampler to
 * a training plan, runs the optimizer, reports progress and saves
 * checkpoints. Everything that needs no plan lives in runtime/train; this
 * file only calls the plan.
 *
 * Data parallelism (docs/training.md, "Data parallelism"): a plan whose mesh
 * has dp > 1 runs dp ranks, each on its own instance of the plan, as
 * threads of this process or as the processes of an MPI job. A step's
 * dp x K x B examples are cut in rank order; after its micro-batches a rank
 * sums the accumulators (every grad state and the loss weight) over ranks,
 * and every rank runs the same update. Rank 0 alone reports and saves. */
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
#include "moai_run.h"
#include "train/checkpoint.h"
#include "train/dataset.h"
#include "train/progress.h"
#include "train/sampler.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Everything a run holds; freed by train_state_free. */
typedef struct train_state_t {
  moai_dataset_t *data;
  moai_sampler_t sampler;
  moai_tensor_desc_t *inputs; /* copies of the plan's input descriptions */
  void **buffers;             /* one micro-batch per input */
  uint64_t *indices;          /* one step's example indices */
  moai_plan_tensor_t *tensors;
  size_t input_count, tensor_count;
  long loss_out, weight_out; /* output indices */
  moai_checkpoint_position_t run; /* the run's settings and position */
  moai_comm_t *comm;         /* the data-parallel group, or NULL (one rank) */
  int rank, ranks;
  int threads;               /* OpenMP threads of this rank's steps */
} train_state_t;

static void train_state_free(train_state_t *s) {
  for (size_t i = 0; s->buffers && i < s->input_count; ++i) free(s->buffers[i]);
  free(s->buffers);
  free(s->inputs);
  free(s->indices);
  free(s->tensors);
  moai_sampler_deinit(&s->sampler);
  moai_dataset_close(s->data);
}

/* The index of the f32 scalar output `name`. */
static moai_status_t find_scalar_output(const moai_plan_t *plan, const char *name, long *out) {
  for (size_t i = 0; i < moai_plan_output_count(plan); ++i) {
    const moai_tensor_desc_t *d = moai_plan_output_desc(plan, i);
    if (strcmp(d->name, name) != 0) continue;
    if (d->dtype != MOAI_ABI_F32 || d->nbytes != 4)
      return MOAI_STATUS(MOAI_UNIMPLEMENTED, "the plan's output '%s' is not a float32 scalar",
                         name);
    *out = (long)i;
    return moai_ok_status();
  }
  return MOAI_STATUS(MOAI_NOT_FOUND, "the plan has no output '%s' (named by its manifest's "
                     "training section)", name);
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

/* Opens the data, the sampler, the buffers and the tensor list. */
static moai_status_t train_setup(const run_args_t *a, moai_plan_t *plan,
                                 const moai_manifest_training_t *train,
                                 const moai_log_sink_t *log, train_state_t *s) {
  s->input_count = moai_plan_input_count(plan);
  s->inputs = calloc(s->input_count ? s->input_count : 1, sizeof(*s->inputs));
  s->buffers = calloc(s->input_count ? s->input_count : 1, sizeof(*s->buffers));
  if (!s->inputs || !s->buffers) return MOAI_STATUS(MOAI_OUT_OF_MEMORY, "out of memory");
  for (size_t i = 0; i < s->input_count; ++i) s->inputs[i] = *moai_plan_input_desc(plan, i);
  MOAI_RETURN_IF_ERROR(find_scalar_output(plan, train->loss_output, &s->loss_out));
  MOAI_RETURN_IF_ERROR(find_scalar_output(plan, train->loss_weight_output, &s->weight_out));
  /* Rank 0 alone warns about the data: every rank opens the same file. */
  MOAI_RETURN_IF_ERROR(moai_dataset_open(a->data, s->inputs, s->input_count,
                                         s->rank == 0 ? log : NULL, moai_allocator_system(),
                                         &s->data));
  if (!a->drop_last) {
    if (!train->has_ignore_index)
      return MOAI_STATUS(MOAI_FAILED_PRECONDITION, "--no-drop-last needs the plan's loss to have "
                         "an ignore_index for filler rows; use --drop-last");
    MOAI_RETURN_IF_ERROR(moai_dataset_enable_filler(s->data, train->loss_weight_kind,
                                                    train->labels_input, train->ignore_index));
  }
  moai_sampler_config_t cfg = {
      .example_count = moai_dataset_example_count(s->data),
      .micro_batch_size = moai_dataset_micro_batch_size(s->data),
      /* A step is every rank's micro-batches: rank r takes the r-th
       * contiguous K x B of the step's order. */
      .micro_batches = train->micro_batches * (uint32_t)s->ranks, .shuffle = a->shuffle,
      .seed = a->seed, .drop_last = a->drop_last};
  MOAI_RETURN_IF_ERROR_CTX(moai_sampler_init(&cfg, moai_allocator_system(), &s->sampler),
                           "while batching %s", a->data);
  s->indices = calloc((size_t)moai_sampler_step_size(&cfg), sizeof(uint64_t));
  if (!s->indices) return MOAI_STATUS(MOAI_OUT_OF_MEMORY, "out of memory");
  for (size_t i = 0; i < s->input_count; ++i)
    if (!(s->buffers[i] = malloc(s->inputs[i].nbytes ? s->inputs[i].nbytes : 1)))
      return MOAI_STATUS(MOAI_OUT_OF_MEMORY, "out of memory");
  s->tensor_count = moai_plan_tensor_count(plan);
  s->tensors = calloc(s->tensor_count ? s->tensor_count : 1, sizeof(*s->tensors));
  if (!s->tensors) return MOAI_STATUS(MOAI_OUT_OF_MEMORY, "out of memory");
  for (size_t i = 0; i < s->tensor_count; ++i)
    if (!moai_plan_tensor(plan, i, &s->tensors[i]))
      return MOAI_STATUS(MOAI_INTERNAL, "plan tensor %zu of %zu is missing", i, s->tensor_count);
  s->run = (moai_checkpoint_position_t){
      .seed = a->seed, .shuffle = a->shuffle, .drop_last = a->drop_last,
      .micro_batches = train->micro_batches, .example_count = cfg.example_count,
      .step_examples = moai_sampler_step_size(&cfg)};
  return moai_ok_status();
}

/* Sums every accumulator (grad states, the loss weight) over the ranks, so
 * each holds the whole step's sum of w_k g_k and w_k before the update. */
static moai_status_t allreduce_accumulators(train_state_t *s) {
  if (s->ranks == 1) return moai_ok_status();
  for (size_t i = 0; i < s->tensor_count; ++i) {
    const moai_plan_tensor_t *t = &s->tensors[i];
    if (t->kind != MOAI_PLAN_TENSOR_STATE ||
        (t->role != MOAI_STATE_GRAD && t->role != MOAI_STATE_LOSS_WEIGHT))
      continue;
    if (t->dtype != MOAI_ABI_F32)
      return MOAI_STATUS(MOAI_UNIMPLEMENTED, "state '%s' is %s: data parallelism sums float32 "
                         "accumulators only", t->name, moai_abi_dtype_name(t->dtype));
    MOAI_RETURN_IF_ERROR_CTX(
        moai_comm_allreduce_sum(s->comm, MOAI_ABI_F32, t->data, (size_t)(t->nbytes / 4)),
        "while summing '%s' over %d ranks", t->name, s->ranks);
  }
  return moai_ok_status();
}

/* One optimizer step: every micro-batch, then the update. */
static moai_status_t train_step(const run_args_t *a, moai_plan_t *plan,
                                const moai_manifest_training_t *train, train_state_t *s,
                                bool dump, moai_progress_record_t *r) {
  uint64_t real = 0, epoch = 0;
  moai_sampler_next(&s->sampler, s->indices, &real, &epoch);
  uint64_t b = s->sampler.config.micro_batch_size;
  double loss_sum = 0, weight_sum = 0;
  for (uint32_t k = 0; k < train->micro_batches; ++k) {
    uint64_t first = ((uint64_t)s->rank * train->micro_batches + k) * b;
    /* A micro-batch of filler rows only carries zero loss weight: skipping
     * it is exact and avoids a 0/0 mean in the graph. */
    if (first >= real) break;
    uint64_t rows_real = real - first < b ? real - first : b;
    for (size_t i = 0; i < s->input_count; ++i) {
      const moai_tensor_desc_t *d = &s->inputs[i];
      MOAI_RETURN_IF_ERROR(moai_dataset_gather(s->data, i, s->indices + first, b, rows_real,
                                               s->buffers[i]));
      MOAI_RETURN_IF_ERROR(
          moai_plan_set_input(plan, d->name, d->dtype, d->rank, d->dims, s->buffers[i]));
    }
    MOAI_RETURN_IF_ERROR(moai_plan_run(plan, s->threads));
    moai_status_t status = moai_ok_status();
    float loss = read_scalar(plan, s->loss_out, &status);
    float w = read_scalar(plan, s->weight_out, &status);
    MOAI_RETURN_IF_ERROR(status);
    if (w > 0) loss_sum += (double)loss * (double)w;
    weight_sum += (double)w;
  }
  /* Ranks whose share was all filler ran nothing; they still take part. */
  MOAI_RETURN_IF_ERROR(allreduce_accumulators(s));
  double sums[2] = {loss_sum, weight_sum};
  MOAI_RETURN_IF_ERROR(moai_comm_allreduce_sum(s->comm, MOAI_ABI_F64, sums, 2));
  loss_sum = sums[0];
  weight_sum = sums[1];
  if (dump && s->rank == 0) MOAI_RETURN_IF_ERROR_CTX(moai_gradients_write(a->dump_gradients, s->tensors,
                                                          s->tensor_count),
                                     "while writing %s", a->dump_gradients);
  r->lr = moai_optimizer_lr(&train->hyper, s->run.step);
  MOAI_RETURN_IF_ERROR(moai_plan_run_update(plan, s->threads));
  s->run.step += 1;
  s->run.epoch = s->sampler.epoch;
  s->run.position = s->sampler.position;
  bool tokens = train->loss_weight_kind && strcmp(train->loss_weight_kind, "tokens") == 0;
  r->step = s->run.step;
  r->epoch = epoch;
  r->loss = weight_sum > 0 ? loss_sum / weight_sum : (double)NAN;
  r->tokens = tokens ? weight_sum : (double)real;
  r->examples = real;
  return moai_ok_status();
}

/* One rank's whole run (the only one when comm is NULL). */
static moai_status_t train_rank(const run_args_t *a, moai_plan_t *plan, moai_comm_t *comm,
                                int threads, const moai_log_sink_t *log) {
  const moai_manifest_training_t *train = moai_plan_training(plan);
  train_state_t s = {.comm = comm, .rank = moai_comm_rank(comm),
                     .ranks = moai_comm_size(comm), .threads = threads};
  bool lead = s.rank == 0;
  moai_progress_t progress = {0};
  bool progress_open = false;
  double t0 = now_s();
  moai_status_t status = train_setup(a, plan, train, log, &s);
  if (!status && a->resume_dir) {
    moai_checkpoint_position_t saved;
    status = moai_checkpoint_load(a->resume_dir, s.tensors, s.tensor_count, &s.run,
                                  moai_allocator_system(), &saved);
    if (!status) status = moai_sampler_seek(&s.sampler, saved.epoch, saved.position);
    if (!status) {
      s.run.step = saved.step;
      s.run.epoch = saved.epoch;
      s.run.position = saved.position;
    }
  }
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
    status = train_step(a, plan, train, &s, a->dump_gradients && s.run.step == first_step, &r);
    if (status) break;
    r.seconds = now_s() - ts;
    r.elapsed = now_s() - t0;
    loss = r.loss;
    examples += r.examples;
    status = moai_progress_step(&progress, &r);
    saved_last = false;
    if (!status && lead && a->save_dir && a->save_every > 0 && s.run.step % a->save_every == 0) {
      status = moai_checkpoint_save(a->save_dir, s.tensors, s.tensor_count, &s.run);
      saved_last = true;
    }
  }
  if (!status && lead && a->save_dir && !saved_last && s.run.step > first_step)
    status = moai_checkpoint_save(a->save_dir, s.tensors, s.tensor_count, &s.run);
  if (progress_open) {
    moai_status_t closed = moai_progress_close(&progress);
    if (!status) status = closed;
    else moai_status_free(closed);
  }
  if (!status && !a->quiet && lead) {
    if (s.run.step == first_step)
      printf("nothing to do: the checkpoint is at step %lld of %lld\n",
             (long long)s.run.step, (long long)total);
    else
      printf("trained %lld steps (%lld to %lld) on %llu examples in %.1f s: final loss %.4f%s\n",
             (long long)(s.run.step - first_step), (long long)first_step + 1,
             (long long)s.run.step, (unsigned long long)examples, now_s() - t0, loss,
             s.ranks > 1 ? (strcmp(comm->backend, "mpi") == 0 ? " (MPI ranks)" : " (thread ranks)")
                         : "");
  }
  train_state_free(&s);
  return status;
}

/* ---- launching the ranks ------------------------------------------------ */

typedef struct rank_thread_t {
  const run_args_t *a;
  moai_plan_t *plan;
  moai_comm_t *comm;
  int threads;
  const moai_log_sink_t *log;
  moai_status_t status;
} rank_thread_t;

static void *rank_main(void *arg) {
  rank_thread_t *t = arg;
  t->status = train_rank(t->a, t->plan, t->comm, t->threads, t->log);
  if (t->status) moai_comm_abort(t->comm); /* frees the ranks waiting on this one */
  return NULL;
}

/* The threads backend: rank 0 on this thread with `plan`, ranks 1..dp-1 on
 * their own threads, each with its own instance of the plan (arena,
 * persistent region) and threads/dp OpenMP threads (at least 1): each
 * thread opens its own OpenMP team, so the teams run side by side. */
static moai_status_t train_threads(const run_args_t *a, moai_plan_t *plan, int dp,
                                   const moai_log_sink_t *log) {
  int total = a->threads > 0 ? a->threads : omp_get_max_threads();
  int per = total / dp > 0 ? total / dp : 1;
  moai_plan_t **plans = calloc((size_t)dp, sizeof(*plans));
  rank_thread_t *ranks = calloc((size_t)dp, sizeof(*ranks));
  pthread_t *tids = calloc((size_t)dp, sizeof(*tids));
  bool *started = calloc((size_t)dp, sizeof(*started));
  moai_comm_threads_t *world = NULL;
  moai_status_t status = plans && ranks && tids && started
                             ? moai_comm_threads_create(dp, moai_allocator_system(), &world)
                             : MOAI_STATUS(MOAI_OUT_OF_MEMORY, "out of memory");
  if (!status) plans[0] = plan;
  moai_plan_options_t options = moai_plan_options_default();
  options.log = log;
  for (int r = 1; !status && r < dp; ++r)
    status = moai_status_annotate(
        moai_plan_open(a->plan_dir, &options, moai_allocator_system(), &plans[r]),
        "while opening the plan for rank %d of %d", r, dp);
  if (status) moai_comm_threads_destroy(world);
  for (int r = 0; !status && r < dp; ++r)
    ranks[r] = (rank_thread_t){.a = a, .plan = plans[r], .threads = per, .log = log,
                               .comm = moai_comm_threads_rank(world, r)};
  for (int r = 1; !status && r < dp; ++r) {
    started[r] = pthread_create(&tids[r], NULL, rank_main, &ranks[r]) == 0;
    if (!started[r]) {
      status = MOAI_STATUS(MOAI_FAILED_PRECONDITION, "cannot start the thread of rank %d", r);
      moai_comm_abort(ranks[0].comm);
    }
  }
  if (!status) {
    rank_main(&ranks[0]);
    for (int r = 1; r < dp; ++r)
      if (started[r]) pthread_join(tids[r], NULL);
    /* The failing rank's own error, not the others' "rank R failed". */
    int failed = moai_comm_threads_failed_rank(world);
    if (failed >= 0) {
      status = ranks[failed].status;
      ranks[failed].status = NULL;
      if (dp > 1) status = moai_status_annotate(status, "on rank %d of %d", failed, dp);
    }
    for (int r = 0; r < dp; ++r) moai_status_free(ranks[r].status);
  } else {
    for (int r = 1; r < dp; ++r)
      if (started[r]) pthread_join(tids[r], NULL);
    for (int r = 0; r < dp; ++r) moai_status_free(ranks[r].status);
  }
  moai_comm_threads_destroy(world);
  for (int r = 1; plans && r < dp; ++r) moai_plan_close(plans[r]);
  free(plans);
  free(ranks);
  free(tids);
  free(started);
  return status;
}

moai_status_t train_run(const run_args_t *a, moai_plan_t *plan, const moai_log_sink_t *log) {
  const moai_manifest_t *m = moai_plan_manifest(plan);
  int dp = (int)m->mesh_dp;
  int job = moai_comm_mpi_job_size();
  if (job > 0 && job != dp)
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "mpirun started %d processes, but the plan %s "
                       "has dp=%d ranks: launch it with mpirun -np %d (or compile the plan with "
                       "moaicc --data-parallel %d)", job, a->plan_dir, dp, dp, job);
  if (dp == 1) return train_rank(a, plan, NULL, a->threads, log);
  if (job == 0) return train_threads(a, plan, dp, log);
  moai_comm_t *comm = NULL;
  MOAI_RETURN_IF_ERROR(moai_comm_mpi_open(NULL, &comm));
  moai_status_t status = train_rank(a, plan, comm, a->threads, log);
  if (status) {
    /* The others may wait in a collective for this rank: say why, then end
     * the job (MPI_Abort does not return). */
    fprintf(stderr, "moai-run: rank %d of %d: ", comm->rank, comm->size);
    moai_status_fprint(stderr, status, false);
    fflush(stderr);
    moai_comm_abort(comm);
  }
  moai_comm_destroy(comm);
  return status;
}
