"""The conformance vectors (tests/conformance/vectors of the workspace, plus
$LUPA_CONFORMANCE_DIR) run through the public lupa_core API, with the sync
client or the asyncio client.

Every scenario gets its own handle: a fresh store (its own PostgreSQL schema
``lupa_py_<random>``) and its own cache key prefix; afterwards the schema is
dropped and the prefix's keys cleared. ``cache_*`` steps use the documented
test hook ``cache_probe()``. An unknown op, argument, ``requires`` value or
expectation field fails the scenario.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lupa_core

DIR_ENV = "LUPA_CONFORMANCE_DIR"
VECTORS = Path(__file__).resolve().parents[2] / "tests" / "conformance" / "vectors"


class StepError(Exception):
    """A step whose outcome differs from its expectation (or is malformed)."""


@dataclass
class VectorFile:
    path: Path
    scenarios: list[dict[str, Any]]


def load_dirs(dirs: list[Path] | None = None) -> list[VectorFile]:
    """Every *.json of each directory and of $LUPA_CONFORMANCE_DIR (when
    set). A directory that is missing or holds no vector file is an error."""
    dirs = list(dirs if dirs is not None else [VECTORS])
    extra = os.environ.get(DIR_ENV)
    if extra is not None:
        dirs.append(Path(extra))
    files = []
    for d in dirs:
        if not d.is_dir():
            raise FileNotFoundError(f"vector directory {d} does not exist")
        paths = sorted(d.glob("*.json"))
        if not paths:
            raise FileNotFoundError(f"vector directory {d} holds no *.json file")
        for p in paths:
            doc = json.loads(p.read_text(encoding="utf-8"))
            scenarios = doc.get("scenarios")
            if not isinstance(scenarios, list):
                raise ValueError(f"{p}: no \"scenarios\" list")
            files.append(VectorFile(p, scenarios))
    return files


@dataclass(frozen=True)
class Backend:
    """Store and cache URLs; each scenario gets its own schema and prefix."""

    store: str
    cache: str

    @property
    def label(self) -> str:
        return f"{self.store.split(':')[0]}+{self.cache.split(':')[0]}"

    def options(self) -> dict[str, Any]:
        tag = secrets.token_hex(5)
        opts: dict[str, Any] = {"key_prefix": f"lupa-py-{tag}:"}
        if self.store.startswith("postgres"):
            opts["schema"] = f"lupa_py_{tag}"
        return opts


@dataclass
class Report:
    label: str
    passed: int = 0
    skipped: int = 0
    failures: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return f"conformance {self.label}: {self.passed} passed, {len(self.failures)} failed, {self.skipped} skipped"


class _Client:
    """One scenario's handle, sync or async, behind one call shape."""

    def __init__(self, backend: Backend, mode: str) -> None:
        self.mode = mode
        opts = backend.options()
        if mode == "sync":
            self.lupa: Any = lupa_core.Lupa(backend.store, backend.cache, **opts)
            self.loop: asyncio.AbstractEventLoop | None = None
        else:
            self.loop = asyncio.new_event_loop()
            self.lupa = lupa_core.AsyncLupa(backend.store, backend.cache, **opts)
            self.call("open")
        self.probe: Any = self.call("cache_probe")

    def _invoke(self, target: Any, name: str, *args: Any, **kwargs: Any) -> Any:
        if self.loop is None:
            return getattr(target, name)(*args, **kwargs)

        async def run() -> Any:
            # The awaitable is made inside the running loop, as in an app.
            return await getattr(target, name)(*args, **kwargs)

        return self.loop.run_until_complete(run())

    def call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return self._invoke(self.lupa, name, *args, **kwargs)

    def probe_call(self, name: str, *args: Any) -> Any:
        if self.probe is None:
            raise StepError("a cache step in a backend without a cache")
        return self._invoke(self.probe, name, *args)

    def cleanup(self) -> None:
        try:
            if self.probe is not None:
                self.probe_call("clear")
            self.call("drop_storage")
        finally:
            self.call("close")
            if self.loop is not None:
                self.loop.close()


