"""The shared conformance vectors through the public lupa_core API, with the
sync and the asyncio client, on every backend pair."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import conformance_runner as runner
from conftest import SUMMARY, require_services

BACKENDS = {
    "memory+memory": lambda: runner.Backend("memory://", "memory://"),
    "sqlite+memory": lambda: runner.Backend("sqlite::memory:", "memory://"),
    "postgres+redis": lambda: runner.Backend(*require_services()),
}


@pytest.fixture(scope="module")
def files() -> list[runner.VectorFile]:
    return runner.load_dirs()


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("backend", list(BACKENDS))
def test_vectors(files: list[runner.VectorFile], backend: str, mode: str) -> None:
    report = runner.run(files, BACKENDS[backend](), mode)
    SUMMARY.append(report.summary())
    print(report.summary())
    assert report.passed > 0, "no scenario ran"
    assert not report.failures, "\n".join(report.failures)


def test_the_copied_vectors_are_all_there() -> None:
    names = sorted(p.name for p in runner.VECTORS.glob("*.json"))
    assert names, f"no vectors in {runner.VECTORS}"
    assert len(runner.load_dirs()) >= len(names)


def _write(dir: Path, steps: list[object], requires: list[str] | None = None) -> Path:
    scenario: dict[str, object] = {"name": "probe", "steps": steps}
    if requires is not None:
        scenario["requires"] = requires
    (dir / "v.json").write_text(json.dumps({"description": "runner self-test", "scenarios": [scenario]}))
    return dir


@pytest.mark.parametrize(
    "steps, requires",
    [
        ([{"op": "no_such_op"}], None),
        ([{"op": "create_project", "project": "p1", "colour": "red"}], None),
        ([{"op": "create_project", "project": "p1", "expect": {"colour": "red"}}], None),
        ([{"op": "create_project", "project": "p1"}, {"op": "create_project", "project": "p1", "expect": {"error": "PROJECT_EXISTS", "colour": 1}}], None),
        ([{"op": "cache_get", "key": "k", "expect": {"colour": 1}}], ["cache"]),
        ([{"op": "create_project", "project": "p1"}], ["gpu"]),
        ([{"op": "create_project", "project": "p1", "expect": {"error": "PROJECT_NOT_FOUND"}}], None),
    ],
)
def test_the_runner_fails_what_it_does_not_know(tmp_path: Path, steps: list[object], requires: list[str] | None) -> None:
    files = runner.load_dirs([_write(tmp_path, steps, requires)])
    report = runner.run(files, runner.Backend("memory://", "memory://"), "sync")
    assert report.passed == 0 and len(report.failures) == 1, report


def test_the_extra_directory_must_exist_and_hold_vectors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(runner.DIR_ENV, str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError):
        runner.load_dirs()
    monkeypatch.setenv(runner.DIR_ENV, str(tmp_path))
    with pytest.raises(FileNotFoundError):
        runner.load_dirs()
    _write(tmp_path, [{"op": "create_project", "project": "p1"}])
    monkeypatch.setenv(runner.DIR_ENV, str(tmp_path))
    assert [f.path.name for f in runner.load_dirs()][-1] == "v.json"
