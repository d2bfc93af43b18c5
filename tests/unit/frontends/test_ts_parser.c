/* Unit tests for the TorchScript frontend's lexer and parser
 * (frontends/torchscript/ast.h): the code files of real archives (traced
 * Mistral-style model and CNN, a scripted MLP; copies in ts_code/) parse
 * into the expected trees with their source lines, operator precedence,
 * literals at the edges of int64, and malformed code (syntax errors,
 * nesting far past the limit, NUL bytes, tabs, unterminated strings) ends
 * in an error naming the file and line, never a crash. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "moai_test.h"
#include "torchscript/ast.h"

static char *read_code(const char *name, size_t *out_len) {
  char path[1024];
  snprintf(path, sizeof(path), "%s/tests/unit/frontends/ts_code/%s",
           moai_test_source_dir(), name);
  FILE *f = fopen(path, "rb");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc((size_t)n + 1);
  CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
  CU_ASSERT_EQUAL_FATAL(fread(buf, 1, (size_t)n, f), (size_t)n);
  buf[n] = '\0';
  fclose(f);
  *out_len = (size_t)n;
  return buf;
}

static moai_ts_source_t *parse_file(const char *name) {
  size_t len;
  char *text = read_code(name, &len);
  moai_ts_source_t *src = NULL;
  moai_status_t st = moai_ts_parse("m.pt", name, text, len, &src);
  if (st) moai_status_fprint(stderr, st, true);
  CU_ASSERT_PTR_NULL(st);
  moai_status_free(st);
  free(text);
  return src;
}

static moai_ts_source_t *parse_text(const char *text) {
  moai_ts_source_t *src = NULL;
  moai_status_t st = moai_ts_parse("m.pt", "code/__torch__/m.py", text,
                                   strlen(text), &src);
  if (st) moai_status_fprint(stderr, st, true);
  CU_ASSERT_PTR_NULL(st);
  moai_status_free(st);
  return src;
}

/* Parses `text` expecting a failure whose message contains `want`. */
static void expect_error(const char *text, size_t len, const char *want) {
  moai_ts_source_t *src = NULL;
  moai_status_t st = moai_ts_parse("m.pt", "code/__torch__/m.py", text, len, &src);
  CU_ASSERT_PTR_NOT_NULL(st);
  CU_ASSERT_PTR_NULL(src);
  if (st) {
    const char *msg = moai_status_message(st);
    if (!strstr(msg, want))
      fprintf(stderr, "\n  message '%s' lacks '%s'\n", msg, want);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, want));
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "m.pt: code/__torch__/m.py"));
  }
  moai_status_free(st);
  moai_ts_source_free(src);
}

static bool is_name(const moai_ts_expr_t *e, const char *name) {
  return e && e->kind == MOAI_TS_EX_NAME && strcmp(e->name, name) == 0;
}

/* The dotted spelling of a NAME/ATTR chain into buf ("torch.slice"). */
static const char *dotted(const moai_ts_expr_t *e, char *buf, size_t size) {
  if (e->kind == MOAI_TS_EX_NAME) {
    snprintf(buf, size, "%s", e->name);
  } else if (e->kind == MOAI_TS_EX_ATTR) {
    char inner[128];
    dotted(e->base, inner, sizeof(inner));
    snprintf(buf, size, "%.60s.%.60s", inner, e->name);
  } else {
    snprintf(buf, size, "<%d>", (int)e->kind);
  }
  return buf;
}

