#!/usr/bin/env python3
"""Where the time of a traced run went, and what differs between two runs.

    python3 scripts/trace_summary.py A.json [B.json] [--images NA [NB]] [--top 20]
        [--labels A B] [--skip-first-call]

A and B are Chrome traces from LibTorch's profiler: rass-restore or
rass-segment under RASS_TRACE=FILE (lib/rass/model/op_trace.hpp), or the
PyTorch references with --trace FILE (scripts/bench_restore_torch.py,
scripts/bench_segment_torch.py). Both sides run the same LibTorch, so their
rows name the same operators and kernels.

Printed, per image (--images: how many images each trace covers; default 1):
  - GPU (traces with CUDA kernels): device time by kernel family
    (convolution, matrix product, attention, normalisation, elementwise,
    reduction, copy, other), the kernel count, how busy the device was
    between its first and last kernel, and the kernels that took longest;
  - CPU: operators that call no other operator but views and allocations
    (on a GPU each launches about one kernel; views and allocations, which
    launch none, are counted apart), by self time and by count.
--skip-first-call leaves out a rass trace's first model call (one-time
set-up: cuDNN's and the kernels' first use, prompt encoding), so a run of N
batches compares with the reference's one call after its warm-up.
Standard library only: runs where the references run, and here.
"""
import argparse
import json
import os
import re
import signal
import sys
from collections import defaultdict

# Operators that change only metadata or allocate: no kernel on a GPU.
NO_KERNEL = {
    "aten::empty", "aten::empty_strided", "aten::empty_like", "aten::view", "aten::as_strided", "aten::_reshape_alias",
    "aten::reshape", "aten::transpose", "aten::permute", "aten::t", "aten::expand", "aten::unsqueeze", "aten::squeeze",
    "aten::slice", "aten::select", "aten::detach", "aten::alias", "aten::_unsafe_view", "aten::resize_",
    "aten::set_", "aten::lift_fresh", "aten::split", "aten::chunk", "aten::unbind", "aten::contiguous",
    "aten::narrow", "aten::expand_as", "aten::view_as", "aten::flatten", "aten::unflatten", "aten::split_with_sizes",
    "aten::item", "aten::_local_scalar_dense", "aten::is_nonzero", "aten::result_type", "aten::to", "aten::_to_copy",
    "aten::lift", "aten::_has_compatible_shallow_copy_type", "aten::size", "aten::stride", "aten::numel",
    "aten::resolve_conj", "aten::resolve_neg", "aten::dropout", "aten::as_strided_", "aten::_nested_tensor_from_mask",
    "aten::scalar_tensor", "aten::zeros", "aten::ones", "aten::_nnpack_available", "aten::is_same_size",
}

FAMILIES = [  # first match wins; kernel names are long C++ signatures
    ("attention", r"flash|fmha|attention|sdpa|cutlassF|mem_eff"),
    # cuDNN's and cuBLAS's Hopper kernels both start sm90_xmma_: fprop/dgrad/wgrad mark the convolutions.
    ("convolution", r"conv|cudnn|implicit_gemm|wgrad|dgrad|fprop|nchwToNhwc|nhwcToNchw|winograd"),
    ("matrix product", r"gemm|cublas|cutlass|sm\d+_\w*_tn|sm\d+_\w*_nn|sm\d+_\w*_nt|nvjet"),
    ("normalisation", r"norm|welford|RowwiseMoments|ComputeFused|GammaBeta"),
    ("reduction", r"reduce|softmax|argmax|max_|sum_|mean"),
    ("copy", r"copy|Memcpy|Memset|cat_|CatArray|transpose|permute|contiguous|upsample|nearest|im2col|pad"),
    ("elementwise", r"elementwise|vectorized|unrolled|silu|gelu|add|mul|div|clamp|where|fill|Functor"),
]


def family(name):
    for fam, pat in FAMILIES:
        if re.search(pat, name, re.IGNORECASE):
            return fam
    return "other"


MARK = "rass::model_call"  # lib/rass/model/batching.hpp: one per model call of a batch tool


