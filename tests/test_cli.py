"""The `cotune` command."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from cotune.cli import main


def test_bench_prints_the_table_and_writes_every_run(tmp_path, capsys):
    out = tmp_path / "runs.json"
    assert main(["bench", "--methods", "random", "--seeds", "2", "--budget", "4", "--processes", "1",
                 "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "final regret" in text and "random" in text
    runs = json.loads(out.read_text())
    assert [r["seed"] for r in runs] == [0, 1]
    assert all(r["spent"] <= 400 and r["final_regret"] >= 0 for r in runs)
    assert runs[0]["trace"][-1][0] == runs[0]["spent"]


def test_bench_rejects_unknown_names():
    with pytest.raises(SystemExit, match="unknown method 'grid'"):
        main(["bench", "--methods", "grid"])
    with pytest.raises(SystemExit, match="unknown benchmark"):
        main(["bench", "--benchmarks", "nope"])


def test_help_runs_as_a_command():
    done = subprocess.run([sys.executable, "-m", "cotune.cli", "--help"], capture_output=True, text=True, check=True)
    assert "bench" in done.stdout
