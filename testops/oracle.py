# The testops oracle: runs one case at a time in PyTorch for the Go side of gradforge's parity
# suite. Frames on stdin/stdout: a 4-byte little-endian length, a JSON header of that length,
# then the raw bytes of each tensor the header lists, in order.
#
# Request header: {"expr": str, "inputs": [{"shape", "dtype", "grad"}], "seed": int}
#   followed by the input tensors. The first request may instead be {"hello": true, "device"};
#   the answer names the torch version.
# Response header: {"ok": bool, "error": str, "outputs": [meta], "cotangent": meta or null,
#   "grads": [meta or null]} followed by the output, the float32 cotangent g (random normal from
#   the seed, the output's shape) when any input wants a gradient, and each non-null gradient of
#   sum(out * g).
import json
import struct
import sys

import torch
import torch.nn.functional as F

DTYPES = {
    "float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16,
    "float64": torch.float64, "int32": torch.int32, "int64": torch.int64, "int8": torch.int8,
    "uint8": torch.uint8, "bool": torch.bool,
}
NAMES = {v: k for k, v in DTYPES.items()}
LOW = (torch.float16, torch.bfloat16)
DEVICE = "cpu"


def read_exact(n):
    buf = b""
    while len(buf) < n:
        chunk = sys.stdin.buffer.read(n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return buf


def read_tensor(meta):
    dt = DTYPES[meta["dtype"]]
    n = 1
    for s in meta["shape"]:
        n *= s
    size = n * torch.tensor([], dtype=dt).element_size()
    raw = read_exact(size)
    if n == 0:
        return torch.zeros(meta["shape"], dtype=dt)
    # bytearray: frombuffer wants a writable buffer
    return torch.frombuffer(bytearray(raw), dtype=dt).reshape(meta["shape"]).clone()


def write_frame(header, tensors):
    h = json.dumps(header).encode()
    out = sys.stdout.buffer
    out.write(struct.pack("<I", len(h)))
    out.write(h)
    for t in tensors:
        out.write(t.contiguous().cpu().numpy().tobytes() if t.dtype != torch.bfloat16
                  else t.contiguous().cpu().view(torch.int16).numpy().tobytes())
    out.flush()


def meta(t):
    return {"shape": list(t.shape), "dtype": NAMES[t.dtype]}


def evaluate(expr, xs):
    env = {"torch": torch, "F": F, "math": __import__("math")}
    for i, x in enumerate(xs):
        env["x%d" % i] = x
    env["x"] = xs
    return eval(expr, env)


def compute(req, xs, want_grad, device=None):
    device = device or DEVICE
    leaves = [x.detach().to(device).requires_grad_(w) for x, w in zip(xs, want_grad)]
    out = evaluate(req["expr"], leaves)
    if not isinstance(out, torch.Tensor):
        out = torch.tensor(out)
    grads, g = [None] * len(xs), None
    if out.requires_grad and any(want_grad):
        gen = torch.Generator().manual_seed(req.get("seed", 0))
        g = torch.randn(out.shape, generator=gen, dtype=torch.float32, device="cpu")
        got = torch.autograd.grad((out.float() * g.to(device)).sum(),
                                  [l for l, w in zip(leaves, want_grad) if w], allow_unused=True)
        it = iter(got)
        for i, w in enumerate(want_grad):
            if w:
                gr = next(it)
                grads[i] = torch.zeros_like(leaves[i]) if gr is None else gr
    return out.detach(), g, grads


def run(req, xs):
    want_grad = [m.get("grad", False) and x.is_floating_point() for m, x in zip(req["inputs"], xs)]
    try:
        out, g, grads = compute(req, xs, want_grad)
    except RuntimeError as e:
        # A kernel PyTorch lacks (half ops on old CPU builds, integer matmul on CUDA) must
        # never read as a framework failure: compute in float32, or on the CPU, and convert.
        low = [x.dtype for x in xs if x.dtype in LOW]
        if "not implemented" not in str(e).lower():
            raise
        if DEVICE != "cpu":
            out, g, grads = compute(req, xs, want_grad, "cpu")
        elif low:
            out, g, grads = compute(req, [x.float() if x.dtype in LOW else x for x in xs], want_grad)
            if out.is_floating_point():
                out = out.to(low[0])
        else:
            raise
    grads = [None if gr is None else gr.to(x.dtype) for gr, x in zip(grads, xs)]
    return out, g, grads


def main():
    global DEVICE
    while True:
        try:
            n = struct.unpack("<I", read_exact(4))[0]
        except EOFError:
            return
        req = json.loads(read_exact(n))
        if req.get("hello"):
            DEVICE = req.get("device", "cpu")
            if hasattr(torch, "set_default_device"):  # torch >= 2.0: constants in cases follow
                torch.set_default_device(DEVICE)
            # The reference must be full float32: no TF32 in CUDA matmuls and convolutions.
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = False
            write_frame({"ok": True, "torch": torch.__version__, "device": DEVICE}, [])
            continue
        xs = [read_tensor(m) for m in req["inputs"]]
        try:
            out, g, grads = run(req, xs)
        except Exception as e:  # the case expects an error, or the framework should match it
            write_frame({"ok": False, "error": "%s: %s" % (type(e).__name__, e)}, [])
            continue
        got = [gr for gr in grads if gr is not None]
        write_frame({"ok": True, "outputs": [meta(out)], "cotangent": meta(g) if g is not None else None,
                     "grads": [meta(gr) if gr is not None else None for gr in grads]},
                    [out] + ([g] if g is not None else []) + got)


if __name__ == "__main__":
    main()
