"""Seek proxies: a short-GOP H.264 copy of a video, so scrubbing to any frame is fast.

Jumping to frame i decodes from the keyframe before it; real-world videos often have GOPs of
hundreds of frames (the bundled sample: 250; libx264's default: up to 250), which makes a random
jump cost ~75 ms or more. The proxy has a keyframe every 12 frames, the same frame count, order
and size, and frame i stamped with presentation time i (whatever the original's timing: variable
frame rates and B-frames included), at visually lossless quality (CRF 18: ~40 dB PSNR on the
sample). It is used for display only; detection and export always read the original.

A proxy is trusted only after it proved itself: its structure (frame count, size, one timestamp
per frame, a keyframe every ``PROXY_GOP`` frames) and sampled frames, read back through random
seeks, against the original's (PSNR >= ``MIN_PSNR_DB``). One that fails is never written. Beside
it lie its packets' CRC-32 sums, taken once it passed: every packet read later is checked against
them, so a proxy changed on disk since (a bad sector, a cache copied while written) gives way to
the original rather than show damaged frames that still decode.
"""
from __future__ import annotations

import os
import re
import threading
import time
import zlib
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from core import paths
from core.bounded import GrewWhileRead, NotRegularFile, TooLarge, read_regular
from core.errors import VideoError
from core.video import FrameReader, VideoInfo, open_video, placed_frames, probe, shown, video_stream

PROXY_GOP = 12
PROXY_VERSION = 3  # in the file name: proxies written before their packet sums (2) or fixed timestamps are never opened
MIN_PSNR_DB = 35.0
CHECKED_FRAMES = 9  # frames compared with the original after a build, spread over the video
DEFAULT_CACHE_GB = 20.0  # proxies kept at most (FLICKER_PROXY_CACHE_GB): a 10-minute 1080p video's is ~1 GB
_PROXY_NAME = re.compile(r"[0-9a-f]+-[0-9]+(?:-r[0-9]+)?(?:-s[0-9]+)?-v([0-9]+)\.mp4")
# paths.atomic_path's, while a build writes
_BUILD_NAME = re.compile(r"\.[0-9a-f]+-[0-9]+(?:-r[0-9]+)?(?:-s[0-9]+)?-v[0-9]+\.mp4(?:\..+\.mp4|\.sums\..+\.partial)")
_SUMS_NAME = re.compile(_PROXY_NAME.pattern + r"\.sums")
_builds: dict[str, threading.Thread] = {}
_builds_lock = threading.Lock()


def proxy_path(info: VideoInfo, cache_dir: Path | None = None) -> Path:
    turned = f"-r{info.rotation}" if info.rotation else ""  # its frames are stored turned (none older was)
    picked = f"-s{info.stream}" if info.stream else ""  # not the first video stream (none older was built from another)
    name = f"{info.fingerprint}-{info.frame_count}{turned}{picked}-v{PROXY_VERSION}.mp4"
    return (cache_dir or paths.cache_dir()) / "proxies" / name


def sums_path(proxy: Path) -> Path:
    """Where the CRC-32 sums of a proxy's packets lie, one per frame (little-endian uint32)."""
    return proxy.with_name(proxy.name + ".sums")


def build_seek_proxy(info: VideoInfo, target: Path, cancel: threading.Event | None = None) -> Path | None:
    """Transcode ``info`` to ``target`` (atomically), its packet sums beside it. Returns None when cancelled,
    when the video cannot be transcoded, or when the proxy would not match the original frame for frame."""
    checked = _checked_indices(info.frame_count)
    try:
        with paths.atomic_path(target, suffix=".mp4") as partial:
            originals = _transcode(info, partial, checked, cancel)
            if originals is None:
                raise _Rejected
            proxy = probe(partial)
            if not proxy_matches(info, proxy, originals):
                raise _Rejected
            # the sums first: a proxy found without its sums is never opened
            paths.write_atomic(sums_path(target), packet_sums(proxy).astype("<u4").tobytes())
    except (_Rejected, av.error.FFmpegError, OSError, VideoError):
        return None
    prune_proxies(target.parent, keep=target)
    return target


