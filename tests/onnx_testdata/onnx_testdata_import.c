/* ONNX conformance import runner: imports every node test model of ONNX's
 * own test data (Debian's libonnx-testdata) and holds moai to what its op
 * table promises.
 *
 *   onnx_testdata_import DIR [--expected FILE] [--no-fork] [--verbose]
 *                        [--filter TEXT] [--timeout SECONDS]
 *
 * DIR holds one folder per test with a model.onnx (.../data/node). Each model
 * is read here with protobuf-c, independently of the importer, and sorted:
 *  - every node is an ai.onnx op in moai's op table: the model must import,
 *    verify and go through MOAI_DEFAULT_PIPELINE (shape inference and
 *    simplification, all shapes static) -> "passed". It may instead be
 *    rejected with MOAI_UNIMPLEMENTED when it uses a feature moai rejects on
 *    purpose: one seen here (an ai.onnx opset outside the importer's range,
 *    7 to 21; an element type moai lacks; a sequence/optional/map value), or
 *    one listed with its reason in the --expected file (an attribute value,
 *    say).
 *    Those count as "unsupported (expected)" and are listed; any other
 *    rejection with MOAI_UNIMPLEMENTED fails, so that an importer rejecting
 *    everything cannot pass.
 *  - some node is not: the import must fail with MOAI_UNIMPLEMENTED ->
 *    "unsupported (expected)".
 * Anything else is a failure: another status code, a verifier or pipeline
 * error, a crash or a timeout (each model runs in a forked child; --no-fork
 * runs in-process, for debuggers and sanitizers). The last line is exactly
 * "N passed, M failed"; the exit status is 1 when M > 0, 77 when DIR does
 * not exist (ctest's skip code). */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "driver/pipeline.h"
#include "ir/diag.h"
#include "ir/dialect.h"
#include "ir/dtype.h"
#include "ir/op_defs.h"
#include "onnx.pb-c.h"
#include "onnx/onnx_import.h"

#ifndef MOAI_ONNX_MIN_OPSET /* the importer header defines them */
#define MOAI_ONNX_MIN_OPSET 7
#define MOAI_ONNX_MAX_OPSET 21
#endif

#define SKIP_EXIT_CODE 77
#define TEXT_MAX 1024

/* What the model itself says about moai's chances. */
typedef enum expectation_e {
  EXPECT_IMPORT,      /* every op supported, no rejected feature */
  EXPECT_FEATURE,     /* every op supported; a feature moai rejects on purpose */
  EXPECT_UNSUPPORTED, /* an op moai does not have */
  EXPECT_UNREADABLE,  /* not a model protobuf-c can parse */
} expectation_t;

typedef struct model_info_t {
  expectation_t expect;
  char why[TEXT_MAX]; /* the unsupported op or the rejected feature */
} model_info_t;

/* What happened when moai imported the model; a fixed-size record so that a
 * child can hand it to the parent through a pipe in one write. */
typedef struct outcome_t {
  int code; /* moai_status_code_t (MOAI_OK: every stage passed); -1: crashed */
  char stage[16];  /* "import", "verify" or "pipeline" */
  char message[TEXT_MAX];
} outcome_t;

typedef struct options_t {
  const char *dir;
  const char *expected_path;
  const char *filter;
  bool fork;
  bool verbose;
  unsigned timeout_s;
} options_t;

/* A "name reason-text" line of the --expected file. */
typedef struct known_rejection_t {
  char *name;
  char *reason;
} known_rejection_t;

typedef struct runner_t {
  options_t opt;
  MlirContext ctx;
  known_rejection_t *known;
  size_t known_count;
  size_t passed, failed, unsupported_op, unsupported_feature;
} runner_t;

/* ------------------------------------------------------ model classifying */

/* Records the first reason a model cannot import: an unsupported op wins
 * over a rejected feature, and the first of each is kept. */
static void set_why(model_info_t *info, expectation_t expect, const char *fmt, ...)
    MOAI_PRINTF(3, 4);
static void set_why(model_info_t *info, expectation_t expect, const char *fmt, ...) {
  if (info->expect == EXPECT_UNSUPPORTED) return;
  if (info->expect == EXPECT_FEATURE && expect == EXPECT_FEATURE) return;
  info->expect = expect;
  va_list args;
  va_start(args, fmt);
  vsnprintf(info->why, sizeof info->why, fmt, args);
  va_end(args);
}

