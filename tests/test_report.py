"""`wisp report OUTDIR`: the numbers in the page's tables against report.json and an independent
interpreter run (the fast path, no trace), per-layer and per-precision sums against the totals,
the queue timeline against a per-cycle occupancy, deterministic valid PNGs, bad inputs, escaping,
and the page rendered by a real headless Chromium (skipped when it is not installed)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from report_util import Page, data_uri_bytes, integer, number, png_size

pytest.importorskip("matplotlib")

PIPELINE = (
    "structured-prune{ratio=0.3},quantize{weights=int8 acts=int8},"
    "token-prune{method=topk keep=0.4 schedule=step start=1}"
)
MIXED = "eager-predict{topk=32},quantize{weights=int8},mixed-ffn{int8=0.25}"


def _compile(pipeline: str, target: str, out: Path) -> Path:
    from compiler.api import compile_model

    compile_model("digits-vit", pipeline=pipeline, target=target).save(out)
    return out


@pytest.fixture(scope="module")
def outdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _compile(PIPELINE, "spatten", tmp_path_factory.mktemp("rep") / "prog")


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """FACT mixed-precision FFN: MATMULs whose precision mask sends rows to the int4 rate."""
    return _compile(MIXED, "fact", tmp_path_factory.mktemp("rep") / "mixed")


@pytest.fixture(scope="module")
def page_a(outdir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Page]:
    """The report of `outdir` (measured on the first digits test image), written once."""
    html = tmp_path_factory.mktemp("page") / "r.html"
    return html, _report(outdir, html)


def _wisp(*argv: str) -> int:
    from compiler.cli.wisp import main

    return main(list(argv))


def _report(outdir: Path, html: Path, *extra: str) -> Page:
    assert _wisp("report", str(outdir), "-o", str(html), *extra) == 0
    return Page(html.read_text())


def _oracle_run(outdir: Path) -> Any:
    """The interpreter's report on the first digits test image, by the fast path (no trace)."""
    from backend.config import load_config
    from backend.interpreter import run
    from backend.npubin import read
    from compiler.datasets import load_digits_test

    program = read((outdir / "program.npubin").read_bytes(), "program.npubin")
    cfg = load_config(outdir / "config.json")
    (sym,) = [s for s in program.symbols.values() if s.kind == "input"]
    image = load_digits_test()[0][0].reshape(sym.shape)
    return run(program, {sym.name: image}, cfg).report


def _check_measured(page: Page, rep: Any) -> None:
    layers = page.rows("measured-layers")
    total = layers.pop("total")
    untagged = layers.pop("(untagged)", None)
    assert set(layers) == set(rep.per_tag)
    for tag, t in rep.per_tag.items():
        row = layers[tag]
        assert [integer(c) for c in row[:4]] == [t.instrs, t.busy_cycles, t.macs, t.dram_bytes]
        assert abs(number(row[4]) * 1e3 - t.energy_pj) <= 0.5 + 1e-9 * t.energy_pj
    rows = list(layers.values()) + ([untagged] if untagged else [])
    for k in range(4):  # the total row is the column sum
        assert integer(total[k]) == sum(integer(r[k]) for r in rows)
    skipped = sum(q.skipped for q in rep.queues.values())
    assert integer(total[1]) + skipped == sum(q.busy for q in rep.queues.values())
    assert integer(total[2]) == sum(rep.macs_useful.values())
    assert integer(total[3]) == rep.dram_read + rep.dram_write
    assert abs(number(total[4]) * 1e3 - rep.energy_total_pj) <= 0.5 + 1e-9 * rep.energy_total_pj
    # by precision: each layer's rows add up to its row; MACs per precision = the run's
    per_prec: dict[str, int] = {}
    sums: dict[str, list[int]] = {}
    for r in page.tables["measured-precision"][1:-1]:
        tag, prec = r[0], r[1]
        s = sums.setdefault(tag, [0, 0, 0, 0])
        for k, col in enumerate((2, 3, 6, 4)):  # instrs, cycles, MACs, DRAM bytes
            s[k] += integer(r[col])
        per_prec[prec] = per_prec.get(prec, 0) + integer(r[6])
    for tag, row in {**layers, **({"(untagged)": untagged} if untagged else {})}.items():
        assert sums[tag] == [integer(c) for c in row[:4]], tag
    assert {p: v for p, v in per_prec.items() if v} == {
        p: v for p, v in rep.macs_useful.items() if v
    }


