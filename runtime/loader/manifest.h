/* manifest.json of a plan directory: the parsed, validated form, its reader
 * and its writer. The compiler's plan writer and the runtime's loader share
 * this code, so the schema has one definition (docs/plan-format.md). */
#ifndef MOAI_LOADER_MANIFEST_H
#define MOAI_LOADER_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "abi/moai_abi.h"
#include "abi/moai_ops.h"
#include "base/allocator.h"
#include "base/status.h"
#include "io/sha256.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The newest manifest format this runtime reads and writes. Version 2 adds
 * the parallel layout (mesh, ranks, prediction); version 1 manifests are
 * still read (as a mesh of one rank) and written for plans without one.
 * Version 3 is the top manifest of a multi-device plan (tp or pp > 1): each
 * device is a sub-directory holding a complete single-device plan. */
#define MOAI_PLAN_FORMAT_VERSION 3
#define MOAI_PLAN_FORMAT_NAME "moai-plan"
/* manifest.json larger than this is refused. */
#define MOAI_MANIFEST_MAX_BYTES (64u << 20)

/* A graph input or output. */
typedef struct moai_tensor_desc_t {
  const char *name;
  int32_t dtype; /* moai_abi_dtype_t */
  int32_t rank;
  int64_t dims[MOAI_MAX_RANK];
  uint64_t nbytes;
} moai_tensor_desc_t;

/* A tensor-parallel shard (format 3): weight `name` of a device is slice
 * `index` of `count` equal parts along `axis` of the full tensor; index is
 * the device's tp coordinate and count the mesh's tp. */
typedef struct moai_manifest_shard_t {
  const char *name;
  uint32_t axis, index, count;
} moai_manifest_shard_t;

/* A device's pipeline role (format 3, mesh pp > 1): the names of its plan's
 * inputs (recv: the activation from stage - 1; recv_grad: the gradient of
 * `send` from stage + 1) and outputs (send: the activation for stage + 1;
 * send_grad: the gradient of `recv` for stage - 1); NULL where none. */
typedef struct moai_manifest_pipeline_t {
  bool present; /* false: not pipelined (mesh pp == 1) */
  uint32_t stage, stages;
  const char *recv, *recv_grad, *send, *send_grad;
} moai_manifest_pipeline_t;

/* One device of the plan. Formats 1 and 2: its binary, weights and memory
 * sizes. Format 3: the sub-directory holding its single-device plan, that
 * plan's manifest hash, its mesh coordinates, shards and pipeline role
 * (binary and weights NULL, sizes 0). */
typedef struct moai_manifest_device_t {
  uint32_t index;
  const char *binary;  /* file name in the plan directory */
  char binary_sha256[MOAI_SHA256_HEX_SIZE];
  const char *weights; /* file name in the plan directory */
  char weights_sha256[MOAI_SHA256_HEX_SIZE];
  uint64_t arena_bytes, weights_bytes, const_bytes, live_lower_bound_bytes;
  /* format 3 */
  const char *plan; /* sub-directory name ("device-<k>") */
  char manifest_sha256[MOAI_SHA256_HEX_SIZE]; /* of plan/manifest.json */
  uint32_t tp, pp;  /* coordinates: index = pp * mesh_tp + tp */
  size_t shard_count;
  moai_manifest_shard_t *shards;
  moai_manifest_pipeline_t pipeline;
  /* ZeRO-1 (format 3): the device serves data-parallel rank `dp` only and
   * updates (keeps the optimizer state of) the weights in `owned`; moai-run
   * broadcasts each from its owner. false: every dp rank runs the device. */
  bool zero;
  uint32_t dp;
  size_t owned_count;
  const char **owned;
} moai_manifest_device_t;

