"""keras-weights report: one self-contained HTML page, rendered in a real browser (headless Chromium)."""
import re
import shutil
import subprocess

import pytest

import converter
from converter.cli import main
from conftest import FIXTURES, SEED_KERAS, needs

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [needs("chromium")] if CHROMIUM is None else []


def render(page, tmp_path, screenshot=None) -> tuple[str, list[str]]:
    """The DOM after the page's script ran, and every console message (errors, refused CSP, ...)."""
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0",
             f"--user-data-dir={tmp_path / 'profile'}"]
    result = subprocess.run([*flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    console = [line for line in result.stderr.splitlines() if ":CONSOLE" in line]
    if screenshot:
        subprocess.run([*flags, f"--screenshot={screenshot}", "--window-size=1200,2000", page.as_uri()],
                       capture_output=True, timeout=120, check=True)
    return result.stdout, console


def test_the_seed_models_report_renders_with_every_tensor_and_no_console_message(tmp_path):
    page = converter.report(SEED_KERAS, tmp_path / "seed.html")
    dom, console = render(page, tmp_path, screenshot=tmp_path / "seed.png")
    assert console == [], console
    assert 'data-ready="6"' in dom  # the page's own script ran and counted six histograms
    for name in ("dense/kernel", "dense/bias", "dense_1/kernel", "dense_2/bias"):
        assert f'data-name="{name}"' in dom
    assert dom.count('<svg class="histogram"') == 6
    assert (tmp_path / "seed.png").stat().st_size > 10_000
    text = page.read_text()
    assert "http" not in re.sub(r'content="[^"]*"', "", text).replace("http-equiv", "")  # nothing fetched
    import html

    assert "default-src 'none'" in html.unescape(text) and "connect-src 'none'" in html.unescape(text)


def test_names_from_the_file_are_escaped(tmp_path):
    page = converter.report(FIXTURES / "zoo" / "hostile.keras", tmp_path / "hostile.html")
    dom, console = render(page, tmp_path)
    assert console == [] and 'data-name="quo&quot;te/kernel"' in dom
    assert "new\nline" not in page.read_text().split("<body>")[0]  # not in the head, and escaped where it is


def test_anomalies_are_listed_first_with_links(tmp_path):
    page = converter.report(FIXTURES / "zoo" / "special_values.keras", tmp_path / "special.html")
    text = page.read_text()
    anomalies = text.split("<h2>Anomalies")[1].split("<h2>")[0]
    assert "f32/kernel</a>: 3 NaN and 2 infinite values" in anomalies
    assert text.index("<h2>Anomalies") < text.index("<h2>Tensors")
    assert render(page, tmp_path)[1] == []


def test_a_quantized_export_shows_its_errors_bytes_and_a_diff(tmp_path, capsys):
    converter.export(FIXTURES / "zoo" / "conv_bn.keras", tmp_path / "out", quantize="int8")
    model = FIXTURES / "zoo" / "conv_bn.keras"
    assert main(["report", str(tmp_path / "out"), "--model", str(model), "--against", str(model), "-o",
                 str(tmp_path / "int8.html")]) == 0
    text = (tmp_path / "int8.html").read_text()
    assert "error of the values read back" in text and "int8_symmetric, axis 3" in text
    assert "C arrays: bytes per layer" in text and "Diff against" in text and "2 tensors differ" in text
    assert render(tmp_path / "int8.html", tmp_path)[1] == []
    capsys.readouterr()


def test_bad_arguments_are_clear_and_write_nothing(tmp_path, capsys):
    assert main(["report", str(SEED_KERAS), "-o", str(tmp_path / "r.txt")]) == 2
    assert main(["report", str(tmp_path / "missing.keras"), "-o", str(tmp_path / "r.html")]) == 3
    (tmp_path / "r.html").write_text("mine")
    assert main(["report", str(SEED_KERAS), "-o", str(tmp_path / "r.html")]) == 6
    assert (tmp_path / "r.html").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html"]
    capsys.readouterr()


def test_a_large_quantized_export_opens_on_a_screenful_with_counts_and_the_values_codes_stand_for(
        tmp_path, keras_module):
    """Issue 25 point 10: cards beyond a screenful folded by layer, a count axis on every histogram, int8 figures
    beside the dequantized values they stand for, and the summary's bytes those of the export."""
    import json

    from converter import html_report

    keras = keras_module
    model = keras.Sequential([keras.Input((8,)), *(keras.layers.Dense(8, name=f"d{i}") for i in range(10))], name="deep")
    model.save(tmp_path / "deep.keras")
    converter.export(tmp_path / "deep.keras", tmp_path / "out", formats=["npz"], quantize="int8")
    page = converter.report(tmp_path / "out", tmp_path / "deep.html")
    text = page.read_text()
    cards = text.split("<h2>Tensors</h2>")[1]
    before_folds = cards.split('<details class="layer-group">')[0]
    assert before_folds.count('<section class="tensor"') == html_report.SCREENFUL
    assert cards.count('<details class="layer-group">') == len({f"d{i}" for i in range(10)}) - html_report.SCREENFUL // 3
    assert text.count('class="count-axis"') == text.count('<svg class="histogram"') > 0
    assert "stands for (dequantized)" in text and "values they stand for (dequantized)" in text
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    stored = sum(t["nbytes"] for t in manifest["tensors"])
    assert f"{stored:,} exported ({manifest['model']['bytes']:,} before quantization)" in text
    dom, console = render(page, tmp_path)
    assert console == [] and 'data-ready="' in dom


def test_model_with_a_model_as_the_source_is_a_clear_error(tmp_path, capsys):
    """--model names the model an export came from; given with a model as the source it says so, writing nothing."""
    assert main(["report", str(SEED_KERAS), "--model", str(SEED_KERAS), "-o", str(tmp_path / "r.html")]) == 2
    err = capsys.readouterr().err
    assert "is a model: --model gives the model an export came from" in err and "model=" not in err
    assert not (tmp_path / "r.html").exists()