static void test_mistral_code(void) {
  moai_ts_source_t *src = parse_file("mistral_make_models.py");
  CU_ASSERT_PTR_NOT_NULL_FATAL(src);
  const moai_ts_block_t *top = moai_ts_source_body(src);
  CU_ASSERT_EQUAL(top->n, 7); /* seven classes */
  const moai_ts_class_t *lm = moai_ts_source_class(src, "MistralForCausalLM");
  CU_ASSERT_PTR_NOT_NULL_FATAL(lm);
  CU_ASSERT_EQUAL(lm->line, 1);
  CU_ASSERT_TRUE(is_name(lm->base, "Module"));
  /* __parameters__ = [], training : bool, ... model : __torch__.a.B */
  CU_ASSERT_EQUAL(lm->body.items[0]->kind, MOAI_TS_ST_ASSIGN);
  CU_ASSERT_TRUE(is_name(lm->body.items[0]->target, "__parameters__"));
  CU_ASSERT_EQUAL(lm->body.items[0]->value->kind, MOAI_TS_EX_LIST);
  const moai_ts_stmt_t *model = lm->body.items[4];
  CU_ASSERT_EQUAL(model->kind, MOAI_TS_ST_ANNOT);
  CU_ASSERT_TRUE(is_name(model->target, "model"));
  char buf[256];
  CU_ASSERT_STRING_EQUAL(dotted(model->value, buf, sizeof(buf)),
                         "__torch__.make_models.MistralModel");
  const moai_ts_def_t *fwd = moai_ts_class_method(lm, "forward");
  CU_ASSERT_PTR_NOT_NULL_FATAL(fwd);
  CU_ASSERT_EQUAL(fwd->line, 8);
  CU_ASSERT_EQUAL(fwd->nparams, 5);
  CU_ASSERT_STRING_EQUAL(fwd->params[1].name, "input_ids");
  CU_ASSERT_TRUE(is_name(fwd->params[1].type, "Tensor"));
  CU_ASSERT_EQUAL(fwd->params[4].line, 12);
  CU_ASSERT_TRUE(is_name(fwd->ret, "Tensor"));
  CU_ASSERT_EQUAL_FATAL(fwd->body.n, 14);
  /* lm_head = self.lm_head, line 13 */
  const moai_ts_stmt_t *s0 = fwd->body.items[0];
  CU_ASSERT_EQUAL(s0->line, 13);
  CU_ASSERT_EQUAL(s0->value->kind, MOAI_TS_EX_ATTR);
  CU_ASSERT_TRUE(is_name(s0->value->base, "self"));
  /* _0 = (model).forward(input_ids, position_ids, attention_mask, ) */
  const moai_ts_stmt_t *s2 = fwd->body.items[2];
  CU_ASSERT_EQUAL(s2->value->kind, MOAI_TS_EX_CALL);
  CU_ASSERT_EQUAL(s2->value->n, 3);
  CU_ASSERT_STRING_EQUAL(dotted(s2->value->base, buf, sizeof(buf)),
                         "model.forward");
  /* _3 = torch.slice(_1, 0, 0, 9223372036854775807) */
  const moai_ts_expr_t *slice = fwd->body.items[6]->value;
  CU_ASSERT_EQUAL(slice->n, 4);
  CU_ASSERT_EQUAL(slice->items[3]->kind, MOAI_TS_EX_INT);
  CU_ASSERT_EQUAL(slice->items[3]->i, INT64_MAX);
  /* input = torch.reshape(_4, [-1, _2]): -1 is unary minus on 1 */
  const moai_ts_expr_t *shape = fwd->body.items[8]->value->items[1];
  CU_ASSERT_EQUAL(shape->kind, MOAI_TS_EX_LIST);
  CU_ASSERT_EQUAL(shape->items[0]->kind, MOAI_TS_EX_UNARY);
  CU_ASSERT_EQUAL(shape->items[0]->op, '-');
  CU_ASSERT_EQUAL(fwd->body.items[13]->kind, MOAI_TS_ST_RETURN);

  const moai_ts_class_t *mm = moai_ts_source_class(src, "MistralModel");
  const moai_ts_def_t *mf = moai_ts_class_method(mm, "forward");
  CU_ASSERT_PTR_NOT_NULL_FATAL(mf);
  /* _1 = getattr(layers, "1") */
  const moai_ts_expr_t *ga = mf->body.items[2]->value;
  CU_ASSERT_EQUAL(ga->kind, MOAI_TS_EX_CALL);
  CU_ASSERT_EQUAL(ga->items[1]->kind, MOAI_TS_EX_STR);
  CU_ASSERT_STRING_EQUAL(ga->items[1]->name, "1");
  /* _10, _11, = _9 */
  const moai_ts_stmt_t *unpack = mf->body.items[9];
  CU_ASSERT_EQUAL(unpack->kind, MOAI_TS_ST_ASSIGN);
  CU_ASSERT_EQUAL(unpack->target->kind, MOAI_TS_EX_TUPLE);
  CU_ASSERT_EQUAL(unpack->target->n, 2);
  CU_ASSERT_TRUE(is_name(unpack->target->items[1], "_11"));
  CU_ASSERT_TRUE(is_name(unpack->value, "_9"));
  /* idx = torch.arange(annotate(number, s), dtype=None, layout=None,
   * device=torch.device("cpu"), pin_memory=False) */
  const moai_ts_expr_t *arange = mf->body.items[11]->value;
  CU_ASSERT_EQUAL(arange->n, 1);
  CU_ASSERT_EQUAL(arange->nkw, 4);
  CU_ASSERT_STRING_EQUAL(arange->kw_names[2], "device");
  CU_ASSERT_EQUAL(arange->kw_values[0]->kind, MOAI_TS_EX_NONE);
  CU_ASSERT_EQUAL(arange->kw_values[3]->kind, MOAI_TS_EX_BOOL);
  CU_ASSERT_FALSE(arange->kw_values[3]->b);
  CU_ASSERT_EQUAL(arange->line, mf->body.items[11]->line);
  /* neg = torch.full(..., -3.4028234663852886e+38, dtype=6, ...) */
  const moai_ts_expr_t *full = mf->body.items[24]->value;
  CU_ASSERT_STRING_EQUAL(dotted(full->base, buf, sizeof(buf)), "torch.full");
  CU_ASSERT_EQUAL(full->items[1]->kind, MOAI_TS_EX_UNARY);
  CU_ASSERT_EQUAL(full->items[1]->base->kind, MOAI_TS_EX_FLOAT);
  CU_ASSERT_DOUBLE_EQUAL(full->items[1]->base->f, 3.4028234663852886e+38, 1e25);
  CU_ASSERT_EQUAL(full->kw_values[0]->i, 6);
  /* RotaryEmbedding returns (cos, sin) */
  const moai_ts_class_t *rot = moai_ts_source_class(src, "RotaryEmbedding");
  const moai_ts_def_t *rf = moai_ts_class_method(rot, "forward");
  CU_ASSERT_EQUAL(rf->ret->kind, MOAI_TS_EX_SUBSCRIPT);
  CU_ASSERT_EQUAL(rf->ret->rhs->kind, MOAI_TS_EX_TUPLE);
  const moai_ts_stmt_t *ret = rf->body.items[rf->body.n - 1];
  CU_ASSERT_EQUAL(ret->value->kind, MOAI_TS_EX_TUPLE);
  CU_ASSERT_EQUAL(ret->value->n, 2);
  CU_ASSERT_PTR_NULL(moai_ts_source_class(src, "Nope"));
  CU_ASSERT_PTR_NULL(moai_ts_class_method(rot, "backward"));
  moai_ts_source_free(src);
}

