"""Fixtures of the host conformance tests: one server per host for the session, on the conformance project.

The hosts are those of the API suite (`tests.api.hosts.HOSTS`: ``local`` and ``workerd``), with the same
interface plus ``.evict(run_id)`` and ``.scheduled(cron, when)`` on both. A missing workerd
harness skips the workerd tests locally and fails them when ``CI`` is set.
"""

from __future__ import annotations

import pytest

from tests.api.hosts import HOSTS, make_server

from .project import write_project


@pytest.fixture(scope="session", params=sorted(HOSTS))
def conformance_host(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def server(conformance_host: str, tmp_path_factory: pytest.TempPathFactory):
    """The host's server on the conformance project; tests may evict runs but leave it running."""
    srv = make_server(conformance_host, tmp_path_factory.mktemp(f"conformance-{conformance_host}"), write_project)
    yield srv
    srv.stop()


@pytest.fixture
def host(server) -> str:
    """The kind of the server under test (``local`` or ``workerd``)."""
    return str(server.kind)