def packet_sums(proxy: VideoInfo) -> np.ndarray:
    """CRC-32 of each frame's packet as the demuxer gives it, by frame (a proxy has one packet per frame,
    no B-frames). A frame whose packet is missing keeps 0, which no later reading matches by chance often."""
    frame_of = {int(pts): i for i, pts in enumerate(proxy.frame_pts)}
    sums = np.zeros(proxy.frame_count, np.uint32)
    with open_video(proxy.path) as container:
        for packet in container.demux(video_stream(container, proxy.stream)):
            if packet.pts is not None and packet.pts in frame_of:
                sums[frame_of[packet.pts]] = zlib.crc32(packet)
    return sums


def _read_sums(proxy: Path, frame_count: int) -> np.ndarray | None:
    """The proxy's packet sums; None when they are missing, unreadable, not one per frame, or not a regular file
    (a link, or a FIFO, whose open would wait forever)."""
    try:
        data = read_regular(sums_path(proxy), 4 * frame_count, follow_symlinks=False)
    except (OSError, NotRegularFile, TooLarge, GrewWhileRead):
        return None
    return np.frombuffer(data, "<u4") if len(data) == 4 * frame_count else None


def cache_limit_bytes() -> int:
    """How much the proxies may take on disk: FLICKER_PROXY_CACHE_GB, else DEFAULT_CACHE_GB."""
    return paths.gigabytes_setting("FLICKER_PROXY_CACHE_GB", DEFAULT_CACHE_GB)


def prune_proxies(folder: Path, keep: Path | None = None, limit_bytes: int | None = None) -> list[Path]:
    """Delete proxies until the rest fit in ``limit_bytes`` (default :func:`cache_limit_bytes`):
    those of an older PROXY_VERSION first (never opened again), then the least recently used (a
    proxy's mtime is renewed each time a reader opens it). ``keep`` (the one just built) stays
    whatever its size. Only plain files named as proxies are counted or touched: no links, no
    builds in progress; but a build's file untouched for paths.ABANDONED_WRITE_S (its process was
    killed mid-write) goes whatever the room. A reader that has a deleted proxy open reads on; the
    next one starts a new build. Returns what was deleted."""

    def rank(name: str, status: os.stat_result) -> tuple | None:  # older versions first, then oldest use first
        match = _PROXY_NAME.fullmatch(name)
        return (int(match.group(1)) == PROXY_VERSION, status.st_mtime_ns) if match else None

    deleted = paths.prune_least_used(folder, rank, cache_limit_bytes() if limit_bytes is None else limit_bytes, keep,
                                     being_written=_BUILD_NAME)
    with _builds_lock:
        for path in deleted:
            _builds.pop(str(path), None)  # so the next reader of that video builds it again
    for path in deleted:
        _unlink(sums_path(path))
    _prune_orphan_sums(folder)
    return deleted


def _prune_orphan_sums(folder: Path) -> None:
    """Sums whose proxy is gone (deleted by hand, or a build killed between the two renames); a fresh one may
    be its build's, written just before the proxy, so only those untouched for paths.ABANDONED_WRITE_S go."""
    abandoned_before = time.time() - paths.ABANDONED_WRITE_S
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        match = _SUMS_NAME.fullmatch(entry.name)
        try:
            orphan = match and entry.is_file(follow_symlinks=False) and entry.stat(follow_symlinks=False).st_mtime < abandoned_before
        except OSError:
            continue
        if orphan and not (folder / entry.name[:-len(".sums")]).exists():
            _unlink(Path(entry.path))


