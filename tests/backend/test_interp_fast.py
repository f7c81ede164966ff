"""The functional fast path (backend/interpreter/fast.py: cached schedule, no event loop, constant
operand conversions kept across runs) gives the event loop's outputs and report bit for bit on
zoo programs: dense (spatten, fact), quantized, token-pruned (data-dependent GATHERs),
head-pruned (CMP: not eligible, must fall back), eager-predict (PREDICT/TOPK masks, one-hot
tiles) and FACT's mixed-precision FFN (masked MATMUL rows)."""

from __future__ import annotations

import numpy as np
import pytest

from backend.interpreter import fast, run
from compiler.api import compile_model

VIT = {"layers": 2, "image": 16, "patch": 4, "dim": 32, "heads": 2, "mlp_dim": 64, "classes": 5}
CASES = [
    ("deit-tiny", "", "spatten", VIT),
    ("deit-tiny", "", "fact", VIT),
    ("deit-tiny", "quantize", "spatten", VIT),
    ("deit-tiny", "token-prune{keep=0.5}", "spatten", VIT),
    ("deit-tiny", "head-prune{keep=1}", "spatten", VIT),
    ("digits-vit", "eager-predict", "fact", {}),
    ("deit-tiny", "eager-predict{topk=1}", "spatten", VIT),  # one-hot tiles skipped
    (  # per-row precision masks on MATMUL (FACT mixed-precision FFN)
        "deit-tiny",
        "eager-predict{topk=4},quantize{weights=int8},mixed-ffn{int8=0.25}",
        "fact",
        VIT,
    ),
    ("gpt2", "", "spatten", {"layers": 1, "seq": 8, "dim": 32, "heads": 2, "vocab": 50}),
    ("gpt2", "", "fact", {"layers": 1, "seq": 8, "dim": 32, "heads": 2, "vocab": 50}),
    ("bert-base", "", "spatten", {"layers": 1, "seq": 16, "dim": 64, "heads": 2, "vocab": 100}),
    ("digits-vit", "", "spatten", {}),
    ("digits-vit", "", "fact", {}),
    ("digits-vit", "structured-prune{ratio=0.3}", "spatten", {}),
    ("digits-vit", "sparsify-2-4", "spatten", {}),  # sp24h MATMUL
    ("digits-vit", "sparsify-2-4,quantize", "fact", {}),  # sp24 int8
    ("digits-vit", "quantize", "spatten", {}),  # int8 MATMUL, REQUANT
    ("digits-vit", "quantize{weights=int4}", "fact", {}),  # int4w
    ("digits-vit", "token-prune{keep=0.5}", "spatten", {}),
]


