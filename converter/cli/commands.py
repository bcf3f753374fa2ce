"""One function per command: call the library, print the result (``render``)."""
from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import sys
import threading
import time
from pathlib import Path

from .. import api, atomic, batch, formats, verification
from ..compare import diff
from ..errors import OutputError, QuantizationError, SomeModelsFailed, UsageError, VerificationFailed
from ..html_report import report
from ..load import load_into
from ..readers import open_keras_model
from ..arguments import given_format_options
from .render import (SHOWN_ROWS, check_json, print_report, render_activations, render_budget, render_diff,
                     render_quantization, render_table, show)


def _say(args: argparse.Namespace, text: str) -> None:
    """One line of feedback on a terminal before a step that takes seconds (loading Keras, compiling)."""
    if sys.stderr.isatty() and not getattr(args, "quiet", False) and not args.json:
        show(f"keras-weights: {text}", file=sys.stderr, flush=True)


def run_inspect(args: argparse.Namespace) -> int:
    _say(args, f"reading {args.model} ...")
    info = api.inspect(args.model, reader=args.reader, trust_code=args.trust_model_code, allow_sparse=args.allow_sparse,
                       quantize=args.quantize, calibration=args.calibration)
    if args.json:
        print(json.dumps(info, sort_keys=True, indent=2, allow_nan=False))
        return 0
    show(render_table(info, args.view))
    if args.quantize:
        show("\n" + render_quantization(info, limit=None if args.verbose else SHOWN_ROWS))
    if "activations" in (info.get("inference") or {}):  # calibrated, or trained by a quantization-aware model
        show("\n" + render_activations(info))
    return 0


def run_export(args: argparse.Namespace) -> int:
    options = dict(formats=args.formats, force=args.force, layout=args.layout, options=given_format_options(args) or None,
                   reader=args.reader, fail_on_non_finite=args.fail_on_non_finite, trust_code=args.trust_model_code,
                   allow_sparse=args.allow_sparse, quantize=args.quantize, min_snr=args.min_snr, max_bytes=args.max_bytes,
                   calibration=args.calibration)
    if len(args.model) > 1 or batch.is_folder_of_models(args.model[0]):
        return _report_batch(batch.export_many(args.model, args.output, jobs=args.jobs, **options), args.json)
    bar = ProgressBar() if sys.stderr.isatty() and not args.quiet and not args.json else None
    _say(args, f"reading {args.model[0]} ...")
    try:
        manifest = api.export(args.model[0], args.output, progress=bar, **options)
    except QuantizationError as error:
        if getattr(error, "manifest", None) and not args.json:  # the table that shows which tensors fall short
            show(render_quantization(error.manifest, args.min_snr), file=sys.stderr)
        raise
    finally:
        if bar:
            bar.close()
    _ignore_stop_signals()  # the export is complete on disk: a late Ctrl-C or SIGTERM must not report otherwise
    if args.quiet:
        return 0
    if args.json:
        print(json.dumps(manifest, sort_keys=True, indent=2, allow_nan=False))
        return 0
    model = manifest["model"]
    show(f"exported {model['tensors']} tensors ({model['parameters']:,} parameters) of "
          f"{manifest['source']['file'] or model['name']} to {os.path.join(args.output, '')}")
    for entry in manifest["files"]:
        show(f"  {entry['path']:<40} {entry['bytes']:>14,} bytes  {entry['format']}")
    size = os.path.getsize(os.path.join(args.output, "manifest.json"))
    show(f"  {'manifest.json':<40} {size:>14,} bytes  run `keras-weights verify {args.output}` to check")
    for line in formats.summary_lines(manifest, args.output):
        show(line)
    if args.max_bytes:
        show(render_budget(manifest, args.max_bytes))
    if args.quantize:
        show("\n" + render_quantization(manifest, args.min_snr, limit=None if args.verbose else SHOWN_ROWS))
    return 0


def _ignore_stop_signals() -> None:
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)


