"""Gradients from compiler.autodiff against central finite differences (float64)."""

from __future__ import annotations

import numpy as np
import pytest

from compiler import reference
from compiler.autodiff import cross_entropy_grad, grad
from compiler.models import Linear, Module, build, trace
from compiler.models import functional as F


def _loss(model, inputs, d_out):
    out = reference.run(model, inputs, dtype=np.float64)
    return sum(float((out[k] * d).sum()) for k, d in d_out.items())


def _check(model, inputs, n_probe=6, seed=0):
    rng = np.random.default_rng(seed)
    out = reference.run(model, inputs, dtype=np.float64)
    d_out = {k: rng.standard_normal(v.shape) for k, v in out.items()}
    _, grads = grad(model, inputs, d_out)
    worst = 0.0
    for name in sorted(model.weights):
        w = model.weights[name]
        for _ in range(n_probe):
            idx = tuple(int(rng.integers(0, s)) for s in w.shape)
            eps = 1e-6
            orig = w[idx]
            plus, minus = w.copy(), w.copy()
            plus[idx], minus[idx] = orig + eps, orig - eps
            model.weights[name] = plus
            lp = _loss(model, inputs, d_out)
            model.weights[name] = minus
            lm = _loss(model, inputs, d_out)
            model.weights[name] = w
            numeric = (lp - lm) / (2 * eps)
            analytic = grads[name][idx]
            # central differences: truncation O(eps^2) plus roundoff ~ |loss| * 1e-16 / eps
            tol = 1e-5 * max(abs(numeric), abs(analytic)) + 1e-6
            worst = max(worst, abs(numeric - analytic) / max(abs(analytic), 1e-12))
            assert abs(numeric - analytic) <= tol, (
                f"{name}{idx}: analytic {analytic} vs numeric {numeric}"
            )
    print(f"max relative gradient error: {worst:.2e}")


def _f64(model):
    for k in list(model.weights):
        model.weights[k] = (
            model.weights[k].astype(np.float64) * 20
        )  # larger weights: nontrivial curvature
    return model


@pytest.mark.parametrize(
    "name,options,make_input",
    [
        (
            "deit-tiny",
            dict(layers=1, image=16, patch=4, dim=32, heads=2, mlp_dim=48, classes=5),
            lambda r: {"image": r.standard_normal((3, 16, 16))},
        ),
        (
            "bert-tiny",
            dict(layers=1, dim=32, heads=2, mlp_dim=48, seq=8, vocab=40),
            lambda r: {"ids": r.integers(0, 40, 8).astype(np.int32)},
        ),
        (
            "gpt2",
            dict(layers=1, dim=32, heads=2, mlp_dim=48, seq=8, vocab=40),
            lambda r: {"ids": r.integers(0, 40, 8).astype(np.int32)},
        ),
    ],
)
def test_zoo_gradients_match_finite_differences(name, options, make_input):
    model = _f64(build(name, **options))
    _check(model, make_input(np.random.default_rng(1)))


class _Ops(Module):
    """Exercises matmul (both forms), reshape/transpose, div, mul, sub, softmax, relu, concat, slice."""

    def __init__(self):
        self.a = Linear(8, 8)
        self.b = Linear(8, 8)

    def forward(self, x):
        h = self.a(x)
        t = h.reshape(4, 2, 4).permute(1, 0, 2)
        s = F.softmax(F.matmul(t, t, transpose_b=True))
        u = F.matmul(s, t).permute(1, 0, 2).reshape(4, 8)
        v = F.relu(self.b(u)) * h - x / (F.tanh(h) * F.tanh(h) + h * h + x * x)
        return F.concat([v[0:2], F.gelu(v, "tanh")[1:4]], axis=0)


def test_generic_op_gradients_match_finite_differences():
    model = _f64(trace(_Ops(), {"x": ((4, 8), np.float32)}, seed=3))
    _check(model, {"x": np.random.default_rng(2).standard_normal((4, 8))}, n_probe=10)


def test_cross_entropy_gradient():
    rng = np.random.default_rng(0)
    logits, labels = rng.standard_normal((5, 7)), rng.integers(0, 7, 5)
    loss, d = cross_entropy_grad(logits, labels)
    eps = 1e-6
    for i, j in [(0, 0), (2, 3), (4, 6)]:
        p, m = logits.copy(), logits.copy()
        p[i, j] += eps
        m[i, j] -= eps
        numeric = (cross_entropy_grad(p, labels)[0] - cross_entropy_grad(m, labels)[0]) / (2 * eps)
        assert abs(numeric - d[i, j]) < 1e-7
    assert loss > 0
