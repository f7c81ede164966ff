"""A generation session: the prompt's prefill, then one decode step per token, with the KV cache
kept between steps.

    gen = Generator(LanguageModel.of(load_model("char-gpt")), target="spatten")
    for step in gen.generate("def ", 16):
        print(step.text, step.cycles, step.dram_bytes)

Programs are compiled once per form (the prompt's length; each decode bucket) and reused for every
step; with `target=None` every step runs on the reference executor (no cost figures).

The KV cache is resident in NPU DRAM (`resident` forms, docs/generation.md): the prefill writes
rows [0, P) of each layer's K and V region, each decode step appends its row at slot `length`,
and the interpreter keeps the regions between the programs (`ResidentDram`); the host writes only
ids, pos, mask and the slot. On the reference executor (and for timing-only runs) the host
carries the same cache: it passes it in and takes the updated one back. Under progressive-quant
the K planes are resident too: the host writes the prompt's planes once after the prefill
(`_put_prompt_planes`), each decode step SCATTERs its row's planes; on the reference (and
timing-only runs) the host carries the int8 K cache, passes its planes in and takes the new int8
row back.

kv-prune on the resident forms: the decode program accumulates the carried scores (resident,
`kv_scores`) and picks the slot to evict (keep-k on the NPU, slot reuse); the host feeds `slot`
(the next unused one, or the one the last step evicted) and `mask`; the program writes `pos` into
the resident `positions` row at the slot (the prompt's positions: written once by the host). A
prompt longer than keep and the host-carried forms use the host's keep-k (`_prune`).
"""

from __future__ import annotations

import contextlib
import io
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from backend.interpreter.numerics import pack_int4
from backend.interpreter.resident import ResidentDram
from backend.topk import topk_indices
from compiler.api import CompiledModel, compile_model
from compiler.errors import WispError
from compiler.generation.forms import POSITIONS, SCORES, LanguageModel
from compiler.model import Model
from compiler.models.char_vocab import decode as decode_ids
from compiler.models.char_vocab import encode
from compiler.pipeline import parse_pipeline
from dialects import nn
from dialects.quant_kv import ProgressiveKvAttentionOp
from passes.kv_prune import KvPrunePass
from passes.progressive_math import head_major_planes
from passes.quant_math import quantize_values


@dataclass
class Step:
    """One produced token and what its program run cost (zeros on the reference executor)."""

    index: int  # 0 = the token predicted by the prefill
    token: int
    text: str
    form: str  # which program ran: prefillN or decodeN
    context: int  # tokens attended to (the cache plus the new token)
    cycles: int = 0
    dram_bytes: int = 0
    dram_by_region: dict[str, int] = field(default_factory=dict)  # weights / inputs / activations
    energy_uj: float = 0.0
    seconds: float = 0.0  # host time of the step (interpreter or reference)


@dataclass
class Sampler:
    """Greedy (temperature None) or softmax(logits / T) sampling from a seeded generator."""

    temperature: float | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.temperature is not None and not self.temperature > 0:
            raise WispError(f"--temperature must be positive, got {self.temperature}")
        self._rng = np.random.default_rng(self.seed)

    def __call__(self, logits: np.ndarray) -> int:
        x = logits.astype(np.float64)
        if self.temperature is None:
            return int(np.argmax(x))
        z = x / self.temperature
        p = np.exp(z - z.max())
        return int(self._rng.choice(p.size, p=p / p.sum()))


