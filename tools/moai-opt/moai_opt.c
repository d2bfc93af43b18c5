/* moai-opt: moai's mlir-opt. Parses a .mlir file in a context with every
 * upstream dialect and the moai dialect, runs a textual pass pipeline (moai
 * and upstream passes), verifies and prints the result. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driver/pipeline.h"
#include "ir/dialect.h"
#include "ir/diag.h"
#include "ir/op_defs.h"
#include "ir/strbuf.h"
#include "mlir-c/IR.h"
#include "registry/registry.h"
#include "version.h"

static void usage(FILE *out) {
  fprintf(out,
          "usage: moai-opt [options] [FILE.mlir | -]\n"
          "\n"
          "Runs moai and upstream MLIR passes on a .mlir file (standard input\n"
          "when FILE is '-' or absent) and prints the result.\n"
          "\n"
          "options:\n"
          "  --pass-pipeline=PIPELINE  textual pipeline, e.g.\n"
          "                            'builtin.module(moai-shape-infer,moai-simplify)'\n"
          "  -o FILE                   write the result to FILE (default: stdout)\n"
          "  --mlir-print-ir-after-all   print the module after every pass (stderr)\n"
          "  --mlir-print-ir-before-all  print the module before every pass (stderr)\n"
          "  --mlir-print-debuginfo    print locations\n"
          "  --generic                 print in generic op form\n"
          "  --no-verify-each          do not verify after every pass\n"
          "  --dump-irdl               print the moai dialect's IRDL definition and exit\n"
          "  --list-passes             list moai's passes and exit\n"
          "  --list-ops                print the moai dialect's ops as a Markdown table\n"
          "  --help                    show this help\n"
          "  --version                 show the version\n");
}

static char *read_all(FILE *f, size_t *out_len) {
  size_t cap = 1 << 16, len = 0;
  char *buf = malloc(cap);
  if (!buf) return NULL;
  size_t n;
  while ((n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
    len += n;
    if (cap - len - 1 == 0) {
      char *grown = realloc(buf, cap * 2);
      if (!grown) {
        free(buf);
        return NULL;
      }
      buf = grown;
      cap *= 2;
    }
  }
  buf[len] = '\0';
  *out_len = len;
  return buf;
}

static void print_values(FILE *out, const moai_value_def_t *v, size_t n) {
  for (size_t i = 0; i < n; ++i)
    fprintf(out, "%s%s%s", i ? ", " : "", v[i].name,
            v[i].arity == MOAI_ARITY_OPTIONAL   ? "?"
            : v[i].arity == MOAI_ARITY_VARIADIC ? "..."
                                                : "");
}

/* The op table as Markdown: docs/dialect.md embeds this output and a test
 * keeps the two identical. */
static void print_ops_markdown(FILE *out) {
  static const char *const kinds[] = {"int", "float", "string", "ints",
                                      "floats", "tensor", "type"};
  size_t n = 0;
  const moai_op_def_t *defs = moai_op_defs(&n);
  fprintf(out, "| op | ONNX | operands | results | attributes (default) |\n"
               "|---|---|---|---|---|\n");
  for (size_t i = 0; i < n; ++i) {
    const moai_op_def_t *d = &defs[i];
    fprintf(out, "| `moai.%s` | %s | ", d->name, d->onnx_type ? d->onnx_type : "-");
    print_values(out, d->operands, moai_op_def_operand_count(d));
    fprintf(out, " | ");
    print_values(out, d->results, moai_op_def_result_count(d));
    fprintf(out, " | ");
    for (size_t k = 0; k < MOAI_OP_MAX_ATTRS && d->attrs[k].name; ++k) {
      const moai_attr_def_t *a = &d->attrs[k];
      const char *def = !a->default_text ? "optional"
                        : strcmp(a->default_text, MOAI_ATTR_REQUIRED) == 0
                            ? "required"
                            : a->default_text;
      fprintf(out, "%s%s: %s (%s%s%s)", k ? ", " : "", a->name, kinds[a->kind],
              a->default_text && strcmp(def, "required") && strcmp(def, "optional") ? "`" : "",
              *def ? def : "empty",
              a->default_text && strcmp(def, "required") && strcmp(def, "optional") ? "`" : "");
    }
    fprintf(out, " |\n");
  }
}

typedef struct opt_args_t {
  const char *input;
  const char *output;
  const char *pipeline;
  bool after_all, before_all, debuginfo, generic, verify_each;
} opt_args_t;

