"""Every public function reports bad input with a ConverterError subclass; exit codes come from the classes."""
import shutil

import pytest

import converter
from converter.cli import main
from conftest import GOLDEN, SEED_KERAS, with_edited_config


@pytest.mark.parametrize("name", ["seed_mlp.npz", "seed_mlp.safetensors", "seed_mlp.parquet", "seed_mlp.c"])
def test_read_of_a_damaged_file_is_input_invalid(tmp_path, name):
    damaged = tmp_path / name
    data = (GOLDEN / name).read_bytes()
    damaged.write_bytes(data[: len(data) // 2] if name != "seed_mlp.c" else data.replace(b"};", b"", 1))
    with pytest.raises(converter.InputInvalid, match=f"cannot read {name}"):
        converter.read(damaged)


def test_a_truncated_keras_metadata_pb_is_input_invalid(tmp_path, load_model):
    """tf.keras SavedModels carry keras_metadata.pb; two bytes of it used to be an IndexError (exit 70)."""
    folder = tmp_path / "sm"
    load_model(SEED_KERAS).export(folder, verbose=False)
    (folder / "keras_metadata.pb").write_bytes(b"\x0a\x05")  # field 1, 5 bytes announced, none there
    assert main(["inspect", str(folder)]) == 4


def test_verification_failure_is_raised_by_the_report_and_gives_exit_7(tmp_path, capsys):
    shutil.copytree(GOLDEN, tmp_path / "out")
    target = tmp_path / "out" / "seed_mlp.npz"
    target.write_bytes(target.read_bytes()[:-10])
    report = converter.verify(tmp_path / "out")
    with pytest.raises(converter.VerificationFailed, match="seed_mlp.npz"):
        report.raise_if_failed()
    assert main(["verify", str(tmp_path / "out")]) == converter.VerificationFailed.exit_code == 7


def test_a_deeply_nested_manifest_is_an_invalid_manifest(tmp_path, capsys):
    (tmp_path / "manifest.json").write_text("[" * 100_000 + "]" * 100_000)
    assert main(["verify", str(tmp_path)]) == converter.ManifestInvalid.exit_code == 7
    assert "internal error" not in capsys.readouterr().err


@pytest.mark.parametrize("junk", [{"class_name": "Lambda", "config": "not a dict"},
                                  {"class_name": "Lambda", "config": {"function": 7, "name": ["x"]}},
                                  {"class_name": 5, "config": None}])
def test_junk_in_config_json_is_a_clear_error_not_a_crash(tmp_path, capsys, junk):
    crafted = with_edited_config(SEED_KERAS, tmp_path / "junk.keras",
                                 lambda config: config["config"]["layers"].insert(1, junk))
    code = main(["export", str(crafted), "-o", str(tmp_path / "out"), "--reader", "keras"])
    err = capsys.readouterr().err
    assert code in (4, 5) and "internal error" not in err and "Traceback" not in err, err