def test_tables_equal_report_json_and_the_interpreter(
    outdir: Path, page_a: tuple[Path, Page]
) -> None:
    page = page_a[1]
    static = json.loads((outdir / "report.json").read_text())
    # static per layer: report.json's figures; the totals are report.json's totals
    layers = page.rows("static-layers")
    blocks = [f"blocks.{i}.{part}" for i in range(4) for part in ("attn", "mlp")]
    assert list(layers) == ["embed", *blocks, "head", "(untagged)", "total"]  # model order
    total = layers.pop("total")
    untagged = layers.pop("(untagged)")
    assert set(layers) == set(static["per_layer"])
    for tag, d in static["per_layer"].items():
        assert [integer(c) for c in layers[tag][:4]] == [
            d["instrs"], d["busy_cycles"], d["macs"], d["dram_bytes"]
        ]  # fmt: skip
    assert integer(total[0]) == static["instructions"]
    # the untagged instruction is the final FINISH (one cycle, in report.json's per-queue busy)
    assert [integer(c) for c in untagged[:4]] == [1, 1, 0, 0]
    assert integer(total[1]) == sum(static["busy"].values())
    assert integer(total[2]) == sum(static["macs"].values())
    assert integer(total[3]) == static["dram_read"] + static["dram_write"]
    for k in range(5):
        assert number(total[k]) == pytest.approx(
            sum(number(r[k]) for r in [*layers.values(), untagged]), abs=0.002
        )
    prec: dict[str, int] = {}
    for r in page.tables["static-precision"][1:-1]:
        prec[r[1]] = prec.get(r[1], 0) + integer(r[6])
    assert {p: v for p, v in prec.items() if v} == {p: v for p, v in static["macs"].items() if v}
    # measured: the interpreter's report of an independent (untraced, fast-path) run
    rep = _oracle_run(outdir)
    _check_measured(page, rep)
    summary = page.rows("summary")
    assert integer(summary["cycles"][0]) == static["cycles"]
    assert integer(summary["cycles"][1]) == rep.cycles
    assert integer(summary["DRAM read (bytes)"][1]) == rep.dram_read
    queues = page.rows("queues")
    for name, q in rep.queues.items():
        row = queues[name]
        assert [integer(c) for c in row[:4]] == [q.instrs, q.skipped, q.busy, q.stall]
        assert integer(row[5]) == static["busy"][name]
    # roofline: intensity and roof from the config's own numbers
    cfg = json.loads((outdir / "config.json").read_text())
    peak = cfg["matrix"]["arrays"] * cfg["matrix"]["rows"] * cfg["matrix"]["cols"]
    bw = cfg["dram"]["bytes_per_cycle"]
    roof_rows = page.rows("roofline")
    assert set(roof_rows) == {t for t, s in rep.per_tag.items() if s.macs}
    for tag, r in roof_rows.items():
        macs, dram, cycles = integer(r[1]), integer(r[2]), integer(r[3])
        assert (macs, dram) == (rep.per_tag[tag].macs, rep.per_tag[tag].dram_bytes)
        assert 0 < cycles <= rep.cycles and cycles <= rep.per_tag[tag].busy_cycles
        rate = (
            cfg["matrix"][f"{r[0]}_rate"]
            if r[0] in ("int8", "int4")
            else cfg["matrix"]["fp16_rate"]
        )
        roof = min(peak * rate, macs / dram * bw)
        assert number(r[4]) == pytest.approx(macs / dram, abs=0.006)
        assert number(r[5]) == pytest.approx(macs / cycles, abs=0.006)
        assert number(r[6]) == pytest.approx(roof, abs=0.06)


def test_masked_matmul_rows_are_priced_as_the_interpreter_priced_them(
    mixed: Path, tmp_path: Path
) -> None:
    """FACT mixed FFN: the trace records each MATMUL's masked rows, so the per-layer energy and
    MACs by precision (int4 rows) equal the interpreter's own accounting."""
    page = _report(mixed, tmp_path / "m.html")
    rep = _oracle_run(mixed)
    assert rep.macs_useful["int4"] > 0
    _check_measured(page, rep)