class ProgressBar:
    """Bytes and tensors per format on stderr, for exports that take more than about a second (terminals only)."""

    def __init__(self, console=None) -> None:
        self.started, self.bar, self.tasks, self.console = time.monotonic(), None, {}, console

    def __call__(self, format_name: str, tensors: int, tensors_total: int, done: int, total: int) -> None:
        if self.bar is None:
            if time.monotonic() - self.started < 1.0:
                return
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TaskProgressColumn,
                TextColumn,
            )

            # Named colours, not rich's RGB defaults: on an 8/16-colour terminal those become grey, and a
            # finished bar looked like an empty one. The percentage says it without colour.
            self.bar = Progress(TextColumn("{task.description:<12}"),
                                BarColumn(style="bright_black", complete_style="cyan", finished_style="green"),
                                TaskProgressColumn(), DownloadColumn(), TextColumn("{task.fields[tensors]} tensors"),
                                console=self.console or Console(stderr=True), transient=True)
            self.bar.start()
        if format_name not in self.tasks:
            self.tasks[format_name] = self.bar.add_task(format_name, total=total, tensors="")
        self.bar.update(self.tasks[format_name], completed=done, tensors=f"{tensors}/{tensors_total}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def _report_batch(outcomes: list, as_json: bool) -> int:
    """One line per model, then totals; exit 8 when any model failed."""
    failed = [o for o in outcomes if not o.ok]
    if as_json:
        print(json.dumps([vars(o) for o in outcomes], sort_keys=True, indent=2))
    else:
        width = max(len(o.source) for o in outcomes)
        for o in outcomes:
            detail = (f"{o.tensors} tensors, {o.parameters:,} parameters, {o.reader} reader -> {o.folder}" if o.ok
                      else o.cli_message or o.message)
            show(f"{'OK  ' if o.ok else 'FAIL'} {o.source:<{width}}  {detail}")
        show(_batch_total(len(outcomes), len(failed)))
        if any(o.code == OutputError.code and "exist" in o.message for o in failed):
            show("  hint: outputs of these models exist already: add --force to replace them", file=sys.stderr)
    return SomeModelsFailed.exit_code if failed else 0


def _batch_total(count: int, failed: int) -> str:
    """The batch's last line: none exported is said as such, not as "0 of N".

    >>> _batch_total(3, 0), _batch_total(3, 1), _batch_total(2, 2)
    ('3 of 3 models exported', '2 of 3 models exported, 1 failed', 'none of the 2 models was exported: all failed')
    """
    if failed == count:
        return f"none of the {count} models was exported: all failed"
    return f"{count - failed} of {count} models exported" + (f", {failed} failed" if failed else "")


def run_verify(args: argparse.Namespace) -> int:
    """Verify an export folder, or each model's subfolder of a batch export (``export models/ -o out/``)."""
    folders = batch.export_folders(args.folder)
    if args.compile:
        _say(args, f"compiling the C output with {args.cc} ...")
    if args.predict:
        _say(args, f"building the forward pass with {args.cc} and running {args.predict} in Keras ...")
    reports = [verification.verify(folder, compile=args.compile, cc=args.cc, cflags=shlex.split(args.cflags),
                                   model=args.model, predict=args.predict) for folder in folders]
    if args.json:
        shown = [{"folder": r.folder, "ok": r.ok, "files": [check_json(f) for f in r.files]} for r in reports]
        print(json.dumps(shown[0] if len(shown) == 1 else shown, sort_keys=True, indent=2))
    else:
        for report in reports:
            print_report(report)
    return 0 if all(r.ok for r in reports) else VerificationFailed.exit_code


def run_load(args: argparse.Namespace) -> int:
    """Load the model with Keras (safe mode), set its weights from the export, save it under a new name."""
    target = Path(args.output)
    if not (target.name.endswith(".keras") or target.name.endswith(".weights.h5")):
        raise UsageError(f"the new model must be a .keras or .weights.h5 file. Received: -o {args.output}")
    atomic.check_new_file(target, args.force)  # before the model is read
    _say(args, f"reading {args.model} ...")
    model = open_keras_model(args.model)
    load_into(model, args.export)
    save = model.save_weights if target.name.endswith(".weights.h5") else model.save
    atomic.write_file(target, save, args.force)
    show(f"wrote {target} with the weights of {args.export}")
    return 0


def run_diff(args: argparse.Namespace) -> int:
    """Exit 0 when the two sides are equal within the tolerance, 1 when they differ, like diff(1)."""
    result = diff(args.a, args.b, atol=args.atol, rtol=args.rtol, reader=args.reader)
    if args.json:
        print(json.dumps(result.to_json(), sort_keys=True, indent=2, allow_nan=False))
        return 0 if result.equal else 1
    show(render_diff(result, args.all))
    return 0 if result.equal else 1


def run_report(args: argparse.Namespace) -> int:
    _say(args, f"reading {args.source} ...")
    written = report(args.source, args.output, model=args.model, against=args.against, reader=args.reader,
                     force=args.force)
    show(f"wrote {written} ({written.stat().st_size:,} bytes)")
    return 0


COMMANDS = {"inspect": run_inspect, "export": run_export, "verify": run_verify, "load": run_load, "diff": run_diff,
            "report": run_report}