class _Args:
    """A step's arguments, each taken at most once; leftovers are unknown."""

    def __init__(self, step: dict[str, Any]) -> None:
        self.map = dict(step)

    def opt_str(self, name: str) -> str | None:
        v = self.map.pop(name, None)
        if v is None or isinstance(v, str):
            return v
        raise StepError(f"argument {name} must be a string, not {v!r}")

    def str(self, name: str) -> str:
        v = self.opt_str(name)
        if v is None:
            raise StepError(f"argument {name} is required")
        return v

    def opt_bool(self, name: str) -> bool | None:
        if name not in self.map:
            return None
        v = self.map.pop(name)
        if isinstance(v, bool):
            return v
        raise StepError(f"argument {name} must be a boolean, not {v!r}")

    def finish(self) -> None:
        if self.map:
            raise StepError(f"unknown argument {next(iter(self.map))!r}")


def _matches(want: Any, got: Any) -> bool:
    if isinstance(want, dict) and isinstance(got, dict):
        return all(k in got and _matches(v, got[k]) for k, v in want.items())
    return bool(want == got) and type(want) is type(got)


def _plain(v: Any) -> Any:
    """Enums as their strings, for comparing with JSON."""
    return str.__str__(v) if isinstance(v, str) else v


def _check(op: str, outcome: dict[str, Any] | lupa_core.LupaError, expect: dict[str, Any], fields: tuple[str, ...]) -> None:
    if "error" in expect:
        extra = [k for k in expect if k not in ("error", "http_status")]
        if extra:
            raise StepError(f"{op}: unknown expectation field {extra[0]!r} beside \"error\"")
        if not isinstance(outcome, lupa_core.LupaError):
            raise StepError(f"{op}: expected error {expect['error']}, got success {outcome}")
        if outcome.code != expect["error"]:
            raise StepError(f"{op}: expected error {expect['error']}, got {outcome.code.value} ({outcome.message})")
        if "http_status" in expect and outcome.http_status != expect["http_status"]:
            raise StepError(f"{op}: expected http_status {expect['http_status']}, got {outcome.http_status}")
        if not isinstance(outcome, lupa_core.error_class(outcome.code, outcome.http_status)):
            raise StepError(f"{op}: {type(outcome).__name__} is not the class of {outcome.code.value}")
        return
    if isinstance(outcome, lupa_core.LupaError):
        raise StepError(f"{op}: expected success, got {outcome.code.value} ({outcome.message})")
    for name, want in expect.items():
        if name not in fields:
            raise StepError(f"{op}: unknown expectation field {name!r}")
        got = outcome.get(name)
        if not _matches(want, got):
            raise StepError(f"{op}: field {name}: expected {want!r}, got {got!r}")


def _summary(s: lupa_core.DeploymentSummary) -> dict[str, Any]:
    return {"id": s.id, "environment": _plain(s.environment), "status": _plain(s.status)}


