# scripts/trace_summary.py on hand-made traces (standard-library Python; no
# LibTorch needed): GPU time by kernel family and busy time worked out by
# hand, --skip-first-call on a GPU trace (the host's rass::model_call range
# counts, not Kineto's device copy of it; kernels by their launch time),
# launching operators (a caller of views only is a leaf), and bad input.
. "$(dirname "$0")/lib.sh"
TS=$SRC/scripts/trace_summary.py
command -v python3 >/dev/null || { echo "skipped: no python3"; exit 77; }

# Two model calls (host ranges at 100 and 200 us), Kineto's device copies of
# them, and one kernel each: the first launched at 110 (inside call 1) but
# run at 190-200, the second launched at 210 and run at 215-235. A GEMM and
# a convolution; plus a CPU operator tree: aten::linear > aten::addmm >
# aten::empty (a view or allocation: addmm is still a leaf).
cat >"$T/gpu.json" <<'JSON'
{"traceEvents": [
 {"ph": "X", "cat": "user_annotation", "name": "rass::model_call", "pid": 1, "tid": 1, "ts": 100, "dur": 50},
 {"ph": "X", "cat": "user_annotation", "name": "rass::model_call", "pid": 1, "tid": 1, "ts": 200, "dur": 50},
 {"ph": "X", "cat": "gpu_user_annotation", "name": "rass::model_call", "pid": 0, "tid": 7, "ts": 190, "dur": 10},
 {"ph": "X", "cat": "gpu_user_annotation", "name": "rass::model_call", "pid": 0, "tid": 7, "ts": 215, "dur": 20},
 {"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel", "pid": 1, "tid": 1, "ts": 110, "dur": 2, "args": {"correlation": 1}},
 {"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel", "pid": 1, "tid": 1, "ts": 210, "dur": 2, "args": {"correlation": 2}},
 {"ph": "X", "cat": "kernel", "name": "sm90_xmma_gemm_bf16bf16_tn", "pid": 0, "tid": 7, "ts": 190, "dur": 10, "args": {"correlation": 1}},
 {"ph": "X", "cat": "kernel", "name": "cudnn_convolution_fprop_nhwc", "pid": 0, "tid": 7, "ts": 215, "dur": 20, "args": {"correlation": 2}},
 {"ph": "X", "cat": "cpu_op", "name": "aten::linear", "pid": 1, "tid": 1, "ts": 205, "dur": 8},
 {"ph": "X", "cat": "cpu_op", "name": "aten::addmm", "pid": 1, "tid": 1, "ts": 206, "dur": 6},
 {"ph": "X", "cat": "cpu_op", "name": "aten::empty", "pid": 1, "tid": 1, "ts": 207, "dur": 1}
]}
JSON
python3 "$TS" "$T/gpu.json" --images 2 >"$T/whole.txt" 2>&1 || fail "whole trace: $(head -c 300 "$T/whole.txt")"
python3 "$TS" "$T/gpu.json" --images 1 --skip-first-call >"$T/skip.txt" 2>&1 || fail "--skip-first-call: $(head -c 300 "$T/skip.txt")"
# Whole: 30 us of kernels over 2 images = 0.015 ms each; busy 30 of the 45 us span (66.7%).
grep -q "GPU 0.015 ms busy per image, 66.7% of the span" "$T/whole.txt" && ok "whole trace: busy time and share" ||
  fail "whole trace: $(grep -m1 busy "$T/whole.txt")"
# Skipped: only the kernel launched in call 2 (20 us, one image).
grep -q "GPU 0.020 ms busy per image" "$T/skip.txt" && ok "--skip-first-call keeps the second call's kernel only" ||
  fail "--skip-first-call: $(grep -m1 busy "$T/skip.txt")"
grep -q "from its second model call on" "$T/skip.txt" || fail "--skip-first-call does not say it skipped"
# Families: the GEMM and the convolution, 0.005 and 0.010 ms per image in the whole trace.
awk '$1 == "matrix" {print $4}' "$T/whole.txt" | grep -qx "0.005" && ok "GEMM kernel: matrix product family" ||
  fail "matrix product row: $(grep matrix "$T/whole.txt")"
awk '$1 == "convolution" {print $3}' "$T/whole.txt" | grep -qx "0.010" && ok "cuDNN kernel: convolution family" ||
  fail "convolution row: $(grep '^  convolution' "$T/whole.txt")"
# CPU: addmm is the one launching operator (empty is an allocation; linear a caller).
grep -q "1.0 launching operators per image (+1.0 views and allocations)" "$T/skip.txt" &&
  grep -q "aten::addmm" "$T/skip.txt" && ! grep -q "aten::linear" "$T/skip.txt" &&
  ok "launching operators: addmm, not linear" || fail "launching operators: $(grep -A8 launching "$T/skip.txt")"

# A PyTorch trace (no marks) is read whole with --skip-first-call.
grep -v model_call "$T/gpu.json" >"$T/torch.json"
python3 "$TS" "$T/torch.json" --skip-first-call >"$T/t.txt" 2>&1 && grep -q "GPU 0.030 ms busy per image" "$T/t.txt" &&
  ! grep -q "second model call" "$T/t.txt" && ok "no marks: read whole" || fail "no marks: $(head -c 300 "$T/t.txt")"

# Bad input: named, exit 1 (a file), 2 (usage).
echo '{"traceEvents": 3}' >"$T/bad.json"
expect_exit 1 "a file without a traceEvents list" -- python3 "$TS" "$T/bad.json"
stderr_has "bad.json" "the bad file is named"
printf '{"traceEvents": [' >"$T/cut.json"
expect_exit 1 "a trace cut short" -- python3 "$TS" "$T/cut.json"
stderr_has "cut.json" "the cut file is named"
echo '{"traceEvents": [{"ph": "X", "ts": "x", "dur": 1, "cat": "cpu_op", "name": "a", "tid": 1}]}' >"$T/odd.json"
expect_exit 1 "a non-numeric time" -- python3 "$TS" "$T/odd.json"
stderr_has "odd.json" "the odd file is named"
expect_exit 2 "--top 0" -- python3 "$TS" "$T/gpu.json" --top 0
expect_exit 2 "three traces" -- python3 "$TS" "$T/gpu.json" "$T/gpu.json" "$T/gpu.json"
expect_exit 2 "--images for one of two traces" -- python3 "$TS" "$T/gpu.json" "$T/torch.json" --images 2
# A pipe closed early: no traceback.
python3 "$TS" "$T/gpu.json" 2>"$T/pipe.err" | head -1 >/dev/null
grep -q Traceback "$T/pipe.err" && fail "a closed pipe gave a traceback" || ok "a closed pipe: quiet"
finish