class Generator:
    """Runs a language model's prefill and decode forms (after `pipeline`) on `target`."""

    def __init__(
        self,
        lm: LanguageModel,
        *,
        pipeline: str = "",
        target: str | None = "spatten",
        timing_only: bool = False,
        forms: dict[str, CompiledModel] | None = None,
        store_fp16: bool = False,
        in_place: bool | None = None,
    ) -> None:
        self.lm = lm
        self.store_fp16 = store_fp16  # reference runs: values rounded to fp16 between ops
        self.pipeline = pipeline
        self.target = target
        self.timing_only = timing_only
        self._forms: dict[str, CompiledModel] = {} if forms is None else forms  # may be shared
        dim, context = lm.config.dim, lm.context
        self.cache = {n: np.zeros((context, dim), np.float32) for n in lm.kv_names}
        # progressive-quant on decode: the int8 K cache (handed to the program as its two planes)
        self.kq = {n: np.zeros((context, dim), np.int8) for n in lm.kv_names if n[0] == "k"}
        self.k_scales: dict[str, float] | None = None  # per K cache, once a form uses planes
        self.kq_rows = 0  # leading cache rows already in self.kq
        self.length = 0  # tokens (rows) in the cache
        self.attended = 0  # keys the last decode step attended to
        self.pos = 0  # the next token's position (= length unless kv-prune dropped rows)
        self.positions = np.zeros(context, np.int64)  # the position of each cached row
        self.kv = kv_prune_of(pipeline)  # (keep, recent) of a kv-prune pass, if any
        self.scores = np.zeros(context, np.float32)  # kv-prune: accumulated importance per row
        self.survivors: list[np.ndarray] = []  # kv-prune: the cached positions after each step
        self.pass_reports: dict[str, str] = {}  # form → what its passes reported
        self.compile_seconds = 0.0  # host time spent compiling forms
        self.run_seconds = 0.0  # host time of the last program run (reference or interpreter)
        # the cache written in place by the programs (resident forms) unless `in_place=False`
        # (the host-carried forms, for comparison); on the interpreter it stays in its DRAM
        self.in_place = True if in_place is None else in_place
        # progressive-quant on the resident forms: the K planes live in resident regions too
        self.resident_planes = uses_progressive(pipeline) and self.in_place
        self.dram: ResidentDram | None = None  # the interpreter's resident regions (per prompt)
        # kv-prune on the resident forms: the keep-k is the decode program's (slot reuse); the
        # cache has keep + 1 slots, `free` is the slot the next token is written to
        self.keep_on_npu = self.kv is not None and self.in_place
        self.free = 0

    @property
    def clock_mhz(self) -> float | None:
        """The target's clock (MHz), once a program has been compiled for it."""
        config = self._config()
        return None if config is None else float(config.clock_mhz)

    @property
    def target_name(self) -> str | None:
        """The target config's name (not its path), once a program has been compiled for it."""
        config = self._config()
        return None if config is None else str(config.name)

    def _config(self) -> Any:
        for c in self._forms.values():
            if c.config is not None:
                return c.config
        return None

    # ------------------------------------------------------------------ programs

    @property
    def npu_cache(self) -> bool:
        """Whether the cache lives in the interpreter's DRAM (else the host carries it)."""
        return self.in_place and self.target is not None and not self.timing_only

    def prefill_form(self, tokens: int) -> CompiledModel:
        return self.form(
            f"prefill{tokens}",
            lambda: self.lm.prefill(tokens, self.in_place, self.keep_on_npu, self.resident_planes),
        )

    def decode_form(self, slots: int) -> CompiledModel:
        return self.form(
            f"decode{slots}",
            lambda: self.lm.decode(slots, self.in_place, self.keep_on_npu, self.resident_planes),
        )

    def form(self, key: str, build: Callable[[], Model]) -> CompiledModel:
        """The compiled form `key` (compiled on first use)."""
        if key not in self._forms:
            t0 = time.perf_counter()
            reports = io.StringIO()  # pass reports: kept, not interleaved with the text
            try:
                pipeline = (
                    self.pipeline if key.startswith("decode") else prefill_pipeline(self.pipeline)
                )
                with contextlib.redirect_stdout(reports):
                    self._forms[key] = compile_model(build(), pipeline, self.target)
                self.pass_reports[key] = reports.getvalue()
            except WispError as e:
                if key.startswith("decode") and self.pipeline:
                    raise WispError(
                        f"pipeline '{self.pipeline}' cannot apply to the decode step "
                        f"(one query token against a {key.removeprefix('decode')}-slot KV cache): {e}"
                    ) from None
                if key.startswith("prefill") and self.pipeline:
                    raise WispError(
                        f"pipeline '{self.pipeline}' cannot apply to the prefill (the prompt's "
                        f"{key.removeprefix('prefill')} tokens, their K/V rows written to the KV cache): {e}"
                    ) from None
                raise
            finally:
                self.compile_seconds += time.perf_counter() - t0
        return self._forms[key]

    def _run(self, c: CompiledModel, inputs: dict[str, np.ndarray]) -> tuple[list[np.ndarray], Any]:
        t0 = time.perf_counter()
        try:
            return self._run_program(c, inputs)
        finally:
            self.run_seconds = time.perf_counter() - t0

    def _run_program(
        self, c: CompiledModel, inputs: dict[str, np.ndarray]
    ) -> tuple[list[np.ndarray], Any]:
        if self.target is None:
            out, report = c.reference(inputs, store_fp16=self.store_fp16), None
        elif self.timing_only:  # values from the reference, cost from a timing-only run
            out, report = c.reference(inputs), c.run(inputs, timing_only=True).report
        else:
            r = c.run(inputs, resident=self.dram)
            out, report = r.outputs, r.report
        return [out[f"out{i}"] for i in range(len(out))], report

    # ------------------------------------------------------------------ steps

    def prefill(self, ids: np.ndarray) -> tuple[np.ndarray, Any]:
        """Run the prompt; fill the cache; return the logits [P, vocab] and the cost report."""
        n = int(ids.size)
        c = self.prefill_form(n)
        inputs: dict[str, np.ndarray] = {"ids": ids.astype(np.int32)}
        if self.in_place:  # the programs write rows [0, n) of the cache
            inputs["slots"] = np.arange(n, dtype=np.int32)
            self.dram = ResidentDram() if self.npu_cache else None  # a new sequence
            if not self.npu_cache:
                inputs.update({name: self.cache[name][:n] for name in self.lm.kv_names})
        outs, report = self._run(c, inputs)
        if not self.npu_cache:  # the host carries the cache: the rows (or the updated caches)
            for name, kv in zip(self.lm.kv_names, outs[1 : 1 + len(self.lm.kv_names)], strict=True):
                self.cache[name][:n] = kv
        self.length = self.pos = n
        self.kq_rows = 0
        self.positions[:n] = np.arange(n)
        if self.kv is not None:
            self.scores[:n] = outs[-1]
            self._prune()  # a prompt longer than keep: the host prunes it once (compaction)
            self.free = self.length
            if self.dram is not None and self.keep_on_npu:  # the carried scores, for the NPU
                self.dram.put(SCORES, self.scores[:, None])
                self.dram.put(POSITIONS, self.positions[:, None].astype(np.int32))
        if self.resident_planes and self.length < self.lm.context:  # (after any compaction)
            self._put_prompt_planes(self.length)
        return outs[0], report

    def decode(self, token: int) -> tuple[np.ndarray, Any, str]:
        """Append `token` (at position `length`); return its logits [vocab], cost and the form."""
        past = self.length
        if self.pos >= self.lm.context:
            raise WispError(f"{self.lm.name}: the context of {self.lm.context} tokens is full")
        slots = self.lm.slots_for(past)  # past ≤ slots: the new row's slot fits the program
        key = f"decode{slots}"
        c = self.decode_form(slots)
        # the new token's key: at its slot (the next free one, or the one the last step evicted),
        # or appended
        new = (self.free if self.keep_on_npu else past) if self.in_place else slots
        mask = np.zeros(slots + 1, np.int32)
        mask[: past + 1 if self.keep_on_npu else past] = 1  # slot reuse: slots [0, past] occupied
        mask[new] = 1
        inputs = {
            "ids": np.array([token], np.int32),
            "pos": np.array([self.pos], np.int32),
            "mask": mask,
        }
        if self.in_place:
            inputs["slot"] = np.array([new], np.int32)
            if self.keep_on_npu:  # (the program writes pos at the slot of its positions row)
                self.positions[new] = self.pos
            if not self.npu_cache:  # the host carries the cache (and the K planes' int8 rows)
                names = c.model.input_specs()
                inputs.update(
                    {n: self.cache[n][: slots + 1] for n in self.lm.kv_names if n in names}
                )
                for n in self._plane_scales(c):
                    inputs.update(self._planes(n, slots + 1, free=0))
                if self.keep_on_npu:
                    inputs[SCORES] = self.scores[: slots + 1]
                    inputs[POSITIONS] = self.positions[: slots + 1].astype(np.int32)
        else:
            inputs.update(self._cache_inputs(c, slots))
        if self.resident_planes:
            self._plane_scales(c)  # every bucket quantizes K with the prompt's planes' scale
        outs, report = self._run(c, inputs)
        carried = [] if self.npu_cache else outs[1 : 1 + len(self.lm.kv_names)]  # else in DRAM
        for name, row in zip(self.lm.kv_names, carried, strict=False):
            if self.in_place and row.dtype == np.int8:  # resident planes: the new int8 K row
                self.kq[name][new] = row[0]
            elif self.in_place:  # the updated cache, from the reference (or a timing-only run)
                self.cache[name][: slots + 1] = row
            elif row.dtype == np.int8:  # progressive K: the new row, quantized by the program
                self.kq[name][past] = row[0]
            else:
                self.cache[name][past] = row[0]
        self.kq_rows = past + 1 if self.k_scales is not None else 0
        self.attended = past + 1  # keys this step attended to (before any pruning)
        if self.keep_on_npu:  # the program accumulated the scores and chose the evicted slot
            assert self.kv is not None
            self.scores[: slots + 1] = outs[-2]
            self.pos += 1
            if past + 1 > self.kv[0]:  # keep + 1 occupied: the token in slot `free` leaves
                self.free = int(outs[-1][0])
            else:
                self.length = self.free = past + 1
            occupied = np.arange(past + 1) != (self.free if past + 1 > self.kv[0] else -1)
            self.survivors.append(np.sort(self.positions[: past + 1][occupied]))
            return outs[0][0], report, key
        self.positions[past] = self.pos
        self.length, self.pos = past + 1, self.pos + 1
        if self.kv is not None:  # SpAtten across steps: the carried scores plus this step's
            s = outs[-1]
            self.scores[:past] += s[:past]
            self.scores[past] = s[new]  # the new token's key
            self._prune()
        return outs[0][0], report, key

    def _cache_inputs(self, c: CompiledModel, slots: int) -> dict[str, np.ndarray]:
        """The cache inputs of a decode form: float rows, or for a K cache that progressive-quant
        turned into planes (inputs k_msb_cacheN, k_lsb_cacheN) the planes of the int8 cache."""
        names = c.model.input_specs()
        out = {n: self.cache[n][:slots] for n in self.lm.kv_names if n in names}
        scales = self._plane_scales(c)
        for n in scales:
            if self.kq_rows < self.length:  # rows from the prefill: quantized once, here
                rows = self.cache[n][self.kq_rows : self.length]
                self.kq[n][self.kq_rows : self.length] = quantize_values(rows, scales[n], 8)
            out.update(self._planes(n, slots, free=1))
        self.kq_rows = self.length
        return out

    def _planes(self, n: str, rows: int, free: int) -> dict[str, np.ndarray]:
        """The planes (k_msb_cacheN, k_lsb_cacheN) of the first `rows` rows of K cache `n`'s int8
        copy, head-major, with `free` zero rows more per head (slots not yet written)."""
        msb, lsb = head_major_planes(self.kq[n][:rows], self.lm.config.heads, free)
        return {
            n.replace("k_cache", "k_msb_cache", 1): msb,
            n.replace("k_cache", "k_lsb_cache", 1): lsb,
        }

    def _plane_scales(self, c: CompiledModel) -> dict[str, float]:
        """K cache name → the K scale of decode form `c`'s progressive attention reading its
        planes; a WispError if another decode form used another scale (one int8 cache)."""
        names = c.model.input_specs()
        planes = [n for n in self.kq if n.replace("k_cache", "k_msb_cache", 1) in names]
        scales = {n: self._k_scale(c, n) for n in planes}
        if not planes:
            return scales
        if self.k_scales is None:
            self.k_scales = scales
        elif scales != {n: self.k_scales.get(n) for n in planes}:
            raise WispError(
                f"{c.model.name}: its K scales {scales} differ from the other decode forms'"
                f" {self.k_scales}; one int8 KV cache cannot serve both"
            )
        return scales

    def _put_prompt_planes(self, n: int) -> None:
        """Resident progressive K: the prompt's keys (rows [0, n) the prefill wrote into each
        `k_cacheN` region, fp16) quantized with the decode forms' K scale and written into the
        `k_msb_cacheN` / `k_lsb_cacheN` regions as head-major packed int4 planes. Host work, once
        per prompt, not counted (docs/generation.md); on the reference the host carries them."""
        scales = self._plane_scales(self.decode_form(self.lm.slots_for(n)))
        heads, context = self.lm.config.heads, self.lm.context
        for name, scale in scales.items():
            rows = self.cache[name][:n] if self.dram is None else self.dram.rows(name)[:n]
            self.kq[name][:n] = quantize_values(rows.astype(np.float32), scale, 8)
            if self.dram is None:
                continue
            for plane, x in self._planes(name, n, context - n).items():
                packed = pack_int4(x.reshape(1, -1)).reshape(heads * context, -1)
                self.dram.put(plane, packed.view(np.int8))
        self.kq_rows = n

    @staticmethod
    def _k_scale(c: CompiledModel, name: str) -> float:
        """The K scale of the progressive attention reading the planes of cache `name`."""
        plane = name.replace("k_cache", "k_msb_cache", 1)
        for op in c.model.module.walk():
            if (
                isinstance(op, ProgressiveKvAttentionOp)
                and getattr(op.k_msb, "name_hint", None) == plane
                and isinstance(op.k_scale.owner, nn.WeightOp)
            ):
                w = c.model.weights[op.k_scale.owner.symbol]
                return float(np.asarray(w).reshape(-1)[0])
        raise WispError(f"{c.model.name}: no progressive attention reads the K planes of {name}")

    def _prune(self) -> None:
        """kv-prune on the host (a prompt longer than keep; the host-carried forms): keep the `keep` cached rows of highest accumulated importance,
        the newest `recent` protected (ties to the older row, backend/topk.py); the other rows
        leave the cache (rows stay in position order)."""
        assert self.kv is not None
        keep, recent = self.kv
        n = self.length
        if n > keep:
            s = self.scores[:n].copy()
            s[n - recent :] = np.inf
            idx = topk_indices(s[None], keep)[0]
            if self.dram is not None:  # host work: the kept rows rewritten in the NPU's DRAM
                for name in self.lm.kv_names:
                    rows = self.dram.rows(name)
                    rows[:keep] = rows[idx]
                    self.dram.set_rows(name, rows)
            for cache in [*self.cache.values(), *self.kq.values()]:
                cache[:keep] = cache[idx]
            self.scores[:keep] = self.scores[idx]
            self.positions[:keep] = self.positions[idx]
            self.length = keep
            self.kq_rows = min(self.kq_rows, keep)
        self.survivors.append(self.positions[: self.length].copy())

    def generate(self, prompt: str, tokens: int, sampler: Sampler | None = None) -> Iterator[Step]:
        """Yield `tokens` new characters after `prompt` (checked first: see `check_request`)."""
        ids = self.check_request(prompt, tokens)
        sampler = sampler or Sampler()
        logits, report = self.prefill(ids)
        token = sampler(logits[-1])
        yield _step(0, token, f"prefill{ids.size}", ids.size, report, self.run_seconds)
        for i in range(1, tokens):
            logits, report, key = self.decode(token)
            token = sampler(logits)
            yield _step(i, token, key, self.attended, report, self.run_seconds)

    def force(self, ids: np.ndarray, prompt: int) -> tuple[np.ndarray, list[Step]]:
        """Teacher forcing through the cache: prefill ids[:prompt], then decode ids[prompt:] one at
        a time. Returns the logits predicting ids[1:] and one more ([ids.size, vocab]) and the
        steps (each step's token is the argmax prediction)."""
        logits, report = self.prefill(ids[:prompt])
        rows = [logits]
        steps = [
            _step(0, int(logits[-1].argmax()), f"prefill{prompt}", prompt, report, self.run_seconds)
        ]
        for i, t in enumerate(ids[prompt:], start=1):
            row, report, key = self.decode(int(t))
            rows.append(row[None])
            steps.append(_step(i, int(row.argmax()), key, self.attended, report, self.run_seconds))
        return np.concatenate(rows), steps

    def prepare(self, prompt: int, tokens: int) -> None:
        """Compile every form a request needs (the prefill, each decode bucket) up front, so a
        pipeline that cannot apply fails before any text is produced."""
        rows = prompt if self.kv is None else min(prompt, self.kv[0])
        for _ in range(tokens - 1):  # decode forms first: their refusals name the decode step
            self.decode_form(self.lm.slots_for(rows))
            rows = rows + 1 if self.kv is None else min(rows + 1, self.kv[0])
        self.prefill_form(prompt)
        key = f"prefill{prompt}"  # reports in run order: the prefill's first
        if key in self.pass_reports:
            self.pass_reports = {key: self.pass_reports.pop(key), **self.pass_reports}

    def check_request(self, prompt: str, tokens: int) -> np.ndarray:
        """The prompt's ids, or a WispError for an empty prompt, characters outside the vocabulary,
        a prompt longer than the context or more tokens than the context leaves."""
        if not prompt:
            raise WispError("--prompt is empty: give at least one character")
        ids = encode(prompt, where="--prompt")
        context = self.lm.context
        if ids.size > context:
            raise WispError(
                f"--prompt has {ids.size} characters, longer than {self.lm.name}'s context of {context}"
            )
        if tokens < 1:
            raise WispError(f"--tokens must be at least 1, got {tokens}")
        if ids.size + tokens - 1 > context:
            raise WispError(
                f"--tokens {tokens} after a {ids.size}-character prompt exceeds the context of "
                f"{context} (at most {context - ids.size + 1})"
            )
        return ids


