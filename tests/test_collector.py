"""qtransfer.collector: the cyclic garbage collector paused while a backbone is built."""

from __future__ import annotations

import gc

import pytest

from qtransfer import collector


@pytest.fixture(autouse=True)
def _collector_state():
    was_enabled = gc.isenabled()
    yield
    collector._freeze_pending = False
    gc.unfreeze()
    (gc.enable if was_enabled else gc.disable)()


@pytest.mark.parametrize("caller_enabled", [True, False])
def test_paused_holds_the_collector_off_and_restores_the_callers_setting(caller_enabled):
    (gc.enable if caller_enabled else gc.disable)()
    with collector.paused():
        assert not gc.isenabled()
    assert gc.isenabled() is caller_enabled
    with pytest.raises(KeyError):
        with collector.paused():
            raise KeyError("build failed")
    assert gc.isenabled() is caller_enabled


def test_nothing_is_frozen_unless_the_process_asked():
    gc.unfreeze()
    with collector.paused():
        pass
    assert gc.get_freeze_count() == 0


def test_the_process_owner_freezes_what_the_first_build_leaves_alive_once():
    gc.unfreeze()
    collector.freeze_after_first_build()
    survivor = [object()]
    with collector.paused():
        survivor.append(survivor)  # a cycle, tracked by the collector
    frozen = gc.get_freeze_count()
    assert frozen > 0 and gc.isenabled()
    with collector.paused():
        pass
    assert gc.get_freeze_count() == frozen  # only the first build


def test_backbones_are_built_with_the_collector_paused(monkeypatch):
    from qtransfer.features.backbones import BackboneRef, resolve_backbone

    monkeypatch.setattr(BackboneRef, "_build", lambda self, device: gc.isenabled())
    gc.enable()
    assert resolve_backbone("resnet18", weights=None).build() is False
    assert gc.isenabled()


def test_the_console_script_owns_its_process(monkeypatch):
    from qtransfer import cli

    monkeypatch.setattr(cli, "main", lambda argv=None: 3)
    with pytest.raises(SystemExit) as exit_:
        cli.run()
    assert exit_.value.code == 3 and collector._freeze_pending
