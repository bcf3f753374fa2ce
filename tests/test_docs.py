"""The README and docs/ say what the tool does: their examples are run here as written."""
import re

from converter.cli import main
from conftest import ROOT, SEED_KERAS

README = (ROOT / "README.md").read_text()


def test_the_readme_inspect_table_is_what_inspect_prints(capsys):
    shown = README.split("`inspect` prints a table like `model.summary()`, one row per weight")[1].split("```text\n")[1]
    assert main(["inspect", str(SEED_KERAS)]) == 0
    assert capsys.readouterr().out == shown.split("```")[0]


def test_every_link_to_a_doc_page_resolves():
    pages = [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]
    for page in pages:
        prose = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)  # code is not links
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", prose):
            assert (page.parent / target).is_file(), f"{page.name} links to {target}, which does not exist"


def test_the_readme_stays_short_and_lists_every_format_and_reader():
    import converter
    from converter import readers

    assert len(README.splitlines()) <= 150
    for name in converter.FORMATS:
        assert f"| {name} |" in README
    for name in readers.CHOICES:
        assert name in README


def test_the_readme_exit_codes_are_the_error_classes_codes():
    import converter

    documented = {int(code) for code in re.findall(r"^\| (\d+) \|", README, re.M)}
    classes = {c.exit_code for c in vars(converter).values() if isinstance(c, type) and issubclass(c, converter.ConverterError)}
    assert classes <= documented


def test_the_quantization_example_is_what_export_prints(tmp_path, capsys):
    page = (ROOT / "docs" / "quantization.md").read_text()
    shown = page.split("```text\n$ keras-weights export ")[1].split("```")[0]
    command, _, expected = shown.partition("\n...\n")
    argv = command.split()
    argv[0], argv[argv.index("-o") + 1] = str(ROOT / argv[0]), str(tmp_path / "fw")
    assert main(["export", *argv]) == 0
    assert capsys.readouterr().out.endswith(expected)


def test_the_diff_example_is_what_diff_prints(tmp_path, capsys):
    import converter

    page = (ROOT / "docs" / "report.md").read_text()
    shown = page.split("```text\n$ keras-weights diff ")[1].split("```")[0]
    expected = shown[shown.index("Tensor"):]
    converter.export(ROOT / "fixtures" / "zoo" / "conv_bn.keras", tmp_path / "out-int8", quantize="int8")
    assert main(["diff", str(ROOT / "fixtures" / "zoo" / "conv_bn.keras"), str(tmp_path / "out-int8")]) == 1
    out = capsys.readouterr().out
    assert out[out.index("Tensor"):] == expected


def test_the_readmes_python_block_runs_as_written(tmp_path, monkeypatch):
    """Every call of the README's library example, on the seed model, in a fresh folder (issue 25)."""
    block = README.split("```python\n", 1)[1].split("```", 1)[0]
    monkeypatch.chdir(tmp_path)
    scope = {"model_or_path": str(SEED_KERAS)}
    exec(compile(block, "README.md", "exec"), scope)  # noqa: S102 - our own README
    assert scope["report"].ok and sorted(scope["arrays"]) == sorted(t.name for t in scope["tensors"])
    assert "net_dense_kernel" in (tmp_path / "fw" / "seed_mlp.h").read_text() and (tmp_path / "fw8" / "seed_mlp.c").is_file()
