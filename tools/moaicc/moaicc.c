/* moaicc: the moai compiler driver.
 *
 *   moaicc MODEL.onnx -o PLAN_DIR [options]
 *   moaicc MODEL.onnx --emit=mlir|summary|llvm [-o FILE]
 *
 * Imports the model, runs the pass pipeline and writes the plan directory
 * atomically, or prints the module after the pipeline. Library code returns
 * statuses; only this file turns them into messages and exit codes. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driver/compile.h"
#include "mlir-c/BuiltinAttributes.h"
#include "driver/pipeline.h"
#include "ir/dialect.h"
#include "ir/diag.h"
#include "version.h"

static void usage(FILE *out) {
  fprintf(out,
      "usage: moaicc MODEL.onnx|MODEL.pt -o PLAN_DIR [options]\n"
      "       moaicc MODEL.onnx --emit=mlir|summary|llvm [-o FILE]\n"
      "       moaicc MODULE.mlir -o PLAN_DIR [options]\n"
      "\n"
      "Compiles an ONNX export of a model (forward, or forward + scalar loss)\n"
      "into a moai plan directory, or prints the moai-dialect MLIR. A .mlir\n"
      "input is a module in the moai dialect (moai-opt or --emit=mlir output, or\n"
      "a post-optimizer training module): it is parsed and run through the same\n"
      "pipeline; relative weight files resolve against the current directory.\n"
      "A .pt/.pth input is a TorchScript archive (torch.jit.save of a traced or\n"
      "scripted module; see docs/torchscript.md): give every tensor argument\n"
      "of its forward a shape and dtype with --input-shape.\n"
      "\n"
      "output:\n"
      "  -o PATH                  plan directory to write (replaced atomically):\n"
      "                           device-0.so, weights-0.safetensors,\n"
      "                           manifest.json, model.mlir, plan.txt;\n"
      "                           with --emit, the file to print to (default stdout)\n"
      "  --emit=mlir              print the module after the pipeline instead of\n"
      "                           writing a plan\n"
      "  --emit=summary           print the plan summary (inputs, outputs,\n"
      "                           parameters, op counts)\n"
      "  --emit=llvm              print the optimised LLVM IR of device 0\n"
      "  --mlir-print-debuginfo   with --emit=mlir, print locations (file, node, op type)\n"
      "\n"
      "target (default: this machine's CPU and all its features; a binary built\n"
      "for them may not run on another CPU, and moai-run refuses it there):\n"
      "  --target-cpu=NAME        compile for the LLVM CPU NAME instead (e.g.\n"
      "                           x86-64-v3, skylake-avx512, znver4), with that\n"
      "                           CPU's features, to run the plan elsewhere\n"
      "  --target-features=LIST   LLVM features on top of the CPU's, e.g.\n"
      "                           +avx512f,-avx512vnni (with no --target-cpu:\n"
      "                           on top of this machine's CPU model)\n"
      "  --no-fuse-elementwise    keep each elementwise op its own kernel call\n"
      "                           (default: chains of them are generated as one\n"
      "                           vectorised loop in the device binary)\n"
      "\n"
      "model:\n"
      "  --input-shape NAME=DIMS[:DTYPE]\n"
      "                           fix the shape of a graph input with symbolic\n"
      "                           dimensions, e.g. input_ids=4x256 (repeatable);\n"
      "                           required for every tensor argument of a\n"
      "                           TorchScript archive, with its dtype (float32\n"
      "                           default, int64, int32, float64, bool), e.g.\n"
      "                           input_ids=4x256:int64; for ONNX the dtype must\n"
      "                           be the input's declared one\n"
      "  --dim NAME=N             give every symbolic dimension called NAME (an\n"
      "                           export's dynamic axis, e.g. batch=4) the size N\n"
      "                           (repeatable)\n"
      "  --trainable A,B,...      train exactly these initializers (default: the\n"
      "                           model's moai.trainable_parameters metadata, else\n"
      "                           every float initializer)\n"
      "  --freeze A,B,...         exclude these initializers from training\n"
      "  --no-check-external-data accept external weight files that do not exist\n"
      "                           (shape-only models; weights are needed only when\n"
      "                           a plan's weight files are written)\n"
      "\n"
      "training (moaicc MODEL.onnx --train -o PLAN_DIR; docs/training.md):\n"
      "  --train                  compile the training step: the model's output is\n"
      "                           the scalar loss; moai derives backward and the\n"
      "                           optimizer update\n"
      "  --gradients              compile forward + backward only, no optimizer:\n"
      "                           an inference plan whose outputs are the loss,\n"
      "                           its weight and grad.<name> of every trainable\n"
      "                           weight and float input (gradient checking)\n"
      "  --optimizer=adamw|sgd    the optimizer (default adamw, as torch.optim)\n"
      "  --lr=X                   learning rate (default 1e-3)\n"
      "  --beta1=X --beta2=X      AdamW moment decays (default 0.9, 0.999)\n"
      "  --eps=X                  AdamW epsilon (default 1e-8)\n"
      "  --weight-decay=X         decoupled weight decay (AdamW, default 0.01) or\n"
      "                           L2 penalty (SGD, default 0)\n"
      "  --momentum=X             SGD momentum (default 0)\n"
      "  --dampening=X            SGD dampening (default 0)\n"
      "  --nesterov               SGD Nesterov momentum\n"
      "  --lr-schedule=constant|cosine\n"
      "                           cosine: linear warm-up over --warmup-steps, then\n"
      "                           cosine decay to 0 at --total-steps\n"
      "  --warmup-steps=N         warm-up steps of the cosine schedule (default 0)\n"
      "  --total-steps=N          steps of the cosine schedule\n"
      "  --micro-batches=K        gradient accumulation: each optimizer step runs K\n"
      "                           micro-batches of the model's batch size (default 1)\n"
      "  --data-parallel=N        data parallelism over N ranks (threads of one\n"
      "                           moai-run, or mpirun -np N): each step takes N times\n"
      "                           the micro-batches; gradients are summed over ranks\n"
      "                           (the same as --devices N --strategy dp=N)\n"
      "\n"
      "parallelism (docs/cost-model.md):\n"
      "  --devices N              plan for N devices of this machine (its cores and\n"
      "                           memory shared N ways)\n"
      "  --cluster FILE.json      plan for the cluster described in FILE\n"
      "                           (examples/clusters/)\n"
      "  --strategy S             force a strategy, e.g.\n"
      "                           dp=2,tp=2,pp=2,mb=8,recompute=selective,zero=1\n"
      "                           (checked: it must divide and fit in memory)\n"
      "  --explain                print the candidate table (chosen plan, fastest\n"
      "                           alternatives, rejected ones and why); plans only\n"
      "  --dry-run                plan only: shape-infer the model without reading\n"
      "                           weights, print the chosen plan, its predicted\n"
      "                           step time and memory; no plan directory\n"
      "  The choice is recorded as the module attribute moai.parallel; plans\n"
      "  with tp or pp > 1 cannot be compiled to binaries yet.\n"
      "\n"
      "pipeline:\n"
      "  --pass-pipeline=P        run pipeline P instead of the default\n"
      "                           '" MOAI_DEFAULT_PIPELINE "'\n"
      "                           (with --train: '" MOAI_TRAIN_PIPELINE "')\n"
      "  --mlir-print-ir-after-all   print the module after every pass (stderr)\n"
      "  --mlir-print-ir-before-all  print the module before every pass (stderr)\n"
      "\n"
      "general:\n"
      "  -v, --verbose            progress messages on stderr\n"
      "  --help                   show this help\n"
      "  --version                show the version\n");
}

typedef struct list_t {
  const char **items;
  size_t count;
} list_t;

static int list_push(list_t *l, const char *item) {
  const char **grown = realloc(l->items, (l->count + 1) * sizeof(*grown));
  if (!grown) return 0;
  grown[l->count++] = item;
  l->items = grown;
  return 1;
}

/* Splits "a,b,c" in place (the argv string) into `l`. */
static int list_push_csv(list_t *l, char *csv) {
  for (char *tok = strtok(csv, ","); tok; tok = strtok(NULL, ","))
    if (*tok && !list_push(l, tok)) return 0;
  return 1;
}

