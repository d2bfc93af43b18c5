#include "registry.h"

#include <string.h>

#include "auto_parallel/auto_parallel.h"
#include "autodiff/autodiff.h"
#include "fuse/fuse.h"
#include "memory_plan/memory_plan.h"
#include "optimizer/optimizer.h"
#include "partition/partition.h"
#include "recompute/recompute.h"
#include "shape_infer/shape_infer.h"
#include "simplify/simplify.h"

static MlirPass create_shape_infer(void) {
  moai_shape_infer_options_t options = moai_shape_infer_options_default();
  return moai_shape_infer_pass_create(&options);
}

static MlirPass create_simplify(void) {
  moai_simplify_options_t options = moai_simplify_options_default();
  return moai_simplify_pass_create(&options);
}

static MlirPass create_fuse(void) {
  moai_fuse_options_t options = moai_fuse_options_default();
  return moai_fuse_pass_create(&options);
}

static MlirPass create_memory_plan(void) {
  moai_memory_plan_options_t options = moai_memory_plan_options_default();
  return moai_memory_plan_pass_create(&options);
}

static const moai_pass_info_t kPasses[] = {
    {"moai-shape-infer",
     "Infer static shapes and dtypes of moai ops, folding shape arithmetic "
     "(Shape/Gather/Concat/..., ConstantOfShape, Range) into constants",
     create_shape_infer},
    {"moai-simplify",
     "Remove dead moai ops and merge identical ones (DCE + CSE for the IRDL "
     "dialect, which upstream canonicalize/cse cannot touch)",
     create_simplify},
    {"moai-fuse",
     "Fuse the attention, RMSNorm, SwiGLU and rotary-embedding op chains "
     "exporters emit into moai.attention, rms_norm, swiglu and rotary, and "
     "linear layers into gemm (before moai-autodiff)",
     create_fuse},
    {"moai-autodiff",
     "Reverse-mode gradients of the scalar loss with respect to the trainable "
     "weights; @main returns (loss, loss_weight, grad.<p>...)",
     moai_autodiff_pass_create},
    {"moai-optimizer",
     "Accumulate gradients and the loss weight into persistent state and add "
     "@update: one AdamW or SGD step per trainable weight (moai.training)",
     moai_optimizer_pass_create},
    {"moai-auto-parallel",
     "Choose data/tensor/pipeline degrees, micro-batches, recomputation and "
     "ZeRO-1 with the cost model (moai.parallel_request -> moai.parallel)",
     moai_auto_parallel_pass_create},
    {"moai-partition",
     "Make one device's program of the moai.parallel mesh (moai.device): its "
     "pipeline stage and its Megatron-style tensor-parallel slice",
     moai_partition_pass_create},
    {"moai-recompute",
     "Recompute forward activations in the backward from checkpoints "
     "(moai.parallel recompute = selective or full) instead of keeping them",
     moai_recompute_pass_create},
    {"moai-memory-plan",
     "Give graph inputs and activations static 64-byte-aligned offsets in one "
     "arena per function (lifetimes, views, in-place, best-fit placement)",
     create_memory_plan},
};

const moai_pass_info_t *moai_pass_registry(size_t *out_count) {
  *out_count = sizeof(kPasses) / sizeof(kPasses[0]);
  return kPasses;
}

const moai_pass_info_t *moai_pass_registry_find(const char *argument) {
  for (size_t i = 0; i < sizeof(kPasses) / sizeof(kPasses[0]); ++i)
    if (strcmp(kPasses[i].argument, argument) == 0) return &kPasses[i];
  return NULL;
}
