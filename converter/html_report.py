"""``keras-weights report MODEL_OR_EXPORT -o report.html``: one self-contained HTML page about the weights.

The summary and a layer table, anomalies first (non-finite values, all-zero or constant tensors, exploding
ranges, BatchNorm variances near zero), then every tensor with its statistics, dynamic range in bits and a
histogram drawn as inline SVG; for a quantized export the error figures (and, given the model, the
histogram of the error); the C arrays' bytes per layer; with ``against``, a diff section.

The page needs nothing but itself: no network, no external file; a Content-Security-Policy allows no
connection and no script but its own inline one (by hash). Every name from the model is escaped.
Statistics are computed a block at a time, so memory stays bounded like an export's.
"""
from __future__ import annotations

import base64
import hashlib
import html
import itertools
import os
from pathlib import Path
from typing import Any

import numpy as np

from . import atomic, formats, manifest as manifests
from .compare import diff
from .errors import UsageError
from .exports import Export, dequantized, export_folder
from .readers import read_model
from .weight_stats import Stats, histogram, tensor_stats

# -- gathering ------------------------------------------------------------------------------------------------
def report(source: Any, output: str | os.PathLike, *, model: Any = None, against: Any = None,
           reader: str = "auto", force: bool = False) -> Path:
    """Write the report of a model or an export folder to ``output`` (an .html file); return its path.

    ``model``: the model an export came from (for the error histograms of a quantized export); ``against``:
    another model or export to diff with.
    """
    output = Path(output)
    if output.suffix.lower() not in (".html", ".htm"):
        raise UsageError(f"the report is an .html file. Received: -o {output}")
    atomic.check_new_file(output, force)  # before any work
    title, summary, layers, tensors, bytes_per_layer, values, activations = _gather(source, reader,
                                                                                 for_errors=model is not None)
    if model is not None:
        if values is None:
            raise UsageError(f"{source} is a model: [[--model|model=]] gives the model an export came from",
                             hint="Give an export folder as the source, or leave the model out.")
        _error_histograms(tensors, values, model, reader)
    differences = None
    if against is not None:
        differences = diff(source, against, reader=reader)
    page = render(title, summary, layers, tensors, bytes_per_layer, differences, activations)
    return atomic.write_file(output, lambda path: path.write_text(page, "utf-8"), force)  # whole, or not at all


def _gather(source: Any, reader: str, for_errors: bool = False):
    """(title, summary rows, layer rows, tensor stats, C bytes per layer or None, and for an export the values its
    tensors stand for, dequantized, or None for a model). The export's file is read once."""
    folder = export_folder(source)
    if folder is None:
        weights = read_model(source, reader)
        info = manifests.build(weights)
        tensors = [tensor_stats(t.name, t.layer, t.array) for t in weights.tensors]
        return _title(info), _summary(info), info["layers"], tensors, None, None, []
    export = Export.open(folder)
    info = export.manifest
    arrays = export.arrays()
    entries = {t["name"]: t for t in info["tensors"]}
    coded = {name for name, entry in entries.items() if (entry.get("quantization") or {}).get("scale")}  # int8 codes
    values = dequantized(arrays, info["tensors"]) if export.quantized and (coded or for_errors) else arrays
    tensors = []
    for name, array in arrays.items():
        stats = tensor_stats(name, entries.get(name, {}).get("layer", ""), array)
        stats.quantization = entries.get(name, {}).get("quantization")
        if name in coded and name in values:
            stats.stands_for = tensor_stats(name, stats.layer, values[name])
        tensors.append(stats)
    bytes_per_layer = formats.flash_of_export(info)
    return (_title(info), _summary(info), info["layers"], tensors, bytes_per_layer, values,
            (info.get("inference") or {}).get("activations", []))