def test_predicated_off_instructions_are_counted_apart(tmp_path: Path) -> None:
    """SpAtten progressive quantization skips the LSB refetch of confident row blocks (predicated
    off): per-layer figures count executed instructions only, as the interpreter does, and the
    skipped ones' issue cycles close the gap to the queues' busy cycles."""
    out = _compile("progressive-quant{threshold=0.1}", "spatten", tmp_path / "pq")
    page = _report(out, tmp_path / "pq.html")
    rep = _oracle_run(out)
    assert rep.skipped > 0
    _check_measured(page, rep)
    assert integer(page.rows("summary")["predicated off"][1]) == rep.skipped


def test_timeline_bins_equal_a_per_cycle_occupancy(outdir: Path) -> None:
    from compiler.report.figures import timeline, trace_instr_events, union_length
    from compiler.report.load import load_outdir
    from compiler.report.measure import measure

    m = measure(load_outdir(outdir))
    cycles = m.report.cycles
    occupancy = {q: np.zeros(cycles, dtype=np.int64) for q in m.report.queues}
    names = list(m.report.queues)
    for e in trace_instr_events(m.events):
        a = e["args"]
        occupancy[names[e["tid"]]][a["cycle"] : a["cycle"] + a["cycles"]] += 1
    for bins in (1, 7, 160, cycles + 5):
        tl = timeline(m.events, cycles, bins)
        assert tl.edges[0] == 0 and tl.edges[-1] == cycles
        for q, occ in occupancy.items():
            assert occ.max() <= 1  # a queue runs one instruction at a time
            expect = [int(occ[lo:hi].sum()) for lo, hi in zip(tl.edges, tl.edges[1:], strict=False)]
            assert tl.busy[q] == expect
            assert sum(tl.busy[q]) == m.report.queues[q].busy
    rng = np.random.default_rng(0)
    for _ in range(50):
        starts = rng.integers(0, 100, size=rng.integers(0, 12))
        iv = [
            (int(s), int(s + d))
            for s, d in zip(starts, rng.integers(0, 20, size=len(starts)), strict=True)
        ]
        cover = np.zeros(130, dtype=bool)
        for a, b in iv:
            cover[a:b] = True
        assert union_length(iv) == int(cover.sum())


def test_pngs_valid_embedded_and_deterministic(
    outdir: Path, page_a: tuple[Path, Page], tmp_path: Path
) -> None:
    import matplotlib.image as mpimg

    a, page = page_a
    b = tmp_path / "r.html"
    _report(outdir, b)
    assert a.read_bytes() == b.read_bytes()
    pngs = sorted(a.parent.glob("r-*.png"))
    assert [p.name for p in pngs] == [
        "r-layers-measured.png", "r-layers-static.png", "r-queues.png", "r-roofline.png"
    ]  # fmt: skip
    embedded = [data_uri_bytes(src) for src in page.images]
    assert sorted(embedded) == sorted(p.read_bytes() for p in pngs)
    for p in pngs:
        assert p.read_bytes() == (b.parent / p.name).read_bytes()
        w, h = png_size(p.read_bytes())
        assert w >= 600 and h >= 300
        pixels = mpimg.imread(p)
        assert pixels.shape[:2] == (h, w)
        assert len(np.unique(pixels.reshape(-1, pixels.shape[-1]), axis=0)) > 20  # not blank
        assert b"Software" not in p.read_bytes()  # no matplotlib version in the file
    # self-contained: no script, no stylesheet link, no external URL
    html = a.read_text()
    assert "<script" not in html and "<link" not in html
    assert "http://" not in html and "https://" not in html
    assert all(src.startswith("data:image/png;base64,") for src in page.images)


def test_static_only(outdir: Path, tmp_path: Path) -> None:
    page = _report(outdir, tmp_path / "s.html", "--static")
    assert "measured-layers" not in page.tables and "measured-precision" not in page.tables
    text = " ".join(page.text)
    assert "measured (interpreter run)" not in text
    assert len(page.images) == 2 and not (tmp_path / "s-queues.png").exists()
    static = json.loads((outdir / "report.json").read_text())
    assert page.rows("queues") == {k: [f"{v:,}"] for k, v in static["busy"].items()}
    roof = page.rows("roofline")
    for tag, r in roof.items():  # static layer time: its busiest queue (at most its busy sum)
        assert integer(r[3]) <= static["per_layer"][tag]["busy_cycles"]