def prefill_pipeline(pipeline: str) -> str:
    """The pipeline without its progressive-quant passes: progressive quantization is about the
    K cache *fetched* by decode steps; a prefill computes its keys on chip (docs/generation.md)."""
    return ",".join(p for p in _passes(pipeline) if not _is_progressive(p))


def uses_progressive(pipeline: str) -> bool:
    """Whether the pipeline quantizes the K cache progressively (its K cache as int4 planes)."""
    return any(_is_progressive(p) for p in _passes(pipeline))


def _is_progressive(part: str) -> bool:
    return part.strip().startswith("progressive-quant")


def _passes(pipeline: str) -> list[str]:
    """The pipeline's top-level entries (commas inside {options} do not split)."""
    parts, depth, cur = [], 0, ""
    for ch in pipeline:
        depth += {"{": 1, "}": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return [p for p in parts if p.strip()]


def kv_prune_of(pipeline: str) -> tuple[int, int] | None:
    """(keep, recent) of the pipeline's kv-prune pass: the host half of the pruning."""
    found = [p for p in parse_pipeline(pipeline) if isinstance(p, KvPrunePass)]
    if not found:
        return None
    keep, recent = int(found[-1].keep), int(found[-1].recent)
    if keep < 1 or not 1 <= recent <= keep:
        raise WispError(f"kv-prune{{keep={keep} recent={recent}}}: need 1 ≤ recent ≤ keep")
    return keep, recent


@dataclass
class Generation:
    """What `CompiledModel.generate` returns: the new text and every step's measured cost."""

    prompt: str
    text: str
    steps: list[Step]

    @property
    def decode_steps(self) -> list[Step]:
        return [s for s in self.steps if s.index > 0]


def _step(i: int, token: int, form: str, context: int, report: Any, seconds: float) -> Step:
    s = Step(i, token, decode_ids([token]), form, context, seconds=seconds)
    if report is not None:
        s.cycles = int(report.cycles)
        s.dram_bytes = int(report.dram_read + report.dram_write)
        s.dram_by_region = dict(report.dram_by_region)
        s.energy_uj = float(report.energy_total_pj) / 1e6
    return s