def skip_first_call(events):
    """The events from the second model call of a rass trace on (none of the
    first call's one-time set-up, prompt encoding or host work before it);
    GPU work by the time of its launch. Traces without the marks (PyTorch's)
    come back whole. Meant for one lane (-j 1): with more, the second mark
    may be another lane's first call. With the GPU pipeline the second
    group's reading (during the first call) is left out and the first
    group's writing (during the second) kept: one group's host work off."""
    # The host's range only: with CUDA activity Kineto also writes each range
    # as a "gpu_user_annotation" spanning its kernels on the device.
    starts = sorted(float(e["ts"]) for e in events if e.get("name") == MARK and e.get("cat") == "user_annotation")
    if len(starts) < 2:
        return events, False
    t0 = starts[1]
    launched = {}  # correlation id -> launch time on the host
    for e in events:
        corr = (e.get("args") or {}).get("correlation")
        if corr is not None and e.get("cat") in ("cuda_runtime", "cuda_driver"):
            launched[corr] = float(e["ts"])
    kept = []
    for e in events:
        if e.get("cat") in ("kernel", "gpu_memcpy", "gpu_memset"):
            corr = (e.get("args") or {}).get("correlation")
            when = launched.get(corr, float(e["ts"]))
        else:
            when = float(e["ts"])
        if when >= t0:
            kept.append(e)
    return kept, True


def load(path):
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        sys.exit(f"trace_summary: {path}: {e}")
    events = data.get("traceEvents", data) if isinstance(data, dict) else data
    if not isinstance(events, list):
        sys.exit(f"trace_summary: {path}: no traceEvents list")
    return [e for e in events if isinstance(e, dict) and e.get("ph") == "X" and "dur" in e and "ts" in e]


def summarize(events):
    s = {"gpu": defaultdict(lambda: [0, 0.0]), "kernels": defaultdict(lambda: [0, 0.0]), "gpu_n": 0,
         "gpu_busy": 0.0, "gpu_span": 0.0, "leaf": defaultdict(lambda: [0, 0.0]), "leaf_n": 0, "nokernel_n": 0}
    gpu = [e for e in events if e.get("cat") in ("kernel", "gpu_memcpy", "gpu_memset")]
    if gpu:
        spans = sorted((float(e["ts"]), float(e["ts"]) + float(e["dur"])) for e in gpu)
        busy, cur_a, cur_b = 0.0, spans[0][0], spans[0][1]
        for a, b in spans[1:]:
            if a > cur_b:
                busy += cur_b - cur_a
                cur_a, cur_b = a, b
            else:
                cur_b = max(cur_b, b)
        busy += cur_b - cur_a
        s["gpu_busy"], s["gpu_span"] = busy, spans[-1][1] - spans[0][0]
    for e in gpu:
        name = e.get("name", "?")
        fam = "copy" if e.get("cat") != "kernel" else family(name)
        s["gpu"][fam][0] += 1
        s["gpu"][fam][1] += float(e["dur"])
        s["kernels"][name][0] += 1
        s["kernels"][name][1] += float(e["dur"])
        s["gpu_n"] += 1
    # CPU operators: nesting by time on each thread; a leaf has no operator inside it.
    by_tid = defaultdict(list)
    for e in events:
        if e.get("cat") == "cpu_op":
            by_tid[(e.get("pid"), e.get("tid"))].append(e)
    for evs in by_tid.values():
        evs.sort(key=lambda e: (float(e["ts"]), -float(e["dur"])))
        stack = []  # [end, event, child time, has child]
        done = []

        def close(item):
            done.append(item)

        for e in evs:
            a = float(e["ts"])
            while stack and stack[-1][0] <= a + 1e-3:
                close(stack.pop())
            if stack:
                stack[-1][2] += float(e["dur"])
                # Views and allocations inside an operator do not make it a caller.
                if e.get("name") not in NO_KERNEL:
                    for item in stack:
                        item[3] = True
            stack.append([a + float(e["dur"]), e, 0.0, False])
        while stack:
            close(stack.pop())
        for end, e, child, has_child in done:
            if has_child:
                continue
            name = e.get("name", "?")
            if name in NO_KERNEL:
                s["nokernel_n"] += 1
                continue
            s["leaf"][name][0] += 1
            s["leaf"][name][1] += float(e["dur"]) - child
            s["leaf_n"] += 1
    return s