typedef enum { EMIT_PLAN, EMIT_MLIR, EMIT_SUMMARY, EMIT_LLVM } emit_t;

typedef struct args_t {
  const char *model;
  const char *output;
  emit_t emit;
  bool debuginfo, verbose;
  list_t shapes, dims, trainable, frozen;
  bool have_trainable;
  moai_compile_options_t compile;
  moai_plan_options_t plan;
  bool train;
  moai_training_options_t training;
  int64_t devices;
  const char *cluster, *strategy;
  bool explain, dry_run;
  bool data_parallel;   /* --data-parallel N: --devices N --strategy dp=N,mb=K */
  char dp_strategy[64];
} args_t;

/* Parses a number option; prints the error and returns false when bad. */
static bool parse_real(const char *flag, const char *value, double *out) {
  char *end = NULL;
  errno = 0;
  double v = strtod(value, &end);
  if (end == value || *end || errno || !(v == v)) {
    fprintf(stderr, "moaicc: %s expects a number, got '%s'\n", flag, value);
    return false;
  }
  *out = v;
  return true;
}

static bool parse_count(const char *flag, const char *value, int64_t *out) {
  char *end = NULL;
  errno = 0;
  long long v = strtoll(value, &end, 10);
  if (end == value || *end || errno || v < 0) {
    fprintf(stderr, "moaicc: %s expects a non-negative integer, got '%s'\n", flag, value);
    return false;
  }
  *out = v;
  return true;
}

