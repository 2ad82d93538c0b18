import threading

import pytest

from core.verdicts import VerdictStore


def test_verdicts_persist_across_store_instances(tmp_path):
    path = tmp_path / "v.sqlite"
    VerdictStore(path).set("video-a", 12, "miss")
    VerdictStore(path).set("video-a", 30, "false_alarm")
    VerdictStore(path).set("video-b", 12, "false_alarm")
    assert VerdictStore(path).all("video-a") == {12: "miss", 30: "false_alarm"}
    VerdictStore(path).set("video-a", 12, None)
    assert VerdictStore(path).all("video-a") == {30: "false_alarm"}
    VerdictStore(path).set("video-a", 30, "miss")
    assert VerdictStore(path).all("video-a") == {30: "miss"}


def test_rejects_unknown_verdicts(tmp_path):
    with pytest.raises(ValueError, match="verdict must be one of"):
        VerdictStore(tmp_path / "v.sqlite").set("v", 1, "maybe")


def test_two_sessions_writing_at_once_lose_nothing(tmp_path):
    path = tmp_path / "v.sqlite"
    stores = [VerdictStore(path), VerdictStore(path)]

    def write(store, offset):
        for frame in range(offset, 400, 2):
            store.set("video", frame, "miss" if frame % 3 else "false_alarm")

    threads = [threading.Thread(target=write, args=(store, k)) for k, store in enumerate(stores)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    verdicts = VerdictStore(path).all("video")
    assert len(verdicts) == 400
    assert all(v == ("miss" if f % 3 else "false_alarm") for f, v in verdicts.items())
