"""PyTorch reference timings for `gradforge bench` on CUDA.

Prints one JSON object: {"device": ..., "torch": ..., "results": {name: {"ms": median, ...}}}.
Each case runs with fresh random data, warms up, then times REPS runs with CUDA events and
reports the median. Sizes match cmd/gradforge/bench.go; pass --small for a quick check.
"""
import argparse
import json
import statistics
import sys

import torch


def timed(fn, reps, warmup=3):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        fn()
        e.record()
        e.synchronize()
        times.append(s.elapsed_time(e))
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--small", action="store_true")
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--compile", action="store_true", help="also time torch.compile for the product")
    a = ap.parse_args()
    n = (1 << 20) if a.small else (256 << 20)
    rows = 1024 if a.small else 16384
    mm = 512 if a.small else 4096
    dev = "cuda"
    out = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "results": {}}
    r = out["results"]

    x = torch.randn(n, device=dev)
    y = torch.empty_like(x)
    r["copy"] = {"ms": timed(lambda: y.copy_(x), a.reps), "bytes": 8 * n}
    del y

    ts = [torch.randn(n, device=dev) for _ in range(6)]
    prod = lambda: ts[0] * ts[1] * ts[2] * ts[3] * ts[4] * ts[5]
    r["product6"] = {"ms": timed(prod, a.reps), "bytes": 28 * n}
    if a.compile:
        cprod = torch.compile(prod)
        r["product6_compiled"] = {"ms": timed(cprod, a.reps, warmup=5), "bytes": 28 * n}
    del ts

    r["sum"] = {"ms": timed(lambda: x.sum(), a.reps), "bytes": 4 * n}
    del x

    m = torch.randn(rows, rows, device=dev)
    r["softmax"] = {"ms": timed(lambda: torch.softmax(m, dim=-1), a.reps), "bytes": 8 * rows * rows}
    del m

    torch.backends.cuda.matmul.allow_tf32 = False
    for name, dt in (("matmul_f32", torch.float32), ("matmul_f16", torch.float16)):
        p, q = torch.randn(mm, mm, device=dev, dtype=dt), torch.randn(mm, mm, device=dev, dtype=dt)
        ms = timed(lambda: p @ q, a.reps)
        r[name] = {"ms": ms, "flops": 2 * mm ** 3}
    batch = 64 if a.small else 512
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 32, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(32, 64, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(1600, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10)).to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    xb, yb = torch.randn(batch, 1, 28, 28, device=dev), torch.randint(0, 10, (batch,), device=dev)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(model(xb), yb)
        loss.backward()
        opt.step()

    r["train_step"] = {"ms": timed(step, max(3, a.reps // 4))}
    json.dump(out, sys.stdout)
    print()


if __name__ == "__main__":
    main()
