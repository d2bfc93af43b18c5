class CNN(Module):
  __parameters__ = []
  __buffers__ = []
  training : bool
  _is_full_backward_hook : Optional[bool]
  conv1 : __torch__.torch.nn.modules.conv.Conv2d
  bn1 : __torch__.torch.nn.modules.batchnorm.BatchNorm2d
  conv2 : __torch__.torch.nn.modules.conv.___torch_mangle_0.Conv2d
  dropout : __torch__.torch.nn.modules.dropout.Dropout
  fc1 : __torch__.torch.nn.modules.linear.Linear
  fc2 : __torch__.torch.nn.modules.linear.___torch_mangle_1.Linear
  def forward(self: __torch__.make_models.CNN,
    image: Tensor,
    target: Tensor) -> Tensor:
    fc2 = self.fc2
    fc1 = self.fc1
    dropout = self.dropout
    conv2 = self.conv2
    bn1 = self.bn1
    conv1 = self.conv1
    _0 = (bn1).forward((conv1).forward(image, ), )
    input = torch.relu(_0)
    input0 = torch.max_pool2d(input, [2, 2], annotate(List[int], []), [0, 0], [1, 1])
    x = torch.leaky_relu((conv2).forward(input0, ), 0.10000000000000001)
    x0 = torch.avg_pool2d(x, [2, 2], annotate(List[int], []), [0, 0], False, False)
    input1 = torch.clamp(x0, -6., 6.)
    x1 = torch.adaptive_avg_pool2d(input1, [1, 1])
    input2 = torch.flatten(x1, 1)
    _1 = (fc1).forward((dropout).forward(input2, ), )
    input3 = torch.gelu(_1)
    _2 = torch.cross_entropy_loss((fc2).forward(input3, ), target)
    return _2
