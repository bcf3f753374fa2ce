"""Many models in one export: a subfolder each, worker processes, carrying on past failures."""
import json
import shutil

import converter
from converter.batch import export_many
from converter.cli import main
from conftest import FIXTURES, SEED_H5, SEED_KERAS


def test_a_folder_and_files_export_each_into_its_own_subfolder(tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    for source in (SEED_KERAS, SEED_H5, FIXTURES / "zoo" / "conv_bn.h5"):
        shutil.copy(source, models / source.name)
    (models / "notes.txt").write_text("not a model")
    outcomes = export_many([models, tmp_path / "missing.h5"], tmp_path / "out", jobs=2, formats=["npz"], reader="h5")
    assert [(o.ok, o.folder.rsplit("/", 1)[-1]) for o in outcomes] == [
        (True, "conv_bn.h5"), (True, "seed_mlp.h5"), (True, "seed_mlp.keras"), (False, "missing.h5")]
    assert outcomes[-1].code == "input_not_found"
    for outcome in outcomes[:3]:
        assert converter.verify(outcome.folder).ok
    assert converter.read(tmp_path / "out" / "seed_mlp.keras" / "seed_mlp.npz")["dense/kernel"].shape == (4, 20)


def test_cli_batch_summary_and_exit_code(tmp_path, capsys):
    code = main(["export", str(SEED_KERAS), str(FIXTURES / "zoo" / "nested.keras"), str(tmp_path / "nope.keras"),
                 "-o", str(tmp_path / "out"), "-f", "safetensors", "--reader", "h5", "--json"])
    outcomes = json.loads(capsys.readouterr().out)
    assert code == 8 and [o["ok"] for o in outcomes] == [True, True, False]
    assert main(["export", str(SEED_KERAS), str(SEED_H5), "-o", str(tmp_path / "ok"), "-f", "npz", "--reader", "h5"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == "2 of 2 models exported" and lines[0].startswith("OK ")


def test_verify_of_a_batch_output_folder_verifies_each_model(tmp_path, capsys):
    from converter.cli import main

    assert main(["export", str(FIXTURES / "seed_mlp.keras"), str(FIXTURES / "zoo" / "no_bias.keras"), "-o",
                 str(tmp_path), "-f", "npz", "-j", "1"]) == 0
    capsys.readouterr()
    assert main(["verify", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.count("verified ") == 2 and "seed_mlp.keras" in out and "no_bias.keras" in out
    (tmp_path / "no_bias.keras" / "no_bias.npz").write_bytes(b"damaged")
    assert main(["verify", str(tmp_path)]) == 7


def test_a_batch_where_every_model_failed_says_none_was_exported_and_how_to_replace(tmp_path, capsys):
    args = ["export", str(SEED_KERAS), str(SEED_H5), "-o", str(tmp_path / "out"), "-f", "npz", "--reader", "h5", "-j", "1"]
    assert main(args) == 0
    capsys.readouterr()
    assert main(args) == 8  # both outputs exist now
    captured = capsys.readouterr()
    assert captured.out.splitlines()[-1] == "none of the 2 models was exported: all failed"
    assert "add --force to replace them" in captured.err


def test_report_and_diff_of_a_batch_output_folder_name_the_exports_it_holds(tmp_path, capsys):
    """A batch's output is a folder of exports: report and diff say so and name one, not "a folder, not a model"."""
    assert main(["export", str(SEED_KERAS), str(FIXTURES / "zoo" / "no_bias.keras"), "-o", str(tmp_path / "out"),
                 "-f", "npz", "-q"]) == 0
    capsys.readouterr()
    assert main(["report", str(tmp_path / "out"), "-o", str(tmp_path / "r.html")]) == 4
    err = capsys.readouterr().err
    assert "holds 2 exports (no_bias.keras, seed_mlp.keras)" in err and "a folder, not a model" not in err
    assert f"hint: Name one of them, such as {tmp_path / 'out' / 'no_bias.keras'}" in err
    assert main(["diff", str(tmp_path / "out"), str(SEED_KERAS)]) == 4
    assert "holds 2 exports" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "out" / "seed_mlp.keras"), "-o", str(tmp_path / "r.html")]) == 0
