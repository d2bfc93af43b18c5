class MistralForCausalLM(Module):
  __parameters__ = []
  __buffers__ = []
  training : bool
  _is_full_backward_hook : Optional[bool]
  model : __torch__.make_models.MistralModel
  lm_head : __torch__.torch.nn.modules.linear.___torch_mangle_20.Linear
  def forward(self: __torch__.make_models.MistralForCausalLM,
    input_ids: Tensor,
    attention_mask: Tensor,
    position_ids: Tensor,
    labels: Tensor) -> Tensor:
    lm_head = self.lm_head
    model = self.model
    _0 = (model).forward(input_ids, position_ids, attention_mask, )
    _1 = (lm_head).forward(_0, )
    v = ops.prim.NumToTensor(torch.size(_1, 2))
    _2 = int(v)
    _3 = torch.slice(_1, 0, 0, 9223372036854775807)
    _4 = torch.slice(torch.slice(_3, 1, 0, -1), 2, 0, 9223372036854775807)
    input = torch.reshape(_4, [-1, _2])
    _5 = torch.slice(labels, 0, 0, 9223372036854775807)
    _6 = torch.slice(_5, 1, 1, 9223372036854775807)
    target = torch.reshape(_6, [-1])
    _7 = torch.cross_entropy_loss(input, target)
    return _7
class MistralModel(Module):
  __parameters__ = []
  __buffers__ = []
  training : bool
  _is_full_backward_hook : Optional[bool]
  embed_tokens : __torch__.torch.nn.modules.sparse.Embedding
  layers : __torch__.torch.nn.modules.container.ModuleList
  norm : __torch__.make_models.___torch_mangle_19.RMSNorm
  rotary_emb : __torch__.make_models.RotaryEmbedding
  def forward(self: __torch__.make_models.MistralModel,
    input_ids: Tensor,
    position_ids: Tensor,
    attention_mask: Tensor) -> Tensor:
    norm = self.norm
    layers = self.layers
    _1 = getattr(layers, "1")
    layers0 = self.layers
    _0 = getattr(layers0, "0")
    rotary_emb = self.rotary_emb
    embed_tokens = self.embed_tokens
    _8 = (embed_tokens).forward(input_ids, )
    _9 = (rotary_emb).forward(position_ids, )
    _10, _11, = _9
    s = ops.prim.NumToTensor(torch.size(attention_mask, 1))
    idx = torch.arange(annotate(number, s), dtype=None, layout=None, device=torch.device("cpu"), pin_memory=False)
    _12 = torch.slice(idx, 0, 0, 9223372036854775807)
    i = torch.unsqueeze(_12, 1)
    j = torch.slice(torch.unsqueeze(idx, 0), 1, 0, 9223372036854775807)
    allowed = torch.__and__(torch.le(j, i), torch.lt(torch.sub(i, j), 8))
    _13 = torch.unsqueeze(torch.unsqueeze(allowed, 0), 1)
    _14 = torch.slice(_13, 2, 0, 9223372036854775807)
    _15 = torch.slice(_14, 3, 0, 9223372036854775807)
    _16 = torch.slice(attention_mask, 0, 0, 9223372036854775807)
    _17 = torch.unsqueeze(torch.unsqueeze(_16, 1), 2)
    _18 = torch.slice(_17, 3, 0, 9223372036854775807)
    allowed0 = torch.__and__(_15, torch.ne(_18, 0))
    zero = torch.zeros(annotate(List[int], []), dtype=6, layout=None, device=torch.device("cpu"), pin_memory=False)
    neg = torch.full(annotate(List[int], []), -3.4028234663852886e+38, dtype=6, layout=None, device=torch.device("cpu"), pin_memory=False)
    mask = torch.where(allowed0, zero, neg)
    _19 = (_1).forward((_0).forward(_8, _10, _11, mask, ), _10, _11, mask, )
    return (norm).forward(_19, )
class DecoderLayer(Module):
  __parameters__ = []
  __buffers__ = []
  training : bool
  _is_full_backward_hook : Optional[bool]
  self_attn : __torch__.make_models.Attention
  mlp : __torch__.make_models.MLP
  input_layernorm : __torch__.make_models.RMSNorm
  post_attention_layernorm : __torch__.make_models.___torch_mangle_6.RMSNorm
  def forward(self: __torch__.make_models.DecoderLayer,
    argument_1: Tensor,
    argument_2: Tensor,
    argument_3: Tensor,
    mask: Tensor) -> Tensor:
    mlp = self.mlp
    post_attention_layernorm = self.post_attention_layernorm
    self_attn = self.self_attn
    input_layernorm = self.input_layernorm
    _20 = (input_layernorm).forward(argument_1, )
    _21 = (self_attn).forward(_20, argument_2, argument_3, mask, )
    x = torch.add(argument_1, _21)
    _22 = (post_attention_layernorm).forward(x, )
    return torch.add(x, (mlp).forward(_22, ))
