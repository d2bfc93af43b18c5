"""The models of the inference benchmark, as torch modules.

Shared by make_bench_model.py (which exports them) and torch_peer.py (which
times them), so that PyTorch runs exactly the module and weights that were
exported. The modules themselves are those of examples/make_models.py,
imported, not copied; only the configuration differs.
"""
import collections
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "examples"))
import make_models  # noqa: E402  (examples/make_models.py)


class BenchConfig(make_models.MistralConfig):
    """A Mistral-style decoder big enough to time (12.8 M parameters, about
    27 GFLOP per step): hidden 512, 4 layers, 8 query and 4 key/value heads
    of 64, MLP 1408, vocab 1024, batch 4 x sequence 256. The sliding window
    (128) is half the sequence, so that the window part of the mask matters."""
    vocab_size = 1024
    hidden_size = 512
    num_hidden_layers = 4
    intermediate_size = 1408
    num_attention_heads = 8
    num_key_value_heads = 4
    head_dim = 64
    sliding_window = 128
    batch = 4
    seq = 256


CONFIGS = {"bench": BenchConfig, "small": make_models.MistralConfig}

# Per row: which side is padded and by how many tokens (the unit test's
# mixture, scaled: full rows, a right-padded and a left-padded one).
PADS = {"bench": [("right", 0), ("right", 32), ("left", 16), ("right", 0)],
        "small": [("right", 5), ("left", 3)]}

INPUT_NAMES = ["input_ids", "attention_mask", "position_ids"]


def mistral(config):
    """The decoder with the weights the export uses (seed 0, as in
    examples/make_models.py)."""
    torch.manual_seed(0)
    return make_models.MistralForCausalLM(CONFIGS[config]())


def mistral_inputs(config):
    """input_ids, attention_mask, position_ids (int64 [batch, seq])."""
    gen = torch.Generator().manual_seed(1)
    ins = make_models.mistral_inputs(CONFIGS[config](), gen, PADS[config])
    return collections.OrderedDict((n, ins[n]) for n in INPUT_NAMES)


def cnn():
    """The module of examples/cnn/cnn.onnx, with its weights: make_models
    builds it right after torch.manual_seed(2). The benchmark checks the
    outputs against examples/cnn/ref/logits.npy, which catches a torch build
    that would draw other weights."""
    torch.manual_seed(2)
    return make_models.CNN()