static void test_container_annotations(void) {
  moai_ts_source_t *src = parse_file("mistral_container.py");
  CU_ASSERT_PTR_NOT_NULL_FATAL(src);
  const moai_ts_class_t *c = moai_ts_source_class(src, "ModuleList");
  CU_ASSERT_PTR_NOT_NULL_FATAL(c);
  const moai_ts_stmt_t *a = c->body.items[c->body.n - 1];
  CU_ASSERT_EQUAL(a->kind, MOAI_TS_ST_ASSIGN);
  CU_ASSERT_EQUAL(a->target->kind, MOAI_TS_EX_SUBSCRIPT);
  CU_ASSERT_TRUE(is_name(a->target->base, "__annotations__"));
  CU_ASSERT_STRING_EQUAL(a->target->rhs->name, "1");
  CU_ASSERT_EQUAL(a->line, 7);
  moai_ts_source_free(src);
}

static void test_cnn_code(void) {
  moai_ts_source_t *src = parse_file("cnn_make_models.py");
  CU_ASSERT_PTR_NOT_NULL_FATAL(src);
  const moai_ts_def_t *f =
      moai_ts_class_method(moai_ts_source_class(src, "CNN"), "forward");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  /* input1 = torch.clamp(x0, -6., 6.) */
  const moai_ts_expr_t *clamp = NULL;
  const moai_ts_expr_t *pool = NULL;
  char buf[256];
  for (size_t i = 0; i < f->body.n; ++i) {
    const moai_ts_expr_t *v = f->body.items[i]->value;
    if (v && v->kind == MOAI_TS_EX_CALL) {
      dotted(v->base, buf, sizeof(buf));
      if (strcmp(buf, "torch.clamp") == 0) clamp = v;
      if (strcmp(buf, "torch.max_pool2d") == 0) pool = v;
    }
  }
  CU_ASSERT_PTR_NOT_NULL_FATAL(clamp);
  CU_ASSERT_EQUAL(clamp->items[1]->kind, MOAI_TS_EX_UNARY);
  CU_ASSERT_DOUBLE_EQUAL(clamp->items[1]->base->f, 6.0, 0);
  CU_ASSERT_EQUAL(clamp->items[2]->kind, MOAI_TS_EX_FLOAT);
  CU_ASSERT_PTR_NOT_NULL_FATAL(pool);
  CU_ASSERT_EQUAL(pool->n, 5);
  /* annotate(List[int], []) */
  const moai_ts_expr_t *ann = pool->items[2];
  CU_ASSERT_STRING_EQUAL(dotted(ann->base, buf, sizeof(buf)), "annotate");
  CU_ASSERT_EQUAL(ann->items[0]->kind, MOAI_TS_EX_SUBSCRIPT);
  CU_ASSERT_EQUAL(ann->items[1]->kind, MOAI_TS_EX_LIST);
  CU_ASSERT_EQUAL(ann->items[1]->n, 0);
  moai_ts_source_free(src);

  src = parse_file("cnn_batchnorm.py");
  CU_ASSERT_PTR_NOT_NULL_FATAL(src);
  const moai_ts_def_t *bn = moai_ts_class_method(
      moai_ts_source_class(src, "BatchNorm2d"), "forward");
  CU_ASSERT_PTR_NOT_NULL_FATAL(bn);
  const moai_ts_expr_t *c0 = bn->body.items[5]->value->items[1];
  CU_ASSERT_STRING_EQUAL(dotted(c0, buf, sizeof(buf)), "CONSTANTS.c0");
  moai_ts_source_free(src);
}