def test_default_output_replaces_its_own_files_not_others(
    outdir: Path, tmp_path: Path, capsys: Any
) -> None:
    work = tmp_path / "w"
    shutil.copytree(outdir, work)
    assert _wisp("report", str(work)) == 0
    first = (work / "report.html").read_bytes()
    assert (work / "report-queues.png").exists()
    assert _wisp("report", str(work), "--static") == 0  # ours: replaced without --force
    assert (work / "report.html").read_bytes() != first
    assert sorted(p.name for p in work.glob("report-*.png")) == [
        "report-layers-static.png", "report-roofline.png"
    ]  # the measured run's PNGs are gone with it  # fmt: skip
    capsys.readouterr()
    mine = tmp_path / "notes.html"
    mine.write_text("<p>my notes</p>")
    assert _wisp("report", str(work), "--static", "-o", str(mine)) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(mine) in err and "--force" in err
    assert mine.read_text() == "<p>my notes</p>" and not (tmp_path / "notes-roofline.png").exists()
    png = tmp_path / "x-roofline.png"  # a PNG of someone else's beside the page: nothing written
    png.write_bytes(b"\x89PNG\r\n\x1a\nnot mine")
    assert _wisp("report", str(work), "--static", "-o", str(tmp_path / "x.html")) == 1
    assert str(png) in capsys.readouterr().err and not (tmp_path / "x.html").exists()
    assert _wisp("report", str(work), "--static", "-o", str(mine), "--force") == 0
    assert "wisp report" in mine.read_text()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp files


def _mutate(src: Path, dst: Path, name: str, change: Any) -> Path:
    shutil.copytree(src, dst)
    path = dst / name
    if isinstance(change, tuple):  # (regex, replacement) on the text: a literal JSON can't hold
        import re

        path.write_text(re.sub(change[0], change[1], path.read_text(), count=1))
    elif callable(change):
        data = json.loads(path.read_text())
        change(data)
        path.write_text(json.dumps(data))
    elif isinstance(change, bytes):
        path.write_bytes(change)
    else:
        path.write_text(change)
    return dst


def _set(keys: list[Any], value: Any) -> Any:
    def change(d: Any) -> None:
        for k in keys[:-1]:
            d = d[k]
        d[keys[-1]] = value

    return change


BAD = [
    ("report.json", '{"cycles": 1,\n  "per_layer": [}', "report.json:2:17: malformed JSON"),
    ("report.json", _set(["cycles"], 10**40), "report.json: cycles: integer out of range"),
    ("report.json", _set(["cycles"], "12"), "report.json: cycles: expected a non-negative integer"),
    ("report.json", _set(["cycles"], -3), "report.json: cycles: integer out of range"),
    ("report.json", _set(["cycles"], True), "report.json: cycles: expected a non-negative integer"),
    (
        "report.json",
        (r'"efficiency": [^,]*', '"efficiency": 1e400'),
        "report.json: efficiency: number out of range",
    ),
    ("report.json", _set(["per_layer"], []), "report.json: per_layer: expected an object"),
    ("report.json", _set(["per_layer", "head", "macs"], 2.5), "report.json: per_layer.head.macs"),
    ("report.json", _set(["busy"], {"load": None}), "report.json: busy.load: expected"),
    ("report.json", "[" * 100000 + "]" * 100000, "report.json: malformed JSON: nested too deeply"),
    ("report.json", "NaN", "report.json: malformed JSON: NaN is not a JSON number"),
    ("compile.json", _set(["layer_of"], ["x"]), "compile.json: layer_of: 1 tags for the"),
    ("compile.json", _set(["passes"], {"a": 1}), "compile.json: passes: expected a list"),
    (
        "compile.json",
        _set(["passes", 0, "name"], 7),
        "compile.json: passes[0].name: expected a string",
    ),
    ("compile.json", b"\xff\xfe{}", "compile.json: not UTF-8 text (byte 0"),
]


