"""What the command line prints: the tables of inspect, export, verify and diff, every line with its
invisible characters escaped."""
from __future__ import annotations

from .. import dtypes, verification
from ..choices import TABLE_ROWS
from ..messages import printable, show  # noqa: F401  (the face commands print with)
from .. import formats, manifest as manifests



def render_table(info: dict, view: str | None = None) -> str:
    """The ``inspect`` table, like ``model.summary()``: one row per weight tensor (``view="weights"``) or,
    compact, per layer with weights (``"layers"``); by default per tensor up to :data:`TABLE_ROWS` of them."""
    view = view or ("weights" if len(info["tensors"]) <= TABLE_ROWS else "layers")
    tensors: dict[int, list[dict]] = {}  # by layer, scale tensors of a quantized export included
    for t in info["tensors"]:
        tensors.setdefault(t["layer_index"], []).append(t)
    if view == "weights":
        header, numeric = ("#", "Layer", "Class", "Weight", "Shape", "Dtype", "Params"), {0, 6}
        rows = _weight_rows(info["layers"], tensors)
    else:
        header, numeric = ("#", "Layer", "Class", "Weights", "Params", "Bytes", "C flash"), {0, 4, 5, 6}
        rows = _layer_rows(info["layers"], tensors)
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]

    def line(row: tuple[str, ...]) -> str:  # numbers right-aligned, text left-aligned
        cells = (c.rjust(w) if i in numeric else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
        return "  ".join(cells).rstrip()

    model, source = info["model"], info["source"]
    title = f'Model: "{printable(model["name"])}"' + (f' ({model["class"]})' if model["class"] else "") + \
        (f" from {printable(source['file'])}" if source["file"] else "")
    rule = "-" * len(line(header))
    trainable = sum(_count(t["shape"]) for t in info["tensors"] if t["trainable"])
    totals = (_total_line(info) + "\n"
              f"Trainable: {trainable:,} parameters; non-trainable: {model['parameters'] - trainable:,}\n"
              + _kinds_line(info) + formats.flash_line(info))
    if view == "layers":
        empty = sum(1 for layer in info["layers"] if not layer["tensors"])
        totals += (f"\nOne row per layer with weights ({len(rows)} of {len(info['layers'])} layers; {empty} without)"
                   "; --weights shows one row per weight tensor")
    return "\n".join([title, rule, line(header), rule, *map(line, rows), rule, totals])


def _kinds_line(info: dict) -> str:
    """What a quantization-aware model keeps beside its weights (the tensors' ``kind``), or nothing."""
    counts = {kind: sum(_count(t["shape"]) for t in info["tensors"] if t.get("kind") == kind)
              for kind in ("quantizer_range", "training_state")}
    if not any(counts.values()):
        return ""
    return (f"Of those, quantization-aware training's: {counts['quantizer_range']:,} in quantizer ranges, "
            f"{counts['training_state']:,} training state (a tensor's kind)\n")


def _weight_rows(layers: list[dict], tensors: dict[int, list[dict]]) -> list[tuple[str, ...]]:
    rows = []
    for layer in layers:
        first = (str(layer["index"]), printable(layer["name"]), layer["class"])
        for position, t in enumerate(tensors.get(layer["index"]) or [None]):
            lead = first if position == 0 else ("", "", "")
            if t is None:
                rows.append((*lead, "-", "-", "-", "0"))
            else:
                rows.append((*lead, printable(t["name"]), _shape(t["shape"]), t["dtype"], f"{_count(t['shape']):,}"))
    return rows


def _layer_rows(layers: list[dict], tensors: dict[int, list[dict]]) -> list[tuple[str, ...]]:
    """Layers with weights, each with its tensors' roles and shapes in one cell (``kernel (3, 3, 3, 4)``), their
    bytes and the flash their C arrays take (16-byte alignment included)."""
    rows = []
    for layer in layers:
        mine = tensors.get(layer["index"], [])
        if mine:
            weights = ", ".join(f"{printable(t['role'])} {_shape(t['shape'])}" for t in mine)
            rows.append((str(layer["index"]), printable(layer["name"]), layer["class"], _clipped(weights, 60),
                         f"{sum(_count(t['shape']) for t in mine):,}", f"{sum(t['nbytes'] for t in mine):,}",
                         f"{sum(formats.flash_by_layer((t['layer'], t['nbytes']) for t in mine).values()):,}"))
    return rows


def _clipped(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 3] + "..."


def render_budget(info: dict, max_bytes: int) -> str:
    """Each layer's C arrays against ``--max-bytes``, largest first."""
    per_layer = formats.flash_by_layer(((t["layer"], t["nbytes"]) for t in info["tensors"]), info["options"])
    total = sum(per_layer.values())
    width = max([len(printable(name)) for name in per_layer] + [5])
    lines = [f"Flash budget: {total:,} of {max_bytes:,} bytes ({total / max_bytes:.0%}), {max_bytes - total:,} left"]
    lines += [f"  {printable(name):<{width}}  {size:>12,} bytes  {size / max_bytes:>5.1%}"
              for name, size in sorted(per_layer.items(), key=lambda item: -item[1])]
    return "\n".join(lines)


SHOWN_ROWS = 10  # quantized tensors listed by default: the lowest SNR first to go in, the rest with --verbose


def _total_line(info: dict) -> str:
    """The model's totals; for a quantized view, the rows counted as listed (int8 scales are arrays of their own, not
    parameters) and the bytes as stored beside the model's own."""
    model = info["model"]
    if not info.get("options", {}).get("quantize"):
        return f"Total: {model['tensors']} tensors, {model['parameters']:,} parameters, {model['bytes']:,} bytes"
    scales = manifests.scale_names(info["tensors"])
    stored = sum(t["nbytes"] for t in info["tensors"])
    scale_values = sum(_count(t["shape"]) for t in info["tensors"] if t["name"] in scales)
    arrays = (f" and {len(scales)} scales ({scale_values:,} values) in {len(info['tensors'])} rows" if scales else "")
    return (f"Total: {model['tensors']} tensors{arrays}, {model['parameters']:,} parameters, {stored:,} bytes stored "
            f"({model['bytes']:,} before quantization)")


def render_quantization(info: dict, min_snr: float | None = None, limit: int | None = None) -> str:
    """The error table of a quantized export: one row per quantized tensor (with ``limit``, only that many, those of
    lowest SNR, and any below ``min_snr``, in model order), then the model's total."""
    entries = {t["name"]: t for t in info["tensors"]}
    scales = manifests.scale_names(info["tensors"])
    header = ("Tensor", "Scheme", "Axis", "Bytes before", "Bytes after", "Max abs error", "RMSE", "SNR dB", "")
    rows, before_total, after_total, worst = [], 0, 0, None
    for t in info["tensors"]:
        q = t.get("quantization")
        if t["name"] in scales:
            continue  # counted with its tensor
        if not q:
            before_total, after_total = before_total + t["nbytes"], after_total + t["nbytes"]
            continue
        before = _count(t["shape"]) * dtypes.by_name(t["source_dtype"]).numpy.itemsize
        after = t["nbytes"] + (entries[q["scale"]]["nbytes"] if q.get("scale") else 0)
        before_total, after_total = before_total + before, after_total + after
        snr = q["error"]["snr_db"]
        if snr is not None and (worst is None or snr < worst[1]):
            worst = (t["name"], snr)
        axis = q["axis"]
        shown = "" if not q.get("scale") else "tensor" if axis is None else str(axis) if isinstance(axis, int) \
            else ",".join(map(str, axis))
        low = min_snr is not None and snr is not None and snr < min_snr
        rows.append((-float("inf") if snr is None else snr, low, printable(t["name"]), q["scheme"], shown, f"{before:,}", f"{after:,}", f"{q['error']['max_abs']:.3g}",
                     f"{q['error']['rmse']:.3g}", "-" if snr is None else f"{snr:.1f}",
                     f"below --min-snr {min_snr:g}" if low else ""))
    count = len(rows)
    if limit is not None and count > limit:
        keep = {id(row) for row in sorted(rows, key=lambda row: row[0])[:limit]} | {id(row) for row in rows if row[1]}
        rows = [row for row in rows if id(row) in keep]
    rows = [row[2:] for row in rows]
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]

    def line(row: tuple[str, ...]) -> str:
        cells = (c.rjust(w) if 3 <= i <= 7 else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
        return "  ".join(cells).rstrip()

    ratio = f" ({after_total / before_total:.0%})" if before_total else ""
    left_out = [f"... and {count - len(rows)} more tensors of higher SNR (--verbose lists all)"] if count > len(rows) else []
    total = (f"Total: {count} of {len(info['tensors']) - len(scales)} tensors quantized, "
             f"{before_total:,} -> {after_total:,} bytes{ratio}"
             + (f"; lowest SNR {worst[1]:.1f} dB ({printable(worst[0])})" if worst else ""))
    rule = "-" * len(line(header))
    return "\n".join([f"Quantization ({info['options'].get('quantize')}): the error of the values read back against "
                      "the model's", rule, line(header), rule, *map(line, rows), *left_out, rule, total])


def render_activations(info: dict) -> str:
    """Full-integer int8: each traced value's calibrated range and the int8 scale and zero point it gives."""
    activations = (info.get("inference") or {}).get("activations") or []
    header = ("Value", "Range from", "Range to", "Scale", "Zero point")
    rows = [(printable(a["name"]), f"{a['min']:.4g}", f"{a['max']:.4g}", f"{a['scale']:.4g}", str(a["zero_point"]))
            for a in activations]
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]

    def line(row: tuple[str, ...]) -> str:
        return "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))).rstrip()

    rule = "-" * len(line(header))
    origin = formats.get("c").ranges_origin(info["inference"])
    return "\n".join([f"Activations (full-integer int8, ranges {origin}): real = scale x (q - zero point)",
                      rule, line(header), rule, *map(line, rows), rule,
                      "Where a layer fixes its output's parameters, it uses those: pooling its input's, softmax 1/256 "
                      "and -128."])


