#!/usr/bin/python3
"""PyTorch eager peer of the training benchmark: the training loop in its own
process, so that its peak RSS is its own.

    /usr/bin/python3 bench/perf/torch_train_peer.py --weights FILE.pt --data FILE.npz
        --threads N --steps S [--lr X --weight-decay X]

bench_models.mistral("bench") with the exported weights, train(), AdamW
(torch.optim defaults but lr and weight decay, which are moaicc --train's
--lr and defaults: betas 0.9/0.999, eps 1e-8, weight decay 0.01); step s
takes batch s of the .npz (input_ids, attention_mask, position_ids, labels,
batch rows each). A timed step is zero_grad, forward, backward and
optimizer.step. Prints one JSON line {"peer": "pytorch", "threads": N,
"seconds": [...], "loss": [...]}.
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "inference"))
import bench_models  # noqa: E402

NAMES = ["input_ids", "attention_mask", "position_ids", "labels"]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--weights", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--steps", type=int, required=True)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--weight-decay", type=float, default=0.01)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    model = bench_models.mistral("bench")
    model.load_state_dict(torch.load(args.weights))
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.999), eps=1e-8,
                            weight_decay=args.weight_decay)
    arrays = np.load(args.data)
    b = bench_models.CONFIGS["bench"].batch
    if arrays["input_ids"].shape[0] < args.steps * b:
        sys.exit(f"{args.data}: {arrays['input_ids'].shape[0]} rows, {args.steps} steps "
                 f"need {args.steps * b}")
    seconds, losses = [], []
    for s in range(args.steps):
        batch = [torch.from_numpy(arrays[n][s * b:(s + 1) * b]) for n in NAMES]
        t0 = time.perf_counter()
        opt.zero_grad()
        loss = model(*batch)
        loss.backward()
        opt.step()
        seconds.append(time.perf_counter() - t0)
        losses.append(loss.item())
    print(json.dumps({"peer": "pytorch", "threads": torch.get_num_threads(),
                      "seconds": seconds, "loss": losses}))


if __name__ == "__main__":
    main()
