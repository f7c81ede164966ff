"""The KV cache resident in NPU DRAM across decode runs (docs/generation.md): every form addresses
each layer's K and V region at the same DRAM place, the prefill writes rows [0, P), each decode
step SCATTERs its row at the run-time slot, and the interpreter keeps the regions between the
programs. Oracles: the host-carried forms (the cache passed in and the new rows returned, the
path before), the reference executor, and an independent numpy view of what the regions hold."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
from frontdoor_util import REDUCED, randomize_weights

from backend.errors import SimError
from backend.interpreter import ResidentDram
from compiler.errors import WispError
from compiler.generation.forms import BUCKET, LanguageModel
from compiler.generation.session import Generator
from compiler.models import build

SHAPE = {**REDUCED["gpt2"], "vocab": 96}


def _lm() -> LanguageModel:
    return LanguageModel.of(randomize_weights(build("gpt2", seed=0, **SHAPE), seed=3))


def _ids(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 96, size=n).astype(np.int32)


@pytest.mark.parametrize("pipeline", ["", "kv-prune{keep=20 recent=4}"])
def test_resident_interpreter_equals_host_carried(pipeline: str) -> None:
    """Same logits (bit for bit) and tokens as the host-carried forms, across a bucket boundary;
    with kv-prune the same survivors (the keep-k on the NPU with slot reuse against the host's
    keep-k that compacts the rows it carries: attention does not depend on the key order)."""
    lm = _lm()
    ids = _ids(BUCKET + 5, 11)
    prompt = BUCKET - 2
    res = Generator(lm, pipeline=pipeline, target="spatten")
    old = Generator(lm, pipeline=pipeline, target="spatten", in_place=False)
    got, steps = res.force(ids, prompt)
    want, _ = old.force(ids, prompt)
    assert res.in_place and not old.in_place
    assert np.array_equal(got, want)
    assert [s.form for s in steps][-1] == (f"decode{2 * BUCKET}" if not pipeline else "decode32")
    if pipeline:
        assert all(np.array_equal(a, b) for a, b in zip(res.survivors, old.survivors, strict=True))
        assert len(res.survivors[-1]) == 20


def test_resident_reference_equals_host_carried_reference() -> None:
    lm = _lm()
    ids = _ids(BUCKET + 4, 12)
    got, _ = Generator(lm, target=None).force(ids, BUCKET - 1)
    want, _ = Generator(lm, target=None, in_place=False).force(ids, BUCKET - 1)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_regions_hold_the_cache_rows_at_fixed_addresses() -> None:
    """After prefill + decodes the interpreter's regions hold, row for row, the K/V rows the
    reference computes (fp16), the rows past the context's length untouched (zero); every form
    places each region at the same address, outside its inputs."""
    lm = _lm()
    ids = _ids(BUCKET + 3, 13)
    gen = Generator(lm, target="spatten")
    gen.force(ids, BUCKET - 1)
    ref = Generator(lm, target=None)
    ref.force(ids, BUCKET - 1)
    assert gen.dram is not None
    n = ids.size
    for name in lm.kv_names:
        rows = gen.dram.rows(name)
        assert rows.shape == (lm.context, SHAPE["dim"]) and rows.dtype == np.float16
        np.testing.assert_allclose(rows[:n], ref.cache[name][:n], rtol=2e-2, atol=2e-2)
        assert not rows[n:].any()
    places = {
        key: {s.name: s.addr for s in c.compiled.program.symbols.values() if s.kind == "resident"}
        for key, c in gen._forms.items()
    }
    assert len({tuple(sorted(p.items())) for p in places.values()}) == 1, places
    assert set(next(iter(places.values()))) == set(lm.kv_names)
    for c in gen._forms.values():
        assert not set(c.compiled.input_names) & set(lm.kv_names)  # the host never writes them


def _decode_inputs(slots: int, slot: int) -> dict[str, np.ndarray]:
    mask = np.zeros(slots + 1, np.int32)
    mask[: min(slot + 1, slots + 1)] = 1
    return {
        "ids": np.array([3], np.int32),
        "pos": np.array([slot], np.int32),
        "mask": mask,
        "slot": np.array([slot], np.int32),
    }


def test_decode_appends_at_the_run_time_slot() -> None:
    """One decode program, two slots: only row `slot` of each region changes, to the row the
    host-carried program returns for the same step."""
    lm = _lm()
    gen = Generator(lm, target="spatten")
    old = Generator(lm, target="spatten", in_place=False)
    c, o = gen.decode_form(BUCKET), old.decode_form(BUCKET)
    kv = ResidentDram()
    gen.prefill_form(3).run(
        {"ids": _ids(3, 14), "slots": np.arange(3, dtype=np.int32)}, resident=kv
    )
    before = {n: kv.rows(n) for n in lm.kv_names}
    c.run(_decode_inputs(BUCKET, 3), resident=kv)
    mask = np.zeros(BUCKET + 1, np.int32)
    mask[:3] = 1
    mask[BUCKET] = 1
    host = {
        "ids": np.array([3], np.int32),
        "pos": np.array([3], np.int32),
        "mask": mask,
        **{
            n: np.pad(before[n][:3], ((0, BUCKET - 3), (0, 0))).astype(np.float32)
            for n in lm.kv_names
        },
    }
    rows = o.run(host).outputs
    for i, n in enumerate(lm.kv_names):
        after = kv.rows(n)
        assert np.array_equal(np.delete(after, 3, axis=0), np.delete(before[n], 3, axis=0))
        assert np.array_equal(after[3], rows[f"out{i + 1}"][0].astype(np.float16))


@pytest.mark.parametrize("slot", [BUCKET + 1, 200])
def test_a_slot_outside_the_program_is_one_clear_error(slot: int) -> None:
    lm = _lm()
    gen = Generator(lm, target="spatten")
    c = gen.decode_form(BUCKET)
    with pytest.raises(SimError) as e:
        c.run(_decode_inputs(BUCKET, slot), resident=ResidentDram())
    assert f"scatter index {slot} is outside the table's rows [0, {BUCKET + 1})" in str(e.value)
    assert "instruction " in str(e.value)
    inputs = _decode_inputs(BUCKET, slot)
    inputs.update({n: np.zeros((BUCKET + 1, SHAPE["dim"]), np.float32) for n in lm.kv_names})
    with pytest.raises(
        WispError,
        match=rf"nn.scatter: index {slot} at position \[0\] is outside \[0, {BUCKET + 1}\)",
    ):
        c.reference(inputs)


def test_fast_path_equals_event_loop_on_a_resident_decode() -> None:
    """SCATTER is data-dependent: the cached fast schedule and the event loop give the same
    regions, outputs and report."""
    from backend.interpreter import fast

    lm = _lm()
    gen = Generator(lm, target="spatten")
    pre, dec = gen.prefill_form(4), gen.decode_form(BUCKET)
    runs = []
    for slow in (False, True):
        kv = ResidentDram()
        pre.run({"ids": _ids(4, 15), "slots": np.arange(4, dtype=np.int32)}, resident=kv)
        with fast.disabled() if slow else contextlib.nullcontext():
            r = dec.run(_decode_inputs(BUCKET, 4), resident=kv)
        runs.append((r, {n: kv.rows(n) for n in lm.kv_names}))
    (a, ka), (b, kb) = runs
    assert np.array_equal(a.outputs["out0"], b.outputs["out0"])
    assert all(np.array_equal(ka[n], kb[n]) for n in lm.kv_names)
    assert (a.report.cycles, a.report.dram_read, a.report.dram_write) == (
        b.report.cycles,
        b.report.dram_read,
        b.report.dram_write,
    )
