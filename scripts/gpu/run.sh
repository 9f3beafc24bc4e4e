#!/usr/bin/env bash
# run.sh runs on the GPU machine from .gpu/final (see build.sh): every CUDA check, each bounded,
# each output under $OUT: the CI parity gate end to end through a runner and the fake GitHub,
# generated kernels against the CPU, the framework tests on CUDA, the JIT, the ONNX suites,
# runner job limits, and `gradforge bench` against PyTorch.
L=$(cd "$(dirname "$0")" && pwd); R=$(cd "$L/../.." && pwd)
OUT=${OUT:-$L/out}; mkdir -p "$OUT"
cd "$L" && gunzip -f *.gz && chmod +x gradforge *.test
cat COMMIT; nvidia-smi -L; mount | grep cgroup | head -3
step() { local name=$1; shift; local s=$(date +%s); ( "$@" ) > "$OUT/$name.txt" 2>&1; echo "== $name rc=$? $(( $(date +%s)-s ))s"; tail -4 "$OUT/$name.txt"; }
cd "$R/cmd/gradforge"
step e2e env GRADFORGE_TEST_BIN=$L/gradforge GRADFORGE_TEST_FIXTURES=$L/fixtures GRADFORGE_TEST_CI_DEVICE=CUDA GRADFORGE_TEST_OUT=$OUT timeout 300 $L/cmd.test -test.run 'TestCIParityOnDevice$' -test.v
cd "$R/framework/examples/bench"
step generated timeout 120 $L/bench.test -test.run 'Generated' -test.v
step probe env GRADFORGE_PROBE=$OUT timeout 60 $L/bench.test -test.run 'TestProbeTrain$' -test.v
cd "$R/framework/codegen"; step codegen timeout 60 $L/codegen.test -test.v
cd "$R/framework/jit"; step jit env CUDA_REQUIRE=1 timeout 60 $L/jit.test -test.run Replay -test.v
cd "$R/framework/tensor"; step tensor env DEVICE=CUDA timeout 150 $L/tensor.test
cd "$R/framework/onnx"; step onnx-light env DEVICE=CUDA GRADFORGE_CONFORMANCE=$L/conf GRADFORGE_ONNX_LIGHT=1 timeout 120 $L/onnx.test -test.run 'TestLightModels' -test.v
cd "$R/runners"; step runners-limits timeout 90 $L/runners.test -test.run 'JobCgroup|JobLimits|LimitsWithoutCgroups|ParseSize' -test.v
grep -E "cgroup|SKIP|^--- |OOM|enforced" "$OUT/runners-limits.txt" | head -20
cd "$L"
step bench timeout 150 ./gradforge bench --json $OUT/bench.json
step onnx-node timeout 150 ./gradforge onnx conformance --device CUDA --quiet conf/onnx-node-dev.tgz
grep -h "^|" $OUT/bench.txt | head -40
grep "rep \|GFLOPS" $OUT/probe.txt | awk '{for(i=1;i<=NF;i++) if($i=="ms") print $(i-1), $0}' | sort -g -r | head -10 | cut -c1-150
grep "rep " $OUT/probe.txt
rm -f $OUT/train.prof $OUT/runner.log
