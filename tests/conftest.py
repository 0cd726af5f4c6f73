"""pytest fixtures over harness.py; a module that cannot run here makes meson report it skipped (77)."""
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "integration"))
import harness  # noqa: E402


@pytest.fixture
def client():
    home = harness.ClientHome()
    yield home
    home.close()


@pytest.fixture
def sshd():
    if not harness.is_root():
        pytest.skip("needs root to create a throwaway sshd user")
    server = harness.Sshd().start()
    yield server
    server.close()


@pytest.fixture
def sshd_password():
    if not harness.is_root():
        pytest.skip("needs root to create a throwaway sshd user")
    server = harness.Sshd(password_auth=True).start()
    yield server
    server.close()


@pytest.fixture
def echo():
    """An echo server on 127.0.0.1 (harness.EchoHashServer): .port, .accepted."""
    with harness.EchoHashServer() as server:
        yield server


@pytest.fixture
def netns_sshd():
    """(namespace, host-side veth device, sshd in the namespace): see harness.netns_sshd."""
    if not harness.is_root():
        pytest.skip("needs root for network namespaces and a throwaway sshd user")
    with harness.netns_sshd() as parts:
        yield parts


def pytest_runtest_makereport(item, call):
    # Print sshd's log when a test that used it failed: it usually says why.
    if call.when == "call" and call.excinfo is not None:
        for name in ("sshd", "sshd_password", "netns_sshd"):
            server = item.funcargs.get(name) if hasattr(item, "funcargs") else None
            if isinstance(server, tuple):
                server = server[-1]
            if server is not None:
                sys.stderr.write(f"\n--- {name} log ---\n{server.log()}\n")


def pytest_sessionfinish(session, exitstatus):
    # Everything skipped -> 77, so meson counts the file as SKIP rather than OK.
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None:
        return
    passed = len(reporter.stats.get("passed", []))
    failed = len(reporter.stats.get("failed", [])) + len(reporter.stats.get("error", []))
    skipped = len(reporter.stats.get("skipped", []))
    if passed == 0 and failed == 0 and skipped > 0:
        session.exitstatus = 77
