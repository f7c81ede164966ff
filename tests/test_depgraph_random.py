"""depgraph on random programs (linears, elementwise ops, residual adds, concat, slice, split/transpose/
merge reshapes, layer norm, softmax, matmul with weights): for every prunable group, permuting its slots
consistently across its members leaves the reference output unchanged, and so does zeroing-and-removing
nothing outside it (a slice of the group's weights is all that moves)."""

from __future__ import annotations

import numpy as np
import pytest

from compiler.models import Module, trace
from compiler.models import functional as F
from compiler.models.builder import Parameter, Tensor, normal
from passes.depgraph import analyze

try:  # tests/ as a package (python -m pytest, or tests/__init__.py)
    from tests.test_depgraph_util import inputs_for, output, permute, randomize
except ModuleNotFoundError:  # plain pytest puts tests/ itself on sys.path
    from test_depgraph_util import inputs_for, output, permute, randomize  # type: ignore[no-redef]

S = 3


class RandomNet(Module):
    """A random straight-line program over [S, width] activations, drawn from a seed."""

    def __init__(self, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.steps: list[tuple[str, tuple[int, ...]]] = []
        widths = [6]
        n = 0

        def param(shape: tuple[int, ...]) -> str:
            nonlocal n
            name = f"p{n}"
            n += 1
            setattr(self, name, Parameter(shape, normal(0.5)))
            return name

        for _ in range(int(rng.integers(4, 9))):
            i = int(rng.integers(len(widths)))
            w = widths[i]
            kind = str(
                rng.choice(
                    [
                        "linear",
                        "unary",
                        "add",
                        "concat",
                        "twice",
                        "slice",
                        "regroup",
                        "norm",
                        "softmax",
                        "matmul",
                    ]
                )
            )
            if kind == "linear":
                out = int(rng.integers(3, 9))
                self.steps.append(("linear", (i, int(param((out, w))[1:]), int(param((out,))[1:]))))
                widths.append(out)
            elif kind == "unary":
                self.steps.append(("unary", (i, int(rng.integers(3)))))
                widths.append(w)
            elif kind == "add":
                same = [j for j, x in enumerate(widths) if x == w]
                self.steps.append(("add", (i, int(rng.choice(same)))))
                widths.append(w)
            elif kind in ("concat", "twice"):
                j = i if kind == "twice" else int(rng.integers(len(widths)))
                self.steps.append(("concat", (i, j)))
                widths.append(w + widths[j])
            elif kind == "slice" and w > 2:
                a = int(rng.integers(0, w - 1))
                b = int(rng.integers(a + 1, w + 1))
                self.steps.append(("slice", (i, a, b)))
                widths.append(b - a)
            elif kind == "regroup" and w % 2 == 0 and w > 2:
                self.steps.append(("regroup", (i, 2)))
                widths.append(w)
            elif kind == "norm":
                self.steps.append(("norm", (i, int(param((w,))[1:]), int(param((w,))[1:]))))
                widths.append(w)
            elif kind == "softmax":
                self.steps.append(("softmax", (i,)))
                widths.append(w)
            elif kind == "matmul":
                out = int(rng.integers(3, 7))
                self.steps.append(("matmul", (i, int(param((w, out))[1:]))))
                widths.append(out)
        self.head = Parameter((3, sum(widths[-2:])), normal(0.5))

    def forward(self, x: Tensor) -> Tensor:
        vals = [x]

        def p(k: int) -> Parameter:
            return getattr(self, f"p{k}")

        for kind, a in self.steps:
            t = vals[a[0]]
            if kind == "linear":
                y = F.linear(t, p(a[1]), p(a[2]))
            elif kind == "unary":
                y = (F.gelu, F.tanh, F.relu)[a[1]](t)
            elif kind == "add":
                y = t + vals[a[1]]
            elif kind == "concat":
                y = F.concat([t, vals[a[1]]], axis=1)
            elif kind == "slice":
                y = t[:, a[1] : a[2]]
            elif kind == "regroup":
                w = t.shape[1]
                y = t.reshape(S, a[1], w // a[1]).permute(0, 2, 1).reshape(S, w)
            elif kind == "norm":
                y = F.layer_norm(t, p(a[1]), p(a[2]), 1e-5)
            elif kind == "softmax":
                y = F.softmax(t)
            else:
                y = t @ p(a[1])
            vals.append(y)
        last = vals[-2:] if len(vals) > 1 else [vals[-1], vals[-1]]
        return F.linear(F.concat(last, axis=1), self.head)


@pytest.mark.parametrize("seed", range(40))
def test_permuting_groups_of_random_programs(seed: int) -> None:
    model = randomize(
        trace(RandomNet(seed), {"x": ((S, 6), np.float32)}, name=f"random{seed}"), seed
    )
    dg = analyze(model.module)
    feeds = inputs_for(model)
    want = output(model, feeds)
    rng = np.random.default_rng(seed)
    for g in dg.prunable():
        if g.size < 2:
            continue
        perm = rng.permutation(g.size)
        m = model.clone()
        m.weights = permute(model.weights, g.members, perm)
        np.testing.assert_allclose(output(m, feeds), want, rtol=1e-9, atol=1e-9, err_msg=g.id)
