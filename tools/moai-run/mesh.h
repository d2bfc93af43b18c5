/* moai-run's meshes (docs/training.md, "Meshes"): where a rank stands in a
 * dp x tp x pp mesh, its communication groups, the slices of its tensors in
 * the full ones, and the assembly of full tensors on rank 0 for checkpoints
 * and gradient dumps (mesh.c). The training loop is train.c. */
#ifndef MOAI_TOOLS_MOAI_RUN_MESH_H
#define MOAI_TOOLS_MOAI_RUN_MESH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/status.h"
#include "comm/comm.h"
#include "loader/manifest.h"
#include "loader/plan.h"
#include "train/checkpoint.h"

/* Point-to-point tags on the world (moai_comm_send/recv): a pipeline
 * message of micro-batch m, direction 0 (activation, stage s to s+1) or 1
 * (gradient, s+1 to s), is tag 2 (m mod 8192) + direction; the gather's
 * messages come above (MPI guarantees tags up to 32767). Messages of one
 * sender and tag arrive in order, which is all the gather relies on. */
#define MESH_TAG_PIPELINE_SPAN 8192
#define MESH_TAG_GATHER_DESC 16384
#define MESH_TAG_GATHER_WANT 16385
#define MESH_TAG_GATHER_DATA 16386

static inline int mesh_pipeline_tag(uint32_t micro_batch, int direction) {
  return (int)(2 * (micro_batch % MESH_TAG_PIPELINE_SPAN)) + direction;
}

/* One rank of a training run. */
typedef struct mesh_rank_t {
  moai_plan_t *plan;                    /* this rank's device plan (borrowed) */
  const moai_manifest_t *top;           /* format-3 top manifest, or NULL (one device) */
  const moai_manifest_device_t *device; /* this rank's entry of top->devices, or NULL */
  uint32_t dp, tp, pp;                  /* the mesh */
  uint32_t d, t, s;                     /* this rank's coordinates */
  int rank, ranks;                      /* rank = (d * pp + s) * tp + t */
  moai_comm_t *world;                   /* NULL: a run of one rank */
  moai_comm_t *dp_group, *tp_group;     /* from moai_comm_split (owned), or NULL */
  int threads;                          /* OpenMP threads of this rank's steps */
} mesh_rank_t;

/* The mesh's devices (tp x pp, or every rank's own with ZeRO-1): one device
 * needs no gathering. Device k's sending rank is world rank k (the rank of
 * dp index 0 at its (tp, pp), or with ZeRO-1 the rank itself). */
static inline uint32_t mesh_device_count(const mesh_rank_t *r) {
  return r->top ? (uint32_t)r->top->device_count : 1;
}

/* Splits the world into this rank's dp group (same t, s) and tp group (same
 * d, s), and binds the tp group to the plan's all-reduce ops. Collective
 * over the world. */
moai_status_t mesh_rank_join(mesh_rank_t *r) MOAI_MUST_USE;
/* Frees the groups. */
void mesh_rank_leave(mesh_rank_t *r);

/* "rank 5 (dp 1, tp 1, pp 0) of 8" into buf, for messages. */
void mesh_rank_name(const mesh_rank_t *r, char *buf, size_t size);

/* Fills slices[i] with where tensors[i] lies in its full tensor: the
 * device's shard of its name, or for a state tensor the shard of its
 * weight; whole otherwise. */
void mesh_rank_slices(const mesh_rank_t *r, const moai_plan_tensor_t *tensors, size_t n,
                      moai_checkpoint_slice_t *slices);

/* What a gather collects: checkpoint tensors (moai_checkpoint_holds) or the
 * step's gradients and loss weight (--dump-gradients). */
typedef enum mesh_gather_kind_e { MESH_GATHER_CHECKPOINT, MESH_GATHER_GRADIENTS } mesh_gather_kind_t;

/* Another device's tensors as its rank described them to rank 0 (names
 * allocated, data NULL). */
typedef struct mesh_part_t {
  moai_plan_tensor_t *tensors;
  moai_checkpoint_slice_t *slices;
  size_t count;
} mesh_part_t;

/* Assembling full tensors on rank 0 from one rank per device (world ranks
 * 0 .. devices - 1). */
typedef struct mesh_gather_t {
  bool active;                  /* more than one device, and this rank takes part */
  moai_checkpoint_gather_t *full; /* rank 0 only */
  mesh_part_t *parts;           /* rank 0 only: per device (0: unused) */
  uint32_t part_count;
  uint8_t *wanted;              /* per own tensor: rank 0 takes it from this rank */
  void *scratch;                /* rank 0: one received tensor */
  size_t scratch_bytes;
} mesh_gather_t;

/* Sets up the gather (collective over the ranks of dp index 0): each sends
 * rank 0 the description of its tensors; rank 0 plans the full tensors and
 * answers which of its tensors each must send. */
moai_status_t mesh_gather_open(const mesh_rank_t *r, const moai_plan_tensor_t *tensors,
                               const moai_checkpoint_slice_t *slices, size_t n,
                               mesh_gather_t *out) MOAI_MUST_USE;
/* Collects the full tensors of `kind` on rank 0 (collective over the ranks
 * of dp index 0; the others return at once). On rank 0 *out_tensors are the
 * tensors to save or dump (its own with one device; borrowed). */
moai_status_t mesh_gather_run(const mesh_rank_t *r, mesh_gather_t *g,
                              const moai_plan_tensor_t *tensors, size_t n,
                              mesh_gather_kind_t kind, const moai_plan_tensor_t **out_tensors,
                              size_t *out_count) MOAI_MUST_USE;
void mesh_gather_close(mesh_gather_t *g);

#endif /* MOAI_TOOLS_MOAI_RUN_MESH_H */
