"""Turn a failure trace into a plain pytest regression test (no Hypothesis).

The test replays the trace's steps on a fresh database through the plugin's
``modelcheck_server`` fixture: it fails while the bug is there, passes once fixed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from modelcheck._traces import trace as _trace

DEFAULT_DIR: Final = Path("tests") / "regressions"

_TEMPLATE: Final = '''"""Regression test written by ``python -m modelcheck regress`` from a trace.

Machine {qualname} on target {target!r}: {steps} steps, recorded with seed {seed}
(profile {profile}). Recorded failure: {heading} {where}.

It replays the recorded steps (``traces/`` next to this file) on a fresh database,
without Hypothesis: it fails while the bug is there and passes once it is fixed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from modelcheck._traces.replay import replay_file
from modelcheck._postgres.server import EmbeddedServer, ExternalServer

TRACES = Path(__file__).parent / "traces"
TRACE = TRACES / "{name}.json"


@pytest.mark.postgres
@pytest.mark.slow
def test_{name}(
    modelcheck_server: EmbeddedServer | ExternalServer,
) -> None:
    result = replay_file(TRACE, modelcheck_server)
    if not result.passed:
        pytest.fail(result.report(), pytrace=False)
'''


def write_regression(
    trace: Mapping[str, Any], directory: str | os.PathLike[str] = DEFAULT_DIR
) -> Path:
    """Write ``test_<name>.py`` and ``traces/<name>.json`` under ``directory``."""
    name = _trace.trace_name(trace)
    root = Path(directory)
    (root / "traces").mkdir(parents=True, exist_ok=True)
    (root / "traces" / f"{name}.json").write_text(
        json.dumps(trace, indent=1, ensure_ascii=True) + "\n", encoding="utf-8"
    )
    failure = trace["failure"]
    test = root / f"test_{name}.py"
    test.write_text(
        _TEMPLATE.format(
            qualname=trace["machine"]["qualname"],
            target=trace["target"]["name"],
            steps=len(trace["steps"]),
            seed=trace["seed"],
            profile=trace["profile"],
            heading=failure["heading"],
            where=failure["where"],
            name=name,
        ),
        encoding="utf-8",
    )
    return test