def _error_histograms(tensors: list[Stats], back: dict[str, np.ndarray], model: Any, reader: str) -> None:
    """The histogram of (value read back - model's value) for each quantized tensor of an export."""
    originals = {t.name: t.array for t in read_model(model, reader).tensors}
    for stats in tensors:
        if stats.quantization and stats.name in originals and stats.name in back:
            error = np.asarray(back[stats.name], np.float64) - np.asarray(originals[stats.name], np.float64)
            finite = error[np.isfinite(error)]
            if finite.size:
                stats.error_histogram, stats.error_edges = histogram(finite.reshape(-1), float(finite.min()),
                                                                      float(finite.max()))


def _title(info: dict) -> str:
    return f"{info['model']['name']} ({info['model']['class'] or 'model'})"


def _summary(info: dict) -> list[tuple[str, str]]:
    model, source = info["model"], info["source"]
    rows = [("model", f"{model['name']} ({model['class'] or '?'})"), ("source", str(source["file"] or "in memory")),
            ("reader", str(source["reader"])), ("tensors", f"{model['tensors']:,}"),
            ("parameters", f"{model['parameters']:,}"), ("bytes", f"{model['bytes']:,}")]
    if info["options"].get("quantize"):
        stored = sum(t["nbytes"] for t in info["tensors"])  # int8 scales included: what the export holds
        rows[-1] = ("bytes", f"{stored:,} exported ({model['bytes']:,} before quantization)")
        rows.append(("quantized", info["options"]["quantize"]))
    if info["options"].get("layout", "keras") != "keras":
        rows.append(("layout", info["options"]["layout"]))
    if source.get("note"):
        rows.append(("note", source["note"]))
    return rows