def _unlink(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError:
        pass  # a read-only cache: the next prune tries again


class _Rejected(Exception):
    """The build was cancelled or its result does not match the original."""


def _checked_indices(frame_count: int) -> tuple[int, ...]:
    return tuple(sorted({int(i) for i in np.linspace(0, frame_count - 1, CHECKED_FRAMES)}))


def _transcode(info: VideoInfo, partial: Path, checked: tuple[int, ...],
               cancel: threading.Event | None) -> dict[int, np.ndarray] | None:
    """Encode every frame of the original as detection reads it (:func:`core.video.placed_frames`: a
    frame that does not decode repeats the one before), frame i at pts i; returns the original's RGB
    frames at ``checked`` (to compare the proxy with), or None when cancelled. Plain decoding left a
    damaged video's proxy short of frames: refused after every full transcode, on every opening."""
    rate = max(int(round(info.fps)), 1)
    time_base = Fraction(1, rate)
    originals: dict[int, np.ndarray] = {}
    with open_video(info.path) as source, av.open(str(partial), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=rate)
        stream.width, stream.height = info.width, info.height
        # 4:2:0 needs even sizes; odd ones keep every pixel in 4:4:4 rather than crop or scale.
        even = info.width % 2 == 0 and info.height % 2 == 0
        stream.pix_fmt = "yuv420p" if even else "yuv444p"
        stream.options = {"preset": "ultrafast", "tune": "fastdecode", "crf": "18", "g": str(PROXY_GOP), "bf": "0"}
        decoded = video_stream(source, info.stream)
        decoded.thread_type = "AUTO"
        for index, frame in placed_frames(source, decoded, info, on_damage=lambda said: None):  # the probe's frames
            if cancel is not None and cancel.is_set():
                return None
            if index in checked:
                originals[index] = shown(frame, "rgb24", info.rotation, info.coded_size)
            frame = _proxy_frame(frame, stream.pix_fmt, originals.get(index), info)
            frame.pts, frame.time_base = index, time_base
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return originals


def _proxy_frame(frame: av.VideoFrame, pix_fmt: str, rgb: np.ndarray | None, info: VideoInfo) -> av.VideoFrame:
    """``frame`` in the proxy's pixel format, turned as shown (the proxy has no display matrix).
    Limited-range YUV is converted directly; anything else (full-range "yuvj" from phones and IP
    cameras, RGB, palettes) and a turned frame go through the RGB the viewer shows for the
    original, since a direct conversion lost the range and the proxy, 29 dB off the original, was
    refused on every opening of the video after a full transcode. Every frame gets the probe's size
    (:func:`core.video.shown`)."""
    width, height = info.coded_size
    limited_yuv = frame.format.name.startswith(("yuv420p", "yuv444p", "yuv422p")) and frame.color_range != 2  # 2: JPEG range
    if not info.rotation and limited_yuv:
        return frame.reformat(format=pix_fmt, width=width, height=height)
    image = rgb if rgb is not None else shown(frame, "rgb24", info.rotation, info.coded_size)
    return av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format=pix_fmt)


