"""The `cotune` command: demo, run, status, best, report and bench."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from cotune.settings import SHORT_RUNS
from cotune.trial import TrialState


def _csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _n_init(text: str) -> int | str:
    """``--n-init``: a count or 'auto'."""
    return text if text == "auto" else int(text)


def _add_bench(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench", help="compare methods at equal budget on benchmarks with a known optimum",
        description="Run every method on every benchmark and seed at the same total budget, in parallel "
                    "processes; print and write the mean best measured score per method (as the JoBS paper's "
                    "Table 3), the median budget each method needs to get within 1% (--target) of the optimum and its "
                    "ratio to jobs, every run as JSON, and a PNG of the best score so far against budget spent.",
    )
    p.add_argument("--methods", type=_csv, default=["jobs", "random", "bo"], help="comma-separated method names")
    p.add_argument("--benchmarks", type=_csv, default=["lora-mix"], help="comma-separated benchmark names")
    p.add_argument("--seeds", type=int, default=5, help="number of seeds per method and benchmark")
    p.add_argument("--first-seed", type=int, default=0,
                   help="seeds run from this one on (default 0): keep the seeds a default was chosen on apart")
    p.add_argument("--budget", type=float, default=20.0, help="total budget, in full runs")
    p.add_argument("--full-budget", type=float, default=100.0, help="budget of one full run, B")
    p.add_argument("--small-budget", type=float, default=10.0, help="budget of one short run, b")
    p.add_argument("--target", type=float, default=0.01,
                   help="a run reaches the optimum once its regret is at most this fraction of it (default 0.01)")
    p.add_argument("--n-init", type=_n_init, default=None,
                   help="n_init for every method: a count or 'auto' (default: each method's own)")
    p.add_argument("--n-confirm", type=int, default=None,
                   help="n_confirm for every method that confirms (default: each method's own)")
    p.add_argument("--short-runs", choices=SHORT_RUNS, default="tested",
                   help="jobs: search with short runs once its full runs show they pay (tested, the default) or "
                        "after n_init full runs whatever they show (always: the paper's JoBS)")
    p.add_argument("--warm-start", default=None, metavar="BENCHMARK",
                   help="start every run from a bo study of this benchmark (same space, seed and budget), "
                        "e.g. lora-mix-sibling for lora-mix: what a related earlier study buys")
    p.add_argument("--no-proxies", action="store_true",
                   help="run the benchmarks that have proxy models (scales-*) without them: the same target alone")
    p.add_argument("--processes", type=int, default=2, help="runs in parallel (one process each)")
    p.add_argument("--out", default="cotune-bench", metavar="DIR",
                   help="folder for runs.json, summary.md and best-so-far.png (default cotune-bench)")
    p.set_defaults(func=_bench)


def _bench(args: argparse.Namespace) -> int:
    from rich.console import Console

    from cotune.bench.harness import BenchSetup, run_all, short_run_correlations, summarise, write_runs
    from cotune.bench.landscapes import LANDSCAPES
    from cotune.bench.tables import budget_table, markdown, score_table
    from cotune.exceptions import SettingsError
    from cotune.methods import METHODS
    from cotune.report.plots import bench_figure, save
    from cotune.settings import StudySettings

    for name in args.methods:
        if name not in METHODS:
            raise SystemExit(f"cotune bench: unknown method {name!r}; choose from {', '.join(METHODS)}")
    for name in [*args.benchmarks, *([args.warm_start] if args.warm_start else [])]:
        if name not in LANDSCAPES:
            raise SystemExit(f"cotune bench: unknown benchmark {name!r}; choose from {', '.join(LANDSCAPES)}")
    for name, value, low in (("--seeds", args.seeds, 1), ("--processes", args.processes, 1),
                             ("--first-seed", args.first_seed, 0)):
        if value < low:
            raise SystemExit(f"cotune bench: {name} must be at least {low}, got {value}")
    if not (args.budget > 0 and 0 < args.target < 1):
        raise SystemExit(f"cotune bench: --budget must be > 0 and --target in (0, 1), got {args.budget}, {args.target}")
    setup = BenchSetup(total_full_runs=args.budget, full_budget=args.full_budget, small_budget=args.small_budget,
                       target=args.target, n_init=args.n_init, n_confirm=args.n_confirm, short_runs=args.short_runs,
                       warm_start=args.warm_start,
                       proxies=not args.no_proxies)
    try:  # bad budgets or counts: say so before any process starts
        for name in args.methods:
            StudySettings(method=name, **setup.settings())
    except SettingsError as err:
        raise SystemExit(f"cotune bench: {err}") from None
    if args.warm_start:
        source = LANDSCAPES[args.warm_start]().space
        different = [name for name in args.benchmarks if LANDSCAPES[name]().space != source]
        if different:
            raise SystemExit(f"cotune bench: --warm-start {args.warm_start} searches another space than "
                             f"{', '.join(different)}; a warm start needs the same domains and settings")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    console = Console()
    given = "".join(f", {name} {value}" for name, value in (("n_init", setup.n_init), ("n_confirm", setup.n_confirm),
                                                             ("warm start from bo on", setup.warm_start))
                    if value is not None) + ("" if setup.proxies else ", without proxies") + (
                    ", jobs' short runs always (not tested)" if setup.short_runs == "always" else "")
    total = len(args.methods) * len(args.benchmarks) * args.seeds
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    console.print(f"{total} runs: total budget {setup.total_budget:g} "
                  f"(B={setup.full_budget:g}, b={setup.small_budget:g}{given}), seeds {seeds[0]}-{seeds[-1]}, "
                  f"{args.processes} process(es)")
    correlations = short_run_correlations(args.benchmarks, setup)
    signal = "".join(f"- `{name}`: {value:.2f}\n" for name, value in correlations.items())
    for name in args.benchmarks:
        landscape = LANDSCAPES[name]()
        if hasattr(landscape, "proxy_rank_correlations"):
            signal += "".join(f"- `{name}`, the full run of its proxy {proxy!r} (cost {landscape.proxies[proxy]:.3g} "
                              f"of the target's per unit): {value:.2f}\n"
                              for proxy, value in landscape.proxy_rank_correlations().items())
    console.print(f"rank correlation of short (b) and full (B) scores:\n{signal}", end="")
    done = []

    def report(record):
        done.append(record)
        console.print(f"[{len(done)}/{total}] {record.benchmark} {record.method} seed {record.seed}: "
                      f"regret {record.final_regret:.4f}, {record.n_trials} trials, {record.wall_seconds:.0f}s")

    records = run_all(args.methods, args.benchmarks, seeds, setup,
                      processes=args.processes, on_done=report)
    write_runs(records, out / "runs.json")
    summaries = summarise(records)
    scores = score_table(summaries)
    budgets = budget_table(summaries, args.target)
    console.print(_rich_table(scores, f"best measured full-budget score, mean ± std over {args.seeds} seeds"))
    console.print(_rich_table(budgets, f"median over {args.seeds} seeds"))
    (out / "summary.md").write_text(
        f"# cotune bench\n\n{total} runs, total budget {setup.total_full_runs:g} full runs "
        f"(B={setup.full_budget:g}, b={setup.small_budget:g}{given}), seeds {seeds[0]}-{seeds[-1]}\n\n"
        f"Rank correlation (Spearman) of the noise-free short (b) and full (B) scores over random "
        f"configurations (recorded runs for a replay):\n\n{signal}\n"
        f"## Best measured full-budget score (mean ± std over {args.seeds} seeds)\n\n{markdown(scores)}\n"
        f"## Budget to get within {args.target:.3g} of the optimum (median over seeds)\n\n{markdown(budgets)}"
    )
    save(bench_figure(records), out / "best-so-far.png")
    console.print(f"written: {out / 'runs.json'}, {out / 'summary.md'}, {out / 'best-so-far.png'}")
    return 0


def _rich_table(table, title: str):
    from rich.table import Table

    header, rows = table
    out = Table(title=title)
    for i, column in enumerate(header):
        if column in ("benchmark", "method"):
            # Names are never cut short, however narrow the terminal: "lora-mix…" could be two benchmarks.
            out.add_column(column, justify="left", no_wrap=True, min_width=max(len(row[i]) for row in [header, *rows]))
        else:
            out.add_column(column, justify="right")
    for row in rows:
        out.add_row(*row)
    return out


def _add_demo(sub: argparse._SubParsersAction) -> None:
    from cotune.demo import add_settings_arguments

    p = sub.add_parser(
        "demo", help="JoBS on real LoRA fine-tuning of the packaged SmolLM2-135M (CPU, about 6-7 minutes on 2 cores)",
        description="Optimise the data mixture, LoRA configuration and learning rate of SmolLM2-135M-Instruct "
                    "on packaged trivia, country and Python-documentation data for a target (held-out countries and "
                    "Python documentation topics, 3:1, scored by loss), or with --task trivia on held-out trivia "
                    "questions. Re-running resumes the stored study.",
    )
    add_settings_arguments(p)
    p.add_argument("--storage", default="cotune-demo.db", help="SQLite file of the study (default cotune-demo.db)")
    p.set_defaults(func=_demo)


def _demo(args: argparse.Namespace) -> int:
    from rich.console import Console

    from cotune.demo import run_demo, settings_flags, settings_from_arguments
    from cotune.train.errors import TrainingConfigError

    settings = settings_from_arguments(args)
    console = Console()
    console.print(f"cotune demo: {settings.total_budget:g} training steps: {settings.n_init} full runs of "
                  f"{settings.full_budget:g} steps, then {settings.n_short} short runs of {settings.small_budget:g} "
                  f"steps if the full runs show that short runs predict them (else full runs) and "
                  f"{settings.n_confirm} confirmation runs; study in {args.storage}")
    try:
        result = run_demo(settings, storage=args.storage)
    except TrainingConfigError as err:  # a bad flag: say which, without a traceback
        raise SystemExit(f"cotune demo: {err}") from None
    _print_answer(console, result.study, args.storage)
    if result.best is not None and result.baseline is not None and result.best.score > result.baseline.score:
        check = " ".join(["python benchmarks/demo_holdout.py", args.storage, *settings_flags(settings)])
        rows = "questions" if settings.task == "trivia" else "rows of each target domain"
        console.print(f"the gain is measured on the {settings.n_eval} held-out {rows} the study selected on; "
                      f"`{check}` retrains both, with several training seeds, and scores them on fresh ones")
    return 0


def _add_run(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run or resume the study a YAML file describes",
                       description="Run the study of a YAML file (model, data, evaluation, train, space, study; "
                                   "see examples/). Re-running resumes it from its storage.")
    p.add_argument("file", help="the study file")
    p.set_defaults(func=_run)


def _add_train_best(sub: argparse._SubParsersAction) -> None:
    helptext = "retrain the best configuration of a study file's study and save the adapter with a model card"
    p = sub.add_parser("train-best", help=helptext, description=helptext + " (peft's save_pretrained: load it with "
                       "PeftModel.from_pretrained)")
    p.add_argument("file", help="the study file, or the study database `cotune run` made with it (its study must "
                                "have a full run measured)")
    p.add_argument("-o", "--output", required=True, help="folder for the adapter, the tokenizer and README.md")
    p.add_argument("--budget", type=float, default=None, help="training budget (default: the study's full budget)")
    p.set_defaults(func=_train_best)


def _train_best(args: argparse.Namespace) -> int:
    from cotune.exceptions import SettingsError
    from cotune.study_file import train_best

    try:
        best, result = train_best(args.file, args.output, budget=args.budget)
    except SettingsError as err:
        raise SystemExit(f"cotune train-best: {err}") from None
    print(f"trial {best.number}'s configuration (study score {best.score:.6g}) retrained: score {result.score:.6g}; "
          f"adapter and model card in {args.output}")
    return 0


def _run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from cotune.exceptions import SettingsError
    from cotune.study_file import load_study_file, run_study_file

    try:
        storage = load_study_file(args.file).study.storage
        result = run_study_file(args.file)
    except SettingsError as err:
        raise SystemExit(f"cotune run: {err}") from None
    _print_answer(Console(), result.study, storage)
    return 0


def _add_inspect(sub: argparse._SubParsersAction) -> None:
    for name, helptext, func in (
        ("status", "show a stored study's progress, best score and baseline", _status),
        ("best", "print a stored study's best configuration and its peft LoraConfig as JSON", _best),
    ):
        p = sub.add_parser(name, help=helptext, description=helptext)
        p.add_argument("storage", help="SQLite file of the study")
        p.add_argument("--study-name", default=None, help="study in the file (default: its only or first study)")
        p.set_defaults(func=func)


def _add_report(sub: argparse._SubParsersAction) -> None:
    helptext = "write a stored study's report: one self-contained HTML file"
    p = sub.add_parser("report", help=helptext, description=helptext + " (plots, top configurations, budget "
                       "split, predictor accuracy and a sortable trial table; opens offline in any browser)")
    p.add_argument("storage", help="SQLite file of the study")
    p.add_argument("--study-name", default=None, help="study in the file (default: its only or first study)")
    p.add_argument("-o", "--output", default="report.html", help="HTML file to write (default report.html)")
    p.set_defaults(func=_report)


def _report(args: argparse.Namespace) -> int:
    from cotune.report.html import write

    study = _load(args)
    try:
        write(study, args.output)
    except OSError as err:
        raise SystemExit(f"cotune report: cannot write {args.output!r}: {err.strerror}") from err
    print(f"report of study {study.study_name!r} ({len(study.trials)} trials) written to {args.output}")
    return 0


def _add_table(sub: argparse._SubParsersAction) -> None:
    helptext = "write every trial of a stored study as CSV (configuration, budget, score, curve, ...)"
    p = sub.add_parser("export", help=helptext, description=helptext)
    p.add_argument("storage", help="SQLite file of the study")
    p.add_argument("--study-name", default=None, help="study in the file (default: its only or first study)")
    p.add_argument("-o", "--output", default="trials.csv", help="CSV file to write (default trials.csv)")
    p.set_defaults(func=_export)
    helptext = "add trials run elsewhere (CSV as export writes it, or JSONL) to a stored study"
    p = sub.add_parser("import", help=helptext, description=helptext + "; each is checked against the study's space, "
                       "and a trial without a cost column costs the study nothing")
    p.add_argument("storage", help="SQLite file of the study")
    p.add_argument("file", help="CSV (columns budget, score, mixture.<domain>, params.<name>, optional curve and "
                   "cost) or JSONL (one {mixture, params, budget, score, curve, cost} object per line)")
    p.add_argument("--study-name", default=None, help="study in the file (default: its only or first study)")
    p.set_defaults(func=_import)


def _export(args: argparse.Namespace) -> int:
    from cotune.table import trial_rows, write_csv

    study = _load(args)
    try:
        write_csv(trial_rows(study.trials, study.space), args.output)
    except OSError as err:
        raise SystemExit(f"cotune export: cannot write {args.output!r}: {err.strerror}") from err
    print(f"{len(study.trials)} trials of study {study.study_name!r} written to {args.output}")
    return 0


def _import(args: argparse.Namespace) -> int:
    from cotune.exceptions import SettingsError
    from cotune.table import read_trials

    study = _load(args)
    try:
        trials = read_trials(args.file, study.space)
    except SettingsError as err:
        raise SystemExit(f"cotune import: {err} (nothing was imported)") from None
    for config, budget, result in trials:
        study.add_trial(config, budget, result)
    print(f"{len(trials)} trials imported into study {study.study_name!r} of {args.storage}")
    return 0


def _load(args: argparse.Namespace):
    from cotune.storage import Storage
    from cotune.study import Study

    if not Path(args.storage).is_file():
        raise SystemExit(f"cotune {args.command}: no study file {args.storage!r}")
    storage = Storage(args.storage)
    names = storage.study_names()
    if not names:
        raise SystemExit(f"cotune {args.command}: {args.storage!r} holds no study")
    return Study.load(storage, args.study_name or names[0])


def _status(args: argparse.Namespace) -> int:
    from rich.console import Console

    study = _load(args)
    trials = study.trials
    counts = {state.value: sum(t.state is state for t in trials) for state in TrialState}
    console = Console()
    s = study.settings
    console.print(f"study {study.study_name!r} ({s.method}), {len(trials)} trials: "
                  + ", ".join(f"{n} {k}" for k, n in counts.items() if n))
    console.print(f"budget spent {study.spent:g} of {s.total_budget:g} {s.budget_unit} "
                  f"(full runs {s.full_budget:g}, short runs {s.small_budget:g})")
    for name, factor in s.proxies.items():
        runs = [t for t in trials if t.fidelity == name]
        console.print(f"proxy {name!r} (a unit of its budget costs {factor:.3g} of the target's): {len(runs)} runs, "
                      f"{sum(t.charged for t in runs):g} {s.budget_unit} of the budget", markup=False)
    _print_scores(console, study)
    _print_evidence(console, study)
    return 0


def _print_evidence(console, study) -> None:
    """What the study found short runs worth, and what it did about it (jobs)."""
    from cotune.evidence import describe_attributes

    for line in describe_attributes(study.attributes):
        console.print(line, markup=False, soft_wrap=True)


def _best(args: argparse.Namespace) -> int:
    study = _load(args)
    best = study.best
    if best is None:
        raise SystemExit(f"cotune best: no full run of {args.storage!r} has completed yet")
    out = {"score": best.score, "baseline_score": study.baseline.score if study.baseline else None,
           "trial": best.number, "mixture": best.config.mixture, "params": best.config.params}
    if best.task_scores:
        out["task_scores"] = best.task_scores
    if "lora_rank" in best.config.params:
        from cotune.train import params_to_lora_dict

        layers = study.space.params.get("lora_layers")
        n_layers = layers.high if layers is not None else 1
        out["peft_lora_config"] = params_to_lora_dict(best.config.params, n_layers)
    print(json.dumps(out, indent=2, default=str))
    return 0


def _print_scores(console, study) -> None:
    best, baseline = study.best, study.baseline
    if best is None:
        console.print("no full run has completed yet")
        return
    line = f"best measured score {best.score:.4f} (trial {best.number})"
    if baseline is not None:
        line += f", baseline (default configuration) {baseline.score:.4f}, gain {best.score - baseline.score:+.4f}"
    console.print(line)
    if best.task_scores:
        base = baseline.task_scores if baseline is not None else {}
        console.print("per task (best" + (" / baseline" if base else "") + "): " + ", ".join(
            f"{name} {score:.4f}" + (f" / {base[name]:.4f}" if name in base else "")
            for name, score in best.task_scores.items()))
    if baseline is not None and best.score <= baseline.score:
        console.print("no configuration tried beat the baseline: keep the default, or give the study more budget")


def _print_answer(console, study, storage: str) -> None:
    from rich.table import Table

    best = study.best
    _print_scores(console, study)
    if best is None:
        return
    table = Table(title="best configuration (measured at the full budget)")
    table.add_column("setting")
    table.add_column("best", justify="right")
    table.add_column("baseline", justify="right")
    default = study.space.default_config()
    for domain, weight in best.config.mixture.items():
        table.add_row(f"mixture: {domain}", f"{weight:.3f}", f"{default.mixture[domain]:.3f}")
    for name, value in best.config.params.items():
        fmt = (lambda v: f"{v:.4g}") if isinstance(value, float) else str
        table.add_row(name, fmt(value), fmt(default.params[name]))
    console.print(table)
    console.print(f"study stored in {storage}; `cotune best {storage}` prints it with its peft LoraConfig")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the `cotune` command."""
    parser = argparse.ArgumentParser(
        prog="cotune", description="Joint optimisation of the training data mixture and the LoRA configuration.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log every trial")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_demo(sub)
    _add_run(sub)
    _add_bench(sub)
    _add_inspect(sub)
    _add_report(sub)
    _add_table(sub)
    _add_train_best(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `cotune` command."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    from cotune.exceptions import CotuneError

    try:
        return args.func(args)
    except CotuneError as err:  # bad input, a busy or mismatched study, a broken database: one message, no traceback
        raise SystemExit(f"cotune {args.command}: {err}") from None


if __name__ == "__main__":
    sys.exit(main())
