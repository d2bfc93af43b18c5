class MLP(Module):
  __parameters__ = []
  __buffers__ = []
  training : bool
  _is_full_backward_hook : Optional[bool]
  n : int
  use_relu : bool
  layers : __torch__.torch.nn.modules.container.ModuleList
  def forward(self: __torch__.MLP,
    x: Tensor,
    y: Tensor) -> Tuple[Tensor, Tensor]:
    n = self.n
    x0 = x
    for i in range(n):
      x0 = torch.add(torch.mul(x0, 2.), 1)
    layers = self.layers
    _0 = getattr(layers, "0")
    _1 = getattr(layers, "1")
    _2 = getattr(layers, "2")
    x1 = (_0).forward(x0, )
    x2 = (_1).forward(x1, )
    x3 = (_2).forward(x2, )
    use_relu = self.use_relu
    if use_relu:
      x5 = __torch__.torch.nn.functional.relu(x3, False, )
      x4 = x5
    else:
      x4 = torch.tanh(x3)
    h = torch.floordiv((torch.size(x4))[0], 2)
    _3 = torch.add(torch.slice(x4, 0, None, h), y)
    return (_3, torch.sum(x4, [-1]))