static void test_scripted_code(void) {
  moai_ts_source_t *src = parse_file("script_mlp.py");
  CU_ASSERT_PTR_NOT_NULL_FATAL(src);
  const moai_ts_def_t *f =
      moai_ts_class_method(moai_ts_source_class(src, "MLP"), "forward");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  const moai_ts_stmt_t *loop = f->body.items[2];
  CU_ASSERT_EQUAL(loop->kind, MOAI_TS_ST_FOR);
  CU_ASSERT_TRUE(is_name(loop->target, "i"));
  CU_ASSERT_EQUAL(loop->value->kind, MOAI_TS_EX_CALL);
  CU_ASSERT_EQUAL(loop->body.n, 1);
  CU_ASSERT_EQUAL(loop->body.items[0]->line, loop->line + 1);
  const moai_ts_stmt_t *cond = NULL;
  for (size_t i = 0; i < f->body.n; ++i)
    if (f->body.items[i]->kind == MOAI_TS_ST_IF) cond = f->body.items[i];
  CU_ASSERT_PTR_NOT_NULL_FATAL(cond);
  CU_ASSERT_TRUE(is_name(cond->value, "use_relu"));
  CU_ASSERT_EQUAL(cond->body.n, 2);
  CU_ASSERT_EQUAL(cond->orelse.n, 1);
  /* h = torch.floordiv((torch.size(x4))[0], 2) */
  const moai_ts_stmt_t *h = f->body.items[f->body.n - 3];
  CU_ASSERT_TRUE(is_name(h->target, "h"));
  CU_ASSERT_EQUAL(h->value->items[0]->kind, MOAI_TS_EX_SUBSCRIPT);
  CU_ASSERT_EQUAL(h->value->items[0]->rhs->i, 0);
  moai_ts_source_free(src);

  src = parse_file("script_functional.py");
  CU_ASSERT_PTR_NOT_NULL_FATAL(src);
  const moai_ts_def_t *relu = moai_ts_source_def(src, "relu");
  CU_ASSERT_PTR_NOT_NULL_FATAL(relu);
  CU_ASSERT_EQUAL(relu->nparams, 2);
  CU_ASSERT_EQUAL(relu->params[1].value->kind, MOAI_TS_EX_BOOL);
  CU_ASSERT_EQUAL(relu->body.items[0]->kind, MOAI_TS_ST_IF);
  moai_ts_source_free(src);

  src = parse_file("script_linear.py");
  CU_ASSERT_PTR_NOT_NULL_FATAL(src);
  const moai_ts_class_t *lin = moai_ts_source_class(src, "Linear");
  const moai_ts_stmt_t *feat = NULL;
  for (size_t i = 0; i < lin->body.n; ++i)
    if (lin->body.items[i]->kind == MOAI_TS_ST_ANNOT &&
        is_name(lin->body.items[i]->target, "in_features"))
      feat = lin->body.items[i];
  CU_ASSERT_PTR_NOT_NULL_FATAL(feat);
  CU_ASSERT_PTR_NOT_NULL_FATAL(feat->extra);
  CU_ASSERT_EQUAL(feat->extra->i, 8);
  moai_ts_source_free(src);
}