/* Returns 0 to continue, or an exit code + 1. */
static int parse_args(int argc, char **argv, args_t *a) {
  a->compile = moai_compile_options_default();
  a->training = moai_training_options_default();
  bool training_flag = false;
  for (int i = 1; i < argc; ++i) {
    char *arg = argv[i];
    const char *value = NULL;
#define TAKES_VALUE(flag)                                                   \
  ((strcmp(arg, flag) == 0 && i + 1 < argc && (value = argv[++i])) ||       \
   (strncmp(arg, flag "=", sizeof(flag)) == 0 && (value = arg + sizeof(flag))))
    if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
      usage(stdout);
      return 1;
    } else if (strcmp(arg, "--version") == 0) {
      printf("moaicc %s (MLIR 22)\n", moai_version_string());
      return 1;
    } else if (strcmp(arg, "-o") == 0 && i + 1 < argc) {
      a->output = argv[++i];
    } else if (TAKES_VALUE("--emit")) {
      if (strcmp(value, "mlir") == 0) a->emit = EMIT_MLIR;
      else if (strcmp(value, "summary") == 0) a->emit = EMIT_SUMMARY;
      else if (strcmp(value, "llvm") == 0) a->emit = EMIT_LLVM;
      else {
        fprintf(stderr, "moaicc: unknown --emit kind '%s' (mlir, summary or llvm)\n", value);
        return 3;
      }
    } else if (TAKES_VALUE("--input-shape")) {
      if (!list_push(&a->shapes, value)) return 2;
    } else if (TAKES_VALUE("--dim")) {
      if (!list_push(&a->dims, value)) return 2;
    } else if (TAKES_VALUE("--trainable")) {
      a->have_trainable = true;
      if (!list_push_csv(&a->trainable, (char *)value)) return 2;
    } else if (TAKES_VALUE("--freeze")) {
      if (!list_push_csv(&a->frozen, (char *)value)) return 2;
    } else if (TAKES_VALUE("--target-cpu")) {
      a->plan.target_cpu = value;
    } else if (TAKES_VALUE("--target-features")) {
      a->plan.target_features = value;
    } else if (strcmp(arg, "--no-fuse-elementwise") == 0) {
      a->plan.no_fuse_elementwise = true;
    } else if (strcmp(arg, "--gradients") == 0) {
      a->compile.gradients = true;
    } else if (strcmp(arg, "--train") == 0) {
      a->train = true;
    } else if (TAKES_VALUE("--optimizer")) {
      training_flag = true;
      if (strcmp(value, "adamw") != 0 && strcmp(value, "sgd") != 0) {
        fprintf(stderr, "moaicc: unknown --optimizer '%s' (adamw or sgd)\n", value);
        return 3;
      }
      a->training.optimizer = value;
    } else if (TAKES_VALUE("--lr-schedule")) {
      training_flag = true;
      if (strcmp(value, "constant") != 0 && strcmp(value, "cosine") != 0) {
        fprintf(stderr, "moaicc: unknown --lr-schedule '%s' (constant or cosine)\n", value);
        return 3;
      }
      a->training.schedule = value;
    } else if (TAKES_VALUE("--lr")) {
      training_flag = true;
      if (!parse_real("--lr", value, &a->training.lr)) return 3;
    } else if (TAKES_VALUE("--beta1")) {
      training_flag = true;
      if (!parse_real("--beta1", value, &a->training.beta1)) return 3;
    } else if (TAKES_VALUE("--beta2")) {
      training_flag = true;
      if (!parse_real("--beta2", value, &a->training.beta2)) return 3;
    } else if (TAKES_VALUE("--eps")) {
      training_flag = true;
      if (!parse_real("--eps", value, &a->training.eps)) return 3;
    } else if (TAKES_VALUE("--weight-decay")) {
      training_flag = true;
      if (!parse_real("--weight-decay", value, &a->training.weight_decay)) return 3;
    } else if (TAKES_VALUE("--momentum")) {
      training_flag = true;
      if (!parse_real("--momentum", value, &a->training.momentum)) return 3;
    } else if (TAKES_VALUE("--dampening")) {
      training_flag = true;
      if (!parse_real("--dampening", value, &a->training.dampening)) return 3;
    } else if (strcmp(arg, "--nesterov") == 0) {
      training_flag = true;
      a->training.nesterov = 1;
    } else if (TAKES_VALUE("--warmup-steps")) {
      training_flag = true;
      if (!parse_count("--warmup-steps", value, &a->training.warmup_steps)) return 3;
    } else if (TAKES_VALUE("--total-steps")) {
      training_flag = true;
      if (!parse_count("--total-steps", value, &a->training.total_steps)) return 3;
    } else if (TAKES_VALUE("--micro-batches")) {
      training_flag = true;
      if (!parse_count("--micro-batches", value, &a->training.micro_batches)) return 3;
      if (a->training.micro_batches < 1) {
        fprintf(stderr, "moaicc: --micro-batches must be at least 1\n");
        return 3;
      }
    } else if (TAKES_VALUE("--devices")) {
      if (!parse_count("--devices", value, &a->devices)) return 3;
      if (a->devices < 1) {
        fprintf(stderr, "moaicc: --devices must be at least 1\n");
        return 3;
      }
    } else if (TAKES_VALUE("--cluster")) {
      a->cluster = value;
    } else if (TAKES_VALUE("--strategy")) {
      a->strategy = value;
    } else if (strcmp(arg, "--explain") == 0) {
      a->explain = true;
    } else if (strcmp(arg, "--dry-run") == 0) {
      a->dry_run = true;
    } else if (TAKES_VALUE("--data-parallel")) {
      /* --devices N --strategy dp=N */
      training_flag = true;
      int64_t n = 0;
      if (!parse_count("--data-parallel", value, &n)) return 3;
      if (n < 1) {
        fprintf(stderr, "moaicc: --data-parallel must be at least 1\n");
        return 3;
      }
      a->devices = n;
      a->data_parallel = true; /* the strategy is written once all options are read */
    } else if (TAKES_VALUE("--pass-pipeline")) {
      a->compile.pipeline = value;
    } else if (strcmp(arg, "--no-check-external-data") == 0) {
      a->compile.check_external_data = false;
    } else if (strcmp(arg, "--mlir-print-ir-after-all") == 0) {
      a->compile.print_ir_after_all = true;
    } else if (strcmp(arg, "--mlir-print-ir-before-all") == 0) {
      a->compile.print_ir_before_all = true;
    } else if (strcmp(arg, "--mlir-print-debuginfo") == 0) {
      a->debuginfo = true;
    } else if (strcmp(arg, "-v") == 0 || strcmp(arg, "--verbose") == 0) {
      a->verbose = true;
    } else if (arg[0] == '-' && arg[1] != '\0') {
      fprintf(stderr, "moaicc: unknown option '%s' (see moaicc --help)\n", arg);
      return 3;
    } else if (!a->model) {
      a->model = arg;
    } else {
      fprintf(stderr, "moaicc: more than one model given ('%s' and '%s')\n",
              a->model, arg);
      return 3;
    }
#undef TAKES_VALUE
  }
  if (a->train && a->compile.gradients) {
    fprintf(stderr, "moaicc: --gradients and --train exclude each other\n");
    return 3;
  }
  if (a->data_parallel) { /* dp=N, accumulation as --micro-batches */
    if (a->strategy) {
      fprintf(stderr, "moaicc: --data-parallel N and --strategy exclude each other\n");
      return 3;
    }
    snprintf(a->dp_strategy, sizeof(a->dp_strategy), "dp=%lld,tp=1,pp=1,mb=%lld",
             (long long)a->devices,
             (long long)(a->training.micro_batches > 0 ? a->training.micro_batches : 1));
    a->strategy = a->dp_strategy;
  }
  if (training_flag && !a->train) {
    fprintf(stderr, "moaicc: optimizer options need --train\n");
    return 3;
  }
  if (!a->model) {
    fprintf(stderr, "moaicc: no model given (usage: moaicc MODEL.onnx -o PLAN_DIR; see --help)\n");
    return 3;
  }
  if (a->devices && a->cluster) {
    fprintf(stderr, "moaicc: --devices and --cluster exclude each other (a cluster file names its devices)\n");
    return 3;
  }
  if (a->emit == EMIT_PLAN && !a->output && !a->dry_run && !a->explain) {
    fprintf(stderr, "moaicc: no output given: pass -o PLAN_DIR, or --emit=mlir to print the module\n");
    return 3;
  }
  return 0;
}

