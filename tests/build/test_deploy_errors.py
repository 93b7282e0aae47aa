"""``flareflow deploy`` shows what wrangler said went wrong, with a hint, on one ``error:`` line.

The unit tests feed :func:`flareflow.cli.wrangler.failure_message` outputs recorded from the real
wrangler 4.86.0 (stdout and stderr as it wrote them, colours included; only the ``Logs were written``
paths are shortened). They were recorded in a built project's ``.flareflow/build`` with ``CI=true``
and an empty ``HOME``: without a token; with ``CLOUDFLARE_API_TOKEN=bogus`` and
``CLOUDFLARE_ACCOUNT_ID`` on a machine without internet; with the same pointed at a local stand-in
API that answers every request with Cloudflare's ``Authentication error [code: 10000]``
(``CLOUDFLARE_API_BASE_URL=http://127.0.0.1:<port>/client/v4``); and ``deploy --dry-run`` with a
``main`` that does not exist and with a broken ``wrangler.toml``.

The CLI tests run ``flareflow deploy`` against the harness's real wrangler, logged out (no token, an
empty ``HOME``): every wrangler call of deploy fails the same way, and ``deploy --dry-run`` needs no
login at all. Without the harness wrangler they skip, except on CI (``CI=true``) where they fail.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from flareflow.cli.build import RESOURCES_FILE
from flareflow.cli.wrangler import failure_hint, failure_message, meaningful_lines

from . import helpers
from .cases import NO_RESOURCES, pyproject
from .helpers import assert_ok, cli_env, describe, fake_wrangler_env, ff, read_log, require_harness_wrangler

_E = "\x1b[31m✘ \x1b[41;31m[\x1b[41;97mERROR\x1b[41;31m]\x1b[0m \x1b[1m"  # how wrangler starts an error
_BUG = ("  \n  If you think this is a bug, please open an issue at: "
        "\x1b[4mhttps://github.com/cloudflare/workers-sdk/issues/new/choose\x1b[0m\n")
_LOGS = '\n\n🪵  Logs were written to "/home/u/.config/.wrangler/logs/wrangler-2026-12-01_19-21-51_113.log"\n'
_BANNER = "\n ⛅️ wrangler 4.86.0 (update available 4.164.0)\n" + "─" * 46 + "\n"
_REPORT = ("\n? Would you like to report this error to Cloudflare? Wrangler's output and the error details will be "
           "shared with the Wrangler team to help us diagnose and fix the issue.\n"
           "🤖 Using fallback value in non-interactive context: no\n")
_TOKEN_SENTENCE = ("In a non-interactive environment, it's necessary to set a CLOUDFLARE_API_TOKEN environment "
                   "variable for wrangler to work. Please go to "
                   "https://developers.cloudflare.com/fundamentals/api/get-started/create-token/ for instructions "
                   "on how to create an api token, and assign its value to CLOUDFLARE_API_TOKEN.")

#: (stdout, stderr) of real wrangler 4.86.0 runs
RECORDED: dict[str, tuple[str, str]] = {
    # `wrangler d1 list --json` (also kv/r2/queues list and d1 create), no token
    "no_token_d1_list": ("\n", f"{_E}{_TOKEN_SENTENCE}\x1b[0m\n{_LOGS}"),
    # `wrangler d1 migrations apply x-index --remote`, no token (no log line)
    "no_token_migrations": (_BANNER + "Resource location: remote \n\n", f"{_E}{_TOKEN_SENTENCE}\x1b[0m\n\n\n"),
    # `wrangler deploy`, no token
    "no_token_deploy": (_BANNER + "[custom build] Running: /usr/bin/python3 -m flareflow build --project ../.. "
                        "--quiet\n\n", f"{_E}{_TOKEN_SENTENCE}\x1b[0m\n{_LOGS}"),
    # `wrangler d1 list --json` with a token, offline
    "offline_d1_list": ("\n", f"{_E}Unable to resolve Cloudflare's API hostname (api.cloudflare.com or "
                        "dash.cloudflare.com).\x1b[0m\n\n  \n  This is typically caused by:\n"
                        "    - No internet connection or network connectivity issues\n"
                        "    - DNS resolver not configured or not responding\n"
                        "    - Firewall or VPN blocking DNS requests\n"
                        "    - Corporate network with restricted DNS\n  \n"
                        f"  Please check your network connection and DNS settings.\n{_LOGS}"),
    # `wrangler kv namespace list` with a token, offline: the SDK's connection error has no code
    "offline_kv_list": (_REPORT, f"{_E}A request to the Cloudflare API failed.\x1b[0m\n\n{_BUG}{_LOGS}"),
    # `wrangler d1 list --json`, the API refuses the token (wrangler then runs whoami, which fails too)
    "auth_d1_list": ("\n📎 It looks like you are authenticating Wrangler via a custom API token set in an environment "
                     "variable.\nPlease ensure it has the correct permissions for this operation.\n\n"
                     "Getting User settings...\n",
                     f"{_E}A request to the Cloudflare API (/accounts/0123456789abcdef0123456789abcdef/d1/database) "
                     "failed.\x1b[0m\n\n  Authentication error [code: 10000]\n\n\n"
                     f"{_E}A request to the Cloudflare API (/user/tokens/verify) failed.\x1b[0m\n\n"
                     f"  Authentication error [code: 10000]\n{_LOGS}"),
    # `wrangler kv namespace list`, the API refuses the token
    "auth_kv_list": (_REPORT, f"{_E}A request to the Cloudflare API failed.\x1b[0m\n\n"
                     f"  Authentication error [code: 10000]\n{_BUG}{_LOGS}"),
    # `wrangler deploy --dry-run --outdir …` with main = "src/missing.py"
    "missing_main": (_BANNER + "\n", f'{_E}The entry-point file at "src/missing.py" was not found.\x1b[0m\n\n  \n'
                     "  This might mean that your entry-point file needs to be generated (which is the general "
                     "case when a framework is being used).\n  If that's the case please run your project's "
                     f"build command and try again.\n{_LOGS}"),
    # `wrangler deploy --dry-run --outdir …` with an unfinished array at the end of wrangler.toml
    "bad_toml": (_BANNER + "\n", f"{_E}Invalid TOML document: unfinished array encountered\x1b[0m\n\n"
                 "    /tmp/xb/wrangler.toml:47:0:\n\x1b[37m      47 │ \x1b[32m\x1b[37m\n"
                 f"         ╵ \x1b[32m^\x1b[0m\n\n{_BUG}{_LOGS}"),
    # `wrangler deploy` whose [custom build] (flareflow build) crashed; the traceback and node's stack
    # and error object are cut short here (the recording has 40 frames and a 90-line object)
    "custom_build_crash": (
        _BANNER + "[custom build] Running: /usr/bin/python3 -m flareflow build --project ../.. --quiet\n"
        "[custom build] Traceback (most recent call last):\n[custom build] jinja2.exceptions.UndefinedError: "
        "'ejected' is undefined\n",
        f"{_E}Error: Command failed with exit code 1: /usr/bin/python3 -m flareflow build --project ../.. "
        "--quiet\x1b[0m\n\n  Traceback (most recent call last):\n"
        '    File "<frozen runpy>", line 198, in _run_module_as_main\n'
        '    File "/work/main/flareflow/cli/build.py", line 191, in render\n'
        "      out = _templates().from_string(text).render(**values)\n"
        "            ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^\n"
        '    File "<template>", line 1, in top-level template code\n'
        "  jinja2.exceptions.UndefinedError: 'ejected' is undefined\n"
        "      at makeError (/h/node_modules/wrangler/wrangler-dist/cli.js:54995:18)\n"
        "      at async runCustomBuild (/h/node_modules/wrangler/wrangler-dist/cli.js:136711:5) {\n"
        "    shortMessage: 'Command failed with exit code 1: /usr/bin/python3 -m flareflow build',\n"
        "    exitCode: 1,\n    stderr: 'Traceback (most recent call last):\\n' +\n"
        "      '  File \"<frozen runpy>\", line 198, in _run_module_as_main\\n' +\n"
        "    failed: true,\n  }\n\n\n"
        f"{_E}Running custom build `/usr/bin/python3 -m flareflow build --project ../.. --quiet` failed. There "
        f"are likely more logs from your build command above.\x1b[0m\n{_LOGS}"),
}

LOGIN_HINT = "npx wrangler login"
NETWORK_HINT = "check the internet connection"
TOKEN_HINT = "Cloudflare refused the API token"


def _message(key: str, what: str = "`wrangler d1 list --json`") -> tuple[str, list[str]]:
    stdout, stderr = RECORDED[key]
    first, *rest = failure_message(what, stdout, stderr, 1).split("\n")
    return first, rest


def _no_chatter(text: str) -> None:
    for noise in ("Logs were written", "🪵", "⛅️", "wrangler 4.86.0", "─", "\x1b", "Would you like to report",
                  "If you think this is a bug", "Using fallback value", "Resource location", "[custom build]"):
        assert noise not in text, (noise, text)


@pytest.mark.parametrize("key", ["no_token_d1_list", "no_token_migrations", "no_token_deploy"])
def test_not_logged_in_is_wrangler_sentence_and_the_login_hint(key: str) -> None:
    first, rest = _message(key)
    assert first == (f"`wrangler d1 list --json` failed: {_TOKEN_SENTENCE} (hint: not logged in to Cloudflare; run "
                     "`npx wrangler login`, or set CLOUDFLARE_API_TOKEN, and CLOUDFLARE_ACCOUNT_ID if the token sees "
                     "several accounts)")
    assert rest == []
    assert meaningful_lines(RECORDED[key][1] + RECORDED[key][0]) == [_TOKEN_SENTENCE]


def test_offline_keeps_wrangler_explanation_below_the_line() -> None:
    first, rest = _message("offline_d1_list")
    assert first.startswith("`wrangler d1 list --json` failed: Unable to resolve Cloudflare's API hostname "
                            "(api.cloudflare.com or dash.cloudflare.com). (hint: ")
    assert NETWORK_HINT in first and LOGIN_HINT not in first
    assert rest == ["  This is typically caused by:", "  - No internet connection or network connectivity issues",
                    "  - DNS resolver not configured or not responding", "  - Firewall or VPN blocking DNS requests",
                    "  - Corporate network with restricted DNS",
                    "  Please check your network connection and DNS settings."]
    _no_chatter("\n".join([first, *rest]))


def test_an_api_failure_without_a_code_is_taken_for_the_network() -> None:
    first, rest = _message("offline_kv_list", "`wrangler kv namespace list`")
    assert first.startswith("`wrangler kv namespace list` failed: A request to the Cloudflare API failed. (hint: ")
    assert NETWORK_HINT in first and rest == []
    _no_chatter(first)


@pytest.mark.parametrize("key", ["auth_d1_list", "auth_kv_list"])
def test_authentication_error_10000_carries_its_code_and_the_token_hint(key: str) -> None:
    first, rest = _message(key)
    assert re.search(r"failed: A request to the Cloudflare API (\(\S+\) )?failed\. Authentication error "
                     r"\[code: 10000\] \(hint: Cloudflare refused the API token", first), first
    assert "CLOUDFLARE_ACCOUNT_ID" in first and "npx wrangler whoami" in first and LOGIN_HINT not in first
    # the second error (wrangler's own whoami) follows, once; wrangler's other chatter does not
    assert rest == (["  A request to the Cloudflare API (/user/tokens/verify) failed. Authentication error "
                     "[code: 10000]"] if key == "auth_d1_list" else [])
    _no_chatter("\n".join([first, *rest]))
    assert "📎" not in "\n".join(rest) and "Getting User settings" not in "\n".join(rest)


def test_config_errors_keep_their_notes_without_a_hint() -> None:
    first, rest = _message("missing_main", "`wrangler deploy --dry-run`")
    assert first == ('`wrangler deploy --dry-run` failed: The entry-point file at "src/missing.py" was not found. '
                     "This might mean that your entry-point file needs to be generated (which is the general case "
                     "when a framework is being used).")
    assert rest == ["  If that's the case please run your project's build command and try again."]
    first, rest = _message("bad_toml", "`wrangler deploy --dry-run`")
    assert first == "`wrangler deploy --dry-run` failed: Invalid TOML document: unfinished array encountered"
    assert rest == ["  /tmp/xb/wrangler.toml:47:0:"]  # the code frame (47 │ / ╵ ^) is drawing, dropped


def test_a_crashed_custom_build_shows_the_exception_not_the_stacks() -> None:
    first, rest = _message("custom_build_crash", "`wrangler deploy`")
    assert first == ("`wrangler deploy` failed: Error: Command failed with exit code 1: /usr/bin/python3 -m flareflow "
                     "build --project ../.. --quiet jinja2.exceptions.UndefinedError: 'ejected' is undefined")
    assert rest == ["  Running custom build `/usr/bin/python3 -m flareflow build --project ../.. --quiet` failed. "
                    "There are likely more logs from your build command above."]
    text = "\n".join([first, *rest])
    for stack in ("File \"", "at makeError", "shortMessage", "^^^", "{"):
        assert stack not in text, (stack, text)


def test_the_fake_wranglers_error_and_output_without_an_error_line() -> None:
    fake = "✘ [ERROR] A request to the Cloudflare API failed (kv namespace create). [code: 10000]\n"
    assert meaningful_lines(fake) == ["A request to the Cloudflare API failed (kv namespace create). [code: 10000]"]
    assert TOKEN_HINT in (failure_hint(fake) or "")
    # no [ERROR] line (a crash, npm): the last meaningful lines, banner and log line left out
    crash = _BANNER + "node:internal/modules/cjs/loader:1228\n  throw err;\nError: Cannot find module 'x'\n" + _LOGS
    assert meaningful_lines(crash) == ["node:internal/modules/cjs/loader:1228", "throw err;",
                                       "Error: Cannot find module 'x'"]
    assert failure_message("`wrangler deploy`", "", "", 7) == "`wrangler deploy` failed: exit 7"
    many = "✘ [ERROR] Something broke:\n" + "".join(f"  - problem {i}\n" for i in range(12))
    first, *rest = failure_message("`wrangler deploy`", "", many, 1).split("\n")
    assert first == "`wrangler deploy` failed: Something broke:"  # a list intro is not joined with its first item
    assert rest[:2] == ["  - problem 0", "  - problem 1"] and rest[-1] == "  … 4 more line(s)" and len(rest) == 9
    one = "✘ [ERROR] Processing wrangler.toml configuration:\n\n    - \"main\" is required\n"
    assert meaningful_lines(one) == ['Processing wrangler.toml configuration: - "main" is required']


def test_hints_for_the_other_common_causes() -> None:
    assert LOGIN_HINT in (failure_hint("You are not authenticated. Please run `wrangler login`.") or "")
    assert "CLOUDFLARE_ACCOUNT_ID" in (failure_hint(
        "✘ [ERROR] In a non-interactive environment, it is mandatory to specify an account ID, either by assigning "
        "its value to CLOUDFLARE_ACCOUNT_ID, or as `account_id` in your Wrangler configuration file.") or "")
    for sign in ("getaddrinfo ENOTFOUND api.cloudflare.com", "TypeError: fetch failed",
                 "The request to Cloudflare's API timed out."):
        assert NETWORK_HINT in (failure_hint(sign) or ""), sign
    assert failure_hint(RECORDED["missing_main"][1]) is None


# -- the CLI against the real wrangler, logged out --------------------------------------------------
def _logged_out_env(tmp: Path) -> dict[str, str]:
    """The real wrangler with no stored login (empty HOME) and no token; CI=true makes it non-interactive."""
    require_harness_wrangler()
    home, logs, temp = tmp / "home", tmp / "wrangler-logs", tmp / "tmp"
    for folder in (home, logs, temp):
        folder.mkdir()
    env = cli_env(FLAREFLOW_WRANGLER=str(helpers.HARNESS_WRANGLER), CI="true", HOME=str(home),
                  XDG_CONFIG_HOME=str(home / ".config"), WRANGLER_SEND_METRICS="false",
                  WRANGLER_LOG_PATH=str(logs), TMPDIR=str(temp))
    for key in ("CLOUDFLARE_API_TOKEN", "CLOUDFLARE_ACCOUNT_ID", "CLOUDFLARE_API_KEY", "CLOUDFLARE_EMAIL",
                "CLOUDFLARE_API_BASE_URL", "WRANGLER_LOG"):
        env.pop(key, None)
    return env


def _assert_wrangler_said_log_in(result: subprocess.CompletedProcess[str], command: str) -> str:
    assert result.returncode != 0, describe(result)
    output = result.stdout + result.stderr
    assert "Traceback" not in output and "Logs were written" not in output and "🪵" not in output, describe(result)
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("error: "), describe(result)
    line = errors[0]
    assert f"error: `wrangler {command}` failed: " in line, line
    assert "it's necessary to set a CLOUDFLARE_API_TOKEN environment variable for wrangler to work" in line, line
    assert "(hint: not logged in to Cloudflare; run `npx wrangler login`, or set CLOUDFLARE_API_TOKEN" in line, line
    assert "\x1b" not in line and "[ERROR]" not in line, line
    assert "deployed" not in result.stdout, describe(result)
    return line


def test_deploy_logged_out_stops_at_the_first_listing(demo: Path, tmp_path: Path) -> None:
    env = _logged_out_env(tmp_path)
    result = ff("deploy", cwd=demo, env=env, timeout=180)
    _assert_wrangler_said_log_in(result, "d1 list --json")
    assert not (demo / RESOURCES_FILE).exists()  # nothing recorded
    assert "created" not in result.stdout and "all resources exist" not in result.stdout, describe(result)


def test_migrations_logged_out(demo: Path, tmp_path: Path) -> None:
    known = {"d1": {"demo-index": "0f0e0d0c-0b0a-4909-8807-060504030201"},
             "kv": {"demo-cache": "ffeeddccbbaa99887766554433221100"}, "r2": {"demo-payloads": "demo-payloads"},
             "queues": {"demo-dispatch": "demo-dispatch", "demo-dispatch-dlq": "demo-dispatch-dlq"}}
    (demo / RESOURCES_FILE).parent.mkdir(parents=True, exist_ok=True)
    (demo / RESOURCES_FILE).write_text(json.dumps(known))
    env = _logged_out_env(tmp_path)
    result = ff("deploy", cwd=demo, env=env, timeout=180)
    _assert_wrangler_said_log_in(result, "d1 migrations apply demo-index --remote")
    assert "all resources exist; nothing created" in result.stdout, describe(result)
    assert json.loads((demo / RESOURCES_FILE).read_text()) == known


def test_wrangler_deploy_logged_out(tmp_path: Path) -> None:
    root = tmp_path / "plain"
    (root / "workflows").mkdir(parents=True)
    (root / "pyproject.toml").write_text(pyproject("plain", NO_RESOURCES))
    (root / "workflows" / "w.py").write_text("from flareflow import workflow\n\n\n@workflow('w')\n"
                                             "async def w(run):\n    return 1\n")
    env = _logged_out_env(tmp_path)
    result = ff("deploy", cwd=root, env=env, timeout=180)
    _assert_wrangler_said_log_in(result, "deploy")
    assert not (root / RESOURCES_FILE).exists()


def _dry_run_dirs(temp: Path) -> list[str]:
    return sorted(p.name for p in temp.iterdir() if p.name.startswith("flareflow-dry-run-"))


def test_dry_run_needs_no_login_lists_what_it_would_create_and_cleans_up(demo: Path, tmp_path: Path) -> None:
    recorded = {"d1": {"demo-index": "0f0e0d0c-0b0a-4909-8807-060504030201"},
                "queues": {"demo-dispatch": "demo-dispatch"}}
    (demo / RESOURCES_FILE).parent.mkdir(parents=True, exist_ok=True)
    (demo / RESOURCES_FILE).write_text(json.dumps(recorded))
    env = _logged_out_env(tmp_path)
    result = ff("deploy", "--dry-run", cwd=demo, env=env, timeout=180)
    assert_ok(result)
    assert "--dry-run: exiting now." in result.stdout and "would be uploaded:" in result.stdout, describe(result)
    lines = [line.strip() for line in result.stdout.splitlines()]
    assert "entry.py" in lines, describe(result)
    created = [line[2:] for line in lines if line.startswith("+ ")]
    assert created == ["KV namespace demo-cache", "R2 bucket demo-payloads", "queue demo-dispatch-dlq"], created
    assert f"would create 3 resource(s) not yet recorded in {RESOURCES_FILE}" in result.stdout, describe(result)
    assert _dry_run_dirs(Path(env["TMPDIR"])) == [], os.listdir(env["TMPDIR"])
    assert "flareflow-dry-run-" not in result.stdout  # no path to a folder that is gone
    assert json.loads((demo / RESOURCES_FILE).read_text()) == recorded


# -- the same paths through the recording stand-in (no Node needed) ---------------------------------
def test_dry_run_calls_only_wrangler_dry_run_and_removes_its_outdir(demo: Path, tmp_path: Path) -> None:
    log, temp = tmp_path / "wrangler.log", tmp_path / "tmp"
    temp.mkdir()
    result = ff("deploy", "--dry-run", cwd=demo, env=fake_wrangler_env(log, TMPDIR=str(temp)))
    assert_ok(result)
    calls = [entry["argv"] for entry in read_log(log)]
    assert len(calls) == 1 and calls[0][:3] == ["deploy", "--dry-run", "--outdir"], calls
    outdir = Path(calls[0][3])
    assert outdir.parent.resolve() == temp.resolve() and not outdir.exists()
    assert _dry_run_dirs(temp) == []
    assert [line.strip()[2:] for line in result.stdout.splitlines() if line.strip().startswith("+ ")] == [
        "D1 database demo-index", "KV namespace demo-cache", "R2 bucket demo-payloads", "queue demo-dispatch",
        "queue demo-dispatch-dlq"]
    assert not (demo / RESOURCES_FILE).exists()
    (demo / RESOURCES_FILE).write_text(json.dumps({
        "d1": {"demo-index": "x"}, "kv": {"demo-cache": "y"}, "r2": {"demo-payloads": "demo-payloads"},
        "queues": {"demo-dispatch": "demo-dispatch", "demo-dispatch-dlq": "demo-dispatch-dlq"}}))
    again = ff("deploy", "--dry-run", cwd=demo, env=fake_wrangler_env(log, TMPDIR=str(temp)))
    assert_ok(again)
    assert f"would create no resources: all are recorded in {RESOURCES_FILE}" in again.stdout, describe(again)


@pytest.mark.parametrize(("fail", "command"), [("d1 migrations apply", "d1 migrations apply demo-index --remote"),
                                               ("deploy", "deploy")])
def test_migrations_and_deploy_failures_name_the_command_and_what_wrangler_said(
        demo: Path, tmp_path: Path, fail: str, command: str) -> None:
    log = tmp_path / "wrangler.log"
    result = ff("deploy", cwd=demo, env=fake_wrangler_env(log, FAKE_WRANGLER_FAIL=fail))
    assert result.returncode != 0, describe(result)
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 1, describe(result)
    assert errors[0] == (f"error: `wrangler {command}` failed: A request to the Cloudflare API failed ({fail}). "
                         "[code: 10000] (hint: Cloudflare refused the API token; check that it may edit Workers "
                         "Scripts, D1, Workers KV Storage, Workers R2 Storage and Queues, and that "
                         "CLOUDFLARE_ACCOUNT_ID is its account; `npx wrangler whoami` shows both)"), describe(result)
    assert "deployed demo" not in result.stdout
    assert [entry["argv"] for entry in read_log(log)][-1][:len(command.split())] == command.split()
