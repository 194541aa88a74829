"""qtransfer.report.html: self-contained HTML reports of runs and comparisons."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from qtransfer.errors import CheckpointError  # noqa: E402
from qtransfer.report import write_report  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CHROMIUM = Path("/usr/bin/chromium")


def _tiny_png(path: Path, color: tuple[int, int, int], size: int = 48) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.new("RGB", (size, size), color)
    for i in range(size):  # a diagonal, so thumbnails are not flat squares
        img.putpixel((i, i), (255, 255, 255))
    img.save(path)


def _make_run_dir(root: Path, head: str = "quantum") -> Path:
    run = root / f"run-{head}"
    run.mkdir(parents=True)
    config = {"backbone": "mobilenet_v2", "weights": "IMAGENET1K_V1", "head": head, "n_qubits": 4, "depth": 6,
              "embedding": "hadamard_ry", "layer": "cnot_ry", "epochs": 5, "batch_size": 4, "lr": 0.0004,
              "seed": 0, "data": "hymenoptera"}
    history = []
    for e in range(1, 6):
        history.append({"epoch": e, "train_loss": 0.7 - 0.1 * e, "train_acc": 0.5 + 0.08 * e,
                        "val_loss": 0.68 - 0.09 * e + (0.05 if e == 5 else 0), "val_acc": [0.6, 0.75, 0.85, 0.9, 0.88][e - 1],
                        "lr": 0.0004, "seconds": 1.5})
    metrics = {
        "classes": ["ants", "bees"],
        "history": history,
        "best_epoch": 4,
        "best_val_acc": 0.9,
        "final": {"val": {"accuracy": 0.9, "loss": 0.31, "n_images": 10,
                          "per_class_accuracy": {"ants": 0.8, "bees": 1.0},
                          "confusion_matrix": [[4, 1], [0, 5]]}},
        "timing": {"extract_s": 3.2, "train_s": 7.5, "total_s": 10.7},
        "n_params": {"head": 2070},
        "n_images": {"train": 40, "val": 10}, "n_skipped": 0, "val_from_train": True,
        "backbone": {"backbone": "mobilenet_v2", "weights": "IMAGENET1K_V1", "transform": "published:..."},
        "features": {"n_cached": 0, "n_computed": 50, "num_features": 1280},
    }
    items = []
    for i in range(10):
        true = "ants" if i < 5 else "bees"
        pred = "bees" if i == 0 else true
        rel = Path("imgs") / f"{true}_{i}.png"
        _tiny_png(run / rel, (200, 60, 30) if true == "ants" else (230, 200, 40))
        items.append({"path": str(rel) if i % 2 else str((run / rel).resolve()), "true": true, "pred": pred,
                      "probability": 0.55 + 0.04 * i})
    items.append({"path": "/nonexistent/missing.jpg", "true": "ants", "pred": "ants", "probability": 0.9})
    (run / "config.json").write_text(json.dumps(config))
    (run / "metrics.json").write_text(json.dumps(metrics))
    (run / "pipeline.json").write_text(json.dumps(_pipeline_record(head, items[1]["path"], run)))
    (run / "predictions.json").write_text(json.dumps({"split": "val", "items": items}))
    return run


def _pipeline_record(head: str, path: str, run: Path) -> dict:
    """What training writes: the image at ``path`` (its features made up) through a seeded head of kind ``head``."""
    import torch

    from qtransfer.heads import build_head
    from qtransfer.heads.trace import pipeline_record

    model = build_head(head, 1280, 2, n_qubits=4, depth=6, seed=0)
    features = torch.relu(torch.randn(1280, generator=torch.Generator().manual_seed(0)))
    return pipeline_record(model, head, features, path, "val", "ants", ("ants", "bees"),
                           {"backbone": "mobilenet_v2", "weights": "IMAGENET1K_V1", "transform": "published:..."}, 0, 50)


def _make_compare_dir(root: Path, *, per_head: bool = True) -> Path:
    """A compare directory; ``per_head``: with per-image predictions and per-epoch history (as compare writes)."""
    from dataclasses import replace

    from helpers import compare_results
    from qtransfer.results import EpochRecord

    d = root / "compare"
    d.mkdir(parents=True)
    rng = np.random.default_rng(0)
    correct = {"quantum": (rng.random((5, 49)) < 0.93).astype(int), "linear": (rng.random((5, 49)) < 0.92).astype(int)}
    results = compare_results(correct, n_params={"quantum": 2070, "linear": 2562}, train_seconds={"quantum": [2.0] * 5})
    if per_head:
        labels = np.arange(49) % 2
        history = tuple(EpochRecord(e, 0.7 / e, 0.5 + 0.1 * e, 0.6 / e, 0.6 + 0.08 * e, 4e-4, 0.1) for e in range(1, 5))
        heads = {h: replace(r, predicted=tuple(tuple(int(v) for v in np.where(row, labels, 1 - labels))
                                                for row in correct[h]), history=(history,) * 5)
                 for h, r in results.heads.items()}
        results = replace(results, heads=heads, eval_labels=tuple(int(v) for v in labels),
                          config={**results.config, "head": "quantum", "seed": 0})
    (d / "results.json").write_text(json.dumps(results.to_json()))
    return d


def _img_srcs(page: str) -> list[str]:
    return re.findall(r"<img\b[^>]*\bsrc=\"([^\"]*)\"", page)


def _assert_all_images_embedded_png(page: str) -> int:
    srcs = _img_srcs(page)
    assert srcs, "the report embeds no image"
    for src in srcs:
        assert src.startswith("data:image/png;base64,"), src[:60]
        data = base64.b64decode(src.split(",", 1)[1], validate=True)
        assert data.startswith(PNG_MAGIC)
        from PIL import Image
        import io

        Image.open(io.BytesIO(data)).verify()
    return len(srcs)


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return _make_run_dir(tmp_path)


@pytest.fixture
def compare_dir(tmp_path: Path) -> Path:
    return _make_compare_dir(tmp_path)


def test_run_report_is_self_contained(run_dir: Path):
    out = write_report(run_dir)
    assert out == run_dir / "report.html"
    page = out.read_text(encoding="utf-8")
    n = _assert_all_images_embedded_png(page)
    assert n == 5  # the pipeline's image and circuit, curves, confusion, samples
    for name in ("pipeline-image.png", "curves.png", "confusion.png", "circuit.png", "samples.png"):
        assert (run_dir / "figures" / name).read_bytes().startswith(PNG_MAGIC)
    assert "ants" in page and "bees" in page
    assert "90.0%" in page and "9 of 10 images" in page
    assert "mobilenet_v2" in page and "2,070" in page
    assert "1 image(s) could not be shown" in page and "missing.jpg" in page
    assert "<script" not in page.lower()
    assert "http://" not in page and "https://" not in page
    assert not list(run_dir.glob(".*.tmp")) and not list((run_dir / "figures").glob(".*.tmp"))


def test_run_report_tolerates_missing_optional_files(tmp_path: Path):
    run = _make_run_dir(tmp_path)
    metrics = json.loads((run / "metrics.json").read_text())
    metrics.update(history=[], final={})
    (run / "metrics.json").write_text(json.dumps(metrics))
    for name in ("config.json", "predictions.json", "pipeline.json"):
        (run / name).unlink()
    page = write_report(run).read_text()
    assert "No per-epoch history" in page and "No final evaluation" in page
    assert _img_srcs(page) == []
    assert "The pipeline, with one image flowing through it" in page and "has no pipeline.json" in page


def test_linear_run_has_no_circuit(tmp_path: Path):
    run = _make_run_dir(tmp_path, head="linear")
    page = write_report(run).read_text()
    assert "quantum circuit" not in page.lower()
    assert not (run / "figures" / "circuit.png").exists()
    assert "<code>Linear(1280→2)</code>" in page  # the linear head's own block


def test_compare_report(compare_dir: Path):
    page = write_report(compare_dir).read_text(encoding="utf-8")
    assert _assert_all_images_embedded_png(page) == 4  # comparison, per-head curves, confusion, quantum's circuit
    for name in ("comparison.png", "curves.png", "confusion.png", "circuit-quantum.png"):
        assert (compare_dir / "figures" / name).is_file()
    assert not (compare_dir / "figures" / "circuit-linear.png").exists()
    results = json.loads((compare_dir / "results.json").read_text())
    assert "ants" in page and "bees" in page
    for head in ("quantum", "linear"):
        mean = 100 * np.mean(results["heads"][head]["accuracies"])
        assert f"{mean:.1f}" in page
    assert "<table>" in page and "<th>head</th>" in page
    assert "linear vs quantum" in page
    assert "Does the quantum head help?" in page


def test_compare_report_recomputes_missing_comparisons(compare_dir: Path):
    path = compare_dir / "results.json"
    results = json.loads(path.read_text())
    del results["comparisons"]
    path.write_text(json.dumps(results))
    page = write_report(compare_dir).read_text()
    assert "linear vs quantum" in page and "Paired comparisons" in page


def test_product_head_gets_its_circuit_without_cnots(tmp_path: Path):
    run = _make_run_dir(tmp_path, head="product")
    page = write_report(run).read_text()
    assert "quantum circuit (trained)" in page and "layer <code>ry</code>" in page


def test_metrics_of_another_kind_are_refused_naming_the_field(tmp_path: Path):
    run = _make_run_dir(tmp_path)
    metrics = json.loads((run / "metrics.json").read_text())
    del metrics["best_epoch"]
    (run / "metrics.json").write_text(json.dumps(metrics))
    with pytest.raises(CheckpointError, match="metrics.json is not the metrics of a qtransfer run: missing field 'best_epoch'"):
        write_report(run)
    metrics.update(best_epoch=4, schema="qtransfer-run-metrics", version=99)
    (run / "metrics.json").write_text(json.dumps(metrics))
    with pytest.raises(CheckpointError, match="schema version 99"):
        write_report(run)


def test_errors_name_the_directory(tmp_path: Path):
    with pytest.raises(CheckpointError, match="no such directory"):
        write_report(tmp_path / "nope")
    with pytest.raises(CheckpointError, match="neither results.json"):
        write_report(tmp_path)
    (tmp_path / "metrics.json").write_text('{"classes": [')
    with pytest.raises(CheckpointError, match="metrics.json: not valid JSON"):
        write_report(tmp_path)


# ------------------------------------------------------------------ headless browser
def _chromium(args: list[str], user_dir: Path) -> subprocess.CompletedProcess:
    cmd = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--disable-dev-shm-usage", f"--user-data-dir={user_dir}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium (apt-get install -y chromium)")
@pytest.mark.parametrize("kind", ["run", "compare"])
def test_report_renders_in_chromium(tmp_path: Path, kind: str):
    directory = _make_run_dir(tmp_path) if kind == "run" else _make_compare_dir(tmp_path)
    report = write_report(directory)
    page = report.read_text(encoding="utf-8")
    n_images = len(_img_srcs(page))
    # a copy with a probe script: the report itself has none and needs none
    probe = report.with_name("probe.html")
    script = ("<script>window.addEventListener('load',()=>{const im=[...document.images];"
              "const box=s=>{const e=document.querySelector(s);if(!e)return '0x0';const r=e.getBoundingClientRect();"
              "return Math.round(r.width)+'x'+Math.round(r.height);};"
              "document.title='loaded:'+im.filter(i=>i.complete&&i.naturalWidth>0).length+'/'+im.length"
              "+';pipeline:'+box('.pipeline')+';blocks:'+document.querySelectorAll('.pipeline .block').length"
              "+';spark:'+box('.pipeline svg.sparkline');});</script>")
    probe.write_text(page.replace("</body>", script + "</body>"), encoding="utf-8")
    res = _chromium(["--virtual-time-budget=5000", "--window-size=1200,2000", "--dump-dom", probe.as_uri()],
                    tmp_path / "profile1")
    assert res.returncode == 0, res.stderr[-2000:]
    title = re.search(r"<title>([^<]*)</title>", res.stdout).group(1)
    fields = dict(part.split(":", 1) for part in title.split(";"))
    assert fields["loaded"] == f"{n_images}/{n_images}", title
    if kind == "run":  # the pipeline drawing is laid out: every block, a real height, the sparkline drawn
        width, height = map(int, fields["pipeline"].split("x"))
        assert width > 500 and height > 600, title
        assert int(fields["blocks"]) == 8, title  # image, A', pre-net, angles, circuit, measurement, post-net, softmax
        assert fields["spark"] == "360x34", title
    else:
        assert fields["pipeline"] == "0x0", title

    shot = tmp_path / f"{kind}.png"
    res = _chromium([f"--screenshot={shot}", "--window-size=1200,2000", "--hide-scrollbars",
                     report.as_uri()], tmp_path / "profile2")
    assert res.returncode == 0, res.stderr[-2000:]
    assert shot.read_bytes().startswith(PNG_MAGIC) and shot.stat().st_size > 20_000
    keep_dir = os.environ.get("QTRANSFER_SCREENSHOT_DIR")
    if keep_dir:
        keep = Path(keep_dir)
        keep.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, keep / shot.name)
        shutil.copytree(directory, keep / f"{kind}-dir", dirs_exist_ok=True)


def test_run_report_with_nan_metrics_and_unlabelled_predictions(tmp_path: Path):
    run = _make_run_dir(tmp_path)
    metrics = json.loads((run / "metrics.json").read_text())
    metrics["final"]["test"] = {"accuracy": float("nan"), "loss": float("nan"), "n_images": 0,
                                "per_class_accuracy": {"ants": None, "bees": None},
                                "confusion_matrix": [[0, 0], [0, 0]]}
    (run / "metrics.json").write_text(json.dumps(metrics))  # json writes NaN; json.loads reads it
    preds = json.loads((run / "predictions.json").read_text())
    for it in preds["items"]:
        it.pop("true")
    (run / "predictions.json").write_text(json.dumps(preds))
    page = write_report(run).read_text()
    _assert_all_images_embedded_png(page)
    assert "n/a" in page and "0 of 11 wrong" in page


# ------------------------------------------------------------------ reports that never mislead
def test_run_report_counts_images_of_its_own_split(run_dir: Path):
    page = write_report(run_dir).read_text()
    assert "on these 10 validation images one image is 10 points" in page
    assert "153 images one image" not in page


def test_compare_report_configuration_shows_what_varied(compare_dir: Path):
    page = write_report(compare_dir).read_text()
    config = page[page.index("<h2>Configuration</h2>"):]
    assert "<code>heads</code></td><td>quantum, linear</td>" in config
    assert "<code>seeds</code></td><td>0–4 (5 seeds)</td>" in config
    assert "<code>head</code>" not in config and "<code>seed</code>" not in config


def test_compare_report_opens_with_its_conclusion_in_one_sentence(compare_dir: Path):
    from qtransfer.report.tables import conclusion
    from qtransfer.results import CompareResults

    sentence = conclusion(CompareResults.load(compare_dir / "results.json"))
    page = write_report(compare_dir).read_text()
    assert sentence.startswith("In plain words:") and sentence.count(". ") == 0
    assert page.index(sentence) < page.index("Accuracy and paired difference")


def test_compare_confusion_counts_every_seed_and_image(compare_dir: Path):
    from qtransfer.report.figures import compare_confusion_figure
    from qtransfer.results import CompareResults

    results = CompareResults.load(compare_dir / "results.json")
    fig = compare_confusion_figure(results, ["quantum", "linear"])
    for ax, head in zip(fig.axes, ("quantum", "linear")):
        counts = [int(t.get_text()) for t in ax.texts]
        assert sum(counts) == 5 * 49
        right = counts[0] + counts[3]  # the diagonal of a 2 x 2 matrix, row by row
        assert right == sum(map(sum, results.heads[head].correct))
        assert ax.get_title(loc="left") == f"{head}, 5 seeds: {right}/245 right"


def test_compare_report_of_an_older_file_leaves_out_what_it_lacks(tmp_path: Path):
    d = _make_compare_dir(tmp_path, per_head=False)
    page = write_report(d).read_text()
    assert _assert_all_images_embedded_png(page) == 2  # the comparison and the quantum head's circuit
    assert not (d / "figures" / "curves.png").exists() and not (d / "figures" / "confusion.png").exists()


def _make_paper_dir(root: Path) -> Path:
    from qtransfer.paper.common import PaperResults, PaperRow, Series

    rng = np.random.default_rng(0)
    grid = {"x": [-1.0, 1.0], "y": [-1.0, 1.0], "p1": rng.random((8, 8)).tolist()}
    figures = {"quantum": grid, "paper_classical": grid, "test_x": rng.normal(size=(20, 2)).tolist(),
               "test_y": [i % 2 for i in range(20)]}
    row = PaperRow("spirals", "spirals-1.52", "spirals 1.52 turns", Series("quantum", (0.9, 0.95), 0.97),
                   (), (0, 1), 1.0, figures=figures)
    root.mkdir(parents=True, exist_ok=True)
    PaperResults((row,), {}, (0, 1), 1.0, "qtransfer paper spirals --seeds 2").save(root / "results.json")
    return root


def test_report_accepts_a_paper_directory(tmp_path: Path):
    from helpers import call_cli

    d = _make_paper_dir(tmp_path / "paper")
    code, out, err = call_cli(["report", d])
    assert code == 0, err
    page = (d / "report.html").read_text()
    assert "Published vs qtransfer" in page and (d / "figures" / "spirals-1.52.png").is_file()


def test_decision_regions_have_a_colour_scale_and_a_legend(tmp_path: Path):
    from qtransfer.paper.common import PaperResults
    from qtransfer.paper.report import _spirals_figure

    row = PaperResults.load(_make_paper_dir(tmp_path) / "results.json").rows[0]
    fig = _spirals_figure(row)
    colorbars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert len(colorbars) == 1 and colorbars[0].get_ylabel() == "model's P(class 1)"
    legend = fig.axes[0].get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["test point, class 0", "test point, class 1"]
    page = write_report(tmp_path).read_text()
    assert "red 0, white 0.5, blue 1" in page


# ------------------------------------------------------------------ the pipeline drawing
def _numbers(text: str) -> list[float]:
    return [float(v) for v in re.findall(r"[+-]\d+\.\d{3}", text)]


@pytest.mark.parametrize("head", ["quantum", "classical", "linear"])
def test_run_report_opens_with_the_pipeline_and_one_images_numbers(tmp_path: Path, head: str):
    run = _make_run_dir(tmp_path, head=head)
    trace = json.loads((run / "pipeline.json").read_text())
    page = write_report(run).read_text()
    start = page.index("The pipeline, with one image flowing through it")
    assert start < page.index('<div class="cards">') and start < page.index("Training curves")
    drawing = page[start:page.index("Training curves")]
    assert "frozen backbone A′" in drawing and "<code>mobilenet_v2</code>" in drawing
    assert "<code>classifier.1</code> (<code>Linear(1280→1000)</code>) cut off" in drawing
    assert "F = 1280 features per image, computed once and cached" in drawing
    features = np.asarray(trace["features"])
    assert f"‖x‖ = {np.linalg.norm(features):.2f}" in drawing
    points = re.search(r'<polyline[^>]*points="([^"]*)"', drawing).group(1).split()
    assert len(points) == 1280  # a sparkline of every feature value
    stages = {s["name"]: s["values"] for s in trace["stages"]}
    if head == "quantum":
        for text in ("<code>Linear(1280→4)</code>", "<code>tanh · π/2</code>", "⟨Z<sub>i</sub>⟩ of each of the 4 qubits",
                     "<code>Linear(4→2)</code>", 'alt="the run\'s circuit"'):
            assert text in drawing, text
        angles = drawing[drawing.index("angles θ = "):]
        assert _numbers(angles)[:4] == pytest.approx(stages["angles"], abs=1e-3)
        assert all(abs(a) < np.pi / 2 for a in stages["angles"])
        z = drawing[drawing.index("⟨Z⟩ = "):]
        assert _numbers(z)[:4] == pytest.approx(stages["measurement"], abs=1e-3)
    elif head == "classical":
        assert "mixing block (trained)" in drawing and "quantum circuit" not in drawing
    else:
        assert "<code>Linear(1280→2)</code>" in drawing and "pre-net" not in drawing
    p = stages["probabilities"]
    assert f"<code>ants</code> {p[0]:.3f}" in drawing and f"<code>bees</code> {p[1]:.3f}" in drawing
    assert sum(p) == pytest.approx(1.0, abs=1e-5)
    assert "true class <b>ants</b>" in drawing and 'class="thumb"' in drawing


@pytest.mark.parametrize("head", ["quantum", "product", "classical", "linear"])
def test_trace_is_the_heads_own_forward(head: str):
    import torch

    from qtransfer.heads import build_head
    from qtransfer.heads.trace import trace_head

    model = build_head(head, 16, 3, n_qubits=3, depth=2, seed=1)
    x = torch.randn(16, generator=torch.Generator().manual_seed(2))
    stages = trace_head(model, x)
    with torch.no_grad():
        expected = torch.softmax(model(x[None]), -1)[0]
    assert stages[-1].name == "probabilities"
    assert stages[-1].values == pytest.approx(expected.tolist(), abs=1e-6)
    assert stages[-2].values == pytest.approx(model(x[None])[0].tolist(), abs=1e-6)  # the logits
    if head in ("quantum", "product"):
        angles = torch.tensor(stages[1].values)
        assert torch.allclose(angles, torch.tanh(model.pre(x)) * torch.pi / 2, atol=1e-6)
        assert all(-1 <= z <= 1 for z in stages[2].values)


def test_family_picture_is_in_the_docs_and_the_paper_report(tmp_path: Path):
    from qtransfer.report.family import FAMILY, family_svg

    docs = Path(__file__).resolve().parents[1] / "docs" / "images" / "family.svg"
    assert docs.read_text(encoding="utf-8") == family_svg(), "regenerate docs/images/family.svg from family_svg()"
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    assert "](docs/images/family.svg)" in readme
    svg = family_svg(standalone=False)
    for member in FAMILY:
        assert f">{member.kind}</text>" in svg and all(f">{c}</text>" in svg for c in member.commands)
    page = write_report(_make_paper_dir(tmp_path)).read_text()
    assert svg in page and page.index(svg) < page.index("Published vs qtransfer")


def test_pipeline_snippet_for_a_notebook(run_dir: Path):
    from qtransfer.report import pipeline_snippet

    snippet = pipeline_snippet(run_dir)
    assert snippet.startswith("<div><style>") and '<div class="pipeline">' in snippet and "angles θ = " in snippet
    with pytest.raises(CheckpointError, match="no metrics.json"):
        pipeline_snippet(run_dir / "figures")


def test_readme_describes_the_compare_report_as_it_is(compare_dir: Path):
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    start = readme.index("`CMP/report.html`")
    claim = " ".join(readme[start:readme.index("\n\n", start)].split())
    page = write_report(compare_dir).read_text()
    figures = {p.name for p in (compare_dir / "figures").iterdir()}
    for words, evidence in (("opens with that conclusion in one sentence", "In plain words:" in page),
                            ("paired differences", "comparison.png" in figures),
                            ("training curves", "curves.png" in figures),
                            ("confusion matrix", "confusion.png" in figures),
                            ("circuit of each quantum head", "circuit-quantum.png" in figures),
                            ("configuration the heads share", "<code>heads</code>" in page)):
        assert words in claim and evidence, words
    assert "sample grid is in each run's own report" in claim and "samples.png" not in figures