def _inputs(cm, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {}
    for name, (shape, dtype) in cm.model.input_specs().items():
        if np.dtype(dtype).kind == "f":
            out[name] = rng.standard_normal(shape).astype(dtype)
        else:
            out[name] = rng.integers(0, 8, shape).astype(dtype)
    return out


def _generic(monkeypatch: pytest.MonkeyPatch, prog, named, cfg):
    with fast.disabled():
        return run(prog, named, cfg)


@pytest.mark.parametrize(("model", "pipeline", "target", "opts"), CASES)
def test_fast_path_equals_event_loop(model, pipeline, target, opts, monkeypatch) -> None:
    cm = compile_model(model, pipeline, target, **opts)
    prog = cm.compiled.program
    has_cmp = any(i.cls.name == "CMP" for i in prog.instrs)
    masked = any(i.cls.name == "MATMUL" and i.args.get("mask") for i in prog.instrs)
    for seed in range(4):  # run 1 builds the schedule, run 2 its closures, later runs reuse them
        x = _inputs(cm, seed)
        named = dict(zip(cm.compiled.input_names, x.values(), strict=True))
        got = run(prog, named, cm.config)
        want = _generic(monkeypatch, prog, named, cm.config)
        assert got.outputs.keys() == want.outputs.keys()
        for k in want.outputs:
            a, b = got.outputs[k], want.outputs[k]
            assert a.dtype == b.dtype and a.shape == b.shape
            assert a.tobytes() == b.tobytes(), k
        assert got.report.to_json() == want.report.to_json()
        assert got.report.cycles == want.report.cycles
        assert got.report.dram_read + got.report.dram_write > 0
        assert got.report.energy_pj == want.report.energy_pj
        got.report.queues["load"].busy += 1  # a returned report is the caller's own copy
        got.report.per_tag.clear()
    cached = getattr(prog, "_wisp_interp_schedule", None)
    assert cached is not None and (cached[1] is not None) == (not (has_cmp or masked))
    if cached[1] is not None:  # runs 2.. went through the prepared closures
        assert cached[1].prepared is not None
    if pipeline.startswith("head-prune"):
        assert has_cmp
    if "mixed-ffn" in pipeline:
        assert masked  # data-dependent MATMUL cost: the event loop, never the cached schedule  # the case that exercises the fallback


def test_kept_machine_is_reset_between_runs(monkeypatch) -> None:
    """Runs reusing the kept machine see what a new machine holds: a run without inputs reads
    the program image's input bytes (not the previous run's inputs) and every STOREd byte is
    back to the image."""
    cm = compile_model("deit-tiny", "", "spatten", **VIT)
    prog = cm.compiled.program
    for seed in (0, 1):
        named = dict(zip(cm.compiled.input_names, _inputs(cm, seed).values(), strict=True))
        run(prog, named, cm.config)
    got = run(prog, None, cm.config)
    want = _generic(monkeypatch, prog, None, cm.config)
    for k in want.outputs:
        assert got.outputs[k].tobytes() == want.outputs[k].tobytes()
    assert getattr(prog, "_wisp_interp_pool", None) is not None
    import copy
    import pickle

    named = dict(zip(cm.compiled.input_names, _inputs(cm, 2).values(), strict=True))
    want = _generic(monkeypatch, prog, named, cm.config)
    for other in (copy.deepcopy(prog), pickle.loads(pickle.dumps(prog))):  # caches stay behind
        for _ in range(3):
            got = run(other, named, cm.config)
            for k in want.outputs:
                assert got.outputs[k].tobytes() == want.outputs[k].tobytes()


def test_changed_data_image_drops_kept_conversions(monkeypatch) -> None:
    """Replacing the program's DRAM image (weights) must not reuse conversions of the old one."""
    from dataclasses import replace

    cm = compile_model("deit-tiny", "", "spatten", **VIT)
    prog = cm.compiled.program
    named = dict(zip(cm.compiled.input_names, _inputs(cm, 0).values(), strict=True))
    run(prog, named, cm.config)
    data = bytearray(prog.data)
    half = np.frombuffer(data, np.uint8)
    rng = np.random.default_rng(1)
    half[: len(half) // 2] = rng.integers(0, 60, len(half) // 2, dtype=np.uint8)  # finite fp16
    prog.data = bytes(data)
    got = run(prog, named, cm.config)
    want = _generic(monkeypatch, replace(prog), named, cm.config)
    for k in want.outputs:
        assert got.outputs[k].tobytes() == want.outputs[k].tobytes()


def test_handler_with_data_dependent_effect_falls_back(monkeypatch) -> None:
    """A handler that reports masked rows or writes a predicate (as an instruction class added
    later might) makes the run fall back to the event loop, with the event loop's results."""
    from dataclasses import replace

    from backend.interpreter import plan as plan_mod

    cm = compile_model("deit-tiny", "", "spatten", **VIT)
    named = dict(zip(cm.compiled.input_names, _inputs(cm, 0).values(), strict=True))
    want = _generic(monkeypatch, replace(cm.compiled.program), named, cm.config)
    vec = plan_mod.HANDLERS["VEC"]

    def vec_setting_a_predicate(m, i, o):
        m.set_pred(15, True)  # p15 guards nothing here: results are unchanged
        return vec(m, i, o)

    monkeypatch.setitem(plan_mod.HANDLERS, "VEC", vec_setting_a_predicate)
    prog = replace(cm.compiled.program)
    got = run(prog, named, cm.config)
    assert prog._wisp_interp_schedule[1] is None  # type: ignore[attr-defined]
    assert got.report.to_json() == want.report.to_json()
    for k in want.outputs:
        assert got.outputs[k].tobytes() == want.outputs[k].tobytes()