static int write_text(const char *path, const char *text) {
  if (!path || strcmp(path, "-") == 0) {
    fputs(text, stdout);
    return fflush(stdout) == 0 ? 0 : 1;
  }
  /* Write a sibling temporary and rename, so a failure leaves no partial file. */
  char tmp[4096];
  if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) return 1;
  bool special = strncmp(path, "/dev/", 5) == 0;
  FILE *f = fopen(special ? path : tmp, "w");
  if (!f) {
    fprintf(stderr, "moaicc: cannot write '%s': %s\n", path, strerror(errno));
    return 1;
  }
  int bad = fputs(text, f) < 0;
  bad |= fclose(f) != 0;
  if (!special && (bad || rename(tmp, path) != 0)) {
    fprintf(stderr, "moaicc: writing '%s' failed: %s\n", path, strerror(errno));
    remove(tmp);
    return 1;
  }
  return bad;
}

int main(int argc, char **argv) {
  args_t a = {0};
  int rc = parse_args(argc, argv, &a);
  if (rc) return rc - 1;
  moai_log_sink_t log = moai_log_sink_stderr(a.verbose ? MOAI_LOG_LEVEL_INFO
                                                       : MOAI_LOG_LEVEL_WARNING);
  a.compile.model_path = a.model;
  a.compile.input_shapes = a.shapes.items;
  a.compile.input_shape_count = a.shapes.count;
  a.compile.dim_values = a.dims.items;
  a.compile.dim_value_count = a.dims.count;
  a.compile.trainable = a.have_trainable ? a.trainable.items : NULL;
  a.compile.trainable_count = a.trainable.count;
  a.compile.frozen = a.frozen.items;
  a.compile.frozen_count = a.frozen.count;
  a.compile.log = &log;
  a.compile.training = a.train ? &a.training : NULL;
  a.plan.log = &log;
  moai_parallel_options_t par = {0};
  moai_strategy_t forced;
  moai_plan_result_t planned = {0};
  moai_model_desc_t planned_model = {0};
  bool parallel = a.devices || a.cluster || a.strategy || a.explain || a.dry_run;
  /* --explain alone plans only; with -o it explains the plan it writes. */
  bool plan_only = a.dry_run || (a.explain && (!a.output || a.emit != EMIT_PLAN));
  if (parallel) {
    moai_status_t st = a.cluster ? moai_cluster_load(a.cluster, &par.cluster)
                                 : moai_cluster_from_host(a.devices ? a.devices : 1, &par.cluster);
    if (!st && a.strategy) st = moai_strategy_parse(a.strategy, &forced);
    if (st) {
      fprintf(stderr, "moaicc: error: ");
      moai_status_fprint(stderr, st, false);
      moai_status_free(st);
      return 1;
    }
    par.strategy = a.strategy ? &forced : NULL;
    par.accumulation = a.train ? a.training.micro_batches : 1;
    par.dry_run = plan_only;
    par.training = a.train;
    par.out_result = &planned;
    par.out_model = &planned_model;
    a.compile.parallel = &par;
    if (plan_only) a.compile.check_external_data = false;
  }

  MlirContext ctx;
  moai_status_t status = moai_context_create(false, &ctx);
  if (status) {
    fprintf(stderr, "moaicc: ");
    moai_status_fprint(stderr, status, true);
    moai_status_free(status);
    return 1;
  }
  /* Diagnostics are collected, not printed: the failing status carries the
   * first error, so each problem is reported exactly once. */
  moai_diag_sink_t diag;
  moai_diag_attach(ctx, &diag, NULL);
  MlirModule module = {NULL};
  moai_plan_device_module_t *devices = NULL;
  size_t device_count = 0;
  a.compile.out_devices = &devices;
  a.compile.out_device_count = &device_count;
  status = moai_compile_module(ctx, &a.compile, &diag, &module);
  moai_strbuf_t sb;
  moai_strbuf_init(&sb, moai_allocator_system());
  if (parallel && (a.explain || (status && planned.count))) {
    moai_strbuf_t ex;
    moai_strbuf_init(&ex, moai_allocator_system());
    moai_plan_explain(&planned, &planned_model, &par.cluster, 10, &ex);
    if (!plan_only && !status) {
      MlirAttribute p = mlirOperationGetAttributeByName(mlirModuleGetOperation(module),
                                                        mlirStringRefCreateFromCString("moai.parallel"));
      int64_t deg[5] = {1, 1, 1, 1, 0};
      const char *keys[5] = {"dp", "tp", "pp", "micro_batches", "zero"};
      for (int i = 0; i < 5 && !mlirAttributeIsNull(p); ++i) {
        MlirAttribute v = mlirDictionaryAttrGetElementByName(p, mlirStringRefCreateFromCString(keys[i]));
        if (!mlirAttributeIsNull(v)) deg[i] = mlirIntegerAttrGetValueInt(v);
      }
      MlirAttribute rc = mlirAttributeIsNull(p) ? p
                         : mlirDictionaryAttrGetElementByName(p, mlirStringRefCreateFromCString("recompute"));
      MlirStringRef rcs = !mlirAttributeIsNull(rc) && mlirAttributeIsAString(rc)
                              ? mlirStringAttrGetValue(rc) : mlirStringRefCreateFromCString("none");
      moai_strbuf_appendf(&ex, "compiled: dp=%lld,tp=%lld,pp=%lld,mb=%lld,recompute=%.*s,zero=%lld "
                               "(the fastest plan whose data-parallel ranks x micro-batches "
                               "keep each rank's micro-batch at the export's batch)\n",
                          (long long)deg[0], (long long)deg[1], (long long)deg[2],
                          (long long)deg[3], (int)rcs.length, rcs.data, (long long)deg[4]);
    }
    fputs(ex.data ? ex.data : "", status ? stderr : stdout);
    moai_strbuf_reset(&ex);
  }
  if (!status && plan_only) {
    const moai_candidate_t *b = &planned.best;
    moai_strbuf_append(&sb, "strategy: ");
    moai_strategy_format(&b->strategy, &sb);
    moai_strbuf_appendf(&sb, "\npredicted step: %.4f s (bubble %.1f%%, compute %.4f s, "
                        "tp %.4f s, pp %.4f s, dp %.4f s)\n",
                        b->cost.step_seconds, 100.0 * b->cost.bubble_fraction,
                        b->cost.compute_seconds, b->cost.tp_comm_seconds,
                        b->cost.pp_comm_seconds, b->cost.dp_comm_seconds);
    moai_strbuf_appendf(&sb, "predicted memory per device: %.2f GiB (weights %.2f, grads %.2f, "
                        "optimizer %.2f, activations %.2f, temporaries %.2f)\n",
                        b->cost.memory_bytes / 1073741824.0, b->cost.weight_bytes / 1073741824.0,
                        b->cost.grad_bytes / 1073741824.0, b->cost.optimizer_bytes / 1073741824.0,
                        b->cost.activation_bytes / 1073741824.0,
                        b->cost.temp_bytes / 1073741824.0);
    if (!a.dry_run) moai_strbuf_reset(&sb), moai_strbuf_init(&sb, moai_allocator_system());
  } else if (!status) {
    if (a.emit == EMIT_MLIR) {
      moai_module_print(module, a.debuginfo, &sb);
      for (size_t k = 0; k < device_count; ++k) {
        moai_strbuf_appendf(&sb, "// ---- device %zu: tensor rank %d, pipeline stage %d\n", k,
                            devices[k].tp, devices[k].pp);
        moai_module_print(devices[k].module, a.debuginfo, &sb);
      }
    } else if (a.emit == EMIT_LLVM && device_count) {
      status = MOAI_STATUS(MOAI_UNIMPLEMENTED, "--emit=llvm prints one device; this plan has %zu "
                           "(use -o PLAN and look at PLAN/device-<k>/)", device_count);
    } else if (a.emit == EMIT_LLVM) {
      char *ir = NULL;
      status = moai_plan_emit_llvm(module, &a.plan, &ir);
      if (!status) moai_strbuf_append(&sb, ir);
      free(ir);
    } else {
      moai_module_summarize(module, &sb);
    }
    if (!status && sb.failed)
      status = MOAI_STATUS(MOAI_OUT_OF_MEMORY, "out of memory printing the result");
  }
  rc = 1;
  if (status) {
    fprintf(stderr, "moaicc: error: ");
    moai_status_fprint(stderr, status, false);
    moai_status_free(status);
  } else if (plan_only) {
    rc = write_text(NULL, sb.data ? sb.data : "");
  } else if (a.emit != EMIT_PLAN) {
    rc = write_text(a.output, sb.data ? sb.data : "");
  } else {
    status = device_count
                 ? moai_plan_write_mesh(a.output, module, devices, device_count,
                                        sb.data ? sb.data : "", &a.plan)
                 : moai_plan_write(a.output, module, sb.data ? sb.data : "", &a.plan);
    if (status) {
      fprintf(stderr, "moaicc: error: ");
      moai_status_fprint(stderr, status, false);
      moai_status_free(status);
    } else {
      MOAI_LOG(&log, MOAI_LOG_LEVEL_INFO, "wrote %s", a.output);
      rc = 0;
    }
  }
  moai_strbuf_reset(&sb);
  moai_plan_device_modules_free(devices, device_count);
  if (!mlirModuleIsNull(module)) mlirModuleDestroy(module);
  moai_diag_detach(&diag);
  mlirContextDestroy(ctx);
  moai_plan_result_reset(&planned);
  free(a.shapes.items);
  free(a.trainable.items);
  free(a.dims.items);
  free(a.frozen.items);
  return rc;
}
