"""The progress line: throttled, names the machine, its counts and its phase."""

from __future__ import annotations

from modelcheck._progress import Progress


def test_ticks_write_the_machine_its_counts_and_phase() -> None:
    written: list[tuple[str, bool]] = []
    progress = Progress(lambda text, live: written.append((text, live)), live=True, interval_s=0)
    progress.tick("BranchMachine", 1, 41, failed=False)
    progress.tick("BranchMachine", 9, 160, failed=True)
    progress.done()
    assert written == [
        ("modelcheck: BranchMachine: 1 example, 41 steps, generating", True),
        ("modelcheck: BranchMachine: 9 examples, 160 steps, shrinking a failure", True),
        ("", False),  # the live line is ended, so pytest's next output starts afresh
    ]


def test_ticks_are_throttled() -> None:
    written: list[str] = []
    progress = Progress(lambda text, live: written.append(text), live=False, interval_s=3600)
    for step in range(1000):
        progress.tick("M", 1, step, failed=False)
    progress.done()
    assert written == []
