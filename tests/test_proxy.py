import os
import random
import shutil
import threading
import time
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from core.proxy import (
    DEFAULT_CACHE_GB,
    MIN_PSNR_DB,
    PROXY_GOP,
    PROXY_VERSION,
    build_seek_proxy,
    cache_limit_bytes,
    proxy_building,
    proxy_matches,
    proxy_path,
    prune_proxies,
    psnr,
    reader_for_display,
    sums_path,
)
from core.video import FrameReader, iter_frames, probe
from conftest import ENCODER_THREADS, sample_frames, write_video

FRAMES = 130  # more than one long GOP


def _encode(path: Path, codec: str, options: dict[str, str], size: tuple[int, int], pix_fmt: str = "yuv420p",
            variable_rate: bool = False) -> Path:
    """Sample frames encoded the way users' cameras and editors do: long GOPs, B-frames, and with
    ``variable_rate`` irregular frame durations (1 to 3 ticks of 1/90 s)."""
    frames = [cv2.resize(f, size) for f in sample_frames(FRAMES, start=200)]
    ticks = np.cumsum([0] + [1 + (i * 7) % 3 for i in range(FRAMES - 1)]) if variable_rate else np.arange(FRAMES) * 3
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=30)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], pix_fmt
        stream.options = options
        stream.codec_context.thread_count = ENCODER_THREADS  # the same bits on any machine (see write_video)
        stream.codec_context.time_base = Fraction(1, 90)
        for frame, tick in zip(frames, ticks):
            video_frame = av.VideoFrame.from_ndarray(frame, format="rgb24")
            video_frame.pts, video_frame.time_base = int(tick), Fraction(1, 90)
            for packet in stream.encode(video_frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


X264_LONG_GOP = {"g": "120", "keyint_min": "120", "bf": "3", "crf": "20"}
CASES = {
    "h264-mp4-bframes": ("clip.mp4", "libx264", X264_LONG_GOP, (384, 288), "yuv420p", False),
    "h265-mkv": ("clip.mkv", "libx265", {"x265-params": "keyint=120:min-keyint=120:bframes=4:log-level=error"},
                 (384, 288), "yuv420p", False),
    "h264-mov-vfr": ("clip.mov", "libx264", X264_LONG_GOP, (384, 288), "yuv420p", True),
    "h264-mp4-odd-size": ("odd.mp4", "libx264", X264_LONG_GOP, (383, 215), "yuv444p", False),
    # phones and IP cameras: full-range YUV (no proxy was kept: converted without its range, 29 dB off)
    "h264-mp4-full-range": ("phone.mp4", "libx264", X264_LONG_GOP, (384, 288), "yuvj420p", False),
    "h264-rgb": ("screen.mkv", "libx264rgb", X264_LONG_GOP, (384, 288), "rgb24", False),
}


@pytest.fixture(scope="module", params=list(CASES))
def long_gop_video(request, tmp_path_factory) -> Path:
    name, codec, options, size, pix_fmt, variable_rate = CASES[request.param]
    return _encode(tmp_path_factory.mktemp(request.param) / name, codec, options, size, pix_fmt, variable_rate)


def _wait_for_proxy(info, cache_dir: Path) -> None:
    deadline = time.time() + 300  # polls the build, which finishes in seconds on a quiet machine
    while proxy_building(info, cache_dir) and time.time() < deadline:
        time.sleep(0.1)


def test_every_frame_shown_through_the_proxy_is_the_original_frame(long_gop_video, tmp_path):
    info = probe(long_gop_video)
    assert len(info.keyframes) * PROXY_GOP < info.frame_count == FRAMES  # long GOPs: worth a proxy
    assert reader_for_display(info, tmp_path).info.path == info.path  # the original serves while it builds
    _wait_for_proxy(info, tmp_path)
    reader = reader_for_display(info, tmp_path)
    assert reader.info.path == proxy_path(info, tmp_path)
    assert len(reader.info.keyframes) >= FRAMES // PROXY_GOP
    original = [frame for _, frame in iter_frames(long_gop_video)]
    in_order = [reader.get(i) for i in range(FRAMES)]
    seeks = random.Random(0).sample(range(FRAMES), 40)
    at_random = {i: FrameReader(reader.info, cache_frames=2).get(i) for i in seeks[:5]}
    jumping = FrameReader(reader.info, cache_frames=2)
    at_random.update({i: jumping.get(i) for i in seeks})
    for index, shown in [*enumerate(in_order), *at_random.items()]:
        assert shown.shape == original[index].shape
        own = psnr(shown, original[index])
        assert own >= MIN_PSNR_DB, (index, own)
        neighbours = [psnr(shown, original[j]) for j in (index - 1, index + 1) if 0 <= j < FRAMES]
        assert all(own > other for other in neighbours), (index, own, neighbours)  # frame i, not a neighbour


def test_a_proxy_that_does_not_match_is_never_used(sample_video, tmp_path):
    info = probe(_encode(tmp_path / "clip.mp4", "libx264", X264_LONG_GOP, (384, 288)))
    target = proxy_path(info, tmp_path)
    target.parent.mkdir(parents=True)
    shutil.copy(info.path, target)  # same frames, but the original's long GOPs
    assert reader_for_display(info, tmp_path, build=False).info.path == info.path
    target.write_bytes(info.path.read_bytes()[:5000])  # a torn file
    assert reader_for_display(info, tmp_path, build=False).info.path == info.path
    other = probe(_encode(tmp_path / "other.mp4", "libx264", {"g": "12"}, (384, 288), variable_rate=True))
    assert other.frame_count == info.frame_count and proxy_matches(info, other)  # structure alone agrees...
    wrong_frames = {0: np.zeros((288, 384, 3), np.uint8), FRAMES - 1: np.full((288, 384, 3), 255, np.uint8)}
    assert not proxy_matches(info, other, wrong_frames)  # ...the content does not


def test_a_proxy_replaced_by_another_videos_is_never_used(tmp_path):
    """A proxy file replaced by another video's proxy of the same length and size (a cache copied
    between machines, a restored backup) passed every check on opening: the viewer showed the other
    video's frames beside this one's boxes. Frame 0 is compared with the original's when it opens."""
    info = probe(_encode(tmp_path / "clip.mp4", "libx264", X264_LONG_GOP, (384, 288)))
    frames = [cv2.resize(f, (384, 288)) for f in sample_frames(FRAMES, start=500)]
    other = probe(write_video(tmp_path / "other.mp4", frames, codec="libx264", options=X264_LONG_GOP))
    built = build_seek_proxy(other, proxy_path(other, tmp_path))
    assert built is not None and proxy_matches(info, probe(built))  # its structure alone agrees
    shutil.copy(built, proxy_path(info, tmp_path))
    assert reader_for_display(info, tmp_path, build=False).info.path == info.path
    assert build_seek_proxy(info, proxy_path(info, tmp_path)) is not None  # its own proxy is used again
    assert reader_for_display(info, tmp_path, build=False).info.path == proxy_path(info, tmp_path)


def test_a_proxy_damaged_on_disk_since_gives_way_to_the_original(tmp_path):
    """A proxy whose middle was garbled after it was checked (a disk error, a cache copied while it was
    written) made its frames undisplayable, "<digest>.mp4: frame 85 could not be decoded", though the
    original decodes them: the reader reads the original from then on, and the proxy is built again."""
    info = probe(_encode(tmp_path / "clip.mp4", "libx264", X264_LONG_GOP, (384, 288)))
    target = build_seek_proxy(info, proxy_path(info, tmp_path))
    data = bytearray(target.read_bytes())
    data[len(data) * 7 // 10:len(data) * 7 // 10 + 3000] = bytes(3000)  # frame 85 no longer decodes
    target.write_bytes(bytes(data))
    reader = reader_for_display(info, tmp_path, build=False)
    assert reader.info.path == target  # its structure and frame 0 still pass
    originals = [frame for _, frame in iter_frames(info)]
    assert all(psnr(reader.get(i), originals[i]) >= MIN_PSNR_DB for i in range(FRAMES))
    assert not target.exists()  # the next opening builds it again


def test_a_proxy_garbled_on_disk_but_still_decodable_gives_way_to_the_original(tmp_path):
    """Bytes flipped inside one packet of a checked proxy decode without an error, so the viewer showed the
    frames after it garbled (25 dB off the original, the rest of the GOP) until the next keyframe. Every packet
    read is checked against the sums taken when the proxy was built: the original is read from there on."""
    info = probe(_encode(tmp_path / "clip.mp4", "libx264", X264_LONG_GOP, (384, 288)))
    target = build_seek_proxy(info, proxy_path(info, tmp_path))
    with av.open(str(target)) as container:
        packets = [(packet.pos, packet.size) for packet in container.demux(container.streams.video[0]) if packet.size]
    position, size = packets[85]
    data = bytearray(target.read_bytes())
    for k in range(position + size // 2, position + size // 2 + 16):
        data[k] ^= 0x5A
    target.write_bytes(bytes(data))
    originals = [frame for _, frame in iter_frames(info)]
    garbled = FrameReader(probe(target))
    assert min(psnr(garbled.get(i), originals[i]) for i in range(80, 96)) < 30  # it decodes, wrongly
    reader = reader_for_display(info, tmp_path, build=False)
    assert reader.info.path == target  # its structure and frame 0 still pass
    assert all(psnr(reader.get(i), originals[i]) >= MIN_PSNR_DB for i in range(FRAMES))
    assert not target.exists() and not sums_path(target).exists()  # the next opening builds it again


def test_a_proxy_without_its_sums_is_never_used(tmp_path):
    info = probe(_encode(tmp_path / "clip.mp4", "libx264", X264_LONG_GOP, (384, 288)))
    target = build_seek_proxy(info, proxy_path(info, tmp_path))
    sums = sums_path(target)
    assert len(sums.read_bytes()) == 4 * FRAMES
    assert reader_for_display(info, tmp_path, build=False).info.path == target
    for damaged in (sums.read_bytes()[:-4], sums.read_bytes() + bytes(4), b""):  # not one sum per frame
        sums.write_bytes(damaged)
        assert reader_for_display(info, tmp_path, build=False).info.path == info.path
    sums.unlink()
    assert reader_for_display(info, tmp_path, build=False).info.path == info.path
    os.mkfifo(sums)  # its open would wait for a writer forever: refused unopened, as a link to good sums is
    assert reader_for_display(info, tmp_path, build=False).info.path == info.path
    sums.unlink()
    (tmp_path / "good.sums").write_bytes(bytes(4 * FRAMES))
    sums.symlink_to(tmp_path / "good.sums")
    assert reader_for_display(info, tmp_path, build=False).info.path == info.path


def test_short_gop_videos_need_no_proxy(sample_slice, tmp_path):
    info = probe(sample_slice)
    assert len(info.keyframes) * PROXY_GOP >= info.frame_count
    assert reader_for_display(info, tmp_path).info.path == info.path
    assert not proxy_building(info, tmp_path) and not (tmp_path / "proxies").exists()


def test_cancelled_build_leaves_nothing(sample_video, tmp_path):
    cancel = threading.Event()
    cancel.set()
    info = probe(sample_video)
    assert build_seek_proxy(info, proxy_path(info, tmp_path), cancel=cancel) is None
    assert not list((tmp_path / "proxies").iterdir())


def _stale(folder: Path, name: str, size: int, mtime: float) -> Path:
    path = folder / name
    with open(path, "wb") as file:
        file.truncate(size)  # sparse: the size counts, the disk is spared
    os.utime(path, (mtime, mtime))
    return path


def test_proxies_are_pruned_to_the_limit_oldest_use_first_and_only_proxies(tmp_path):
    folder = tmp_path / "proxies"
    folder.mkdir()
    old_version = _stale(folder, f"{'a' * 64}-130-v1.mp4", 10, 5_000)  # never opened again: goes whatever the room
    oldest = _stale(folder, f"{'b' * 64}-130-v{PROXY_VERSION}.mp4", 100, 1_000)
    older = _stale(folder, f"{'c' * 64}-130-v{PROXY_VERSION}.mp4", 100, 2_000)
    recent = _stale(folder, f"{'d' * 64}-130-v{PROXY_VERSION}.mp4", 100, 3_000)
    just_built = _stale(folder, f"{'e' * 64}-130-v{PROXY_VERSION}.mp4", 500, 500)  # kept whatever its size
    building = _stale(folder, f".{'f' * 64}-130-v{PROXY_VERSION}.mp4.x1.mp4", 999, time.time())  # a build writing
    abandoned = _stale(folder, f".{'f' * 64}-130-v{PROXY_VERSION}.mp4.x2.mp4", 999, 1)  # its process killed mid-write
    foreign = _stale(folder, "notes.mp4", 999, 1)
    (folder / f"{'9' * 64}-130-v{PROXY_VERSION}.mp4").symlink_to(foreign)  # a link is never followed or deleted
    sums = {path: _stale(folder, sums_path(path).name, 4, time.time()) for path in (oldest, recent, just_built)}
    orphan = _stale(folder, f"{'7' * 64}-130-v{PROXY_VERSION}.mp4.sums", 4, 1)  # its proxy deleted by hand
    fresh = _stale(folder, f"{'8' * 64}-130-v{PROXY_VERSION}.mp4.sums", 4, time.time())  # a build's, before its proxy

    deleted = prune_proxies(folder, keep=just_built, limit_bytes=650)
    assert deleted == [abandoned, old_version, oldest, older]
    assert not sums[oldest].exists() and not orphan.exists()
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [recent.name, just_built.name, building.name, foreign.name, f"{'9' * 64}-130-v{PROXY_VERSION}.mp4",
         sums[recent].name, sums[just_built].name, fresh.name])
    assert prune_proxies(folder, keep=just_built, limit_bytes=650) == []  # within the limit now
    assert prune_proxies(tmp_path / "none", limit_bytes=0) == []


def test_the_proxy_cache_limit_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("FLICKER_PROXY_CACHE_GB", "0.5")
    assert cache_limit_bytes() == 512 * 1024 ** 2
    for text in ("", "lots", "nan", "inf", "-3"):
        monkeypatch.setenv("FLICKER_PROXY_CACHE_GB", text)
        assert cache_limit_bytes() == (0 if text == "-3" else int(DEFAULT_CACHE_GB * 1024 ** 3))


def test_a_new_proxy_makes_room_and_a_proxy_in_use_counts_as_recent(tmp_path, monkeypatch):
    monkeypatch.setenv("FLICKER_PROXY_CACHE_GB", "0.000001")  # ~1 KB: only the proxy just built fits, by exception
    info = probe(_encode(tmp_path / "clip.mp4", "libx264", X264_LONG_GOP, (192, 144)))
    folder = tmp_path / "proxies"
    folder.mkdir()
    stale = _stale(folder, f"{'b' * 64}-130-v{PROXY_VERSION}.mp4", 100_000, 1_000)
    assert reader_for_display(info, tmp_path).info.path == info.path  # builds in the background
    _wait_for_proxy(info, tmp_path)
    target = proxy_path(info, tmp_path)
    assert target.is_file() and not stale.exists()
    os.utime(target, (1_000, 1_000))
    assert reader_for_display(info, tmp_path).info.path == target  # the proxy, opened: its use renewed
    assert target.stat().st_mtime > time.time() - 60
