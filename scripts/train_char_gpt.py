"""Train ``char-gpt`` (a character-level GPT-2) on Python standard-library source files.

The corpus is a fixed list of modules read from the local Python installation (``TRAIN_FILES`` and
``HELDOUT_FILES`` below, paths relative to ``sysconfig.get_paths()['stdlib']``; trained on CPython
3.11.7). The text is PSF-licensed (Python Software Foundation License Version 2); the held-out split
ships in the package as ``char_gpt_heldout.npz`` with that notice. Tabs become four spaces and lines
with characters outside the vocabulary (newline + printable ASCII, ``compiler/models/char_vocab.py``)
are dropped.

Writes ``char_gpt.weights.npz`` (float16, zoo weight names) and ``char_gpt_heldout.npz`` into
``--out`` (default ``compiler/data``), then re-checks the held-out loss with an independent
pure-numpy forward pass of the float16 weights (not torch).

Usage::

    pip install '.[train]'
    nice python scripts/train_char_gpt.py [--steps 4000] [--threads 1] [--out DIR]

The shipped weights (seed 0, 1 thread; more threads change float summation order, so the bits
differ slightly) come from one run of a cosine schedule over 4000 steps::

    python scripts/train_char_gpt.py --steps 4000 --ckpt-dir ck --ckpt-every 250

About 0.5 s per step on an idle 2-core machine, 1–1.5 s while other jobs run (54 min here).
`--ckpt-dir` keeps `last.pt` (model, optimizer, schedule and sampling state) and `best.weights.npz` (the lowest full
held-out bits/char so far).
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import sysconfig
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from compiler.models.char_vocab import VOCAB, encode  # noqa: E402

# Architecture (must match the zoo's ``char-gpt``).
VOCAB_SIZE = len(VOCAB)
CONTEXT = 256
DIM = 128
DEPTH = 4
HEADS = 4
HEAD_DIM = DIM // HEADS
MLP_HIDDEN = 512
LN_EPS = 1e-5

TRAIN_FILES = [
    "argparse.py", "functools.py", "dataclasses.py", "enum.py", "pathlib.py", "random.py",
    "shutil.py", "bisect.py", "fractions.py", "statistics.py", "difflib.py", "configparser.py",
    "tempfile.py", "contextlib.py", "copy.py", "pprint.py", "calendar.py", "datetime.py",
    "collections/__init__.py", "json/__init__.py", "json/decoder.py", "json/encoder.py",
    "abc.py", "typing.py", "inspect.py", "ast.py", "operator.py", "locale.py", "gettext.py",
    "optparse.py", "tokenize.py", "weakref.py", "queue.py", "sched.py", "glob.py", "fnmatch.py",
]  # fmt: skip
HELDOUT_FILES = ["textwrap.py", "heapq.py", "csv.py", "string.py"]
WEIGHTS_FILE = "char_gpt.weights.npz"
HELDOUT_FILE = "char_gpt_heldout.npz"
LICENSE = (
    "Text of CPython 3.11.7 standard-library modules (textwrap.py, heapq.py, csv.py, string.py), "
    "Copyright (c) 2001-2023 Python Software Foundation; licensed under the Python Software "
    "Foundation License Version 2 (https://docs.python.org/3/license.html)."
)


def clean(text: str) -> str:
    """Tabs -> four spaces; drop lines with characters outside the vocabulary."""
    keep = set(VOCAB)
    lines = [ln.expandtabs(4) for ln in text.split("\n")]
    return "\n".join(ln for ln in lines if set(ln) <= keep)


def read_corpus(files: list[str]) -> str:
    root = Path(sysconfig.get_paths()["stdlib"])
    return "\n\n".join(clean((root / f).read_text(encoding="utf-8")) for f in files)


# ----------------------------------------------------------------------------- torch


def build_torch_model():  # noqa: ANN201 - torch is an optional dependency
    """The torch GPT whose ``state_dict`` names map 1:1 onto the zoo's gpt2 weights."""
    import torch
    from torch import nn

    class Attention(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.q = nn.Linear(DIM, DIM)
            self.k = nn.Linear(DIM, DIM)
            self.v = nn.Linear(DIM, DIM)
            self.proj = nn.Linear(DIM, DIM)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            b, n, _ = x.shape

            def split(t: torch.Tensor) -> torch.Tensor:
                return t.view(b, n, HEADS, HEAD_DIM).transpose(1, 2)

            a = nn.functional.scaled_dot_product_attention(
                split(self.q(x)), split(self.k(x)), split(self.v(x)), is_causal=True
            )
            return self.proj(a.transpose(1, 2).reshape(b, n, DIM))

    class Mlp(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc1 = nn.Linear(DIM, MLP_HIDDEN)
            self.fc2 = nn.Linear(MLP_HIDDEN, DIM)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc2(nn.functional.gelu(self.fc1(x), approximate="tanh"))

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.norm1 = nn.LayerNorm(DIM, eps=LN_EPS)
            self.attn = Attention()
            self.norm2 = nn.LayerNorm(DIM, eps=LN_EPS)
            self.mlp = Mlp()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = x + self.attn(self.norm1(x))
            return x + self.mlp(self.norm2(x))

    class GPT(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.wte = nn.Embedding(VOCAB_SIZE, DIM)
            self.wpe = nn.Embedding(CONTEXT, DIM)
            self.blocks = nn.ModuleList(Block() for _ in range(DEPTH))
            self.norm = nn.LayerNorm(DIM, eps=LN_EPS)
            for name, p in self.named_parameters():
                if p.ndim == 2:
                    std = (
                        0.02 / math.sqrt(2 * DEPTH)
                        if name.endswith(("proj.weight", "fc2.weight"))
                        else 0.02
                    )
                    nn.init.normal_(p, std=std)
                elif name.endswith("bias"):
                    nn.init.zeros_(p)

        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            x = self.wte(ids) + self.wpe.weight[: ids.shape[1]]
            for block in self.blocks:
                x = block(x)
            return self.norm(x) @ self.wte.weight.T

    return GPT()


def export_weights(model) -> dict[str, np.ndarray]:  # noqa: ANN001
    return {
        name: np.ascontiguousarray(t.detach().cpu().numpy().astype(np.float16))
        for name, t in model.state_dict().items()
    }


def train(args: argparse.Namespace, ids: np.ndarray, held: np.ndarray):  # noqa: ANN201
    import torch

    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)

    model = build_torch_model()
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "wpe" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "wpe" not in n)]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": args.wd}, {"params": no_decay, "weight_decay": 0.0}],
        lr=args.lr,
        betas=(0.9, 0.95),
    )

    def lr_at(step: int) -> float:
        if step < args.warmup:
            return (step + 1) / args.warmup
        p = (step - args.warmup) / max(args.steps - args.warmup, 1)
        return 0.1 + 0.45 * (1.0 + math.cos(math.pi * p))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    start, best = 0, math.inf
    ckpt = args.ckpt_dir / "last.pt" if args.ckpt_dir else None
    if ckpt is not None and args.resume and ckpt.exists():
        state = torch.load(ckpt, weights_only=False)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        rng.bit_generator.state = state["rng"]
        start, best = state["step"], state["best"]
        print(f"resumed from {ckpt} at step {start}", flush=True)
    t0 = time.time()
    run = 0.0
    for step in range(start, min(args.steps, args.stop_after or args.steps)):
        model.train()
        starts = rng.integers(0, ids.size - CONTEXT - 1, size=args.batch)
        chunk = np.stack([ids[s : s + CONTEXT + 1] for s in starts]).astype(np.int64)
        x, y = torch.from_numpy(chunk[:, :-1]), torch.from_numpy(chunk[:, 1:])
        logits = model(x)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, VOCAB_SIZE), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        run = 0.98 * run + 0.02 * loss.item() if step > start else loss.item()
        if (step + 1) % args.log_every == 0 or step + 1 == args.steps:
            print(
                f"step {step + 1:5d}  loss {run / math.log(2):.3f} bits/char  "
                f"held-out[:8k] {torch_bits(model, held[: 32 * CONTEXT + 1]):.3f}  {time.time() - t0:.0f}s",
                flush=True,
            )
        if ckpt is not None and ((step + 1) % args.ckpt_every == 0 or step + 1 == args.steps):
            bits = torch_bits(model, held)
            state = {
                "model": model.state_dict(),
                "opt": opt.state_dict(),
                "sched": sched.state_dict(),
                "rng": rng.bit_generator.state,
                "step": step + 1,
                "best": min(best, bits),
            }
            torch.save(state, ckpt)
            if bits < best:
                best = bits
                np.savez_compressed(args.ckpt_dir / "best.weights.npz", **export_weights(model))
            print(
                f"checkpoint step {step + 1}: held-out {bits:.4f} bits/char (best {best:.4f})",
                flush=True,
            )
    return model


