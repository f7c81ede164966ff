"""progressive-quant's K planes resident in NPU DRAM (docs/generation.md): every form addresses each
layer's MSB and LSB plane region (head-major packed int4, `context` rows per head) at the same
place, the host writes the prompt's planes once after the prefill, each decode step SCATTERs its
new key's planes at the run-time slot of every head. Oracles: the host-carried progressive forms
(the int8 cache kept by the host, its planes handed to every run), and an independent numpy
packing of the int8 keys into the regions' bytes."""

from __future__ import annotations

import numpy as np
import pytest
from frontdoor_util import REDUCED, randomize_weights

from compiler.generation.forms import BUCKET, LanguageModel
from compiler.generation.session import Generator
from compiler.models import build

SHAPE = {**REDUCED["gpt2"], "vocab": 96}
PQ = "progressive-quant{threshold=0.1 block=1}"


def _lm() -> LanguageModel:
    return LanguageModel.of(randomize_weights(build("gpt2", seed=0, **SHAPE), seed=3))


def _ids(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 96, size=n).astype(np.int32)


def _packed(kq: np.ndarray, heads: int, context: int) -> tuple[np.ndarray, np.ndarray]:
    """Independent restatement of the regions' bytes: int8 K [n, H·d] → (msb, lsb) uint8
    [H·context, d/2], head h's row r at region row h·context + r, two nibbles per byte (the even
    feature in the low nibble), msb = k >> 4 (arithmetic), lsb = k mod 16, rows past n zero."""
    n, hd = kq.shape
    d = hd // heads
    out = []
    for nib in (lambda x: (x.astype(np.int16) >> 4) & 15, lambda x: x.astype(np.int16) & 15):
        region = np.zeros((heads * context, d // 2), np.uint8)
        for h in range(heads):
            v = nib(kq[:, h * d : (h + 1) * d])
            region[h * context : h * context + n] = v[:, 0::2] | (v[:, 1::2] << 4)
        out.append(region)
    return out[0], out[1]


def _pair(lm: LanguageModel) -> tuple[Generator, Generator]:
    res = Generator(lm, pipeline=PQ, target="spatten")
    old = Generator(lm, pipeline=PQ, target="spatten", in_place=False)
    assert res.resident_planes and not old.in_place
    return res, old


def test_resident_planes_equal_host_carried_planes() -> None:
    """Same logits (bit for bit), tokens and refetch decisions (every predicated-off instruction
    is a refetch not taken; the int8 MACs count the recomputes) as the host-carried progressive
    forms, step by step across a bucket boundary; the plane regions then hold the host-carried
    int8 cache, packed (independent numpy), at the same addresses in every form, and no cache
    is a program input."""
    lm = _lm()
    ids = _ids(BUCKET + 5, 11)
    prompt = BUCKET - 2
    res, old = _pair(lm)
    a, _ = res.prefill(ids[:prompt])
    b, _ = old.prefill(ids[:prompt])
    assert np.array_equal(a, b)
    skipped, keys = [], []
    for t in ids[prompt:]:
        la, ra, ka = res.decode(int(t))
        lb, rb, kb = old.decode(int(t))
        assert ka == kb and np.array_equal(la, lb)
        assert int(la.argmax()) == int(lb.argmax())
        assert ra.skipped == rb.skipped and ra.macs_issued == rb.macs_issued
        skipped.append(ra.skipped)
        keys.append(ka)
    assert keys[-1] == f"decode{2 * BUCKET}" and keys[0] == f"decode{BUCKET}"
    assert len(set(skipped)) > 1  # refetch decisions vary over these steps
    heads, context = lm.config.heads, lm.context
    assert res.dram is not None
    for layer in range(lm.config.layers):
        msb, lsb = _packed(old.kq[f"k_cache{layer}"][: res.length], heads, context)
        assert np.array_equal(res.dram.rows(f"k_msb_cache{layer}").view(np.uint8), msb)
        assert np.array_equal(res.dram.rows(f"k_lsb_cache{layer}").view(np.uint8), lsb)
    forms = [f"prefill{prompt}", *sorted(set(keys))]
    spans = [
        {
            s.name: s.addr
            for s in res._forms[f].compiled.program.symbols.values()
            if s.kind == "resident"
        }
        for f in forms
    ]
    for sp in spans[1:]:
        assert sp["k_msb_cache0"] == spans[-1]["k_msb_cache0"]
        assert sp["k_lsb_cache1"] == spans[-1]["k_lsb_cache1"]
        assert sp["v_cache1"] == spans[0]["v_cache1"]
    for f in forms:
        inputs = [
            s.name for s in res._forms[f].compiled.program.symbols.values() if s.kind == "input"
        ]
        assert not [x for x in inputs if "cache" in x], (f, inputs)


def test_one_decode_run_writes_its_planes_at_the_slot_only() -> None:
    """A decode step changes only row `slot` of every head in each plane region, to the packed
    planes of the int8 key row the host-carried program returns for the same step."""
    lm = _lm()
    res, old = _pair(lm)
    prompt = _ids(7, 5)
    res.prefill(prompt)
    old.prefill(prompt)
    assert res.dram is not None
    heads, context = lm.config.heads, lm.context
    res.decode(3)
    old.decode(3)
    before = {}  # the prompt's planes, as the host carries them (quantized on its first decode)
    for i in range(lm.config.layers):
        msb, lsb = _packed(old.kq[f"k_cache{i}"][:7], heads, context)
        before[f"k_msb_cache{i}"], before[f"k_lsb_cache{i}"] = msb, lsb
    slot_rows = [h * context + 7 for h in range(heads)]
    for layer in range(lm.config.layers):
        want = _packed(old.kq[f"k_cache{layer}"][7:8], heads, context)
        for plane, w in zip(("msb", "lsb"), want, strict=True):
            name = f"k_{plane}_cache{layer}"
            now = res.dram.rows(name).view(np.uint8)
            changed = np.flatnonzero((now != before[name]).any(axis=1))
            assert set(changed.tolist()) <= set(slot_rows)
            assert np.array_equal(now[slot_rows], w[[h * context for h in range(heads)]])


@pytest.mark.parametrize(
    ("keep", "recent", "prompt", "steps"), [(20, 4, BUCKET - 2, 7), (12, 3, 6, 14)]
)
def test_kv_prune_keep_k_on_the_npu_with_resident_planes(
    keep: int, recent: int, prompt: int, steps: int
) -> None:
    """progressive-quant + kv-prune on the resident forms: the keep-k runs on the NPU with slot
    reuse (the new key's planes SCATTERed into the evicted slot) and keeps, at every step, the
    tokens the host-carried forms keep with the host's keep-k and compaction (bit-identical
    logits) and the tokens the reference executor keeps (running the same resident forms, the
    keep-k ops included); a prompt longer than keep (pruned once by the host) and a cache that
    fills during decoding."""
    lm = _lm()
    ids = _ids(prompt + steps, 13)
    pipeline = f"{PQ},kv-prune{{keep={keep} recent={recent}}}"
    res = Generator(lm, pipeline=pipeline, target="spatten")
    old = Generator(lm, pipeline=pipeline, target="spatten", in_place=False)
    ref = Generator(lm, pipeline=pipeline, target=None)
    assert res.resident_planes and res.keep_on_npu and not old.in_place and ref.resident_planes
    got, _ = res.force(ids, prompt)
    want, _ = old.force(ids, prompt)
    ref.force(ids, prompt)
    assert np.array_equal(got, want)
    assert len(res.survivors) == len(old.survivors) == len(ref.survivors) == steps + 1
    for a, b, c in zip(res.survivors, old.survivors, ref.survivors, strict=True):
        assert np.array_equal(a, b) and np.array_equal(a, c)
    assert len(res.survivors[-1]) == keep
    evicted = [int(s) for s in sorted(set(range(prompt + steps)) - set(res.survivors[-1]))]
    assert evicted  # tokens did leave, so slots were reused
    # the plane regions hold the survivors' keys: each occupied slot's int8 row, packed
    heads, context = lm.config.heads, lm.context
    assert res.dram is not None
    msb = res.dram.rows("k_msb_cache0").view(np.uint8)
    pos_of_slot = res.positions[: keep + 1]
    occupied = [s for s in range(keep + 1) if s != res.free]
    assert sorted(int(pos_of_slot[s]) for s in occupied) == res.survivors[-1].tolist()
    kq_host = {int(p): old.kq["k_cache0"][i] for i, p in enumerate(old.positions[: old.length])}
    for s in occupied:
        want_row = _packed(kq_host[int(pos_of_slot[s])][None], heads, context)[0]
        assert np.array_equal(
            msb[[h * context + s for h in range(heads)]],
            want_row[[h * context for h in range(heads)]],
        )


def test_positions_row_is_resident_and_written_by_the_program() -> None:
    """kv-prune's `positions` row lives in a resident int32 region (not a program input): the
    host writes the prompt's positions once, each decode step SCATTERs `pos` at its slot; after
    steps with slot reuse the region holds the position of every slot's token, as the host
    records them."""
    lm = _lm()
    gen = Generator(lm, pipeline="kv-prune{keep=10 recent=2}", target="spatten")
    gen.force(_ids(24, 7), 6)
    assert gen.dram is not None and gen.keep_on_npu
    held = gen.dram.rows("positions")[:, 0]
    assert np.array_equal(held[:11], gen.positions[:11])
    assert (
        sorted(held[[s for s in range(11) if s != gen.free]].tolist()) == gen.survivors[-1].tolist()
    )
    assert 23 in held.tolist()  # the last token's position, written by the last decode program
    c = gen.decode_form(BUCKET)
    kinds = {s.name: s.kind for s in c.compiled.program.symbols.values()}
    assert kinds["positions"] == "resident"


def test_reference_runs_the_resident_plane_forms() -> None:
    """On the reference executor the resident progressive forms (the host carrying the int8 K
    cache as their plane inputs) give the host-carried forms' logits and survivors."""
    lm = _lm()
    ids = _ids(BUCKET + 4, 12)
    pipeline = f"{PQ},kv-prune{{keep=20 recent=4}}"
    ref = Generator(lm, pipeline=pipeline, target=None)
    old = Generator(lm, pipeline=pipeline, target=None, in_place=False)
    got, _ = ref.force(ids, BUCKET - 1)
    want, _ = old.force(ids, BUCKET - 1)
    assert ref.resident_planes and not old.in_place
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    for a, b in zip(ref.survivors, old.survivors, strict=True):
        assert np.array_equal(a, b)