static void test_precedence_and_literals(void) {
  moai_ts_source_t *src = parse_text(
      "x = 1 + 2 * 3 ** 2 // 4 - -5 < 3 and not a or b\n"
      "y = -9223372036854775808\n"
      "z = (1, )\n"
      "w = 'a\\'b\\x41' + \"q\"  # comment\n"
      "\n"
      "  # an indented comment line\n"
      "if a is not None:\n"
      "  pass\n"
      "elif b:\n"
      "  v += 2\n"
      "else:\n"
      "  for i, j in t:\n"
      "    break\n"
      "assert a == 1, \"msg\"\n"
      "return\n");
  CU_ASSERT_PTR_NOT_NULL_FATAL(src);
  const moai_ts_block_t *b = moai_ts_source_body(src);
  CU_ASSERT_EQUAL_FATAL(b->n, 7);
  const moai_ts_expr_t *x = b->items[0]->value;
  CU_ASSERT_EQUAL(x->kind, MOAI_TS_EX_OR);
  CU_ASSERT_TRUE(is_name(x->rhs, "b"));
  const moai_ts_expr_t *and_ = x->base;
  CU_ASSERT_EQUAL(and_->kind, MOAI_TS_EX_AND);
  CU_ASSERT_EQUAL(and_->rhs->kind, MOAI_TS_EX_UNARY);
  CU_ASSERT_EQUAL(and_->rhs->op, MOAI_TS_OP_NOT);
  const moai_ts_expr_t *lt = and_->base;
  CU_ASSERT_EQUAL(lt->op, '<');
  const moai_ts_expr_t *minus = lt->base; /* (1 + ((2 * 3**2) // 4)) - -5 */
  CU_ASSERT_EQUAL(minus->op, '-');
  CU_ASSERT_EQUAL(minus->rhs->kind, MOAI_TS_EX_UNARY);
  const moai_ts_expr_t *plus = minus->base;
  CU_ASSERT_EQUAL(plus->op, '+');
  const moai_ts_expr_t *fdiv = plus->rhs;
  CU_ASSERT_EQUAL(fdiv->op, MOAI_TS_OP_FLOORDIV);
  CU_ASSERT_EQUAL(fdiv->base->op, '*');
  CU_ASSERT_EQUAL(fdiv->base->rhs->op, MOAI_TS_OP_POW);
  CU_ASSERT_STRING_EQUAL(moai_ts_op_spelling(MOAI_TS_OP_FLOORDIV), "//");
  CU_ASSERT_STRING_EQUAL(moai_ts_op_spelling('-'), "-");
  CU_ASSERT_EQUAL(b->items[1]->value->kind, MOAI_TS_EX_INT);
  CU_ASSERT_EQUAL(b->items[1]->value->i, INT64_MIN);
  CU_ASSERT_EQUAL(b->items[2]->value->kind, MOAI_TS_EX_TUPLE);
  CU_ASSERT_EQUAL(b->items[2]->value->n, 1);
  const moai_ts_expr_t *w = b->items[3]->value;
  CU_ASSERT_STRING_EQUAL(w->base->name, "a'bA");
  const moai_ts_stmt_t *cond = b->items[4];
  CU_ASSERT_EQUAL(cond->line, 7);
  CU_ASSERT_EQUAL(cond->value->op, MOAI_TS_OP_IS_NOT);
  CU_ASSERT_EQUAL(cond->orelse.n, 1);
  const moai_ts_stmt_t *elif = cond->orelse.items[0];
  CU_ASSERT_EQUAL(elif->kind, MOAI_TS_ST_IF);
  CU_ASSERT_EQUAL(elif->line, 9);
  CU_ASSERT_EQUAL(elif->body.items[0]->kind, MOAI_TS_ST_AUGASSIGN);
  CU_ASSERT_EQUAL(elif->body.items[0]->op, '+');
  const moai_ts_stmt_t *loop = elif->orelse.items[0];
  CU_ASSERT_EQUAL(loop->kind, MOAI_TS_ST_FOR);
  CU_ASSERT_EQUAL(loop->target->kind, MOAI_TS_EX_TUPLE);
  CU_ASSERT_EQUAL(loop->body.items[0]->kind, MOAI_TS_ST_BREAK);
  CU_ASSERT_EQUAL(b->items[5]->kind, MOAI_TS_ST_ASSERT);
  CU_ASSERT_EQUAL(b->items[5]->extra->kind, MOAI_TS_EX_STR);
  CU_ASSERT_EQUAL(b->items[6]->kind, MOAI_TS_ST_RETURN);
  CU_ASSERT_PTR_NULL(b->items[6]->value);
  CU_ASSERT_EQUAL(b->items[6]->line, 15);
  moai_ts_source_free(src);
}

