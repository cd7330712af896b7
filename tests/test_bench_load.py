"""``chainmatch bench load``: the table it prints, and (slow) a short real run against a loopback server."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from service.cli import app as cli
from service.cli.bench_load import LoadResult, markdown_table


def test_table_reports_counts_throughput_percentiles_and_errors_per_operation():
    r = LoadResult(clients=10, seconds=2.0)
    r.latencies["recommend"] = [float(x) for x in range(1, 101)]  # 1 … 100 ms
    r.latencies["search"] = [5.0, 5.0]
    r.errors["upsert"] = 2
    rows = {line.split("|")[2].strip(): [c.strip() for c in line.split("|")[1:-1]]
            for line in markdown_table([r]).splitlines()[2:]}  # fmt: skip
    assert rows["recommend"] == ["10", "recommend", "100", "50.0", "50", "95", "99", "0"]
    assert rows["search"][2:5] == ["2", "1.0", "5"]
    assert rows["upsert"][2:4] == ["2", "1.0"] and rows["upsert"][-1] == "2"
    assert rows["upsert"][4] == "nan"  # no successful upsert: no latency to report
    assert rows["**all**"][2:4] == ["104", "52.0"] and rows["**all**"][-1] == "2"


@pytest.mark.slow
def test_bench_load_runs_against_a_loopback_server_and_stops(shared_data):
    result = CliRunner().invoke(
        cli,
        ["bench", "load", "--clients", "2", "--duration", "3", "--warmup", "0", "--max-requests", "40",
         "--embedder", "hash", "--data-dir", str(shared_data)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    table = result.output[result.output.index("| clients |") :]
    overall = next(line for line in table.splitlines() if "**all**" in line)
    requests = int(overall.split("|")[3].replace(",", ""))
    assert 0 < requests <= 40
    assert re.search(r"http://127\.0\.0\.1:\d+", result.output)


def test_mix_is_normalised_and_validated():
    from service.cli.bench_load import parse_mix

    assert parse_mix("70,20,10") == pytest.approx({"recommend": 0.7, "search": 0.2, "upsert": 0.1})
    assert parse_mix("1,1,0") == {"recommend": 0.5, "search": 0.5, "upsert": 0.0}
    for bad in ("70,30", "a,b,c", "-1,1,1", "0,0,0"):
        with pytest.raises(ValueError, match="--mix"):
            parse_mix(bad)
