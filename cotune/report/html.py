"""`cotune report`: one self-contained HTML page about a study (inline SVG, CSS and script, no network)."""

from __future__ import annotations

import html
import json
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from cotune.evidence import describe_attributes
from cotune.report import plots
from cotune.trial import Role, Trial, TrialState, incumbents

if TYPE_CHECKING:
    from cotune.study import Study

#: How many of the best full runs the report details.
TOP = 5

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; padding: 0 1em; }
h1 { margin-bottom: .2em; } h2 { margin-top: 2em; border-bottom: 1px solid #ddd; }
.facts { display: flex; gap: 2em; flex-wrap: wrap; } .facts div { background: #f5f5f7; padding: .6em 1em; }
.facts b { display: block; font-size: 1.3em; }
table { border-collapse: collapse; font-size: .85em; } th, td { padding: .25em .6em; text-align: right; }
th { background: #eee; position: sticky; top: 0; } tr:nth-child(even) td { background: #fafafa; }
td.text, th.text { text-align: left; } #trials th { cursor: pointer; user-select: none; }
#trials th[data-dir="asc"]::after { content: " \\25B2"; } #trials th[data-dir="desc"]::after { content: " \\25BC"; }
svg { max-width: 100%; height: auto; } .note { color: #666; font-style: italic; }
"""

_SORT_SCRIPT = """
document.querySelectorAll('#trials th').forEach((th, col) => th.addEventListener('click', () => {
  const body = document.querySelector('#trials tbody');
  const dir = th.dataset.dir === 'asc' ? 'desc' : 'asc';
  document.querySelectorAll('#trials th').forEach(h => delete h.dataset.dir);
  th.dataset.dir = dir;
  const key = tr => { const v = tr.children[col].dataset.v; const n = parseFloat(v);
                      return v === '' ? null : (isNaN(n) ? v : n); };
  const rows = Array.from(body.rows).sort((a, b) => {
    const x = key(a), y = key(b);
    if (x === null || y === null) return (x === null) - (y === null);
    return (x < y ? -1 : x > y ? 1 : 0) * (dir === 'asc' ? 1 : -1);
  });
  rows.forEach(r => body.appendChild(r));
}));
"""


def render(study: Study) -> str:
    """The report page of ``study`` as an HTML string."""
    s = study.settings
    trials = study.trials
    best, baseline = study.best, study.baseline
    split = _split(trials)
    title = f"cotune report: {study.study_name}"
    facts = [
        ("method", s.method),
        ("trials", f"{len(trials)} ({sum(t.state is TrialState.FAIL for t in trials)} failed)"),
        ("budget spent", f"{study.spent:g} / {s.total_budget:g} {s.budget_unit}"),
        ("best score", "-" if best is None else f"{best.score:.4f} (trial {best.number})"),
        ("baseline score", "-" if baseline is None else f"{baseline.score:.4f}"),
    ]
    if best is not None and baseline is not None:
        facts.append(("gain over baseline", f"{best.score - baseline.score:+.4f}"))
    if best is not None and best.task_scores:
        base = baseline.task_scores if baseline is not None else {}
        facts.extend((f"task {name}: best / baseline", f"{score:.4f} / {base[name]:.4f}" if name in base
                      else f"{score:.4f}") for name, score in best.task_scores.items())
    sections = [
        _section("Best score so far", plots.to_svg(plots.progress_figure(
            _progress(trials, s.full_budget), None if baseline is None else baseline.score, s.total_budget))),
        _section("Predicted against measured full-budget scores", _predictor(trials, s.full_budget)),
        _section(f"Top {TOP} configurations", _top(study)),
        _section("Budget split", plots.to_svg(plots.budget_figure(split)) + "<p>" + _e(", ".join(
            f"{name} {value:g}" for name, value in split.items())) + f" {_e(s.budget_unit)}</p>"),
        _section("Trials", _trial_table(trials, study.space.domains, list(study.space.params))),
    ]
    attributes = study.attributes
    evidence = describe_attributes(attributes)
    if evidence:
        sections.insert(2, _section("What short runs are worth", "".join(f"<p>{_e(line)}</p>" for line in evidence)))
    if attributes:
        rows = "".join(f"<tr><td class=text>{_e(k)}</td><td class=text>{_e(_short(v))}</td></tr>"
                       for k, v in sorted(attributes.items()))
        sections.append(_section("Method facts", f"<table>{rows}</table>"))
    facts_html = "".join(f"<div>{_e(k)}<b>{_e(v)}</b></div>" for k, v in facts)
    return (
        "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{_e(title)}</h1><p>full runs {s.full_budget:g}, short runs {s.small_budget:g} {s.budget_unit}; "
        f"seed {s.seed}</p><div class=facts>{facts_html}</div>{''.join(sections)}"
        f"<script>{_SORT_SCRIPT}</script></body></html>\n"
    )


def write(study: Study, path: str | os.PathLike[str]) -> None:
    """Write the report of ``study`` to ``path``."""
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(render(study))


def _progress(trials: Sequence[Trial], full_budget: float) -> list[tuple[float, float]]:
    """(budget spent, best measured full-budget score) after each finished trial, once a full run is in."""
    return [(spent, best.score) for spent, best in incumbents(trials, full_budget) if best is not None]


def _predictor(trials: Sequence[Trial], full_budget: float) -> str:
    """Scatter of the predictions of short runs whose configuration was later measured in full."""
    measured = {t.config.key(): t.score for t in trials
                if t.state is TrialState.COMPLETE and t.budget == full_budget and t.score is not None}
    pairs = [(t.predicted, measured[t.config.key()]) for t in trials
             if t.predicted is not None and t.config.key() in measured]
    n_predicted = sum(t.predicted is not None for t in trials)
    if not pairs:
        return (f"<p class=note>No configuration has both a prediction and a measured full run "
                f"({n_predicted} predictions; only JoBS predicts, and its confirmation runs measure them).</p>")
    predicted, actual = zip(*pairs)
    error = float(np.sqrt(np.mean((np.array(predicted) - np.array(actual)) ** 2)))
    return (plots.to_svg(plots.predictor_figure(predicted, actual))
            + f"<p>{len(pairs)} configurations predicted from short runs and then measured in full; "
              f"root mean squared error {error:.4f} ({n_predicted} predictions in all).</p>")


def _top(study: Study) -> str:
    """Mixture bars and a table of the LoRA settings of the best full runs, the baseline last."""
    full = sorted((t for t in study.trials if t.state is TrialState.COMPLETE and t.budget == study.settings.full_budget
                   and t.score is not None), key=lambda t: -t.score)[:TOP]
    if not full:
        return "<p class=note>No full run has finished yet.</p>"
    rows = [(f"#{t.number} ({t.score:.4f})", t.config) for t in full]
    rows.append(("baseline (default)", study.space.default_config()))
    out = ""
    domains = list(study.space.domains)
    if domains:
        weights = np.array([[config.mixture[d] for d in domains] for _, config in rows])
        out += plots.to_svg(plots.mixture_figure([label for label, _ in rows], domains, weights))
    names = list(study.space.params)
    head = "".join(f"<th>{_e(n)}</th>" for n in names)
    body = "".join(
        f"<tr><td class=text>{_e(label)}</td>" + "".join(f"<td>{_e(_fmt(config.params[n]))}</td>" for n in names)
        + "</tr>" for label, config in rows
    )
    return out + f"<table><thead><tr><th class=text>trial (score)</th>{head}</tr></thead><tbody>{body}</tbody></table>"


def _split(trials: Sequence[Trial]) -> dict[str, float]:
    """Budget charged to full runs, short runs, confirmation runs, each proxy model's runs and failures."""
    parts = {"full runs": 0.0, "short runs": 0.0, "confirmations": 0.0, "failed": 0.0}
    names = {Role.FULL: "full runs", Role.SHORT: "short runs", Role.CONFIRM: "confirmations"}
    for trial in trials:
        if trial.state is TrialState.FAIL:
            parts["failed"] += trial.charged
        elif trial.state is TrialState.COMPLETE:
            name = names[trial.role] if trial.fidelity is None else f"proxy {trial.fidelity!r}"
            parts[name] = parts.get(name, 0.0) + trial.charged
    return {k: v for k, v in parts.items() if v > 0} or {"nothing spent yet": 0.0}


def _trial_table(trials: Sequence[Trial], domains: Sequence[str], params: Sequence[str]) -> str:
    """Every trial, sortable by clicking a column header."""
    columns = ["trial", "role", "model", "state", "budget", "cost", "score", "predicted"]
    columns += [f"w:{d}" for d in domains] + list(params) + ["error"]
    text_columns = {"role", "model", "state", "error"}
    head = "".join(f"<th class={'text' if c in text_columns else 'num'}>{_e(c)}</th>" for c in columns)
    body = []
    for t in trials:
        values: list[Any] = [t.number, t.role.value, t.fidelity or "target", t.state.value, t.budget, t.cost, t.score,
                             t.predicted]
        values += [t.config.mixture[d] for d in domains] + [t.config.params[p] for p in params]
        values.append(" ".join((t.error or "").strip().splitlines()[-1:])[:120])
        cells = "".join(
            f"<td{' class=text' if c in text_columns else ''} data-v=\"{_e(_sort_key(v))}\">{_e(_fmt(v))}</td>"
            for c, v in zip(columns, values)
        )
        body.append(f"<tr>{cells}</tr>")
    return f"<table id=trials><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _section(title: str, content: str) -> str:
    return f"<section><h2>{_e(title)}</h2>{content}</section>"


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _sort_key(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(int(value))
    return repr(value) if isinstance(value, float) else str(value)


def _short(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 200 else text[:197] + "..."


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)
