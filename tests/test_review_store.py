import threading

import pytest

from core.review import ReviewStore


def test_verdicts_persist_across_store_instances(tmp_path):
    path = tmp_path / "v.sqlite"
    ReviewStore(path).set("video-a", 12, "miss")
    ReviewStore(path).set("video-a", 30, "false_alarm")
    ReviewStore(path).set("video-b", 12, "false_alarm")
    assert ReviewStore(path).all("video-a") == {12: "miss", 30: "false_alarm"}
    ReviewStore(path).set("video-a", 12, None)
    assert ReviewStore(path).all("video-a") == {30: "false_alarm"}
    ReviewStore(path).set("video-a", 30, "miss")
    assert ReviewStore(path).all("video-a") == {30: "miss"}


def test_rejects_unknown_verdicts(tmp_path):
    with pytest.raises(ValueError, match="verdict must be one of"):
        ReviewStore(tmp_path / "v.sqlite").set("v", 1, "maybe")


def test_two_sessions_writing_at_once_lose_nothing(tmp_path):
    path = tmp_path / "v.sqlite"
    stores = [ReviewStore(path), ReviewStore(path)]

    def write(store, offset):
        for frame in range(offset, 400, 2):
            store.set("video", frame, "miss" if frame % 3 else "false_alarm")

    threads = [threading.Thread(target=write, args=(store, k)) for k, store in enumerate(stores)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    verdicts = ReviewStore(path).all("video")
    assert len(verdicts) == 400
    assert all(v == ("miss" if f % 3 else "false_alarm") for f, v in verdicts.items())