static void test_syntax_errors(void) {
#define E(text, want) expect_error(text, strlen(text), want)
  E("def f(x y):\n  pass\n", "m.py:1: syntax error");
  E("x = 1\ny = (2,\n", "ends inside brackets");
  E("x = 1\ny = )\n", "m.py:2: syntax error: an unmatched closing bracket");
  E("if a:\npass\n", "m.py:2: syntax error: expected an indented block");
  E("if a:\n    x = 1\n  y = 2\n", "m.py:3: syntax error: the indentation");
  E("if a:\n\tx = 1\n", "m.py:2: syntax error: a tab");
  E("x = 'abc\n", "m.py:1: syntax error: a string is not closed");
  E("x = 9223372036854775808\n", "does not fit int64");
  E("x = 99999999999999999999\n", "does not fit 64 bits");
  E("x = lambda y: y\n", "m.py:1: syntax error: a keyword");
  E("x = 1 2\n", "expected the end of the line");
  E("x = a < b < c\n", "chained comparisons");
  E("x = 3abc\n", "a malformed number");
  E("x = 1 $ 2\n", "an unexpected character");
  E("with a:\n  pass\n", "'with' is not supported here");
  E("x = f(a=1, 2)\n", "a positional argument after a keyword one");
  expect_error("x = 1\0\n", 7, "NUL byte");
#undef E
}