def _run_step(c: _Client, step: Any) -> None:
    if not isinstance(step, dict):
        raise StepError("a step must be an object")
    step = dict(step)
    op = step.pop("op", None)
    if not isinstance(op, str):
        raise StepError("a step needs an \"op\" string")
    expect = step.pop("expect", None)
    if expect is None:
        expect = {}
    if not isinstance(expect, dict):
        raise StepError("\"expect\" must be an object")
    a = _Args(step)
    if op.startswith("cache_"):
        _cache_step(c, op, a, expect)
        return

    def call(name: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return c.call(name, *args, **kwargs)
        except lupa_core.LupaError as e:
            return e

    result: Any
    fields: tuple[str, ...]
    if op == "create_project":
        project = a.str("project")
        org_id = a.opt_str("org_id") or "org_conformance"
        name = a.opt_str("name") or "Conformance"
        a.finish()
        r = call("create_project", org_id, name, id=project)
        result, fields = (r if isinstance(r, lupa_core.LupaError) else {}), ()
    elif op == "create_deployment":
        project, dep = a.str("project"), a.str("deployment")
        snapshot = a.opt_str("snapshot") or "snp_conformance"
        env, created_at = a.opt_str("environment"), a.opt_str("created_at")
        a.finish()
        r = call("create_deployment", project, snapshot, id=dep, environment=env, created_at=created_at)
        result = r if isinstance(r, lupa_core.LupaError) else {
            "environment": _plain(r.deployment.environment), "status": _plain(r.deployment.status)}
        fields = ("environment", "status")
    elif op == "set_status":
        dep, status, message = a.str("deployment"), a.str("status"), a.opt_str("message")
        a.finish()
        r = call("set_status", dep, status, message)
        result = r if isinstance(r, lupa_core.LupaError) else {"status": _plain(r.deployment.status)}
        fields = ("status",)
    elif op in ("promote", "rollback"):
        project = a.str("project")
        dep = a.str("deployment") if op == "promote" else None
        a.finish()
        r = call("promote", project, dep) if dep is not None else call("rollback", project)
        result = r if isinstance(r, lupa_core.LupaError) else {"deployment": _summary(r.deployment)}
        fields = ("deployment",)
    elif op == "set_environment":
        project, dep, env = a.str("project"), a.str("deployment"), a.str("environment")
        a.finish()
        r = call("set_environment", project, dep, env)
        result = r if isinstance(r, lupa_core.LupaError) else {"environment": _plain(r.deployment.environment)}
        fields = ("environment",)
    elif op == "delete_deployment":
        project, dep = a.str("project"), a.str("deployment")
        a.finish()
        r = call("delete_deployment", project, dep)
        result, fields = (r if isinstance(r, lupa_core.LupaError) else {}), ()
    elif op == "resolve":
        project = a.str("project")
        deployment_id = a.opt_str("deployment_id")
        requires = a.opt_bool("requires_deployment")
        key_env, key = a.opt_str("api_key_environment"), a.opt_str("api_key")
        internal = a.opt_bool("internal")
        has_target = "target_environment" in a.map
        target = a.opt_str("target_environment")
        a.finish()
        if has_target and not internal:
            raise StepError("target_environment without internal")
        r = call(
            "resolve", project, deployment_id=deployment_id,
            requires_deployment=True if requires is None else requires,
            api_key_environment=key_env, api_key=key, internal=bool(internal), target_environment=target,
        )
        result = r if isinstance(r, lupa_core.LupaError) else {"deployment": r.deployment}
        fields = ("deployment",)
    elif op == "parse_api_key":
        key = a.str("key")
        a.finish()
        try:
            info = lupa_core.parse_api_key(key)
            result = {"key_type": _plain(info.key_type), "environment": _plain(info.environment)}
        except lupa_core.LupaError as e:
            result = e
        fields = ("key_type", "environment")
    elif op == "get_deployment":
        dep = a.str("deployment")
        a.finish()
        r = call("get_deployment", dep)
        result = r if isinstance(r, lupa_core.LupaError) else {
            "project": r.project_id, "environment": _plain(r.environment), "status": _plain(r.status)}
        fields = ("project", "environment", "status")
    elif op == "list_deployments":
        project = a.str("project")
        a.finish()
        ids: list[str] = []
        cursor: str | None = None
        result = None
        while True:
            page = call("list_deployments", project, cursor=cursor)
            if isinstance(page, lupa_core.LupaError):
                result = page
                break
            ids.extend(d.id for d in page.items)
            cursor = page.next_cursor
            if cursor is None:
                break
        if result is None:
            result = {"ids": ids}
        fields = ("ids",)
    else:
        raise StepError(f"unknown op {op!r}")
    _check(op, result, expect, fields)


def _cache_step(c: _Client, op: str, a: _Args, expect: dict[str, Any]) -> None:
    allowed = {"cache_get": ("value", "json", "one_of"), "cache_ttl": ("min", "max", "absent"),
               "cache_set": (), "cache_clear": ()}
    if op not in allowed:
        raise StepError(f"unknown op {op!r}")
    extra = [k for k in expect if k not in allowed[op]]
    if extra:
        raise StepError(f"{op}: unknown expectation field {extra[0]!r}")
    if op == "cache_clear":
        a.finish()
        c.probe_call("clear")
    elif op == "cache_set":
        key, value = a.str("key"), a.str("value")
        ttl = a.map.pop("ttl", None)
        if not isinstance(ttl, int) or isinstance(ttl, bool) or ttl < 0:
            raise StepError("argument ttl (whole seconds) is required")
        a.finish()
        c.probe_call("set", key, value, float(ttl))
    elif op == "cache_get":
        key = a.str("key")
        a.finish()
        got = c.probe_call("get", key)
        if "value" in expect and expect["value"] != got:
            raise StepError(f"cache_get {key}: expected {expect['value']!r}, got {got!r}")
        if "one_of" in expect:
            if not isinstance(expect["one_of"], list):
                raise StepError("one_of must be a list")
            if got not in expect["one_of"]:
                raise StepError(f"cache_get {key}: expected one of {expect['one_of']!r}, got {got!r}")
        if "json" in expect:
            try:
                parsed = json.loads(got) if got is not None else None
            except ValueError:
                parsed = None
            if parsed is None or not _matches(expect["json"], parsed):
                raise StepError(f"cache_get {key}: expected JSON {expect['json']!r}, got {got!r}")
    else:
        key = a.str("key")
        a.finish()
        ttl = c.probe_call("ttl", key)
        if expect.get("absent") is True:
            if ttl is not None:
                raise StepError(f"cache_ttl {key}: expected absent, got {ttl} s")
            return
        if ttl is None:
            raise StepError(f"cache_ttl {key}: the key is absent")
        # Redis rounds PTTL down; compare whole seconds, rounded up (as the
        # core's runner does).
        secs = -int(-round(ttl * 1000) // 1000)
        lo, hi = expect.get("min", 0), expect.get("max")
        if secs < lo or (hi is not None and secs > hi):
            raise StepError(f"cache_ttl {key}: expected {lo}..={hi} s, got {secs} s")


def run(files: list[VectorFile], backend: Backend, mode: str) -> Report:
    """Runs every scenario of ``files`` with a fresh handle each."""
    report = Report(f"{backend.label} {mode}")
    for f in files:
        for s in f.scenarios:
            name = s.get("name", "?")
            where = f"{f.path.name} / {name}"
            requires = s.get("requires", [])
            unknown = [r for r in requires if r != "cache"] if isinstance(requires, list) else [requires]
            if unknown:
                report.failures.append(f"{where}: unknown requirement {unknown[0]!r}")
                continue
            try:
                client = _Client(backend, mode)
            except Exception as e:  # noqa: BLE001 - reported, not hidden
                report.failures.append(f"{where}: could not open: {e!r}")
                continue
            failure = None
            try:
                if "cache" in requires and client.probe is None:
                    report.skipped += 1
                    continue
                steps = s.get("steps")
                if not isinstance(steps, list):
                    failure = f"{where}: no \"steps\" list"
                else:
                    for i, step in enumerate(steps):
                        try:
                            _run_step(client, step)
                        except StepError as e:
                            failure = f"{where} / step {i}: {e}"
                            break
                        except Exception as e:  # noqa: BLE001 - a wrong exception type is a failure
                            failure = f"{where} / step {i}: unexpected {e!r}"
                            break
            finally:
                client.cleanup()
            if failure is None:
                report.passed += 1
            else:
                report.failures.append(failure)
    return report