static int parse_args(int argc, char **argv, opt_args_t *a) {
  a->verify_each = true;
  for (int i = 1; i < argc; ++i) {
    const char *arg = argv[i];
    if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
      usage(stdout);
      exit(0);
    } else if (strcmp(arg, "--version") == 0) {
      printf("moai-opt %s\n", moai_version_string());
      exit(0);
    } else if (strcmp(arg, "--dump-irdl") == 0) {
      char *text = NULL;
      moai_status_t s = moai_dialect_irdl_text(moai_allocator_system(), &text);
      if (s) {
        fprintf(stderr, "moai-opt: ");
        moai_status_fprint(stderr, s, false);
        moai_status_free(s);
        exit(1);
      }
      fputs(text, stdout);
      free(text);
      exit(0);
    } else if (strcmp(arg, "--list-passes") == 0) {
      size_t n = 0;
      const moai_pass_info_t *passes = moai_pass_registry(&n);
      for (size_t k = 0; k < n; ++k)
        printf("  %-20s %s\n", passes[k].argument, passes[k].description);
      exit(0);
    } else if (strcmp(arg, "--list-ops") == 0) {
      print_ops_markdown(stdout);
      exit(0);
    } else if (strncmp(arg, "--pass-pipeline=", 16) == 0) {
      a->pipeline = arg + 16;
    } else if (strcmp(arg, "--pass-pipeline") == 0 && i + 1 < argc) {
      a->pipeline = argv[++i];
    } else if (strcmp(arg, "-o") == 0 && i + 1 < argc) {
      a->output = argv[++i];
    } else if (strcmp(arg, "--mlir-print-ir-after-all") == 0) {
      a->after_all = true;
    } else if (strcmp(arg, "--mlir-print-ir-before-all") == 0) {
      a->before_all = true;
    } else if (strcmp(arg, "--mlir-print-debuginfo") == 0) {
      a->debuginfo = true;
    } else if (strcmp(arg, "--generic") == 0) {
      a->generic = true;
    } else if (strcmp(arg, "--no-verify-each") == 0) {
      a->verify_each = false;
    } else if (arg[0] == '-' && arg[1] != '\0') {
      fprintf(stderr, "moai-opt: unknown option '%s' (see --help)\n", arg);
      return 2;
    } else if (!a->input) {
      a->input = arg;
    } else {
      fprintf(stderr, "moai-opt: more than one input file ('%s', '%s')\n",
              a->input, arg);
      return 2;
    }
  }
  return 0;
}

static void print_module(MlirModule module, FILE *out, const opt_args_t *a) {
  MlirOpPrintingFlags flags = mlirOpPrintingFlagsCreate();
  if (a->debuginfo) mlirOpPrintingFlagsEnableDebugInfo(flags, true, false);
  if (a->generic) mlirOpPrintingFlagsPrintGenericOpForm(flags);
  moai_strbuf_t sb;
  moai_strbuf_init(&sb, moai_allocator_system());
  mlirOperationPrintWithFlags(mlirModuleGetOperation(module), flags,
                              moai_strbuf_mlir_callback, &sb);
  mlirOpPrintingFlagsDestroy(flags);
  if (sb.data) fprintf(out, "%s\n", sb.data);
  moai_strbuf_reset(&sb);
}

int main(int argc, char **argv) {
  opt_args_t a = {0};
  int rc = parse_args(argc, argv, &a);
  if (rc) return rc;
  const char *name = a.input && strcmp(a.input, "-") != 0 ? a.input : "<stdin>";
  FILE *in = a.input && strcmp(a.input, "-") != 0 ? fopen(a.input, "rb") : stdin;
  if (!in) {
    fprintf(stderr, "moai-opt: cannot open '%s': %s\n", name, strerror(errno));
    return 1;
  }
  size_t len = 0;
  char *text = read_all(in, &len);
  if (in != stdin) fclose(in);
  if (!text) {
    fprintf(stderr, "moai-opt: out of memory reading '%s'\n", name);
    return 1;
  }

  MlirContext ctx;
  moai_status_t status = moai_context_create(false, &ctx);
  if (status) {
    fprintf(stderr, "moai-opt: ");
    moai_status_fprint(stderr, status, true);
    moai_status_free(status);
    free(text);
    return 1;
  }
  moai_diag_sink_t diag;
  moai_diag_attach(ctx, &diag, stderr);
  rc = 1;
  MlirModule module = mlirModuleCreateParseFromFile(
      ctx, mlirStringRefCreateFromCString(a.input && strcmp(a.input, "-") ? a.input : "-"));
  (void)len;
  if (mlirModuleIsNull(module) && in == stdin)
    module = mlirModuleCreateParse(ctx, mlirStringRefCreateFromCString(text));
  free(text);
  if (mlirModuleIsNull(module)) {
    fprintf(stderr, "moai-opt: '%s' does not parse as MLIR\n", name);
    goto done;
  }
  status = moai_module_verify(module, &diag);
  if (!status && a.pipeline) {
    moai_pipeline_options_t po = {.pipeline = a.pipeline,
                                  .print_ir_after_all = a.after_all,
                                  .print_ir_before_all = a.before_all,
                                  .verify_each = a.verify_each};
    status = moai_pipeline_run(module, &po, &diag);
    if (!status) status = moai_module_verify(module, &diag);
  }
  if (status) {
    /* The diagnostics were already printed by the handler. */
    moai_status_free(status);
    goto done;
  }
  FILE *out = a.output ? fopen(a.output, "w") : stdout;
  if (!out) {
    fprintf(stderr, "moai-opt: cannot write '%s': %s\n", a.output,
            strerror(errno));
    goto done;
  }
  print_module(module, out, &a);
  if (out != stdout && fclose(out) != 0) {
    fprintf(stderr, "moai-opt: writing '%s' failed\n", a.output);
    goto done;
  }
  rc = 0;
done:
  if (!mlirModuleIsNull(module)) mlirModuleDestroy(module);
  moai_diag_detach(&diag);
  mlirContextDestroy(ctx);
  return rc;
}