/* Nesting far beyond the limit: an error, not a stack overflow. */
static void test_nesting_limits(void) {
  enum { DEPTH = 100000 };
  char *text = malloc(2 * DEPTH + 16);
  CU_ASSERT_PTR_NOT_NULL_FATAL(text);
  size_t n = 0;
  memcpy(text, "x = ", 4);
  n = 4;
  for (int i = 0; i < DEPTH; ++i) text[n++] = '(';
  text[n++] = '1';
  for (int i = 0; i < DEPTH; ++i) text[n++] = ')';
  text[n++] = '\n';
  expect_error(text, n, "nested too deeply");
  /* Unary operators and `not` do not use brackets. */
  n = 4;
  for (int i = 0; i < DEPTH; ++i) text[n++] = '-';
  text[n++] = '1';
  text[n++] = '\n';
  expect_error(text, n, "nested too deeply");
  n = 0;
  memcpy(text, "x = ", 4);
  n = 4;
  for (int i = 0; i < DEPTH / 4; ++i) {
    memcpy(text + n, "not ", 4);
    n += 4;
  }
  text[n++] = 'a';
  text[n++] = '\n';
  expect_error(text, n, "nested too deeply");
  /* Deep blocks. */
  char *blocks = malloc(300 * 310);
  CU_ASSERT_PTR_NOT_NULL_FATAL(blocks);
  size_t m = 0;
  for (int i = 0; i < 300; ++i) {
    for (int k = 0; k < i; ++k) blocks[m++] = ' ';
    memcpy(blocks + m, "if a:\n", 6);
    m += 6;
  }
  for (int k = 0; k < 300; ++k) blocks[m++] = ' ';
  memcpy(blocks + m, "pass\n", 5);
  m += 5;
  expect_error(blocks, m, "nested too deeply");
  /* Just under the limit parses. */
  m = 0;
  for (int i = 0; i < 40; ++i) {
    for (int k = 0; k < i; ++k) blocks[m++] = ' ';
    memcpy(blocks + m, "if a:\n", 6);
    m += 6;
  }
  for (int k = 0; k < 40; ++k) blocks[m++] = ' ';
  memcpy(blocks + m, "pass\n", 5);
  m += 5;
  moai_ts_source_t *src = NULL;
  moai_status_t st = moai_ts_parse("m.pt", "code/__torch__/m.py", blocks, m, &src);
  CU_ASSERT_PTR_NULL(st);
  moai_status_free(st);
  moai_ts_source_free(src);
  free(blocks);
  free(text);
}

/* Every prefix of a real file: a tree or an error, never a crash. */
static void test_truncated_code(void) {
  size_t len;
  char *text = read_code("mistral_make_models.py", &len);
  size_t ok = 0;
  for (size_t n = 0; n <= len; n += 7) {
    moai_ts_source_t *src = NULL;
    moai_status_t st = moai_ts_parse("m.pt", "code/__torch__/m.py", text, n, &src);
    if (!st) ++ok;
    CU_ASSERT_TRUE((st == NULL) != (src == NULL));
    moai_status_free(st);
    moai_ts_source_free(src);
  }
  CU_ASSERT_TRUE(ok > 0);
  free(text);
}

void moai_test_register(void) {
  static CU_TestInfo tests[] = {
      {"mistral_code", test_mistral_code},
      {"container_annotations", test_container_annotations},
      {"cnn_code", test_cnn_code},
      {"scripted_code", test_scripted_code},
      {"precedence_and_literals", test_precedence_and_literals},
      {"syntax_errors", test_syntax_errors},
      {"nesting_limits", test_nesting_limits},
      {"truncated_code", test_truncated_code},
      CU_TEST_INFO_NULL,
  };
  moai_test_add_suite("ts_parser", tests);
}