static bool is_ai_onnx(const char *domain) {
  return !domain || !*domain || strcmp(domain, "ai.onnx") == 0;
}

/* ONNX's names for the element types moai lacks (TensorProto.DataType). */
static const char *onnx_dtype_name(int code) {
  switch (code) {
    case 0: return "UNDEFINED";
    case 8: return "STRING";
    case 14: return "COMPLEX64";
    case 15: return "COMPLEX128";
    case 17: return "FLOAT8E4M3FN";
    case 18: return "FLOAT8E4M3FNUZ";
    case 19: return "FLOAT8E5M2";
    case 20: return "FLOAT8E5M2FNUZ";
    case 21: return "UINT4";
    case 22: return "INT4";
    default: return "unknown";
  }
}

static void check_dtype(model_info_t *info, int code, const char *what,
                        const char *name) {
  if (!moai_dtype_is_supported(code))
    set_why(info, EXPECT_FEATURE, "element type %s (%d) of %s '%s'",
            onnx_dtype_name(code), code, what, name ? name : "");
}

static void check_values(model_info_t *info, Onnx__ValueInfoProto **values,
                         size_t n, const char *what) {
  for (size_t i = 0; i < n; ++i) {
    const Onnx__TypeProto *t = values[i]->type;
    const char *name = values[i]->name ? values[i]->name : "";
    if (!t) continue;
    if (t->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE)
      set_why(info, EXPECT_FEATURE, "non-tensor type (sequence, map or optional) of %s '%s'",
              what, name);
    else if (t->tensor_type && t->tensor_type->has_elem_type)
      check_dtype(info, t->tensor_type->elem_type, what, name);
  }
}

static void check_graph(model_info_t *info, const Onnx__GraphProto *g);

static void check_node(model_info_t *info, const Onnx__NodeProto *node) {
  const char *op = node->op_type ? node->op_type : "";
  const char *name = node->name && *node->name ? node->name : op;
  if (!is_ai_onnx(node->domain) || !moai_op_def_find_onnx(op)) {
    info->expect = EXPECT_UNSUPPORTED;
    snprintf(info->why, sizeof info->why, "op %s%s%s",
             is_ai_onnx(node->domain) ? "" : node->domain,
             is_ai_onnx(node->domain) ? "" : ".", op);
    return;
  }
  for (size_t i = 0; i < node->n_attribute; ++i) {
    const Onnx__AttributeProto *a = node->attribute[i];
    if (a->t && a->t->has_data_type)
      check_dtype(info, a->t->data_type, "a tensor attribute of node", name);
    if (strcmp(op, "Cast") == 0 && a->name && strcmp(a->name, "to") == 0)
      check_dtype(info, (int)a->i, "the Cast target of node", name);
    if (a->g) check_graph(info, a->g);
    for (size_t k = 0; k < a->n_graphs; ++k) check_graph(info, a->graphs[k]);
  }
}

static void check_graph(model_info_t *info, const Onnx__GraphProto *g) {
  for (size_t i = 0; i < g->n_node && info->expect != EXPECT_UNSUPPORTED; ++i)
    check_node(info, g->node[i]);
  if (info->expect == EXPECT_UNSUPPORTED) return;
  check_values(info, g->input, g->n_input, "input");
  check_values(info, g->output, g->n_output, "output");
  check_values(info, g->value_info, g->n_value_info, "value");
  for (size_t i = 0; i < g->n_initializer; ++i)
    if (g->initializer[i]->has_data_type)
      check_dtype(info, g->initializer[i]->data_type, "initializer",
                  g->initializer[i]->name);
  if (g->n_sparse_initializer) set_why(info, EXPECT_FEATURE, "sparse initializers");
}

static bool read_file(const char *path, uint8_t **out_data, size_t *out_size) {
  FILE *f = fopen(path, "rb");
  if (!f) return false;
  uint8_t *data = NULL;
  size_t size = 0, cap = 0;
  bool ok = true;
  for (;;) {
    if (size == cap) {
      cap = cap ? 2 * cap : 1 << 16;
      uint8_t *grown = realloc(data, cap);
      if (!grown) {
        ok = false;
        break;
      }
      data = grown;
    }
    size_t n = fread(data + size, 1, cap - size, f);
    size += n;
    if (n == 0) break;
  }
  ok = ok && !ferror(f);
  fclose(f);
  if (!ok) {
    free(data);
    return false;
  }
  *out_data = data;
  *out_size = size;
  return true;
}