def render_diff(result, show_all: bool = False) -> str:
    """The differing tensors as a table, then one line: equal, or how many differ and how."""
    header = ("Tensor", "Status", "Shape", "Max abs diff", "Max rel diff", "Changed")
    rows = []
    for t in result.tensors:
        if t.status == "equal" and not show_all:
            continue
        name = printable(t.name) + (f" -> {printable(t.other_name)}" if t.other_name else "")
        shape = _shape(t.shape or t.other_shape) if t.shape == t.other_shape or not (t.shape and t.other_shape) \
            else f"{_shape(t.shape)} -> {_shape(t.other_shape)}"
        if t.status == "retyped":
            shape += f" {t.dtype} -> {t.other_dtype}"
        figures = ["" if v is None else f"{v:.3g}" for v in (t.max_abs, t.max_rel)]
        rows.append((name, t.status, shape, *figures, "" if t.changed is None else f"{t.changed:.1%}"))
    counts: dict[str, int] = {}
    for t in result.tensors:
        counts[t.status] = counts.get(t.status, 0) + 1
    summary = ("equal: " if result.equal else "differ: ") + ", ".join(f"{n} {status}" for status, n in counts.items())
    lines = [f"{result.a}  vs  {result.b}", *(f"note: {n}" for n in result.notes)]
    if rows:
        widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
        line = lambda r: "  ".join(c.rjust(w) if 3 <= i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip()  # noqa: E731
        lines += [line(header), *map(line, rows)]
    return "\n".join([*lines, summary])


def print_report(report: verification.Report) -> None:
    for check in report.files:
        status = "OK  " if check.ok else "FAIL"
        held = check.detail or (f"{check.tensors} tensors" if check.tensors else "declarations")
        compiled = f", compiled with {check.compiled_with}" if check.compiled_with else ""
        show(f"{status} {check.path:<40} {check.format:<12} {held}{compiled}")
        for problem in check.problems:
            show(f"       {problem}")
    show(f"{'verified' if report.ok else 'verification FAILED for'} {report.folder}")


def check_json(check: verification.FileCheck) -> dict:
    return {"path": check.path, "format": check.format, "ok": check.ok, "tensors": check.tensors,
            "problems": check.problems, "compiled_with": check.compiled_with, "detail": check.detail,
            "output_spread": check.output_spread}


def _shape(shape: list[int]) -> str:
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


def _count(shape: list[int]) -> int:
    count = 1
    for n in shape:
        count *= n
    return count
