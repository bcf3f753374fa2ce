"""The CLI, in-process through main() and once through real subprocesses."""
import json
import os
import subprocess
import sys

import pytest

import converter
from converter.cli import main
from conftest import FIXTURES, ROOT, SEED_KERAS


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_inspect_prints_a_table_with_every_weight_and_totals(capsys):
    code, out, err = run(capsys, "inspect", str(SEED_KERAS))
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0] == 'Model: "seed_mlp" (Sequential) from seed_mlp.keras'
    assert lines[2].split() == ["#", "Layer", "Class", "Weight", "Shape", "Dtype", "Params"]
    assert lines[4].split() == ["0", "dense", "Dense", "dense/kernel", "(4,", "20)", "float32", "80"]
    assert lines[5].split() == ["dense/bias", "(20,)", "float32", "20"]
    assert lines[-3:-1] == ["Total: 6 tensors, 321 parameters, 1,284 bytes", "Trainable: 321 parameters; non-trainable: 0"]
    # each float32 array padded to 16 bytes: dense 320 + 80, dense_1 800 + 48 (40), dense_2 48 (40) + 16 (4)
    assert lines[-1] == "C arrays: 1,312 bytes of flash (16-byte alignment); largest layers: dense_1 848, dense 400, dense_2 64"


def test_inspect_json_prints_one_document_and_nothing_else(capsys):
    code, out, _ = run(capsys, "inspect", str(SEED_KERAS), "--json")
    document = json.loads(out)
    assert code == 0 and document["model"]["parameters"] == 321 and document["files"] == []


def test_export_then_verify(tmp_path, capsys):
    code, out, _ = run(capsys, "export", str(SEED_KERAS), "-o", str(tmp_path / "out"))
    assert code == 0 and "exported 6 tensors (321 parameters)" in out
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "manifest.json", "seed_mlp.c", "seed_mlp.h", "seed_mlp.npz", "seed_mlp.parquet", "seed_mlp.safetensors"]
    code, out, _ = run(capsys, "verify", str(tmp_path / "out"))
    assert code == 0
    assert [line.split()[:3] for line in out.splitlines()[:3]] == [
        ["OK", "seed_mlp.npz", "npz"], ["OK", "seed_mlp.safetensors", "safetensors"], ["OK", "seed_mlp.parquet", "parquet"]]


def test_export_chosen_formats_and_refuse_overwrite_without_force(tmp_path, capsys):
    assert run(capsys, "export", str(SEED_KERAS), "-o", str(tmp_path), "-f", "safetensors,npz")[0] == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json", "seed_mlp.npz", "seed_mlp.safetensors"]
    before = (tmp_path / "seed_mlp.npz").stat().st_mtime_ns
    code, out, err = run(capsys, "export", str(SEED_KERAS), "-o", str(tmp_path), "-f", "npz")
    assert code == 6 and "already exist" in err and "--force" in err and "Traceback" not in err
    assert (tmp_path / "seed_mlp.npz").stat().st_mtime_ns == before
    assert run(capsys, "export", str(SEED_KERAS), "-o", str(tmp_path), "-f", "npz", "--force")[0] == 0


def test_verify_fails_with_exit_7_on_a_flipped_byte(tmp_path, capsys):
    run(capsys, "export", str(SEED_KERAS), "-o", str(tmp_path), "-f", "safetensors")
    path = tmp_path / "seed_mlp.safetensors"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x80
    path.write_bytes(bytes(data))
    code, out, _ = run(capsys, "verify", str(tmp_path))
    assert code == 7
    assert out.splitlines()[0].startswith("FAIL seed_mlp.safetensors")
    assert "dense_2/kernel: bytes differ" in out  # the last tensor in data order (larger items first, then by name)


@pytest.mark.parametrize("argv, code, needle", [
    (["inspect", "missing.keras"], 3, "no such file: missing.keras"),
    (["export", str(SEED_KERAS), "-f", "tiff"], 2, "unknown format 'tiff'"),
    (["verify", "/nonexistent-folder"], 3, "no manifest.json"),
    (["inspect", "https://example.com/model.keras"], 2, "remote paths are not read"),
    (["frobnicate"], 2, "invalid choice"),
])
def test_errors_are_short_clear_and_mapped_to_exit_codes(capsys, argv, code, needle):
    actual, out, err = run(capsys, *argv)
    assert actual == code and needle in err and "Traceback" not in err


def test_not_a_model_file_gets_a_clear_error(tmp_path, capsys):
    (tmp_path / "notes.keras").write_text("hello")
    code, _, err = run(capsys, "inspect", str(tmp_path / "notes.keras"))
    assert code == 4 and "neither an HDF5 file nor a .keras (zip) archive" in err
    (tmp_path / "empty.h5").write_bytes(b"")
    assert run(capsys, "inspect", str(tmp_path / "empty.h5"))[0] == 4