@pytest.mark.parametrize("name,change,message", BAD, ids=[m for _, _, m in BAD])
def test_bad_outdir_is_one_error_line(
    outdir: Path, tmp_path: Path, capsys: Any, name: str, change: Any, message: str
) -> None:
    bad = _mutate(outdir, tmp_path / "bad", name, change)
    assert _wisp("report", str(bad)) == 1
    err = capsys.readouterr().err
    assert err.startswith("wisp: error: ") and err.count("\n") == 1, err
    assert message in err and "Traceback" not in err
    assert not (bad / "report.html").exists() and not list(bad.glob("report-*.png"))


def test_not_a_compiled_program(outdir: Path, tmp_path: Path, capsys: Any) -> None:
    from compiler.api import compile_model

    nn_only = tmp_path / "nn"
    compile_model("digits-vit", target=None).save(nn_only)
    no_report = tmp_path / "norep"
    shutil.copytree(outdir, no_report)
    (no_report / "report.json").unlink()
    (tmp_path / "file").write_text("x")
    (tmp_path / "empty").mkdir()
    cases = [
        (tmp_path / "missing", "does not exist"),
        (tmp_path / "file", "is not a directory"),
        (tmp_path / "empty", "not a wisp compile output (no compile.json)"),
        (nn_only, "no program.npubin or program.s"),
        (no_report, "no report.json"),
    ]
    for path, message in cases:
        assert _wisp("report", str(path)) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err and str(path) in err, err
    assert _wisp("report", str(outdir), "--static", "--input", "x.npz") == 1
    assert "--static" in capsys.readouterr().err