static void classify(const char *path, model_info_t *info) {
  memset(info, 0, sizeof *info);
  uint8_t *data = NULL;
  size_t size = 0;
  Onnx__ModelProto *model = NULL;
  if (read_file(path, &data, &size))
    model = onnx__model_proto__unpack(NULL, size, data);
  free(data);
  if (!model || !model->graph) {
    info->expect = EXPECT_UNREADABLE;
    snprintf(info->why, sizeof info->why, "protobuf-c cannot parse it");
    if (model) onnx__model_proto__free_unpacked(model, NULL);
    return;
  }
  info->expect = EXPECT_IMPORT;
  check_graph(info, model->graph);
  for (size_t i = 0; i < model->n_opset_import; ++i) {
    const Onnx__OperatorSetIdProto *o = model->opset_import[i];
    if (!is_ai_onnx(o->domain) || !o->has_version) continue;
    if (o->version < MOAI_ONNX_MIN_OPSET || o->version > MOAI_ONNX_MAX_OPSET)
      set_why(info, EXPECT_FEATURE, "ai.onnx opset %lld (moai reads %d to %d)",
              (long long)o->version, MOAI_ONNX_MIN_OPSET, MOAI_ONNX_MAX_OPSET);
  }
  onnx__model_proto__free_unpacked(model, NULL);
}

/* --------------------------------------------------------------- importing */

static void outcome_set(outcome_t *out, const char *stage, moai_status_t s) {
  out->code = (int)moai_status_code(s);
  snprintf(out->stage, sizeof out->stage, "%s", stage);
  char *text = NULL;
  size_t len = 0;
  FILE *mem = open_memstream(&text, &len);
  if (mem) {
    moai_status_fprint(mem, s, false);
    fclose(mem);
  }
  /* One line: the message and its context lines joined. */
  for (char *c = text; c && *c; ++c)
    if (*c == '\n') *c = (c[1] ? ';' : '\0');
  snprintf(out->message, sizeof out->message, "%s",
           text ? text : moai_status_message(s));
  free(text);
  moai_status_free(s);
}

/* Imports, verifies and runs the default pipeline; fills `out`. */
static void import_model(MlirContext ctx, const char *path, outcome_t *out) {
  memset(out, 0, sizeof *out);
  moai_diag_sink_t diag;
  moai_diag_attach(ctx, &diag, NULL);
  moai_onnx_import_options_t options;
  memset(&options, 0, sizeof options); /* external data: none in node tests */
  MlirModule module = {NULL};
  moai_status_t s = moai_onnx_import_file(ctx, path, &options,
                                          moai_allocator_system(), &module);
  if (s) {
    outcome_set(out, "import", s);
  } else if ((s = moai_module_verify(module, &diag))) {
    outcome_set(out, "verify", s);
  } else {
    moai_pipeline_options_t p = {.pipeline = MOAI_DEFAULT_PIPELINE,
                                 .verify_each = true};
    if ((s = moai_pipeline_run(module, &p, &diag))) outcome_set(out, "pipeline", s);
  }
  if (!mlirModuleIsNull(module)) mlirModuleDestroy(module);
  moai_diag_detach(&diag);
}

/* Runs import_model in a child so that a crash is reported, not fatal.
 * The context was created before the fork; no thread runs in it. */