def test_json_errors_are_json(capsys):
    code, out, _ = run(capsys, "inspect", "missing.keras", "--json")
    assert code == 3 and json.loads(out)["error"]["code"] == "input_not_found"


def test_debug_shows_the_traceback(capsys):
    code, _, err = run(capsys, "--debug", "inspect", "missing.keras")
    assert code == 3 and "Traceback" in err


def test_version_and_help(capsys):
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.startswith("keras-weights ")
    code, out, _ = run(capsys, "--help")
    assert code == 0 and "examples:" in out and "exit codes:" in out
    code, out, _ = run(capsys, "export", "--help")
    assert code == 0 and "--force" in out and "examples:" in out


def test_console_script_and_python_m_run_as_real_processes(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-m", "converter", "export", str(SEED_KERAS), "-o", str(tmp_path)],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # TensorFlow's start-up chatter does not leak
    result = subprocess.run([sys.executable, "-m", "converter", "verify", str(tmp_path)], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0 and "verified" in result.stdout


def test_installed_console_script():
    script = os.path.join(os.path.dirname(sys.executable), "keras-weights")
    if not os.path.exists(script):
        pytest.skip("keras-weights is not installed in this environment (pip install -e .)")
    result = subprocess.run([script, "inspect", str(SEED_KERAS)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and "Total: 6 tensors, 321 parameters" in result.stdout


def test_export_c_options_and_verify_compile(tmp_path, capsys):
    code, _, err = run(capsys, "export", str(SEED_KERAS), "-o", str(tmp_path), "-f", "c", "--c-prefix", "net",
                       "--c-header-only", "--c-arrays", "nested", "--c-align", "32", "--layout", "dense_out_in")
    assert code == 0, err
    header = (tmp_path / "seed_mlp.h").read_text()
    assert "#define NET_ALIGNMENT 32" in header and "static const float net_dense_kernel[20][4]" in header
    code, out, _ = run(capsys, "verify", str(tmp_path), "--compile")
    assert code == 0 and out.splitlines()[0].startswith("OK   seed_mlp.h")


def test_c_options_without_c_output_are_a_usage_error(tmp_path, capsys):
    code, _, err = run(capsys, "export", str(SEED_KERAS), "-o", str(tmp_path), "-f", "npz", "--c-prefix", "net")
    assert code == 2 and "options given for formats that are not written: c" in err


def test_inspect_splits_trainable_and_non_trainable_parameters(capsys):
    assert main(["inspect", str(FIXTURES / "zoo" / "conv_bn.keras")]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[-2] == "Trainable: 250 parameters; non-trainable: 8"  # BatchNorm moving statistics


@pytest.fixture(scope="module")
def deep_mlp(tmp_path_factory, keras_module):
    """31 Dense layers: 62 weight tensors, above the 60 that inspect shows one row each by default."""
    keras = keras_module
    model = keras.Sequential([keras.Input((2,)), *(keras.layers.Dense(2, name=f"d{i}") for i in range(30)),
                              keras.layers.Dropout(0.1, name="drop"), keras.layers.Dense(1, name="out")], name="deep")
    path = tmp_path_factory.mktemp("deep") / "deep.keras"
    model.save(path)
    return path


def test_inspect_of_a_large_model_shows_one_row_per_layer_with_weights(capsys, deep_mlp):
    code, out, _ = run(capsys, "inspect", str(deep_mlp), "--reader", "h5")
    lines = out.splitlines()
    assert code == 0 and lines[2].split() == ["#", "Layer", "Class", "Weights", "Params", "Bytes", "C", "flash"]
    assert lines[4].split() == ["0", "d0", "Dense", "kernel", "(2,", "2),", "bias", "(2,)", "6", "24", "32"]
    rows = lines[4:lines.index(lines[1], 4)]
    assert [row.split()[1] for row in rows] == [*(f"d{i}" for i in range(30)), "out"]  # the Dropout has no row
    assert sum(int(row.split()[-3]) for row in rows) == 30 * 6 + 3
    assert lines[-1] == "One row per layer with weights (31 of 32 layers; 1 without); --weights shows one row per weight tensor"
    code, out, _ = run(capsys, "inspect", str(deep_mlp), "--reader", "h5", "--weights")
    assert out.splitlines()[2].split()[3] == "Weight" and len(out.splitlines()) == 4 + 62 + 1 + 1 + 3  # the Dropout has a row here


def test_inspect_layers_gives_the_per_layer_view_of_a_small_model(capsys):
    code, out, _ = run(capsys, "inspect", str(SEED_KERAS), "--layers")
    assert code == 0 and out.splitlines()[4].split() == ["0", "dense", "Dense", "kernel", "(4,", "20),", "bias", "(20,)", "100", "400", "400"]
    assert main(["inspect", str(SEED_KERAS), "--layers", "--weights"]) == 2  # one view or the other
    capsys.readouterr()


def test_the_export_summary_shows_the_manifest_with_its_size(tmp_path, capsys):
    assert main(["export", str(SEED_KERAS), "-o", str(tmp_path), "-f", "npz"]) == 0
    line = capsys.readouterr().out.splitlines()[-1]
    size = (tmp_path / "manifest.json").stat().st_size
    assert line.split()[:3] == ["manifest.json", f"{size:,}", "bytes"]


def test_a_stop_signal_after_the_export_is_complete_does_not_report_a_failure(tmp_path, monkeypatch):
    """The summary is being printed when SIGTERM arrives: the export on disk is complete, so exit 0."""
    import os
    import signal

    from converter.cli import commands as cli

    real = cli._ignore_stop_signals

    def then_signal():
        real()
        os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(cli, "_ignore_stop_signals", then_signal)
    assert main(["export", str(SEED_KERAS), "-o", str(tmp_path), "-f", "npz"]) == 0
    assert converter.verify(tmp_path).ok


def test_argument_errors_are_json_too_when_json_is_asked_for(capsys):
    assert main(["export", str(SEED_KERAS), "--json", "--layout", "sideways"]) == 2
    out, err = capsys.readouterr()
    error = json.loads(out)["error"]
    assert error["exit_code"] == 2 and "invalid choice: 'sideways'" in error["message"] and err == ""
    assert main(["export", str(SEED_KERAS), "--layout", "sideways"]) == 2
    assert "invalid choice: 'sideways'" in capsys.readouterr().err


def test_a_terminal_gets_a_line_before_the_model_is_read_and_a_pipe_does_not(tmp_path):
    """Loading Keras takes seconds with nothing else shown: on a terminal a line says what is happening."""
    import pty

    leader, follower = pty.openpty()
    command = [sys.executable, "-m", "converter", "inspect", str(SEED_KERAS), "--reader", "h5"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    on_terminal = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=follower, env=env, timeout=120)
    os.close(follower)
    shown = os.read(leader, 4096).decode()
    os.close(leader)
    piped = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert on_terminal.returncode == piped.returncode == 0
    assert "keras-weights: reading" in shown and "seed_mlp.keras" in shown and piped.stderr == ""


@pytest.mark.parametrize("colours", ["standard", "256", "truecolor"])
def test_a_finished_progress_bar_does_not_look_empty_on_a_terminal_of_few_colours(colours):
    """rich's default bar colours are RGB; on an 8/16-colour terminal the finished one became the same grey
    as an empty bar's back. The finished bar's colour differs from the back's, and it says 100%."""
    import io
    import re
    import time

    from rich.console import Console

    from converter.cli import ProgressBar

    screen = io.StringIO()
    bar = ProgressBar(Console(file=screen, force_terminal=True, color_system=colours, width=140))
    bar.started = time.monotonic() - 2  # shown after a second
    bar("npz", 3, 3, 4096, 4096)
    bar("c", 0, 3, 0, 4096)
    bar.bar.refresh()
    bar.close()
    frame = [re.findall(rf"{name} {{3,}}[^\r\n]*", screen.getvalue())[-1] for name in ("npz", "c")]  # last frame
    finished, empty = (re.findall(r"\x1b\[([\d;]+)m━", line) for line in frame)
    assert finished and empty and set(finished).isdisjoint(empty), frame
    assert "100%" in frame[0] and "0%" in frame[1]


def test_format_names_are_case_insensitive_and_errors_say_things_once(tmp_path, capsys):
    code, _, _ = run(capsys, "export", str(SEED_KERAS), "-o", str(tmp_path / "a"), "-f", "NPZ", "--reader", "h5")
    assert code == 0 and sorted(p.name for p in (tmp_path / "a").iterdir()) == ["manifest.json", "seed_mlp.npz"]
    code, _, err = run(capsys, "export", str(SEED_KERAS), "-o", str(tmp_path / "b"), "-f", "onnx")
    assert code == 2 and err.count("onnx") == 1 and "Received" not in err, err
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "seed_mlp.npz").write_bytes(b"mine")
    code, _, err = run(capsys, "export", str(SEED_KERAS), "-o", str(tmp_path / "c"), "-f", "npz")
    assert code == 6 and f"seed_mlp.npz already exists in {tmp_path / 'c'}" in err, err


def test_a_command_that_imported_tensorflow_ends_fast_with_all_its_output(tmp_path):
    """After the work, the process ends without TensorFlow's slow teardown (os._exit): what it printed to a pipe,
    and the files it wrote, are complete."""
    result = subprocess.run([sys.executable, "-m", "converter", "inspect", str(SEED_KERAS), "--reader", "keras", "--json"],
                            capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert result.returncode == 0 and json.loads(result.stdout)["model"]["parameters"] == 321
    result = subprocess.run([sys.executable, "-m", "converter", "export", str(SEED_KERAS), "-o", str(tmp_path),
                             "-f", "npz", "--reader", "keras"], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert result.returncode == 0 and "run `keras-weights verify" in result.stdout
    assert converter.verify(tmp_path).ok


def test_export_help_explains_every_layout(capsys):
    from converter import layouts

    assert main(["export", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    for name in layouts.LAYOUTS:
        assert f"{name}:" in text or f"{name} (default):" in text
    assert "state_dict" in text


def test_a_closed_pipe_is_not_success(tmp_path, monkeypatch):
    """`diff A B | head -1`: when the reader goes away, the status is 141 (128 + SIGPIPE), never 0 (issue 25)."""
    import io

    converter.export(SEED_KERAS, tmp_path / "a", formats=["npz"])
    converter.export(FIXTURES / "zoo" / "conv_bn.keras", tmp_path / "b", formats=["npz"])
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone: every write raises BrokenPipeError
    stream = io.TextIOWrapper(io.FileIO(write_end, "w"), write_through=True)
    monkeypatch.setattr("sys.stdout", stream)
    assert main(["diff", str(tmp_path / "a"), str(tmp_path / "b")]) == 141
    monkeypatch.undo()
    assert main(["diff", str(tmp_path / "a"), str(tmp_path / "b")]) == 1


@pytest.mark.parametrize("args", [["--help"], ["inspect", str(SEED_KERAS), "--reader", "h5"], ["export", "--nope"]],
                         ids=["help", "inspect-h5", "usage-error"])
def test_start_up_loads_no_heavy_library_a_float32_model_does_not_need(args):
    """ml_dtypes (0.5-0.9 s), TensorFlow, pyarrow and torch are imported only where a value needs them (issue 25;
    the times are in benchmarks/ and docs/performance.md)."""
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "converter", *args], capture_output=True,
                            text=True, timeout=120, cwd=ROOT)
    imported = {line.split("|")[-1].strip().split(".")[0] for line in result.stderr.splitlines() if "|" in line}
    assert "converter" in imported and not imported & {"ml_dtypes", "tensorflow", "keras", "pyarrow", "torch"}


@pytest.mark.parametrize("args, code", [(["--help"], 0), (["export", "--help"], 0), (["--version"], 0),
                                        (["export", "--nope"], 2), (["frob"], 2), (["export", "--json"], 2)])
def test_help_version_and_usage_errors_are_answered_before_numpy_loads(args, code):
    """What the arguments alone answer costs no numpy (~0.1 s of a cold start), h5py or TensorFlow: ``--help`` in
    ~0.04 s (issue 25 asks <= 0.15 s; docs/performance.md)."""
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "converter", *args], capture_output=True,
                            text=True, timeout=120, cwd=ROOT)
    imported = {line.split("|")[-1].strip().split(".")[0] for line in result.stderr.splitlines() if "|" in line}
    assert result.returncode == code and "converter" in imported
    assert not imported & {"numpy", "h5py", "tensorflow", "pyarrow"}
    said = result.stdout + "".join(line for line in result.stderr.splitlines(True) if "import time:" not in line)
    assert ("usage: keras-weights" if "--help" in args else "keras-weights")  in said
    if "--json" in args:
        assert json.loads(result.stdout)["error"]["exit_code"] == 2


def test_a_bad_c_alignment_says_what_to_give(tmp_path, capsys):
    assert main(["export", str(SEED_KERAS), "-o", str(tmp_path), "-f", "c", "--c-align", "3"]) == 2
    err = capsys.readouterr().err
    assert "hint: Give --c-align" in err and "keras-weights --help" not in err


def test_hints_name_options_as_the_caller_spells_them(tmp_path, capsys):
    """The command line is told --force, Python force=True; neither the other's (issue 25 point 8)."""
    converter.export(SEED_KERAS, tmp_path / "out", formats=["npz"])
    assert main(["export", str(SEED_KERAS), "-o", str(tmp_path / "out"), "-f", "npz"]) == 6
    err = capsys.readouterr().err
    assert "--force" in err and "force=True" not in err
    with pytest.raises(converter.OutputError) as raised:
        converter.export(SEED_KERAS, tmp_path / "out", formats=["npz"])
    assert "force=True" in raised.value.hint and "--force" not in raised.value.hint
    assert main(["export", str(SEED_KERAS), "-o", str(tmp_path / "q"), "--min-snr", "30"]) == 2
    err = capsys.readouterr().err
    assert "--quantize int8" in err and "quantize=" not in err and "[[" not in err
