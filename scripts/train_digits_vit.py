"""Train ``digits-vit`` (a small pre-LN ViT) on scikit-learn's handwritten digits.

Writes ``digits_vit.weights.npz`` (float32, zoo weight names), ``digits_test.npz``
(the fixed 360-image held-out split, uint8) and ``digits_calib.npz`` (256 training images for
the compression passes' calibration) into ``--out`` (default:
``compiler/data``), then re-checks the test accuracy with an independent pure-numpy
forward pass that follows the zoo's spec (not torch).

Usage::

    pip install '.[train]'
    python scripts/train_digits_vit.py [--epochs N] [--out DIR]
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from compiler.datasets import preprocess_digits  # noqa: E402

# Architecture (must match the zoo's ``digits-vit``).
IN_CHANS = 1
IMG = 16
PATCH = 2
NUM_PATCHES = (IMG // PATCH) ** 2
DIM = 64
DEPTH = 4
HEADS = 4
HEAD_DIM = DIM // HEADS
MLP_HIDDEN = 128
NUM_CLASSES = 10
LN_EPS = 1e-6

SPLIT_SEED = 0
TEST_SIZE = 0.2
WEIGHTS_FILE = "digits_vit.weights.npz"
TEST_FILE = "digits_test.npz"
CALIB_FILE = "digits_calib.npz"
CALIB_SIZE = 256  # calibration split for compression passes: drawn from the TRAINING images only


def load_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return (x_train, y_train, x_test, y_test): uint8 [N, 8, 8] images, int64 labels."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = digits.images.astype(np.uint8)
    labels = digits.target.astype(np.int64)
    assert images.shape[1:] == (8, 8) and images.max() <= 16
    x_tr, x_te, y_tr, y_te = train_test_split(
        images, labels, test_size=TEST_SIZE, random_state=SPLIT_SEED, stratify=labels
    )
    return x_tr, y_tr, x_te, y_te


# ----------------------------------------------------------------------------- torch


def build_torch_model(drop_path: float):  # noqa: ANN201 - torch is an optional dependency
    """Build the torch ViT whose ``state_dict`` names map 1:1 onto the zoo's weights."""
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

            q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
            att = (q @ k.transpose(-2, -1)) / math.sqrt(HEAD_DIM)
            a = att.softmax(dim=-1) @ v
            return self.proj(a.transpose(1, 2).reshape(b, n, DIM))

    class Mlp(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc1 = nn.Linear(DIM, MLP_HIDDEN)
            self.fc2 = nn.Linear(MLP_HIDDEN, DIM)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc2(nn.functional.gelu(self.fc1(x), approximate="none"))

    class Block(nn.Module):
        def __init__(self, dp: float) -> None:
            super().__init__()
            self.norm1 = nn.LayerNorm(DIM, eps=LN_EPS)
            self.attn = Attention()
            self.norm2 = nn.LayerNorm(DIM, eps=LN_EPS)
            self.mlp = Mlp()
            self.dp = dp

        def _drop(self, r: torch.Tensor) -> torch.Tensor:
            if not self.training or self.dp == 0.0:
                return r
            keep = 1.0 - self.dp
            mask = torch.rand(r.shape[0], 1, 1, dtype=r.dtype) < keep
            return r * mask / keep

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = x + self._drop(self.attn(self.norm1(x)))
            return x + self._drop(self.mlp(self.norm2(x)))

    class ViT(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.patch_embed = nn.Conv2d(IN_CHANS, DIM, PATCH, stride=PATCH)
            self.cls_token = nn.Parameter(torch.zeros(1, DIM))
            self.pos_embed = nn.Parameter(torch.zeros(NUM_PATCHES + 1, DIM))
            dps = [drop_path * i / max(DEPTH - 1, 1) for i in range(DEPTH)]
            self.blocks = nn.ModuleList(Block(dp) for dp in dps)
            self.norm = nn.LayerNorm(DIM, eps=LN_EPS)
            self.head = nn.Linear(DIM, NUM_CLASSES)
            nn.init.trunc_normal_(self.pos_embed, std=0.02)
            nn.init.trunc_normal_(self.cls_token, std=0.02)
            for m in self.modules():
                if isinstance(m, nn.Linear):
                    nn.init.trunc_normal_(m.weight, std=0.02)
                    nn.init.zeros_(m.bias)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            t = self.patch_embed(x).flatten(2).transpose(1, 2)  # [B, 64, D], row-major
            cls = self.cls_token.expand(t.shape[0], 1, DIM)
            x = torch.cat([cls, t], dim=1) + self.pos_embed
            for blk in self.blocks:
                x = blk(x)
            return self.head(self.norm(x[:, 0]))

    return ViT()


def export_weights(model) -> dict[str, np.ndarray]:  # noqa: ANN001
    """Convert the torch state dict to the zoo's float32 weight dict."""
    out: dict[str, np.ndarray] = {}
    for name, t in model.state_dict().items():
        a = t.detach().cpu().numpy().astype(np.float32)
        if name == "patch_embed.weight":  # Conv2d [D, C, p, p] -> [D, C*p*p]
            a = a.reshape(DIM, IN_CHANS * PATCH * PATCH)
        out[name] = np.ascontiguousarray(a)
    return out


def shift_batch(x8: np.ndarray, rng: np.random.Generator, max_shift: int) -> np.ndarray:
    """Randomly translate each 8x8 image by up to ``max_shift`` pixels (zero fill)."""
    n = x8.shape[0]
    pad = max_shift
    padded = np.pad(x8, ((0, 0), (pad, pad), (pad, pad)))
    dy = rng.integers(-max_shift, max_shift + 1, size=n)
    dx = rng.integers(-max_shift, max_shift + 1, size=n)
    out = np.empty_like(x8)
    for i in range(n):
        y0, x0 = pad - dy[i], pad - dx[i]
        out[i] = padded[i, y0 : y0 + 8, x0 : x0 + 8]
    return out


def affine_batch(x8: np.ndarray, rng: np.random.Generator, prob: float) -> np.ndarray:
    """Apply a small random rotation/scale/shear to a fraction ``prob`` of 8x8 images."""
    import torch
    from torch.nn import functional as F

    n = x8.shape[0]
    sel = np.nonzero(rng.random(n) < prob)[0]
    if sel.size == 0:
        return x8
    m = sel.size
    ang = rng.uniform(-12, 12, m) * math.pi / 180
    scale = rng.uniform(0.9, 1.1, m)
    shear = rng.uniform(-0.15, 0.15, m)
    theta = np.zeros((m, 2, 3), dtype=np.float32)
    theta[:, 0, 0] = np.cos(ang) / scale
    theta[:, 0, 1] = -np.sin(ang) / scale + shear
    theta[:, 1, 0] = np.sin(ang) / scale
    theta[:, 1, 1] = np.cos(ang) / scale
    src = torch.from_numpy(x8[sel].astype(np.float32)).unsqueeze(1)
    grid = F.affine_grid(torch.from_numpy(theta), list(src.shape), align_corners=False)
    warped = F.grid_sample(src, grid, mode="bilinear", align_corners=False)
    out = x8.astype(np.float32, copy=True)
    out[sel] = warped.squeeze(1).numpy()
    return out


def torch_logits(model, x8: np.ndarray) -> np.ndarray:  # noqa: ANN001
    """Logits [N, 10] of the torch model on raw 8x8 images."""
    import torch

    model.eval()
    with torch.no_grad():
        return model(torch.from_numpy(preprocess_digits(x8))).numpy()


def torch_accuracy(model, x8: np.ndarray, y: np.ndarray) -> float:  # noqa: ANN001
    """Accuracy of the torch model on raw 8x8 images."""
    return float((torch_logits(model, x8).argmax(-1) == y).mean())


def train(args: argparse.Namespace, x_tr: np.ndarray, y_tr: np.ndarray):  # noqa: ANN201
    """Train the torch ViT and return it."""
    import torch
    from torch import nn

    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)

    model = build_torch_model(args.drop_path)
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embed" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "embed" not in n)]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": args.wd}, {"params": no_decay, "weight_decay": 0.0}],
        lr=args.lr,
        betas=(0.9, 0.999),
    )
    n = x_tr.shape[0]
    steps_per_epoch = math.ceil(n / args.batch)
    total = args.epochs * steps_per_epoch
    warmup = args.warmup * steps_per_epoch

    def lr_at(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        p = (step - warmup) / max(total - warmup, 1)
        return 0.5 * (1.0 + math.cos(math.pi * p))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=args.label_smoothing)
    y_all = torch.from_numpy(y_tr)
    t0 = time.time()
    for epoch in range(args.epochs):
        model.train()
        perm = rng.permutation(n)
        tot_loss = 0.0
        for s in range(steps_per_epoch):
            idx = perm[s * args.batch : (s + 1) * args.batch]
            xb8 = shift_batch(x_tr[idx], rng, args.max_shift)
            xb8 = affine_batch(xb8, rng, args.affine_prob)
            xb = torch.from_numpy(preprocess_digits(xb8))
            loss = loss_fn(model(xb), y_all[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            tot_loss += loss.item() * idx.size
        if (epoch + 1) % args.log_every == 0 or epoch + 1 == args.epochs:
            acc = torch_accuracy(model, x_tr, y_tr)
            print(
                f"epoch {epoch + 1:4d}  loss {tot_loss / n:.4f}  train_acc {acc:.4f}  "
                f"lr {sched.get_last_lr()[0]:.2e}  {time.time() - t0:.0f}s",
                flush=True,
            )
    return model


# ----------------------------------------------------------------------------- numpy


def _layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + LN_EPS) * w + b


def _gelu_erf(x: np.ndarray) -> np.ndarray:
    from scipy.special import erf

    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def numpy_forward(w: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """Reference forward of one image ``x`` float32 [1, 16, 16] -> logits [1, 10].

    Written directly from the zoo spec (independent of the torch model).
    """
    c, hh, ww = x.shape
    gh, gw = hh // PATCH, ww // PATCH
    # [C, gh, p, gw, p] -> [gh, gw, C, p, p] -> [64, C*p*p]: row-major patches, (c, ph, pw).
    patches = x.reshape(c, gh, PATCH, gw, PATCH).transpose(1, 3, 0, 2, 4)
    patches = patches.reshape(gh * gw, c * PATCH * PATCH)
    t = patches @ w["patch_embed.weight"].T + w["patch_embed.bias"]
    h = np.concatenate([w["cls_token"], t], axis=0) + w["pos_embed"]
    for i in range(DEPTH):
        p = f"blocks.{i}."
        z = _layer_norm(h, w[p + "norm1.weight"], w[p + "norm1.bias"])
        q = z @ w[p + "attn.q.weight"].T + w[p + "attn.q.bias"]
        k = z @ w[p + "attn.k.weight"].T + w[p + "attn.k.bias"]
        v = z @ w[p + "attn.v.weight"].T + w[p + "attn.v.bias"]
        heads = []
        for j in range(HEADS):
            sl = slice(j * HEAD_DIM, (j + 1) * HEAD_DIM)
            s = q[:, sl] @ k[:, sl].T / math.sqrt(HEAD_DIM)
            heads.append(_softmax(s) @ v[:, sl])
        a = np.concatenate(heads, axis=1)
        h = h + (a @ w[p + "attn.proj.weight"].T + w[p + "attn.proj.bias"])
        z = _layer_norm(h, w[p + "norm2.weight"], w[p + "norm2.bias"])
        m = _gelu_erf(z @ w[p + "mlp.fc1.weight"].T + w[p + "mlp.fc1.bias"])
        h = h + (m @ w[p + "mlp.fc2.weight"].T + w[p + "mlp.fc2.bias"])
    cls = _layer_norm(h[0:1], w["norm.weight"], w["norm.bias"])
    return cls @ w["head.weight"].T + w["head.bias"]


def expected_shapes() -> dict[str, tuple[int, ...]]:
    """The zoo's weight names and shapes."""
    shapes: dict[str, tuple[int, ...]] = {
        "patch_embed.weight": (DIM, IN_CHANS * PATCH * PATCH),
        "patch_embed.bias": (DIM,),
        "cls_token": (1, DIM),
        "pos_embed": (NUM_PATCHES + 1, DIM),
    }
    for i in range(DEPTH):
        p = f"blocks.{i}."
        for ln in ("norm1", "norm2"):
            shapes[p + ln + ".weight"] = (DIM,)
            shapes[p + ln + ".bias"] = (DIM,)
        for lin in ("q", "k", "v", "proj"):
            shapes[p + f"attn.{lin}.weight"] = (DIM, DIM)
            shapes[p + f"attn.{lin}.bias"] = (DIM,)
        shapes[p + "mlp.fc1.weight"] = (MLP_HIDDEN, DIM)
        shapes[p + "mlp.fc1.bias"] = (MLP_HIDDEN,)
        shapes[p + "mlp.fc2.weight"] = (DIM, MLP_HIDDEN)
        shapes[p + "mlp.fc2.bias"] = (DIM,)
    shapes.update(
        {
            "norm.weight": (DIM,),
            "norm.bias": (DIM,),
            "head.weight": (NUM_CLASSES, DIM),
            "head.bias": (NUM_CLASSES,),
        }
    )
    return shapes


def numpy_verify(out_dir: Path) -> tuple[float, np.ndarray]:
    """Reload both npz files from ``out_dir``; return numpy-forward test accuracy and logits."""
    with np.load(out_dir / WEIGHTS_FILE) as f:
        w = {k: f[k] for k in f.files}
    want = expected_shapes()
    assert set(w) == set(want), sorted(set(w) ^ set(want))
    for k, shape in want.items():
        assert w[k].shape == shape and w[k].dtype == np.float32, (k, w[k].shape, w[k].dtype)
    with np.load(out_dir / TEST_FILE) as f:
        images, labels = f["images"], f["labels"]
    assert images.dtype == np.uint8 and labels.dtype == np.int64
    x = preprocess_digits(images)
    logits = np.concatenate([numpy_forward(w, x[i]) for i in range(x.shape[0])], axis=0)
    return float((logits.argmax(-1) == labels).mean()), logits


# ----------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    """Train, export and verify ``digits-vit``."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=300)
    ap.add_argument("--out", type=Path, default=REPO_ROOT / "compiler" / "data")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--wd", type=float, default=0.05)
    ap.add_argument("--warmup", type=int, default=10, help="warmup epochs")
    ap.add_argument("--label-smoothing", type=float, default=0.1)
    ap.add_argument("--drop-path", type=float, default=0.1)
    ap.add_argument("--max-shift", type=int, default=1, help="max shift on the 8x8 grid")
    ap.add_argument("--affine-prob", type=float, default=0.5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--log-every", type=int, default=25)
    ap.add_argument(
        "--calibration-only",
        action="store_true",
        help=f"only write {CALIB_FILE} (the first {CALIB_SIZE} training images) and stop",
    )
    args = ap.parse_args(argv)

    x_tr, y_tr, x_te, y_te = load_split()
    print(f"train {x_tr.shape[0]} images, test {x_te.shape[0]} images")
    args.out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out / TEST_FILE, images=x_te, labels=y_te)
    np.savez_compressed(args.out / CALIB_FILE, images=x_tr[:CALIB_SIZE], labels=y_tr[:CALIB_SIZE])
    if args.calibration_only:
        print(f"wrote {args.out / CALIB_FILE} ({CALIB_SIZE} training images)")
        return 0

    t0 = time.time()
    model = train(args, x_tr, y_tr)
    train_time = time.time() - t0
    np.savez_compressed(args.out / WEIGHTS_FILE, **export_weights(model))

    tr_acc = torch_accuracy(model, x_tr, y_tr)
    te_acc = torch_accuracy(model, x_te, y_te)
    np_acc, np_logits = numpy_verify(args.out)
    max_diff = float(np.abs(np_logits - torch_logits(model, x_te)).max())
    print(f"training time {train_time:.0f}s")
    print(f"torch: train acc {tr_acc:.4f}, test acc {te_acc:.4f}")
    print(f"numpy reference forward: test acc {np_acc:.4f} ({y_te.size} images)")
    print(f"max |logit(numpy) - logit(torch)| = {max_diff:.2e}")
    if max_diff > 1e-3:
        raise SystemExit("numpy reference forward disagrees with torch: layout mismatch?")
    for name in (WEIGHTS_FILE, TEST_FILE):
        print(f"wrote {args.out / name} ({(args.out / name).stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
