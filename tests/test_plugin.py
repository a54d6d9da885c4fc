"""The pytest plugin: options, profiles, report header and fixtures, via pytester."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import hypothesis
import pytest

from modelcheck._config import Config

pytestmark = pytest.mark.postgres


@pytest.fixture(autouse=True)
def _restore_hypothesis_profile() -> Iterator[None]:
    """Inline runs load profiles into this process; put ours back afterwards."""
    name = hypothesis.settings.get_current_profile_name()
    yield
    hypothesis.settings.load_profile(name)


def test_options_are_read_into_the_config(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import hypothesis
        from modelcheck._config import PROFILES

        def test_config(modelcheck_config):
            assert modelcheck_config.profile == "ci"
            assert modelcheck_config.target == "modelcheck.suites.ledger.target:LedgerTarget"
            assert hypothesis.settings().max_examples == PROFILES["ci"]["max_examples"]
            assert not hypothesis.settings().derandomize, "the printed seed must matter"
            assert hypothesis.settings().deadline is None
        """
    )
    result = pytester.runpytest(
        "--modelcheck-profile=ci",
        "--modelcheck-target=modelcheck.suites.ledger.target:LedgerTarget",
    )
    result.assert_outcomes(passed=1)


def test_an_unknown_target_is_one_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_a(): pass\ndef test_b(): pass")
    result = pytester.runpytest("--modelcheck-target=pkg.mod:Target")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "cannot import 'pkg.mod'" in result.stderr.str()
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


def test_an_unreachable_server_is_one_usage_error_without_the_password(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile("def test_a(modelcheck_server): pass")
    dsn = "postgresql://postgres:sekrit@127.0.0.1:1/postgres?connect_timeout=2"
    result = pytester.runpytest(f"--modelcheck-dsn={dsn}")
    output = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "Cannot reach PostgreSQL" in output
    assert output.count("ERROR:") == 1
    assert "sekrit" not in output


def test_the_config_repr_hides_the_password() -> None:
    config = Config(dsn="postgresql://app:sekrit@localhost/db")
    assert "sekrit" not in repr(config)
    assert "password=***" in repr(config)


def test_profile_from_environment(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELCHECK_PROFILE", "weekly")
    pytester.makepyfile(
        """
        def test_config(modelcheck_config):
            assert modelcheck_config.profile == "weekly"
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["modelcheck: hypothesis profile=weekly*"])


def test_unknown_profile_is_a_usage_error(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--modelcheck-profile=nightly")
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_bad_bin_dir_is_a_usage_error(pytester: pytest.Pytester, tmp_path: Path) -> None:
    result = pytester.runpytest(f"--modelcheck-pg-bin={tmp_path}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*No 'postgres' executable*To fix this*"])


def test_report_header_names_server_profile_and_seed(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest("--hypothesis-seed=1234")
    result.stdout.fnmatch_lines(
        [
            "modelcheck: server: embedded PostgreSQL *",
            "modelcheck: hypothesis profile=dev (max_examples=*), seed=1234 *",
        ]
    )


def test_every_run_prints_a_seed_even_when_none_was_given(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest()
    header = [line for line in result.stdout.lines if "seed=" in line]
    assert len(header) == 1
    seed = header[0].split("seed=")[1].split()[0]
    assert seed.isdigit(), header[0]


def test_fixtures_give_a_clean_database_with_the_installed_schema(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(
        """
        import pytest

        @pytest.fixture(scope="session")
        def modelcheck_installer():
            def install(conn):
                conn.execute("CREATE TABLE note (pk int GENERATED ALWAYS AS IDENTITY, v text)")
            return install
        """
    )
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.parametrize("run", range(3))
        def test_clean(modelcheck_connection, modelcheck_database, run):
            conn = modelcheck_connection
            assert conn.execute("SELECT count(*) FROM note").fetchone() == (0,)
            pk = conn.execute("INSERT INTO note (v) VALUES ('x') RETURNING pk").fetchone()
            assert pk == (1,)  # identity not advanced by earlier tests
            conn.commit()
        """
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=3)


def test_failing_test_still_cleans_up(pytester: pytest.Pytester, tmp_path: Path) -> None:
    record = tmp_path / "run_dir"
    pytester.makepyfile(
        f"""
        def test_fails(modelcheck_server, modelcheck_connection):
            open({str(record)!r}, "w").write(str(modelcheck_server.run_dir))
            assert False, "boom"
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    run_dir = Path(record.read_text())
    assert run_dir.name.startswith("run-")
    assert not run_dir.exists()


def test_strict_markers_are_registered(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.postgres
        @pytest.mark.slow
        def test_marked():
            pass
        """
    )
    result = pytester.runpytest("--strict-markers")
    result.assert_outcomes(passed=1)


def test_the_header_names_the_profile_hypothesis_loaded(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest("--hypothesis-profile=ci")
    result.stdout.fnmatch_lines(
        ["modelcheck: hypothesis profile=ci (max_examples=120, stateful_step_count=40)*"]
    )
