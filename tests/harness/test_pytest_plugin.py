"""The harness plugin's early stop: the secure cluster is stopped after the last collected
test that uses it, once, and a reused (attached) cluster is never stopped."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from cluster_pack_harness import pytest_plugin as plugin


class FakePart:
    def __init__(self):
        self.stops = 0

    def stop(self):
        self.stops += 1


def _teardown(item, nextitem=None):
    hook = plugin.pytest_runtest_teardown(item, nextitem)
    next(hook)
    with pytest.raises(StopIteration):
        next(hook)


@pytest.fixture
def items(monkeypatch):
    monkeypatch.setattr(plugin, "_last_user", {})
    monkeypatch.setattr(plugin, "_early_stop", {})
    monkeypatch.setattr(plugin, "_attached", lambda kind: None)
    made = [SimpleNamespace(nodeid=f"t{i}", fixturenames=names) for i, names in enumerate(
        [["tmp_path"], ["secure_hadoop_cluster", "krb"], ["hadoop_cluster"],
         ["secure_hadoop_cluster"], ["tmp_path"]])]
    plugin.pytest_collection_finish(SimpleNamespace(items=made))
    return made


def test_the_secure_cluster_stops_after_its_last_user_and_only_once(items):
    part = FakePart()
    fixture = plugin._session_part("secure", part, lambda: None)
    assert next(fixture) is part
    for item in items[:3]:
        _teardown(item, item)
    assert part.stops == 0  # t3 still needs it
    _teardown(items[3], items[4])
    assert part.stops == 1
    _teardown(items[4])
    with pytest.raises(StopIteration):  # the session's end
        next(fixture)
    assert part.stops == 1


def test_the_plain_cluster_and_a_reused_secure_one_are_left_to_the_session(items, monkeypatch):
    plain = FakePart()
    fixture = plugin._session_part("hadoop", plain, lambda: None)
    next(fixture)
    for item in items:
        _teardown(item)
    assert plain.stops == 0
    with pytest.raises(StopIteration):
        next(fixture)
    assert plain.stops == 1

    reused = FakePart()
    monkeypatch.setattr(plugin, "_attached", lambda kind: reused)
    fixture = plugin._session_part("secure", FakePart(), lambda: None)
    assert next(fixture) is reused
    for item in items:
        _teardown(item)
    with pytest.raises(StopIteration):
        next(fixture)
    assert reused.stops == 0  # attached: left running