static void import_model_forked(runner_t *r, const char *path, outcome_t *out) {
  memset(out, 0, sizeof *out);
  int fds[2];
  fflush(stdout);
  fflush(stderr);
  pid_t pid = -1;
  if (pipe(fds) == 0 && (pid = fork()) == 0) {
    close(fds[0]);
    alarm(r->opt.timeout_s);
    outcome_t result;
    import_model(r->ctx, path, &result);
    ssize_t n = write(fds[1], &result, sizeof result);
    _exit(n == (ssize_t)sizeof result ? 0 : 3);
  }
  if (pid < 0) {
    out->code = MOAI_INTERNAL;
    snprintf(out->stage, sizeof out->stage, "runner");
    snprintf(out->message, sizeof out->message, "pipe/fork failed: %s", strerror(errno));
    return;
  }
  close(fds[1]);
  size_t got = 0;
  while (got < sizeof *out) {
    ssize_t n = read(fds[0], (char *)out + got, sizeof *out - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += (size_t)n;
  }
  close(fds[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
  if (WIFSIGNALED(status) || got != sizeof *out) {
    int sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    out->code = -1;
    snprintf(out->stage, sizeof out->stage, "child");
    if (sig == SIGALRM)
      snprintf(out->message, sizeof out->message, "timed out after %u s", r->opt.timeout_s);
    else if (sig)
      snprintf(out->message, sizeof out->message, "crashed: %s (signal %d)", strsignal(sig), sig);
    else
      snprintf(out->message, sizeof out->message, "child exited with %d and no result",
               WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  }
}

/* ----------------------------------------------------------------- judging */

static const known_rejection_t *find_known(const runner_t *r, const char *name) {
  for (size_t i = 0; i < r->known_count; ++i)
    if (strcmp(r->known[i].name, name) == 0) return &r->known[i];
  return NULL;
}

static void fail(runner_t *r, const char *name, const char *what,
                 const outcome_t *o) {
  r->failed++;
  if (o && o->code < 0)
    printf("FAIL %s: %s; %s\n", name, what, o->message);
  else if (o && o->code != MOAI_OK)
    printf("FAIL %s: %s; %s: %s: %s\n", name, what, o->stage, moai_status_code_name((moai_status_code_t)o->code),
           o->message);
  else
    printf("FAIL %s: %s\n", name, what);
}

/* Counts the outcome of test `name` against what its model predicts. */
static void judge(runner_t *r, const char *name, const model_info_t *info,
                  const outcome_t *o) {
  bool unimplemented = o->code == MOAI_UNIMPLEMENTED && strcmp(o->stage, "import") == 0;
  const known_rejection_t *known = find_known(r, name);
  switch (info->expect) {
    case EXPECT_UNREADABLE:
      fail(r, name, info->why, NULL);
      return;
    case EXPECT_UNSUPPORTED:
      if (unimplemented) {
        r->unsupported_op++;
        if (r->opt.verbose) printf("unsupported %s: %s\n", name, info->why);
      } else if (o->code == MOAI_OK) {
        char what[TEXT_MAX + 64];
        snprintf(what, sizeof what, "imported although it uses %s", info->why);
        fail(r, name, what, NULL);
      } else {
        fail(r, name, "a model with an unsupported op must fail with UNIMPLEMENTED", o);
      }
      return;
    case EXPECT_IMPORT:
    case EXPECT_FEATURE:
      if (o->code == MOAI_OK) {
        r->passed++;
        if (r->opt.verbose) printf("passed %s\n", name);
        if (known) printf("note %s: imports now; its line in the --expected file can go\n", name);
      } else if (unimplemented && info->expect == EXPECT_FEATURE) {
        r->unsupported_feature++;
        printf("unsupported feature (expected) %s: %s: %s\n", name, info->why, o->message);
      } else if (known && o->code != MOAI_OK && strstr(o->message, known->reason)) {
        /* A listed, reviewed gap: UNIMPLEMENTED at import, or a pipeline
         * rejection such as a shape that depends on a runtime value (moai
         * compiles static shapes only). */
        r->unsupported_feature++;
        printf("unsupported feature (expected, listed) %s: %s: %s\n", name, o->stage,
               o->message);
      } else if (unimplemented) {
        fail(r, name, "all ops supported; rejected without a reason in the model or the "
                      "--expected file", o);
      } else {
        fail(r, name, "all ops supported: must import, verify and pass the pipeline", o);
      }
      return;
  }
}

/* ------------------------------------------------------------------ driver */

static bool load_known(runner_t *r, const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) {
    fprintf(stderr, "cannot open %s: %s\n", path, strerror(errno));
    return false;
  }
  char line[TEXT_MAX];
  while (fgets(line, sizeof line, f)) {
    line[strcspn(line, "\r\n")] = '\0';
    char *name = line + strspn(line, " \t");
    if (!*name || *name == '#') continue;
    char *reason = name + strcspn(name, " \t");
    if (*reason) *reason++ = '\0';
    reason += strspn(reason, " \t");
    known_rejection_t *grown = realloc(r->known, (r->known_count + 1) * sizeof *grown);
    if (!grown) break;
    r->known = grown;
    r->known[r->known_count].name = strdup(name);
    r->known[r->known_count].reason = strdup(reason);
    r->known_count++;
  }
  fclose(f);
  return true;
}

static int compare_names(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The test folders of `dir` that hold a model.onnx, sorted; NULL on error. */
static char **list_tests(const char *dir, size_t *out_count) {
  DIR *d = opendir(dir);
  if (!d) return NULL;
  char **names = NULL;
  size_t n = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s/model.onnx", dir, e->d_name);
    if (access(path, R_OK) != 0) continue;
    char **grown = realloc(names, (n + 1) * sizeof *names);
    if (!grown) break;
    names = grown;
    names[n++] = strdup(e->d_name);
  }
  closedir(d);
  if (names) qsort(names, n, sizeof *names, compare_names);
  *out_count = n;
  return names ? names : calloc(1, sizeof *names);
}

static int usage(const char *argv0) {
  fprintf(stderr,
          "usage: %s DIR [--expected FILE] [--no-fork] [--verbose] [--filter TEXT]"
          " [--timeout SECONDS]\n",
          argv0);
  return 2;
}

static bool parse_args(int argc, char **argv, options_t *opt) {
  *opt = (options_t){.fork = true, .timeout_s = 60};
  for (int i = 1; i < argc; ++i) {
    const char *a = argv[i];
    bool has_value = i + 1 < argc;
    if (strcmp(a, "--no-fork") == 0) opt->fork = false;
    else if (strcmp(a, "--verbose") == 0) opt->verbose = true;
    else if (strcmp(a, "--expected") == 0 && has_value) opt->expected_path = argv[++i];
    else if (strcmp(a, "--filter") == 0 && has_value) opt->filter = argv[++i];
    else if (strcmp(a, "--timeout") == 0 && has_value) opt->timeout_s = (unsigned)atoi(argv[++i]);
    else if (a[0] != '-' && !opt->dir) opt->dir = a;
    else return false;
  }
  return opt->dir != NULL;
}

static void run_all(runner_t *r, char **tests, size_t count) {
  for (size_t i = 0; i < count; ++i) {
    if (r->opt.filter && !strstr(tests[i], r->opt.filter)) continue;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s/model.onnx", r->opt.dir, tests[i]);
    model_info_t info;
    classify(path, &info);
    outcome_t o;
    memset(&o, 0, sizeof o);
    if (info.expect != EXPECT_UNREADABLE) {
      if (r->opt.fork) import_model_forked(r, path, &o);
      else import_model(r->ctx, path, &o);
    }
    judge(r, tests[i], &info, &o);
  }
}

int main(int argc, char **argv) {
  runner_t r;
  memset(&r, 0, sizeof r);
  if (!parse_args(argc, argv, &r.opt)) return usage(argv[0]);
  size_t count = 0;
  char **tests = list_tests(r.opt.dir, &count);
  if (!tests) {
    printf("SKIP: cannot read %s (%s); install libonnx-testdata\n", r.opt.dir, strerror(errno));
    return SKIP_EXIT_CODE;
  }
  if (r.opt.expected_path && !load_known(&r, r.opt.expected_path)) return 2;
  moai_status_t s = moai_context_create(false, &r.ctx);
  if (s) {
    moai_status_fprint(stderr, s, true);
    moai_status_free(s);
    return 2;
  }
  run_all(&r, tests, count);
  mlirContextDestroy(r.ctx);
  printf("%zu unsupported (expected): %zu with an op moai lacks, %zu rejecting a "
         "feature on purpose (listed above)\n",
         r.unsupported_op + r.unsupported_feature, r.unsupported_op, r.unsupported_feature);
  printf("%zu passed, %zu failed\n", r.passed, r.failed);
  for (size_t i = 0; i < count; ++i) free(tests[i]);
  free(tests);
  for (size_t i = 0; i < r.known_count; ++i) {
    free(r.known[i].name);
    free(r.known[i].reason);
  }
  free(r.known);
  return r.failed ? 1 : 0;
}
