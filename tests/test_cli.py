"""``python -m modelcheck``: help, doctor, errors and subcommand discovery."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from modelcheck import Config
from modelcheck._cli import Subcommand, build_parser, main


def test_help_lists_doctor(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    assert "doctor" in capsys.readouterr().out


def test_python_dash_m_runs() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "modelcheck", "--help"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0
    assert "usage: python -m modelcheck" in result.stdout


@pytest.mark.postgres
def test_doctor_starts_and_stops_the_embedded_server(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "server: embedded, binaries from" in out
    assert "start: ok" in out
    run_dir = Path(next(line for line in out.splitlines() if line.startswith("run dir:"))[9:])
    assert not run_dir.exists()


@pytest.mark.postgres
def test_doctor_with_a_dsn(capsys: pytest.CaptureFixture[str], embedded_dsn: str) -> None:
    assert main(["--dsn", embedded_dsn, "doctor"]) == 0
    assert "create/drop probe database: ok" in capsys.readouterr().out


def test_doctor_reports_an_unreachable_dsn(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["--dsn", f"host={tmp_path} user=postgres", "doctor"]) == 2
    err = capsys.readouterr().err
    assert "Cannot reach PostgreSQL" in err
    assert "To fix this" in err


def test_bad_bin_dir_is_reported(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["--pg-bin", str(tmp_path), "doctor"]) == 2
    err = capsys.readouterr().err
    assert "No 'postgres' executable" in err
    # The flag the user typed, not the pytest option of the same setting.
    assert "point --pg-bin /" in err
    assert "--modelcheck-pg-bin" not in err


def test_subcommands_plug_in() -> None:
    seen: list[str] = []

    def run(args: argparse.Namespace, config: Config) -> int:
        seen.append(args.name)
        return 0

    def configure(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("name")

    extra = Subcommand(name="greet", help="say hello", configure=configure, run=run)
    args = build_parser({"greet": extra}).parse_args(["greet", "world"])
    assert args.command == "greet"
    assert extra.run(args, Config()) == 0
    assert seen == ["world"]


def test_run_names_the_known_machines_for_an_unknown_one(
    capsys: pytest.CaptureFixture[str],
) -> None:
    machines = Path(__file__).parents[1] / "machines"
    code = main(["run", "--machine", "NoSuchMachine", "--machines-dir", str(machines)])
    assert code == 2
    err = capsys.readouterr().err
    assert "no machine NoSuchMachine" in err
    assert "BranchMachine" in err
    assert "LedgerMachine" in err


@pytest.mark.parametrize(
    "argv",
    [
        ["--profile", "ci", "--target", "sqlalchemy", "probe"],
        ["probe", "--profile", "ci", "--target", "sqlalchemy"],
        ["--profile", "ci", "probe", "--target", "sqlalchemy"],
    ],
)
def test_global_options_are_accepted_before_or_after_the_subcommand(argv: list[str]) -> None:
    seen: list[Config] = []

    def run(args: argparse.Namespace, config: Config) -> int:
        seen.append(config)
        return 0

    probe = Subcommand(name="probe", help="record the config", configure=lambda p: None, run=run)
    parsed = build_parser({"probe": probe}).parse_args(argv)
    assert (parsed.profile, parsed.target) == ("ci", "sqlalchemy")


def test_run_accepts_global_options_after_the_subcommand(
    capsys: pytest.CaptureFixture[str],
) -> None:
    machines = Path(__file__).parents[1] / "machines"
    argv = ["run", "--profile", "ci", "--machine", "Nope", "--machines-dir", str(machines)]
    assert main(argv) == 2
    assert "no machine Nope" in capsys.readouterr().err


def test_every_option_of_every_subcommand_has_help() -> None:
    parser = build_parser()
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    missing = [
        f"{name} {'/'.join(action.option_strings) or action.dest}"
        for name, sub in commands.choices.items()
        for action in sub._actions
        if not action.help and not isinstance(action, argparse._HelpAction)
    ]
    assert missing == []
