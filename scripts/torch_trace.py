"""The PyTorch side of RASS_TRACE (lib/rass/model/op_trace.hpp): one call of a
benchmark reference under torch.profiler, written as a Chrome trace that
scripts/trace_summary.py reads beside rass's own. Imported by
scripts/bench_restore_torch.py and scripts/bench_segment_torch.py (--trace)."""
import torch


def traced(path, device, call):
    """Runs call() once under the profiler (CPU operators with input shapes,
    and CUDA kernels on a GPU) and writes the trace to path."""
    acts = [torch.profiler.ProfilerActivity.CPU]
    if device.type == "cuda":
        acts.append(torch.profiler.ProfilerActivity.CUDA)
    with torch.profiler.profile(activities=acts, record_shapes=True) as prof:
        out = call()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    prof.export_chrome_trace(path)
    return out