/* The "training" object of a training plan (docs/plan-format.md). */
typedef struct moai_manifest_training_t {
  const char *optimizer;          /* "adamw" or "sgd" */
  moai_attrs_optimizer_t hyper;   /* lr, betas, eps, weight decay, momentum,
                                     schedule (abi/moai_ops.h) */
  uint32_t micro_batches;         /* micro-batches per optimizer step (>= 1) */
  const char *loss_output;        /* the output holding a micro-batch's loss */
  const char *loss_weight_output; /* the output holding its loss weight */
  /* How the loss weight is counted: "tokens" (non-ignored labels of
   * labels_input, the SoftmaxCrossEntropyLoss mean), or "one". */
  const char *loss_weight_kind;
  const char *labels_input;       /* NULL unless loss_weight_kind is tokens */
  /* In a format-3 top manifest, loss_output and loss_weight_output name
   * outputs of the last pipeline stage's device plans (not of `outputs`),
   * and trainable lists every trained weight by its full name. */
  int64_t ignore_index;           /* with has_ignore_index */
  bool has_ignore_index;
  size_t trainable_count;
  const char **trainable;         /* the trained weights' names */
  uint64_t persist_bytes;         /* size of MOAI_REGION_PERSIST (device 0);
                                     must equal the table's persist_size;
                                     0 in a format-3 top manifest */
} moai_manifest_training_t;

/* One rank of the plan's device mesh (format 2, docs/plan-format.md): its
 * coordinates and the device entry (binary and weights) it runs. Its groups
 * follow from the mesh (moai_manifest_rank_of). */
typedef struct moai_manifest_rank_t {
  uint32_t rank;
  uint32_t dp, tp, pp; /* coordinates */
  uint32_t device;     /* index into devices */
} moai_manifest_rank_t;

/* The rank at mesh coordinates (dp, tp, pp): tp varies fastest, then pp,
 * then dp (rank = (dp * pp_size + pp) * tp_size + tp). */
static inline uint32_t moai_manifest_rank_of(uint32_t dp, uint32_t tp, uint32_t pp,
                                             uint32_t tp_size, uint32_t pp_size) {
  return (dp * pp_size + pp) * tp_size + tp;
}

typedef struct moai_manifest_t {
  moai_allocator_t allocator; /* what the parser allocated this with */
  int64_t format_version;
  uint32_t abi_version;
  const char *moai_version;
  const char *target_triple;
  const char *target_cpu;
  size_t feature_count;
  const char **features; /* names from loader/cpu_features.h */
  const char *model_source;
  int64_t model_opset;
  const char *model_producer;
  size_t input_count, output_count, device_count;
  moai_tensor_desc_t *inputs;
  moai_tensor_desc_t *outputs;
  moai_manifest_device_t *devices;
  bool training; /* a training plan: `train` below is filled in */
  moai_manifest_training_t train;
  /* The parallel layout. A format-1 manifest reads as mesh 1x1x1 with one
   * rank on device 0; the writer writes mesh, ranks and prediction only when
   * format_version >= 2 (ranks NULL: derived from the mesh, every rank on
   * device 0, or in format 3 on device pp * mesh_tp + tp). */
  uint32_t mesh_dp, mesh_tp, mesh_pp;
  size_t rank_count;
  moai_manifest_rank_t *ranks;
  bool has_prediction;
  double predicted_step_seconds;
  uint64_t predicted_memory_bytes;
} moai_manifest_t;

/* Parses and validates manifest JSON text (`name` is used in messages):
 * every field present with the right type and no unknown ones; a
 * format_version newer than MOAI_PLAN_FORMAT_VERSION is refused first
 * ("plan format N is newer than this runtime (M)"). The result and every
 * string in it are owned by the caller: free with moai_manifest_free. */
moai_status_t moai_manifest_parse(const char *name, const char *text, size_t size,
                                  moai_allocator_t allocator,
                                  moai_manifest_t **out_manifest) MOAI_MUST_USE;

/* Reads and parses the file at `path`. */
moai_status_t moai_manifest_read(const char *path, moai_allocator_t allocator,
                                 moai_manifest_t **out_manifest) MOAI_MUST_USE;

/* The same as moai_manifest_read (the name moai-run uses for a plan's top
 * manifest). */
static inline moai_status_t moai_manifest_read_file(const char *path,
                                                    moai_allocator_t allocator,
                                                    moai_manifest_t **out_manifest) {
  return moai_manifest_read(path, allocator, out_manifest);
}

/* Writes `manifest` as JSON to `path` atomically (format, format_version and
 * abi_version are written as given). It is validated the way the reader
 * would validate it; nothing is written if it would be refused. */
moai_status_t moai_manifest_write(const char *path, const moai_manifest_t *manifest) MOAI_MUST_USE;

/* Frees a manifest from moai_manifest_parse/read (NULL is fine). */
void moai_manifest_free(moai_manifest_t *manifest);

#ifdef __cplusplus
}
#endif

#endif /* MOAI_LOADER_MANIFEST_H */