def test_missing_matplotlib_says_how_to_install(
    outdir: Path, monkeypatch: Any, capsys: Any
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib raises ImportError
    assert _wisp("report", str(outdir)) == 1
    err = capsys.readouterr().err
    assert err == "wisp: error: wisp report needs matplotlib: pip install 'wisp[search]'\n"


HOSTILE = '<script>alert("x")</script>&amp;$\\frac{1}{2}$'


def test_hostile_names_are_escaped(outdir: Path, tmp_path: Path) -> None:
    """Layer and pass names, notes and report keys with markup stay text: no element is injected."""
    bad = tmp_path / "hostile"
    shutil.copytree(outdir, bad)
    man = json.loads((bad / "compile.json").read_text())
    man["layer_of"] = [HOSTILE if t == "head" else t for t in man["layer_of"]]
    man["passes"][0]["name"] = HOSTILE
    man["passes"][0]["report"]["notes"].append('<img src=x onerror="alert(1)">')
    man["passes"][1]["report"]["layers"][HOSTILE] = {'"><b>': "<i>x</i>"}
    man["pipeline"] = HOSTILE
    (bad / "compile.json").write_text(json.dumps(man))
    rep = json.loads((bad / "report.json").read_text())
    rep["per_layer"][HOSTILE] = rep["per_layer"].pop("head")
    (bad / "report.json").write_text(json.dumps(rep))
    page = _report(bad, tmp_path / "h.html", "--static")
    allowed = {"html", "head", "meta", "title", "style", "body", "h1", "h2", "h3", "p", "code",
               "span", "table", "thead", "tbody", "tr", "th", "td", "img", "ul", "li", "b"}  # fmt: skip
    assert {t for t, _ in page.tags} <= allowed
    assert all(
        set(a) <= {"id", "class", "src", "alt", "name", "content", "charset", "lang"}
        for _, a in page.tags
    )
    assert len(page.images) == 2  # the injected <img> is text
    assert HOSTILE in page.rows("static-layers")
    assert any(HOSTILE in "".join(r) for r in page.tables["static-precision"])
    text = "".join(page.text)
    assert f"1. {HOSTILE}" in text and '<img src=x onerror="alert(1)">' in text


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


CHROME_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip

PROBE = """<script>
window.addEventListener("load", () => {
  const out = document.createElement("pre");
  out.id = "probe";
  out.textContent = Array.from(document.images).map(i => i.naturalWidth + "x" + i.naturalHeight).join(" ");
  document.body.appendChild(out);
});
</script>"""


@pytest.mark.skipif(
    _chromium() is None, reason="Chromium is not installed (apt-get install chromium)"
)
def test_renders_in_headless_chromium(page_a: tuple[Path, Page], tmp_path: Path) -> None:
    """Every embedded PNG decodes in a real browser at its own size, and the page is not blank.
    (A copy of the page gets a probe script recording each image's natural size into the DOM;
    the report itself has no script.)"""
    import matplotlib.image as mpimg

    report, page = page_a
    html = report.read_text()
    probe = tmp_path / "probe.html"
    probe.write_text(html.replace("</body>", PROBE + "</body>"))
    browser = _chromium()
    assert browser is not None

    def chrome(*args: str) -> subprocess.CompletedProcess[str]:
        profile = tmp_path / f"profile{len(list(tmp_path.glob('profile*')))}"
        return subprocess.run(
            [browser, *CHROME_FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True, text=True, timeout=180,
        )  # fmt: skip

    dom = chrome("--virtual-time-budget=10000", "--dump-dom", probe.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    dumped = Page(dom.stdout)
    (probe_pre,) = [
        t for t in dumped.text if "x" in t and t.replace("x", " ").replace(" ", "").isdigit()
    ]
    sizes = probe_pre.split()
    assert sizes == [f"{w}x{h}" for w, h in (png_size(data_uri_bytes(s)) for s in page.images)]
    shot = tmp_path / "shot.png"
    r = chrome("--window-size=1280,2000", f"--screenshot={shot}", report.as_uri())
    assert r.returncode == 0 and shot.exists(), r.stderr[-2000:]
    pixels = mpimg.imread(shot)
    assert pixels.shape[:2] == (2000, 1280)
    colours = np.unique((pixels[..., :3] * 255).astype(np.uint8).reshape(-1, 3), axis=0)
    assert len(colours) > 100  # text, tables and the plots' colours, not a blank page


def test_damaged_program_config_or_input(outdir: Path, tmp_path: Path, capsys: Any) -> None:
    cut = tmp_path / "cut"
    shutil.copytree(outdir, cut)
    (cut / "program.npubin").write_bytes((outdir / "program.npubin").read_bytes()[:1000])
    conf = tmp_path / "conf"
    shutil.copytree(outdir, conf)
    (conf / "config.json").write_text('{"name": 5}')
    np.savez(tmp_path / "shape.npz", image=np.zeros((3, 3), np.float32))
    np.savez(tmp_path / "name.npz", x=np.zeros((1, 16, 16), np.float32))
    cases = [
        ([str(cut)], f"{cut / 'program.npubin'}: "),
        ([str(conf)], f"{conf / 'config.json'}: key 'name'"),
        ([str(outdir), "--input", str(tmp_path / "shape.npz")], "has shape [3, 3], the program expects [1, 16, 16]"),
        ([str(outdir), "--input", str(tmp_path / "name.npz")], "unknown input 'x'"),
        ([str(outdir), "--sample", "360"], "--sample 360: the digits set has 360 samples"),
    ]  # fmt: skip
    for argv, message in cases:
        assert _wisp("report", *argv, "-o", str(tmp_path / "r.html")) == 1
        err = capsys.readouterr().err
        assert err.startswith("wisp: error: ") and err.count("\n") == 1 and message in err, err
    assert not list(tmp_path.glob("r*"))


def test_measured_on_a_given_input(outdir: Path, tmp_path: Path) -> None:
    """--input: the measured figures are those of a run on that input (token pruning makes them
    input-dependent only through selection; cycles and DRAM bytes of an independent run)."""
    from backend.config import load_config
    from backend.interpreter import run
    from backend.npubin import read

    x = np.random.default_rng(1).random((1, 16, 16)).astype(np.float32)
    np.savez(tmp_path / "x.npz", image=x)
    page = _report(outdir, tmp_path / "r.html", "--input", str(tmp_path / "x.npz"))
    program = read((outdir / "program.npubin").read_bytes(), "program.npubin")
    rep = run(program, {"image": x}, load_config(outdir / "config.json")).report
    _check_measured(page, rep)
    assert integer(page.rows("summary")["cycles"][1]) == rep.cycles
    assert "measured on: --input x.npz" in " ".join(page.text)