def short(name, width=70):
    name = re.sub(r"\s+", " ", name)
    return name if len(name) <= width else name[: width - 3] + "..."


def table(title, rows, labels, top, unit="ms"):
    """rows: {key: [(count, us) per side]}; sorted by the largest time."""
    print(f"\n{title}")
    head = f"  {'':<72}" + "".join(f"{lab[:18]:>20}" for lab in labels)
    print(head)
    print(f"  {'':<72}" + "".join(f"{'calls':>8}{unit:>12}" for _ in labels))
    keys = sorted(rows, key=lambda k: -max(v[1] for v in rows[k]))[:top]
    for k in keys:
        print(f"  {short(k):<72}" + "".join(f"{c:>8.1f}{t / 1000:>12.3f}" for c, t in rows[k]))


def main():
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `| head`: end quietly, as a Unix tool
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("traces", nargs="+", help="one or two Chrome trace files")
    ap.add_argument("--images", type=float, nargs="+", help="images each trace covers (per-image numbers)")
    ap.add_argument("--top", type=int, default=20, help="rows per table")
    ap.add_argument("--labels", nargs="+", help="a column title per trace (default: the file names)")
    ap.add_argument("--skip-first-call", action="store_true",
                    help="leave out a rass trace's first model call (its rass::model_call mark; give --images "
                         "without that call's images); traces without the marks are read whole")
    a = ap.parse_args()
    if len(a.traces) > 2:
        ap.error("one or two traces")
    images = a.images or [1.0] * len(a.traces)
    if len(images) != len(a.traces) or any(n <= 0 for n in images):
        ap.error("--images: one positive count per trace")
    if a.top < 1:
        ap.error("--top must be at least 1")
    labels = a.labels or [re.sub(r"\.json$", "", os.path.basename(p)) for p in a.traces]
    if len(labels) != len(a.traces):
        ap.error("--labels: one title per trace")
    sums = []
    for p, lab in zip(a.traces, labels):
        events = load(p)
        try:
            if a.skip_first_call:
                events, skipped = skip_first_call(events)
                if skipped:
                    print(f"{lab}: from its second model call on")
            sums.append(summarize(events))
        except (TypeError, ValueError, KeyError, AttributeError) as e:
            sys.exit(f"trace_summary: {p}: not a trace this script can read ({type(e).__name__}: {e})")

    def side_rows(key):
        rows = defaultdict(lambda: [(0.0, 0.0)] * len(sums))
        for i, s in enumerate(sums):
            for k, (c, t) in s[key].items():
                r = list(rows[k])
                r[i] = (c / images[i], t / images[i])
                rows[k] = r
        return rows

    print("per image: " + ", ".join(f"{lab} / {n:g}" for lab, n in zip(labels, images)))
    if any(s["gpu_n"] for s in sums):
        for lab, s, n in zip(labels, sums, images):
            if s["gpu_n"]:
                print(f"  {lab}: GPU {s['gpu_busy'] / 1000 / n:.3f} ms busy per image, "
                      f"{100 * s['gpu_busy'] / max(s['gpu_span'], 1e-9):.1f}% of the span from first to last kernel, "
                      f"{s['gpu_n'] / n:.1f} kernels and copies per image")
            else:
                print(f"  {lab}: no GPU events")
        table("GPU time by kernel family", side_rows("gpu"), labels, a.top)
        table("GPU kernels, longest first", side_rows("kernels"), labels, a.top)
    for lab, s, n in zip(labels, sums, images):
        print(f"  {lab}: {s['leaf_n'] / n:.1f} launching operators per image "
              f"(+{s['nokernel_n'] / n:.1f} views and allocations)")
    table("CPU operators that call no other (self time)", side_rows("leaf"), labels, a.top)


if __name__ == "__main__":
    main()
