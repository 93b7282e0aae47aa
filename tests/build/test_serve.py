"""``flareflow serve`` prepares what the Worker needs before ``wrangler dev`` starts, and owns the watch loop.

Driven as a user runs it (the real CLI in a subprocess) with the recording wrangler stand-in
(``tests/build/fake_wrangler.py``: it logs every command line and, for ``dev``, the ``.dev.vars`` it
finds and its mode). ``tests/harness/test_user_path.py`` runs the same command with the real wrangler
and real workerd.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from importlib import resources
from pathlib import Path

from flareflow.cli.build import BUILD_DIR
from flareflow.cli.devloop import DevState, apply_local_migrations
from flareflow.cli.devvars import parse_dev_vars

from .cases import NO_RESOURCES, pyproject
from .helpers import (
    FAKE_WRANGLER,
    FLAREFLOW,
    assert_ok,
    describe,
    fake_wrangler_env,
    ff,
    flareflow_changed_since,
    isolated_imports,
    load,
    read_log,
)

APPLY_LOCAL = ["d1", "migrations", "apply", "INDEX", "--local"]


def _dev_entry(log: Path) -> dict[str, str]:
    [entry] = [e for e in read_log(log) if e["argv"][:1] == ["dev"]]
    return entry


def test_serve_hands_the_token_and_secrets_to_the_worker_and_migrates_the_local_index(
        demo: Path, tmp_path: Path) -> None:
    with (demo / "pyproject.toml").open("a") as f:
        f.write('\n[tool.flareflow.worker]\nsecrets = ["STRIPE_KEY", "SLACK_HOOK", "MISSING_ONE"]\n')
    (demo / ".dev.vars").write_text("# local secrets\nSLACK_HOOK='https://hooks.example/x?a=1&b=2'\n"
                                    "UNDECLARED=1\nSTRIPE_KEY=from-the-file\n")
    log = tmp_path / "wrangler.log"
    result = ff("serve", cwd=demo, env=fake_wrangler_env(log, STRIPE_KEY="sk_test_env"))
    assert_ok(result)

    # the local index is migrated first, then wrangler dev starts on the configured interface and port
    calls = [e["argv"] for e in read_log(log)]
    assert calls == [APPLY_LOCAL, ["dev", "--port", "8787", "--ip", "127.0.0.1"]], describe(result)
    assert {Path(e["cwd"]).resolve() for e in read_log(log)} == {(demo / BUILD_DIR).resolve()}

    # .dev.vars as wrangler dev found it: owner-only, the generated token and the declared secrets
    dev = _dev_entry(log)
    assert dev["dev_vars_mode"] == "0o600"
    token = (demo / ".flareflow" / "state" / "token").read_text().strip()
    values = parse_dev_vars(dev["dev_vars"])
    assert values == {"FLAREFLOW_TOKEN": token, "STRIPE_KEY": "sk_test_env",  # the environment wins
                      "SLACK_HOOK": "https://hooks.example/x?a=1&b=2"}
    assert token not in (demo / BUILD_DIR / "wrangler.toml").read_text()

    # one warning line for the declared secret without a value and one for the undeclared variable
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 2, describe(result)
    assert "MISSING_ONE" in warnings[0] and "UNDECLARED" in warnings[1], describe(result)

    # the generated token is printed once as such, and then only in the console's ready link, in the
    # URL fragment (which a browser never sends); the banner says where it is and what to run
    assert result.stdout.count(token) == 2, describe(result)
    assert f"console: http://127.0.0.1:8787/#token={token}" in result.stdout, describe(result)
    assert "http://127.0.0.1:8787" in result.stdout
    assert 'flareflow run hello --url http://127.0.0.1:8787 --token "$(cat .flareflow/state/token)"' \
        in result.stdout, describe(result)
    assert 'curl "http://127.0.0.1:8787/cdn-cgi/handler/scheduled?cron=0+9+*+*+1"' in result.stdout, \
        describe(result)

    # a second start: same token, not announced again (only the link carries it); .dev.vars the same
    again = ff("serve", cwd=demo, env=fake_wrangler_env(tmp_path / "again.log", STRIPE_KEY="sk_test_env"))
    assert_ok(again)
    assert (again.stdout + again.stderr).count(token) == 1 and f"#token={token}" in again.stdout, describe(again)
    # the build was up to date, and the banner still knows the workflows and their crons
    assert "flareflow run hello --url" in again.stdout and "cron=0+9+*+*+1" in again.stdout, describe(again)
    assert parse_dev_vars(_dev_entry(tmp_path / "again.log")["dev_vars"])["FLAREFLOW_TOKEN"] == token


def test_serve_takes_the_token_like_serve_local(demo: Path, tmp_path: Path) -> None:
    """--token, then $FLAREFLOW_TOKEN, then [tool.flareflow.dev].token; none of them is saved or echoed."""
    with (demo / "pyproject.toml").open("a") as f:
        f.write('\n[tool.flareflow.dev]\ntoken = "settings-token-0123456789"\n')
    cases = [
        ((), {}, "settings-token-0123456789"),
        ((), {"FLAREFLOW_TOKEN": "env-token-0123456789"}, "env-token-0123456789"),
        (("--token", "option-token-0123456789"), {"FLAREFLOW_TOKEN": "env-token-0123456789"},
         "option-token-0123456789"),
    ]
    for number, (args, extra, expected) in enumerate(cases):
        log = tmp_path / f"wrangler-{number}.log"
        result = ff("serve", *args, cwd=demo, env=fake_wrangler_env(log, **extra))
        assert_ok(result)
        assert parse_dev_vars(_dev_entry(log)["dev_vars"])["FLAREFLOW_TOKEN"] == expected, describe(result)
        if "FLAREFLOW_TOKEN" in extra and not args:
            assert '--token "$FLAREFLOW_TOKEN"' in result.stdout, describe(result)
    assert not (demo / ".flareflow" / "state" / "token").exists()


def test_serve_without_d1_applies_no_migrations(tmp_path: Path) -> None:
    root = tmp_path / "plain"
    (root / "workflows").mkdir(parents=True)
    (root / "pyproject.toml").write_text(pyproject("plain", NO_RESOURCES))
    (root / "workflows" / "w.py").write_text("from flareflow import workflow\n\n\n@workflow('w')\n"
                                             "async def w(run):\n    return 1\n")
    log = tmp_path / "wrangler.log"
    result = ff("serve", "--port", "9011", cwd=root, env=fake_wrangler_env(log))
    assert_ok(result)
    assert [e["argv"] for e in read_log(log)] == [["dev", "--port", "9011", "--ip", "127.0.0.1"]]
    assert "flareflow run w --url http://127.0.0.1:9011" in result.stdout, describe(result)
    assert "cdn-cgi" not in result.stdout  # no schedules, no cron hint


def test_a_failed_local_migration_stops_before_wrangler_dev(demo: Path, tmp_path: Path) -> None:
    log = tmp_path / "wrangler.log"
    result = ff("serve", cwd=demo, env=fake_wrangler_env(log, FAKE_WRANGLER_FAIL="d1 migrations apply"))
    assert result.returncode == 1, describe(result)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "d1 migrations apply INDEX --local" in errors[0], describe(result)
    assert "A request to the Cloudflare API failed" in errors[0], describe(result)
    assert [e["argv"] for e in read_log(log)] == [APPLY_LOCAL]


def _wait_for(proc_out: Path, needle: str, proc: subprocess.Popen[str], timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = proc_out.read_text(encoding="utf-8", errors="replace")
        if needle in text:
            return text
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    raise AssertionError(f"{needle!r} never appeared:\n{proc_out.read_text(errors='replace')}")


def test_serve_rebuilds_on_change_and_keeps_the_last_good_build(demo: Path, tmp_path: Path) -> None:
    log = tmp_path / "wrangler.log"
    env = fake_wrangler_env(log, FAKE_WRANGLER_DEV_SECONDS="60")
    out, err = tmp_path / "serve.out", tmp_path / "serve.err"
    with out.open("w") as stdout, err.open("w") as stderr:
        proc = subprocess.Popen([*FLAREFLOW, "serve"], cwd=demo, env=env, stdout=stdout, stderr=stderr,
                                stdin=subprocess.DEVNULL, text=True)
    built = demo / BUILD_DIR / "src" / "workflows" / "hello.py"
    source = demo / "workflows" / "hello.py"
    try:
        started = time.time_ns()
        _wait_for(out, "Ctrl-C stops", proc)
        time.sleep(0.6)  # one poll with nothing changed: no rebuild right after start
        if not flareflow_changed_since(started):  # else flareflow's own sources were edited meanwhile
            assert "rebuilt" not in out.read_text() and "changed" not in out.read_text()

        source.write_text(source.read_text() + "\n# edited\n")
        _wait_for(out, "rebuilt", proc)
        assert built.read_text().endswith("# edited\n")

        good = built.read_text()
        source.write_text(good + "\ndef broken(:\n")
        _wait_for(err, "rebuild failed", proc)
        assert built.read_text() == good  # nothing of the failed build was written
        assert proc.poll() is None  # and serve keeps serving

        source.write_text(good + "\n# fixed\n")
        text = _wait_for(out, "rebuilt (", proc)
        deadline = time.monotonic() + 10
        while not built.read_text().endswith("# fixed\n") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert built.read_text().endswith("# fixed\n"), text
    finally:
        (tmp_path / "wrangler.log.stop").touch()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    errors = [line for line in err.read_text().splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "workflows/hello.py" in errors[0] and "last good build" in errors[0], errors
    assert [e["argv"][:1] for e in read_log(log)] == [["d1"], ["dev"]]  # one migration run, one dev


#: The run index's migrations flareflow ships (what a first `serve` applies).
INDEX_MIGRATIONS = sorted(p.name for p in resources.files("flareflow.migrations").joinpath("index").iterdir()
                          if p.name.endswith(".sql"))


def test_a_rebuild_that_brings_a_new_migration_file_applies_it(built_demo: Path, tmp_path: Path) -> None:
    """What the watcher calls after each rebuild: only files not applied yet make wrangler run again."""
    log = tmp_path / "wrangler.log"
    os.environ["FAKE_WRANGLER_LOG"] = str(log)
    try:
        state = DevState(load(built_demo), built_demo / BUILD_DIR, [sys.executable, str(FAKE_WRANGLER)])
        assert apply_local_migrations(state) == INDEX_MIGRATIONS
        assert apply_local_migrations(state) == []
        (built_demo / BUILD_DIR / "migrations" / "index" / "9999_more.sql").write_text("SELECT 1;\n")
        assert apply_local_migrations(state) == ["9999_more.sql"]
    finally:
        del os.environ["FAKE_WRANGLER_LOG"]
    assert [e["argv"] for e in read_log(log)] == [APPLY_LOCAL, APPLY_LOCAL]


def test_serve_applies_settings_edited_while_it_runs(demo: Path, tmp_path: Path) -> None:
    log = tmp_path / "wrangler.log"
    env = fake_wrangler_env(log, FAKE_WRANGLER_DEV_SECONDS="60")
    out, err = tmp_path / "serve.out", tmp_path / "serve.err"
    with out.open("w") as stdout, err.open("w") as stderr:
        proc = subprocess.Popen([*FLAREFLOW, "serve"], cwd=demo, env=env, stdout=stdout, stderr=stderr,
                                stdin=subprocess.DEVNULL, text=True)
    config = demo / BUILD_DIR / "wrangler.toml"
    try:
        _wait_for(out, "Ctrl-C stops", proc)
        pyproject = demo / "pyproject.toml"
        original = pyproject.read_text()
        pyproject.write_text(original + '\n[tool.flareflow.worker]\nvars = { REGION = "eu" }\n')
        _wait_for(out, "rebuilt (", proc)
        deadline = time.monotonic() + 10
        while "REGION" not in config.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert '"REGION" = "eu"' in config.read_text()
        pyproject.write_text(original + "\n[tool.flareflow.worker\n")  # broken TOML: said, nothing built
        _wait_for(err, "invalid TOML", proc)
        assert '"REGION" = "eu"' in config.read_text() and proc.poll() is None
    finally:
        (tmp_path / "wrangler.log.stop").touch()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_an_edit_made_while_serve_prepares_is_built(built_demo: Path, tmp_path: Path) -> None:
    """The watcher starts from the fingerprint the start-up build was made from, not from the files as
    they are once the token, .dev.vars and the migrations are done."""
    import threading

    from flareflow.cli.devloop import _baseline, _watch

    build_dir = built_demo / BUILD_DIR
    baseline = _baseline(build_dir)
    assert baseline
    source = built_demo / "workflows" / "hello.py"
    source.write_text(source.read_text() + "\n# edited during start-up\n")  # before the watcher runs
    stop = threading.Event()
    with isolated_imports(built_demo):
        state = DevState(load(built_demo), build_dir, [sys.executable, str(FAKE_WRANGLER)], applied={"0001_init.sql"})
        watcher = threading.Thread(target=_watch, args=(state, stop, baseline), daemon=True)
        watcher.start()
        built = build_dir / "src" / "workflows" / "hello.py"
        deadline = time.monotonic() + 10
        while not built.read_text().endswith("# edited during start-up\n") and time.monotonic() < deadline:
            time.sleep(0.05)
        stop.set()
        watcher.join(5)
    assert built.read_text().endswith("# edited during start-up\n")


def test_a_busy_port_is_one_line_before_anything_is_built(demo: Path, tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        log = tmp_path / "wrangler.log"
        result = ff("serve", "--port", str(port), cwd=demo, env=fake_wrangler_env(log))
    assert result.returncode == 1, describe(result)
    assert result.stderr.startswith(f"error: cannot listen on 127.0.0.1:{port}"), describe(result)
    assert "--port N" in result.stderr and result.stdout == ""
    assert read_log(log) == [] and not (demo / BUILD_DIR).exists()


def test_a_token_in_the_root_dev_vars_is_not_silently_ignored(demo: Path, tmp_path: Path) -> None:
    (demo / ".dev.vars").write_text("FLAREFLOW_TOKEN=mine-0123456789abcdef\n")
    log = tmp_path / "wrangler.log"
    result = ff("serve", cwd=demo, env=fake_wrangler_env(log))
    assert_ok(result)
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "FLAREFLOW_TOKEN there is not used" in warnings[0], describe(result)
    assert "index migrations" in result.stdout or "applied index migration" in result.stdout
    again = ff("serve", cwd=demo, env=fake_wrangler_env(tmp_path / "again.log"))
    assert "applied index migration" in again.stdout  # the fake wrangler never says "No migrations"
