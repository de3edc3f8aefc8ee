"""Times Mask2Former's own criterion (SetCriterion + HungarianMatcher, loaded
as make_criterion_fixture.py loads them) at RASS's real size, forward and
backward, for comparison with the C++ bench case in
tests/train/test_mask2former_criterion.cpp (test-train -tc='bench*' --no-skip):
B 2, Q 100, 150 classes, masks 128x128, targets 512x512 (blocky label maps
with 16 classes each), 10 predictions (final + 9 aux), 12544 points.

    MASK2FORMER_SRC=... DETECTRON2_SRC=... /tmp/loravenv/bin/python tests/train/bench_criterion_reference.py
"""
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(__file__))
import make_criterion_fixture as fx  # noqa: E402


def main():
    torch.set_num_threads(int(os.environ.get("THREADS", "1")))
    crit_mod, match_mod = fx.setup()
    B, Q, C, HP, HT, AUX, P = 2, 100, 150, 128, 512, 9, 12544
    gen = torch.Generator().manual_seed(5)
    targets = []
    for _ in range(B):
        cells = torch.randperm(C, generator=gen)[:16].view(4, 4)
        m = cells.repeat_interleave(HT // 4, 0).repeat_interleave(HT // 4, 1)
        targets += fx.targets_of(m[None])
    matcher = match_mod.HungarianMatcher(cost_class=2.0, cost_mask=5.0, cost_dice=5.0, num_points=P)
    wd = {"loss_ce": 2.0, "loss_mask": 5.0, "loss_dice": 5.0}
    for i in range(AUX):
        wd.update({k + f"_{i}": v for k, v in list(wd.items())[:3]})
    crit = crit_mod.SetCriterion(C, matcher=matcher, weight_dict=wd, eos_coef=0.1, losses=["labels", "masks"],
                                 num_points=P, oversample_ratio=3.0, importance_sample_ratio=0.75)

    def pred():
        return ((torch.randn(B, Q, C + 1) * 2).requires_grad_(), (torch.randn(B, Q, HP, HP) * 3).requires_grad_())
    final, aux = pred(), [pred() for _ in range(AUX)]
    outputs = {"pred_logits": final[0], "pred_masks": final[1],
               "aux_outputs": [{"pred_logits": a[0], "pred_masks": a[1]} for a in aux]}
    for rep in range(4):
        t0 = time.perf_counter()
        losses = crit(outputs, targets)
        total = sum(losses[k] * wd[k] for k in losses)
        t1 = time.perf_counter()
        total.backward()
        t2 = time.perf_counter()
        print(f"forward {1e3 * (t1 - t0):.0f} ms, backward {1e3 * (t2 - t1):.0f} ms "
              f"({torch.get_num_threads()} threads, torch {torch.__version__}; targets "
              f"{[len(t['labels']) for t in targets]})")


if __name__ == "__main__":
    main()