# -- the page -------------------------------------------------------------------------------------------------
_SCRIPT = """
document.getElementById('filter').addEventListener('input', function (event) {
  var text = event.target.value.toLowerCase();
  document.querySelectorAll('section.tensor').forEach(function (section) {
    section.hidden = text && section.dataset.name.toLowerCase().indexOf(text) < 0;
  });
  document.querySelectorAll('details.layer-group').forEach(function (group) {
    group.open = Boolean(text) && group.querySelector('section.tensor:not([hidden])') !== null;
  });
});
function openTarget() {  // a link to a folded tensor (from the anomalies) opens its fold
  var target = location.hash && document.getElementById(location.hash.slice(1));
  if (target && target.closest('details')) { target.closest('details').open = true; target.scrollIntoView(); }
}
window.addEventListener('hashchange', openTarget);
openTarget();
document.body.dataset.ready = String(document.querySelectorAll('section.tensor svg.histogram').length);
"""
_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222;max-width:72em}
table{border-collapse:collapse;margin:.5em 0}td,th{border-bottom:1px solid #ddd;padding:2px 8px;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}.flag{color:#b00020}section.tensor{margin:1em 0;
padding:.5em 1em;border:1px solid #ddd;border-radius:4px}svg{background:#fafafa}h3{margin:.2em 0;font-size:1em}
code{word-break:break-all}details>summary{cursor:pointer}
.ctrl{background:#fde68a;color:#7c2d12;font-family:monospace;border-radius:2px;padding:0 1px}
"""


def _text(value: object) -> str:
    r"""Text from the model or export as HTML: escaped, with every invisible character (control characters, bidi
    overrides such as U+202E, which would reverse what follows) shown as its code in a marked span.

    >>> _text("a<b\u202ec")
    'a&lt;b<span class="ctrl" title="invisible character">\\u202e</span>c'
    """
    return "".join(html.escape(c) if c.isprintable() else
                   f'<span class="ctrl" title="invisible character">{html.escape(repr(c)[1:-1])}</span>'
                   for c in str(value))


def _attribute(value: object) -> str:
    """Text for a quoted HTML attribute: escaped, invisible characters written as their codes."""
    return html.escape("".join(c if c.isprintable() else repr(c)[1:-1] for c in str(value)), quote=True)


SCREENFUL = 12          # tensor cards shown open; the rest folded, one fold per layer (the filter opens them)
MAX_SECTIONS = 1000     # tensors drawn with their histogram; the rest in one table of figures
MAX_ROWS = 20_000       # rows of any table: beyond, the page says how many were left out
MAX_ANOMALIES = 1000


def render(title: str, summary, layers, tensors: list[Stats], bytes_per_layer, differences, activations=()) -> str:
    """The HTML page (a pure function of what it is given), bounded in size whatever the model's size."""
    e = _text
    script_hash = base64.b64encode(hashlib.sha256(_SCRIPT.encode()).digest()).decode()
    csp = (f"default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-{script_hash}'; img-src 'none'; "
           "connect-src 'none'; form-action 'none'; base-uri 'none'")
    parts = [f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
             f'<meta http-equiv="Content-Security-Policy" content="{_attribute(csp)}">'
             f"<title>{e(title)} - keras-weights report</title><style>{_STYLE}</style></head><body>",
             f"<h1>{e(title)}</h1>", "<table>" + "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in summary)
             + "</table>"]
    flagged = [t for t in tensors if t.anomalies]
    parts.append(f"<h2>Anomalies ({len(flagged)})</h2>")
    drawn = {id(t) for t in tensors[:MAX_SECTIONS]}
    listed = "<ul>" + "".join(f'<li class="flag">' + (f'<a href="#{_anchor(t.name)}">{e(t.name)}</a>' if id(t) in drawn
                                                       else e(t.name)) + f": {e('; '.join(t.anomalies))}</li>"
                              for t in flagged[:MAX_ANOMALIES]) + "</ul>" + _left_out(len(flagged), MAX_ANOMALIES)
    parts.append((listed if len(flagged) <= 20 else f"<details><summary>{len(flagged)} tensors</summary>{listed}</details>")
                 if flagged
                 else "<p>None found: no non-finite values, all-zero or constant tensors, exploding ranges or "
                      "BatchNorm variances near zero.</p>")
    if differences is not None:
        parts.append(_diff_section(differences))
    opened = " open" if len(layers) <= 30 else ""  # a long list starts folded
    parts.append(f"<h2>Layers</h2><details{opened}><summary>" + f"{len(layers)} layers</summary><table><tr><th>#</th>"
                 "<th>Layer</th><th>Class</th><th>Tensors</th></tr>" + "".join(
                     f"<tr><td class=n>{layer['index']}</td><td>{e(layer['name'])}</td><td>{e(layer['class'])}</td>"
                     f"<td>{e(', '.join(layer['tensors'][:20]))}</td></tr>" for layer in layers[:MAX_ROWS]) + "</table>"
                 + _left_out(len(layers), MAX_ROWS) + "</details>")
    if bytes_per_layer:
        parts.append("<h2>C arrays: bytes per layer</h2>" + _bars(bytes_per_layer))
    if activations:  # a full-integer int8 export: what its calibration (or training) gave each value
        parts.append("<h2>Full-integer int8 activations</h2><p>real = scale x (q - zero point); where a layer fixes its "
                     "output's parameters it uses those (pooling: its input's; softmax: 1/256 and -128).</p><table>"
                     "<tr><th>Value</th><th>Min</th><th>Max</th><th>Scale</th><th>Zero point</th><th>Range from</th>"
                     "</tr>" + "".join(
                         f"<tr><td>{e(a['name'])}</td><td class=n>{a['min']:.4g}</td><td class=n>{a['max']:.4g}</td>"
                         f"<td class=n>{a['scale']:.4g}</td><td class=n>{a['zero_point']}</td>"
                         f"<td>{'training' if a.get('source') == 'training' else 'calibration'}</td></tr>"
                         for a in activations[:MAX_ROWS]) + "</table>" + _left_out(len(activations), MAX_ROWS))
    parts.append('<h2>Tensors</h2><p><label>Filter by name <input id="filter" type="search"></label></p>')
    parts += [_tensor_section(t) for t in tensors[:SCREENFUL]]
    parts += _folded_by_layer(tensors[SCREENFUL:MAX_SECTIONS])
    if len(tensors) > MAX_SECTIONS:
        parts.append(_figures_table(tensors[MAX_SECTIONS:MAX_SECTIONS + MAX_ROWS]) + _left_out(
            len(tensors) - MAX_SECTIONS, MAX_ROWS))
    parts.append(f"<script>{_SCRIPT}</script></body></html>\n")
    return "".join(parts)


def _folded_by_layer(tensors: list[Stats]) -> list[str]:
    """Tensor cards in one closed fold per layer (consecutive tensors of one layer), so a large model's page opens
    on a screenful and a layer is one click away."""
    folds = [(layer, list(group)) for layer, group in itertools.groupby(tensors, key=lambda t: t.layer)]
    return [_fold(layer, group) for layer, group in folds]


def _fold(layer: str, group: list[Stats]) -> str:
    flagged = sum(1 for t in group if t.anomalies)
    return (f'<details class="layer-group"><summary>layer <code>{_text(layer)}</code>: {len(group)} tensor'
            f'{"s" if len(group) > 1 else ""}' + (f' <span class="flag">({flagged} with anomalies)</span>' if flagged
                                                   else "") + "</summary>"
            + "".join(_tensor_section(t) for t in group) + "</details>")


def _left_out(total: int, shown: int) -> str:
    return (f'<p class="flag">{total - shown:,} more not shown: the page stays bounded. `keras-weights inspect --json` '
            "lists every tensor.</p>") if total > shown else ""


def _figures_table(tensors: list[Stats]) -> str:
    """Tensors beyond the first :data:`MAX_SECTIONS`: their figures in one table row each, no histogram."""
    e = _text
    rows = "".join(f"<tr><td><code>{e(t.name)}</code></td><td>{e(t.shape)}</td><td>{e(t.dtype)}</td>"
                   f"<td class=n>{_number(t.minimum)}</td><td class=n>{_number(t.maximum)}</td>"
                   f"<td class=n>{_number(t.mean)}</td><td class=n>{_number(t.std)}</td>"
                   f"<td class=flag>{e('; '.join(t.anomalies))}</td></tr>" for t in tensors)
    return (f"<h3>{len(tensors):,} more tensors, figures only</h3><table><tr><th>Tensor</th><th>Shape</th><th>Dtype</th>"
            f"<th>Min</th><th>Max</th><th>Mean</th><th>Std</th><th>Anomalies</th></tr>{rows}</table>")


def _anchor(name: str) -> str:
    return "t-" + hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"


def _tensor_section(t: Stats) -> str:
    e = _text
    rows = [("shape", "(" + ", ".join(map(str, t.shape)) + ("," if len(t.shape) == 1 else "") + ")"), ("dtype", t.dtype), ("min", _number(t.minimum)),
            ("max", _number(t.maximum)), ("mean", _number(t.mean)), ("std", _number(t.std)),
            ("zeros", f"{t.zeros:.1%}"), ("NaN / Inf", f"{t.nan} / {t.inf}"),
            ("dynamic range", "-" if t.range_bits is None else f"{t.range_bits:.1f} bits")]
    if t.quantization:
        q = t.quantization
        rows += [("quantization", f"{q['scheme']}, axis {q['axis']}"),
                 ("error", f"max {q['error']['max_abs']:.3g}, RMSE {q['error']['rmse']:.3g}, SNR "
                           + ("-" if q["error"]["snr_db"] is None else f"{q['error']['snr_db']:.1f} dB"))]
    table = "<table>" + "".join(f"<tr><th>{e(k)}</th><td class=n>{e(v)}</td></tr>" for k, v in rows) + "</table>"
    if t.stands_for is not None:  # the int8 codes beside the values they stand for
        d = t.stands_for
        beside = {"min": _number(d.minimum), "max": _number(d.maximum), "mean": _number(d.mean), "std": _number(d.std),
                  "zeros": f"{d.zeros:.1%}", "dtype": "float32 (code x scale)"}
        table = ("<table><tr><th></th><th>stored (int8 codes)</th><th>stands for (dequantized)</th></tr>" + "".join(
            f"<tr><th>{e(k)}</th><td class=n>{e(v)}</td><td class=n>{e(beside.get(k, ''))}</td></tr>"
            for k, v in rows) + "</table>")
    flags = "".join(f'<p class="flag">{e(a)}</p>' for a in t.anomalies)
    charts = _svg(t.histogram, t.edges, "int8 codes" if t.stands_for is not None else "values")
    if t.stands_for is not None:
        charts += _svg(t.stands_for.histogram, t.stands_for.edges, "values they stand for (dequantized)")
    if t.error_histogram:
        charts += _svg(t.error_histogram, t.error_edges, "error of the values read back")
    return (f'<section class="tensor" id="{_anchor(t.name)}" data-name="{_attribute(t.name)}"><h3><code>{e(t.name)}</code> '
            f"<small>layer {e(t.layer)}</small></h3>{flags}{table}{charts}</section>")


def _svg(counts: list[int], edges: tuple[float, float], label: str, width: int = 400, height: int = 80) -> str:
    """A histogram as inline SVG: computed bars, no data embedded."""
    if not counts:
        return '<svg class="histogram" width="400" height="20" role="img"><text x="4" y="14">no finite values</text></svg>'
    top = max(counts) or 1
    axis = 8 + 7 * len(f"{top:,}")  # room on the left for the count axis's labels
    bar = width / len(counts)
    rects = "".join(f'<rect x="{axis + i * bar:.1f}" y="{height - c / top * height:.1f}" width="{max(bar - 1, 1):.1f}" '
                    f'height="{c / top * height:.1f}" fill="#3b6ea5"/>' for i, c in enumerate(counts) if c)
    counts_axis = (f'<g class="count-axis" font-size="11" text-anchor="end"><line x1="{axis - 2}" y1="0" x2="{axis - 2}" '
                   f'y2="{height}" stroke="#888"/><text x="{axis - 4}" y="10">{top:,}</text>'
                   f'<text x="{axis - 4}" y="{height}">0</text></g>')
    full = axis + width
    return (f'<figure><svg class="histogram" width="{full}" height="{height + 16}" viewBox="0 0 {full} {height + 16}" '
            f'role="img" aria-label="{html.escape(label)}: values per bin, from 0 to {top:,}">{counts_axis}{rects}'
            f'<text x="{axis}" y="{height + 14}" font-size="11">{edges[0]:.4g}</text>'
            f'<text x="{full}" y="{height + 14}" font-size="11" text-anchor="end">{edges[1]:.4g}</text></svg>'
            f"<figcaption>{html.escape(label)} (count per bin)</figcaption></figure>")


def _bars(values: dict[str, int], width: int = 500) -> str:
    top = max(values.values()) or 1
    rows = "".join(f"<tr><td>{_text(name)}</td><td class=n>{size:,}</td><td><svg width=\"{width}\" height=\"12\">"
                   f'<rect width="{max(size / top * width, 1):.1f}" height="12" fill="#3b6ea5"/></svg></td></tr>'
                   for name, size in sorted(values.items(), key=lambda item: -item[1])[:MAX_ROWS])
    return f"<table>{rows}</table>"


def _diff_section(result) -> str:
    e = _text
    rows = "".join(f"<tr><td><code>{e(t.name)}</code></td><td>{e(t.status)}</td><td class=n>{_number(t.max_abs)}</td>"
                   f"<td class=n>{_number(t.max_rel)}</td><td class=n>"
                   f"{'-' if t.changed is None else f'{t.changed:.1%}'}</td></tr>" for t in result.tensors
                   if t.status != "equal")
    verdict = "equal, bit for bit" if result.equal else f"{sum(t.status != 'equal' for t in result.tensors)} tensors differ"
    notes = "".join(f"<p>{e(n)}</p>" for n in result.notes)
    return (f"<h2>Diff against {e(result.b)}: {verdict}</h2>{notes}" + (
        f"<table><tr><th>Tensor</th><th>Status</th><th>Max abs</th><th>Max rel</th><th>Changed</th></tr>{rows}</table>"
        if rows else ""))