def proxy_matches(original: VideoInfo, proxy: VideoInfo, originals: dict[int, np.ndarray] | None = None) -> bool:
    """Whether ``proxy`` can stand in for ``original`` on screen: same frame count and size, one
    distinct timestamp per frame, dense keyframes, and (when given) the original's frames at some
    indices equal to the proxy's frames there, read through random seeks, at PSNR >= MIN_PSNR_DB."""
    if (proxy.frame_count, proxy.width, proxy.height) != (original.frame_count, original.width, original.height):
        return False
    if len(proxy.frame_pts) != proxy.frame_count or len(proxy.keyframes) < -(-proxy.frame_count // PROXY_GOP):
        return False
    if not originals:
        return True
    reader = FrameReader(proxy, cache_frames=4)
    try:
        return all(psnr(reader.get(index), image) >= MIN_PSNR_DB for index, image in reversed(originals.items()))
    finally:
        reader.close()


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio of two uint8 images, in dB (inf when identical; -inf when their
    sizes differ: no match)."""
    if a.shape != b.shape:
        return float("-inf")
    error = np.mean((a.astype(np.float32) - b.astype(np.float32)) ** 2)
    return float("inf") if error == 0 else float(10 * np.log10(255.0**2 / error))


def reader_for_display(info: VideoInfo, cache_dir: Path | None = None, build: bool = True,
                       cache_frames: int | None = None) -> FrameReader:
    """A FrameReader (keeping ``cache_frames`` decoded frames; None: its default) on the seek proxy when one that
    matches exists (its structure, and its frame 0 the original's); otherwise on the original, after starting the
    proxy build in a background thread (once per video), so later calls get the fast one."""
    target = proxy_path(info, cache_dir)
    sums = _read_sums(target, info.frame_count) if target.is_file() else None
    if sums is not None:
        try:
            proxy = probe(target)
        except VideoError:
            proxy = None
        if proxy is not None and proxy_matches(info, proxy) and proxy_matches(info, proxy, {0: _first_frame(info)}):
            paths.mark_used(target)
            return _ProxyReader(proxy, info, cache_frames, sums)
    if build and len(info.keyframes) * PROXY_GOP < info.frame_count:  # long GOPs only
        with _builds_lock:
            if str(target) not in _builds:
                thread = threading.Thread(target=build_seek_proxy, args=(info, target), daemon=True,
                                          name=f"seek-proxy-{info.name}")
                _builds[str(target)] = thread
                thread.start()
    return FrameReader(info, cache_frames)


class _ProxyReader(FrameReader):
    """A reader on a seek proxy that reads the original instead from the first packet whose sum differs from
    the one taken when the proxy was checked, or the first frame it fails to decode (its file damaged on disk
    since): such frames were undisplayable ("<digest>.mp4: frame 85 could not be decoded"), or, where the
    damage still decoded, shown garbled, though the original decodes them. The proxy is deleted, to be built
    again."""

    def __init__(self, proxy: VideoInfo, original: VideoInfo, cache_frames: int | None, sums: np.ndarray):
        super().__init__(proxy, cache_frames)
        self._sums = {int(pts): int(sums[i]) for i, pts in enumerate(proxy.frame_pts)}
        self._original = original
        self._fallback: FrameReader | None = None
        self._fallback_lock = threading.Lock()

    def get(self, index: int) -> np.ndarray:
        if self._fallback is None:
            try:
                return super().get(index)
            except VideoError:
                self._fall_back()
        return self._fallback.get(index)

    def _vouch(self, packet: av.Packet) -> None:
        if packet.size and self._sums.get(packet.pts) != zlib.crc32(packet):  # the demuxer's empty flush packet has none
            raise VideoError(f"{self.info.name}: the packet of pts {packet.pts} differs from when it was checked")

    def _fall_back(self) -> None:
        with self._fallback_lock:
            if self._fallback is None:
                _unlink(sums_path(self.info.path))
                self.info.path.unlink(missing_ok=True)
                with _builds_lock:
                    _builds.pop(str(self.info.path), None)  # so the next reader of the video builds it again
                self._fallback = FrameReader(self._original, self._cache_frames)

    def close(self) -> None:
        super().close()
        if self._fallback is not None:
            self._fallback.close()


def _first_frame(info: VideoInfo) -> np.ndarray:
    """The original's frame 0 as shown: cheap (the first keyframe), and enough to tell a proxy file
    replaced by another video's of the same length and size, which its structure alone let through."""
    reader = FrameReader(info, cache_frames=1)
    try:
        return reader.get(0)
    finally:
        reader.close()


def proxy_building(info: VideoInfo, cache_dir: Path | None = None) -> bool:
    with _builds_lock:
        thread = _builds.get(str(proxy_path(info, cache_dir)))
    return thread is not None and thread.is_alive()