def windows(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Non-overlapping CONTEXT windows of inputs and next-char targets (the tail is dropped)."""
    n = (ids.size - 1) // CONTEXT
    x = ids[: n * CONTEXT].reshape(n, CONTEXT)
    y = ids[1 : n * CONTEXT + 1].reshape(n, CONTEXT)
    return x, y


def torch_bits(model, held: np.ndarray) -> float:  # noqa: ANN001
    import torch

    model.eval()
    x, y = windows(held)
    with torch.no_grad():
        logits = model(torch.from_numpy(x.astype(np.int64)))
        loss = torch.nn.functional.cross_entropy(
            logits.reshape(-1, VOCAB_SIZE), torch.from_numpy(y.astype(np.int64)).reshape(-1)
        )
    return loss.item() / math.log(2)


# ----------------------------------------------------------------------------- numpy


def _layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + LN_EPS) * w + b


def _gelu_tanh(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


def numpy_forward(w: dict[str, np.ndarray], ids: np.ndarray) -> np.ndarray:
    """Logits [n, vocab] of one window of ids, float64, from the weights as stored."""
    n = ids.size
    x = w["wte.weight"][ids] + w["wpe.weight"][:n]
    causal = np.triu(np.full((n, n), -np.inf), 1)
    for i in range(DEPTH):
        p = f"blocks.{i}."
        h = _layer_norm(x, w[p + "norm1.weight"], w[p + "norm1.bias"])
        q, k, v = (
            (h @ w[f"{p}attn.{n_}.weight"].T + w[f"{p}attn.{n_}.bias"])
            .reshape(n, HEADS, HEAD_DIM)
            .transpose(1, 0, 2)
            for n_ in "qkv"
        )
        s = q @ k.transpose(0, 2, 1) / math.sqrt(HEAD_DIM) + causal
        e = np.exp(s - s.max(-1, keepdims=True))
        a = (e / e.sum(-1, keepdims=True)) @ v
        a = a.transpose(1, 0, 2).reshape(n, DIM)
        x = x + a @ w[p + "attn.proj.weight"].T + w[p + "attn.proj.bias"]
        h = _layer_norm(x, w[p + "norm2.weight"], w[p + "norm2.bias"])
        h = _gelu_tanh(h @ w[p + "mlp.fc1.weight"].T + w[p + "mlp.fc1.bias"])
        x = x + h @ w[p + "mlp.fc2.weight"].T + w[p + "mlp.fc2.bias"]
    return _layer_norm(x, w["norm.weight"], w["norm.bias"]) @ w["wte.weight"].T


def numpy_verify(out_dir: Path) -> tuple[float, float]:
    """Reload the shipped files; held-out (next-char accuracy, bits/char) of the numpy forward."""
    with np.load(out_dir / WEIGHTS_FILE) as f:
        w = {k: f[k].astype(np.float64) for k in f.files}
    with np.load(out_dir / HELDOUT_FILE) as f:
        held = encode(f["text"].tobytes().decode("ascii"))
    x, y = windows(held)
    hits, nats = 0, 0.0
    for xi, yi in zip(x, y, strict=True):
        logits = numpy_forward(w, xi)
        m = logits.max(-1, keepdims=True)
        logp = logits - m - np.log(np.exp(logits - m).sum(-1, keepdims=True))
        nats -= float(logp[np.arange(CONTEXT), yi].sum())
        hits += int((logits.argmax(-1) == yi).sum())
    return hits / y.size, nats / y.size / math.log(2)


# ----------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--steps", type=int, default=4000)
    ap.add_argument("--out", type=Path, default=REPO_ROOT / "compiler" / "data")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--wd", type=float, default=0.1)
    ap.add_argument("--warmup", type=int, default=100, help="warmup steps")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--log-every", type=int, default=100)
    ap.add_argument(
        "--ckpt-dir",
        type=Path,
        default=None,
        help="save last.pt (resumable) and best.weights.npz (lowest full held-out bits/char) here",
    )
    ap.add_argument("--ckpt-every", type=int, default=250)
    ap.add_argument("--resume", action="store_true", help="continue from CKPT_DIR/last.pt")
    ap.add_argument(
        "--stop-after",
        type=int,
        default=0,
        help="stop after this step (a checkpoint falls there: the run goes on with --resume)",
    )
    args = ap.parse_args(argv)
    if args.ckpt_dir is not None:
        args.ckpt_dir.mkdir(parents=True, exist_ok=True)

    train_text, held_text = read_corpus(TRAIN_FILES), read_corpus(HELDOUT_FILES)
    ids, held = encode(train_text), encode(held_text)
    print(f"train {ids.size} chars ({len(TRAIN_FILES)} files), held-out {held.size} chars")
    args.out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        args.out / HELDOUT_FILE,
        text=np.frombuffer(held_text.encode("ascii"), np.uint8),
        files=np.array(HELDOUT_FILES),
        license=np.array(LICENSE),
    )

    t0 = time.time()
    model = train(args, ids, held)
    train_time = time.time() - t0
    weights = export_weights(model)
    np.savez_compressed(args.out / WEIGHTS_FILE, **weights)

    acc, bits = numpy_verify(args.out)
    print(f"training time {train_time:.0f}s")
    print(f"torch (float32): held-out {torch_bits(model, held):.4f} bits/char")
    print(f"numpy forward (float16 weights): held-out accuracy {acc:.4f}, {bits:.4f} bits/char")
    for name in (WEIGHTS_FILE, HELDOUT_FILE):
        print(f"wrote {args.out / name} ({(args.out / name).stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
