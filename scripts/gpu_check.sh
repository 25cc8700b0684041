#!/usr/bin/env bash
# The GPU check, run on the device machine from the repository root:
#   build (sm_90) -> info -> whole test suite -> compute-sanitizer over the CUDA tests -> benchmarks
# Writes summary.txt and one log per step under $OUT (default ./gpu_out) and prints the summary
# and the benchmark table last. BENCH_FILES picks the benchmark files (default: op and losses),
# BENCH_K narrows them (a pytest -k expression);
# SKIP_PROFILE=0 adds the per-kernel profile of a stylization.
# SKIP_TESTS=1 / SKIP_SANITIZER=1 / SKIP_BENCH=1 drop those steps (e.g. to split the check over
# two calls on a warm machine, whose build is kept).
# PyAV (video tests and benchmark) is not on the GPU image: carry its wheel, made here with
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 -d .whl av
# and call the device tool with carry [".whl"]; without it the video cases skip.
set -uo pipefail
OUT=${OUT:-gpu_out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
SUMMARY="$OUT/summary.txt"
: > "$SUMMARY"

step() {  # step NAME TIMEOUT_S COMMAND...: runs with a time limit, logs to $OUT/NAME.log
  local name=$1 limit=$2; shift 2
  local start=$SECONDS
  timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
  local rc=$?
  echo "$name: exit $rc in $((SECONDS - start)) s" | tee -a "$SUMMARY"
  return $rc
}

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader >> "$SUMMARY" 2>&1
if compgen -G ".whl/*.whl" > /dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
if ! step build 400 env TORCH_CUDA_ARCH_LIST=9.0 MAX_JOBS=16 \
    python3 -m pip install --no-build-isolation --no-deps -e .; then
  tail -40 "$OUT/build.log"; cat "$SUMMARY"; exit 1
fi
grep -E "registers|spill" "$OUT/build.log" | grep -v " 0 bytes spill" | head -5 >> "$SUMMARY"
step info 60 python3 -m adain_cuda.info
cat "$OUT/info.log" >> "$SUMMARY"
if [ "${SKIP_TESTS:-0}" != 1 ]; then
  step tests 400 python3 -m pytest -q -rs tests
  tail -3 "$OUT/tests.log" >> "$SUMMARY"
fi
if [ "${SKIP_SANITIZER:-0}" != 1 ]; then
  step sanitizer 300 compute-sanitizer --tool memcheck --error-exitcode 9 \
    python3 -m pytest -q -x tests/test_adain.py tests/test_autograd.py \
    -k "cuda and not compile and not opcheck and (float32 or gradcheck)"
  grep -E "ERROR SUMMARY|passed|failed" "$OUT/sanitizer.log" | tail -3 >> "$SUMMARY"
fi
if [ "${SKIP_PROFILE:-1}" != 1 ]; then  # SKIP_PROFILE=0: where a frame's time goes (issue 7)
  step profile 300 bash -c "python3 benchmarks/profile_stylize.py --size 512x512 && \
    python3 benchmarks/profile_stylize.py --size 1080x1920 && \
    python3 benchmarks/profile_stylize.py --size 1080x1920 --fast"
fi
if [ "${SKIP_BENCH:-0}" != 1 ]; then
  # Default: the op and loss benchmarks (issues 2, 3). BENCH_FILES="benchmarks/test_bench_stylize.py
  # benchmarks/test_bench_video.py benchmarks/test_bench_train.py" for the application ones.
  step bench 500 python3 -m pytest -q ${BENCH_FILES:-benchmarks/test_bench_adain.py benchmarks/test_bench_losses.py} \
    --benchmark-only -k "${BENCH_K:-bench}" \
    --benchmark-json="$OUT/bench.json" --benchmark-columns=median,iqr,rounds
  python3 benchmarks/summarize.py "$OUT/bench.json" > "$OUT/bench.md" 2>&1
fi
echo "=== summary"; cat "$SUMMARY"
[ -f "$OUT/bench.md" ] && { echo "=== benchmarks"; cat "$OUT/bench.md"; }
exit 0