class Attention(Module):
  __parameters__ = []
  __buffers__ = []
  training : bool
  _is_full_backward_hook : Optional[bool]
  q_proj : __torch__.torch.nn.modules.linear.Linear
  k_proj : __torch__.torch.nn.modules.linear.___torch_mangle_0.Linear
  v_proj : __torch__.torch.nn.modules.linear.___torch_mangle_1.Linear
  o_proj : __torch__.torch.nn.modules.linear.___torch_mangle_2.Linear
  def forward(self: __torch__.make_models.Attention,
    argument_1: Tensor,
    argument_2: Tensor,
    argument_3: Tensor,
    mask: Tensor) -> Tensor:
    o_proj = self.o_proj
    v_proj = self.v_proj
    k_proj = self.k_proj
    q_proj = self.q_proj
    b = ops.prim.NumToTensor(torch.size(argument_1, 0))
    _23 = int(b)
    _24 = int(b)
    _25 = int(b)
    _26 = int(b)
    _27 = int(b)
    _28 = int(b)
    _29 = int(b)
    _30 = int(b)
    s = ops.prim.NumToTensor(torch.size(argument_1, 1))
    _31 = int(s)
    _32 = int(s)
    _33 = int(s)
    _34 = int(s)
    _35 = int(s)
    _36 = int(s)
    _37 = int(s)
    _38 = int(s)
    _39 = torch.reshape((q_proj).forward(argument_1, ), [_30, _38, 4, 16])
    q = torch.transpose(_39, 1, 2)
    _40 = torch.reshape((k_proj).forward(argument_1, ), [_29, _37, 2, 16])
    k = torch.transpose(_40, 1, 2)
    _41 = torch.reshape((v_proj).forward(argument_1, ), [_28, _36, 2, 16])
    v = torch.transpose(_41, 1, 2)
    cos = torch.unsqueeze(argument_2, 1)
    sin = torch.unsqueeze(argument_3, 1)
    _42 = torch.mul(q, cos)
    _43 = ops.prim.NumToTensor(torch.size(q, 3))
    half = torch.floor_divide(_43, CONSTANTS.c0)
    _44 = int(half)
    _45 = torch.slice(q, 3, int(half), 9223372036854775807)
    _46 = [torch.neg(_45), torch.slice(q, 3, 0, _44)]
    q0 = torch.add(_42, torch.mul(torch.cat(_46, -1), sin))
    _47 = torch.mul(k, cos)
    _48 = ops.prim.NumToTensor(torch.size(k, 3))
    half0 = torch.floor_divide(_48, CONSTANTS.c0)
    _49 = int(half0)
    _50 = torch.slice(k, 3, int(half0), 9223372036854775807)
    _51 = [torch.neg(_50), torch.slice(k, 3, 0, _49)]
    k0 = torch.add(_47, torch.mul(torch.cat(_51, -1), sin))
    _52 = torch.slice(k0, 0, 0, 9223372036854775807)
    _53 = torch.slice(_52, 1, 0, 9223372036854775807)
    _54 = torch.slice(torch.unsqueeze(_53, 2), 3, 0, 9223372036854775807)
    _55 = torch.slice(_54, 4, 0, 9223372036854775807)
    _56 = torch.expand(_55, [_27, 2, 2, _35, 16])
    k1 = torch.reshape(_56, [_26, 4, _34, 16])
    _57 = torch.slice(v, 0, 0, 9223372036854775807)
    _58 = torch.slice(_57, 1, 0, 9223372036854775807)
    _59 = torch.slice(torch.unsqueeze(_58, 2), 3, 0, 9223372036854775807)
    _60 = torch.slice(_59, 4, 0, 9223372036854775807)
    _61 = torch.expand(_60, [_25, 2, 2, _33, 16])
    v0 = torch.reshape(_61, [_24, 4, _32, 16])
    _62 = torch.matmul(q0, torch.transpose(k1, 2, 3))
    scores = torch.add(torch.div(_62, CONSTANTS.c1), mask)
    probs = torch.softmax(scores, -1)
    _63 = torch.transpose(torch.matmul(probs, v0), 1, 2)
    input = torch.reshape(_63, [_23, _31, 64])
    return (o_proj).forward(input, )
class MLP(Module):
  __parameters__ = []
  __buffers__ = []
  training : bool
  _is_full_backward_hook : Optional[bool]
  gate_proj : __torch__.torch.nn.modules.linear.___torch_mangle_3.Linear
  up_proj : __torch__.torch.nn.modules.linear.___torch_mangle_4.Linear
  down_proj : __torch__.torch.nn.modules.linear.___torch_mangle_5.Linear
  def forward(self: __torch__.make_models.MLP,
    argument_1: Tensor) -> Tensor:
    down_proj = self.down_proj
    up_proj = self.up_proj
    gate_proj = self.gate_proj
    _64 = torch.silu((gate_proj).forward(argument_1, ))
    input = torch.mul(_64, (up_proj).forward(argument_1, ))
    return (down_proj).forward(input, )
class RMSNorm(Module):
  __parameters__ = ["weight", ]
  __buffers__ = []
  weight : Tensor
  training : bool
  _is_full_backward_hook : Optional[bool]
  def forward(self: __torch__.make_models.RMSNorm,
    argument_1: Tensor) -> Tensor:
    weight = self.weight
    variance = torch.mean(torch.pow(argument_1, 2), [-1], True)
    _65 = torch.sqrt(torch.add(variance, CONSTANTS.c2))
    x = torch.mul(weight, torch.div(argument_1, _65))
    return x
class RotaryEmbedding(Module):
  __parameters__ = []
  __buffers__ = ["inv_freq", ]
  inv_freq : Tensor
  training : bool
  _is_full_backward_hook : Optional[bool]
  def forward(self: __torch__.make_models.RotaryEmbedding,
    position_ids: Tensor) -> Tuple[Tensor, Tensor]:
    inv_freq = self.inv_freq
    _66 = torch.to(torch.unsqueeze(position_ids, -1), 6)
    freqs = torch.mul(_66, inv_freq)
    emb = torch.cat([freqs, freqs], -1)
    cos = torch.cos(emb)
    sin = torch.sin(emb)
    return (cos, sin)
