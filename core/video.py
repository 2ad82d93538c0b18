"""Video probing, sequential decoding and random access, all through PyAV.

Lightly counts and names video frames by decoding them with PyAV, so every frame index in this
product (detection, review, export) comes from PyAV too: frame i is the i-th decoded frame.
"""
from __future__ import annotations

import bisect
import os
import threading
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import av
import numpy as np

from core import paths
from core.errors import VideoError

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".ts", ".m2ts", ".mts")
_KEEP_BEFORE_TARGET = 2  # frames before a seek target kept for the i-1 of the review strip


@dataclass(frozen=True)
class VideoInfo:
    """What a user (and the cache) needs to know about a video file."""

    path: Path
    frame_count: int
    fps: float
    width: int
    height: int
    codec: str
    duration_s: float
    fingerprint: str
    # Presentation timestamps of every frame in decode-output order, and the frame indices of
    # keyframes: the map that makes seeking by frame index exact. Empty when the container has
    # no usable timestamps (then seeking falls back to decoding from the start).
    frame_pts: np.ndarray = field(repr=False, compare=False, default_factory=lambda: np.empty(0, np.int64))
    keyframes: tuple[int, ...] = field(repr=False, compare=False, default=(0,))
    # Why its frames may be fewer than it was recorded with ("looks truncated: ..."), or "": the
    # warning the probe gives, kept for reports made later (a batch's summary, the Fleet page).
    warning: str = field(compare=False, default="")
    # Degrees counterclockwise the frames are turned for display (a phone's display matrix: 0, 90,
    # 180 or 270). Frames are read turned, so width and height above are the frames' as shown.
    rotation: int = 0
    # Decoded frames carry their timestamps out of order (H.264 with B-frames in an AVI, which has
    # no presentation timestamps): frames are counted in decode output order, never placed by them.
    reordered: bool = field(compare=False, default=False)
    # Frames an MP4 edit list hides (a trim by stream copy off a keyframe): decoded, never shown, not counted.
    hidden_frames: int = field(compare=False, default=0)
    # Which of the file's video streams is read, by its place among them (:func:`probe` picks the longest): the first
    # was read whatever the file held until 2026-12-07, so what is keyed by the video (detection cache, seek proxy)
    # says it where it is not the first.
    stream: int = 0

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def coded_size(self) -> tuple[int, int]:
        """(width, height) of the frames as decoded, before they are turned for display."""
        return (self.height, self.width) if self.rotation in (90, 270) else (self.width, self.height)


class TruncatedVideoWarning(UserWarning):
    """The file ends early; the frames before the damage are used."""


def fingerprint_file(path: Path) -> str:
    """The video's content key (it keys the detection cache and the verdicts): SHA-256 of every
    byte, so two files that differ anywhere never share results. Hashing runs at ~1 GB/s here,
    small next to decoding the same file; the digest is remembered per (file, size, mtime, ctime),
    so reopening a video does not read it again."""
    return paths.content_key(path)


def _check_file(path: Path) -> None:
    if not path.exists():
        if path.is_symlink():  # exists() follows links: one to nothing, or a loop of them, is no missing file
            raise VideoError(f"{path} is a symbolic link that leads to no file (a link to a missing file, or a loop)")
        raise VideoError(f"No such file: {path}")
    if path.is_dir():
        raise VideoError(f"{path} is a directory, not a video file")
    if not path.is_file():  # a device (/dev/zero reads as empty and endless), a FIFO (an open would wait forever)
        raise VideoError(f"{path.name} is not a regular file")
    if path.stat().st_size == 0:
        raise VideoError(f"{path.name} is empty (0 bytes)")


def video_stream(container: av.container.InputContainer, place: int) -> av.VideoStream:
    """The video stream that is read: the one at ``place`` among the container's video streams (a probe's
    :attr:`VideoInfo.stream`, or :func:`stream_place`'s)."""
    if place >= len(container.streams.video):  # the file was replaced since its probe
        raise VideoError(f"{Path(container.name).name} changed since it was opened: open it again")
    return container.streams.video[place]


def stream_place(container: av.container.InputContainer) -> int:
    """The place among the video streams of the one :func:`probe` reads: the longest of those that are not
    cover pictures (counted in a pass over the file where there are several; the container is then at its end)."""
    candidates = _moving_streams(container)
    return _place(container, candidates[0] if len(candidates) == 1 else
                  _longest(container, candidates, _demux_index(container, candidates)[0]))


def _place(container: av.container.InputContainer, stream: av.VideoStream) -> int:
    """``stream``'s place among the container's video streams (what :attr:`VideoInfo.stream` keeps)."""
    return next(i for i, candidate in enumerate(container.streams.video) if candidate.index == stream.index)


def _moving_streams(container: av.container.InputContainer) -> list[av.VideoStream]:
    """The video streams that are not a cover picture (``attached_pic``: a still shown beside sound)."""
    return [s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic]


def open_video(path: Path) -> av.container.InputContainer:
    """Open a container that has a video stream, or raise a one-line VideoError."""
    _check_file(path)
    try:
        container = av.open(str(path), mode="r")
    except EOFError:  # a container's header and nothing after it
        raise VideoError(f"{path.name} ends before any video data: an empty recording, or a file cut short") from None
    except av.error.FFmpegError as exc:
        raise VideoError(f"{path.name} is not a video FFmpeg can read ({_reason(exc)})") from None
    if not container.streams:
        container.close()
        raise VideoError(f"{path.name} holds no streams, so no frames: an empty recording, or a file cut short")
    if not container.streams.video:
        container.close()
        raise VideoError(f"{path.name} has no video stream (or its index is missing: a truncated file?)")
    if not _moving_streams(container):
        container.close()  # sound with its cover picture: read as a one-frame video at 90,000 fps
        raise VideoError(f"{path.name} has no video stream, only a still picture (cover art)")
    if _is_still_image(container.format.name):
        kind = container.format.name.removesuffix("_pipe").upper()
        container.close()
        raise VideoError(f"{path.name} is a still image ({kind}), not a video")
    return container


def _is_still_image(demuxer: str) -> bool:
    """FFmpeg reads a lone picture as a one-frame video (a PNG named .mp4 was detected and
    reviewed as one); its image demuxers are ``image2`` and ``<codec>_pipe``. Animated formats (GIF,
    APNG) have demuxers of their own and stay videos."""
    return demuxer == "image2" or demuxer.endswith("_pipe")


def _reason(exc: Exception) -> str:
    return getattr(exc, "strerror", None) or str(exc).splitlines()[0]


def probe(path: str | Path) -> VideoInfo:
    """Read a video's facts. The frame count comes from demuxing every packet of the video stream
    (not from the header, which is often missing or wrong), and is checked by decoding the first
    frame, so a file whose data cannot be decoded fails here rather than halfway through detection.
    """
    path = Path(path)
    with open_video(path) as container:
        candidates = _moving_streams(container)
        indexes, truncated = _demux_index(container, candidates)
        stream = _longest(container, candidates, indexes)
        place = _place(container, stream)
        codec = stream.codec_context.name
        width, height = stream.codec_context.width, stream.codec_context.height
        _check_frame_size(path, width, height)
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(rate) if rate else 0.0
        header_frames = stream.frames
        time_base = stream.time_base
        pts, keyframe_flags, discarded = indexes[stream.index]
    if pts:
        pts, keyframe_flags, discarded, headless = _from_first_keyframe(pts, keyframe_flags, discarded)
        pts, keyframe_flags, hidden = _shown_packets(pts, keyframe_flags, discarded)
    if not pts:  # no packet, or every one hidden
        raise VideoError(f"{path.name} contains no video frames")
    frame_pts, keyframes = _frame_map(pts, keyframe_flags)
    fps = _frame_rate(fps, frame_pts, time_base)
    rotation, reordered, (width, height) = _decode_start(path, frame_pts, place)
    _check_frame_size(path, width, height)
    if reordered:
        frame_pts, keyframes = np.empty(0, np.int64), (0,)
    if rotation in (90, 270):
        width, height = height, width
    frame_count = len(pts)
    warnings_said = []
    if headless:
        warnings_said.append(f"{path.name} starts mid-stream (a cut recording?): its first {headless:,} frames come "
                             "before any keyframe and cannot be decoded, so it is read from its first keyframe")
    # an edit list (hidden packets) can also drop whole GOPs before its cut, which the header still counts
    if truncated or (header_frames and not hidden and header_frames > frame_count + headless + 1):
        warnings_said.append(f"{path.name} looks truncated: {frame_count} frames can be read"
                             + (f" of the {header_frames} its header announces" if header_frames else ""))
    warning = "; ".join(warnings_said)  # a segment cut from a live stream is often cut at both ends
    if warning:
        warnings.warn(warning, TruncatedVideoWarning, stacklevel=2)
    return VideoInfo(
        path=path,
        frame_count=frame_count,
        fps=fps,
        width=width,
        height=height,
        codec=codec,
        duration_s=frame_count / fps if fps else 0.0,
        fingerprint=fingerprint_file(path),
        frame_pts=frame_pts,
        keyframes=keyframes,
        warning=warning,
        rotation=rotation,
        reordered=reordered,
        hidden_frames=hidden,
        stream=place,
    )


MAX_FRAME_PIXELS = 40_000_000  # 8K UHD is 33 million; every frame is decoded, scaled and held in full


def _check_frame_size(path: Path, width: int, height: int) -> None:
    """A frame larger than any camera's (a 49 KB file of 8192 x 8192 frames took 4 GB and minutes
    for 20 frames) is refused before anything decodes it."""
    if width * height > MAX_FRAME_PIXELS:
        raise VideoError(f"{path.name} has {width:,} x {height:,} frames; at most {MAX_FRAME_PIXELS // 1_000_000} "
                         "million pixels per frame are read (8K is 33 million)")


def _demux_index(container, streams: list) -> tuple[dict[int, tuple[list, list[bool], list[bool]]], bool]:
    """Per stream (by its index), per packet in decode order: its timestamp, whether it is a keyframe and
    whether the container hides it (``is_discard``: an MP4 edit list, what a stream-copy trim off a
    keyframe writes, decodes the packets before the cut but never shows them); and whether the
    container ended in damage. One pass over the file, whatever the number of streams."""
    indexes: dict[int, tuple[list, list[bool], list[bool]]] = {stream.index: ([], [], []) for stream in streams}
    try:
        for packet in container.demux(streams):
            if packet.size == 0:  # the flush packet PyAV yields at the end
                continue
            pts, keyframe_flags, discarded = indexes[packet.stream.index]
            pts.append(packet.pts if packet.pts is not None else packet.dts)
            keyframe_flags.append(bool(packet.is_keyframe))
            discarded.append(bool(packet.is_discard))
    except av.error.FFmpegError:
        return indexes, True
    return indexes, False


def _longest(container, candidates: list, indexes: dict) -> av.VideoStream:
    """The stream of most packets, FFmpeg's pick among the longest: FFmpeg ranks a stream marked default first,
    and a one-frame picture track marked default came before twelve frames of video that were not."""
    most = max(len(indexes[stream.index][0]) for stream in candidates)
    longest = [stream for stream in candidates if len(indexes[stream.index][0]) == most]
    best = container.streams.best("video")
    return best if best in longest else longest[0]


def _from_first_keyframe(pts: list, keyframe_flags: list[bool], discarded: list[bool]) -> tuple[list, list[bool], list[bool], int]:
    """The packets (in decode order) of a stream cut mid-GOP, such as a TS segment cut from a live
    recording, from its first keyframe on: the frames before it refer to pictures the file does not
    hold, so players start there too. Frames shown before that keyframe (an open GOP's leading
    B-frames) go with them. Returns (pts, flags, discard flags, how many shown frames were left out)."""
    if keyframe_flags[0] or not any(keyframe_flags) or any(p is None for p in pts):
        return pts, keyframe_flags, discarded, 0  # the usual start; or nothing says where pictures start
    start = keyframe_flags.index(True)
    kept = [i for i in range(start, len(pts)) if pts[i] >= pts[start]]
    left_out = sum(1 for i in set(range(len(pts))) - set(kept) if not discarded[i])
    return [pts[i] for i in kept], [keyframe_flags[i] for i in kept], [discarded[i] for i in kept], left_out


def _shown_packets(pts: list, keyframe_flags: list[bool], discarded: list[bool]) -> tuple[list, list[bool], int]:
    """The packets whose frames are shown: PyAV (and so Lightly) never outputs a hidden packet's
    frame, so counting them put every frame of a trimmed MP4 ten frames off. A keyframe among the
    hidden ones still starts the pictures after it: frame 0 is always sought from the file's start.
    Returns (pts, keyframe flags, how many were hidden)."""
    shown_at = [i for i, hidden in enumerate(discarded) if not hidden]
    return [pts[i] for i in shown_at], [keyframe_flags[i] for i in shown_at], len(pts) - len(shown_at)


PAUSE_INTERVALS = 10  # a gap between two frames this many times the median one is a pause in the recording


def _frame_rate(header_fps: float, frame_pts: np.ndarray, time_base) -> float:
    """The header's frame rate, unless the frames' own timestamps disagree with it by more than 5%:
    a variable-rate MKV says 25 fps (its default) for frames 0.11 s apart, and played at 25 fps its
    32.6 s went by in 12 s. Pauses (gaps over PAUSE_INTERVALS times the median, a camera that records
    on motion) are left out of the span: counted, an hour's pause in 20 frames made it 0.005 fps."""
    if len(frame_pts) < 2 or not time_base:
        return header_fps
    gaps = np.diff(frame_pts)
    kept = gaps[gaps <= PAUSE_INTERVALS * np.median(gaps)]
    span = float(int(kept.sum()) * time_base)
    measured = len(kept) / span if span > 0 else 0.0
    return measured if measured and (not header_fps or abs(header_fps - measured) > 0.05 * measured) else header_fps


def _frame_map(pts: list, keyframe_flags: list[bool]) -> tuple[np.ndarray, tuple[int, ...]]:
    """Frame i is the i-th frame in presentation order, so sort the packet timestamps."""
    if any(p is None for p in pts) or len(set(pts)) != len(pts):
        return np.empty(0, np.int64), (0,)
    order = np.argsort(np.asarray(pts, dtype=np.int64), kind="stable")
    frame_pts = np.asarray(pts, dtype=np.int64)[order]
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    keyframes = sorted({0, *(int(rank[i]) for i, key in enumerate(keyframe_flags) if key)})
    return frame_pts, tuple(keyframes)


STAMP_CHECK_FRAMES = 32  # frames decoded by the probe to check that their timestamps come out in order


def _decode_start(path: Path, frame_pts: np.ndarray, place: int) -> tuple[int, bool, tuple[int, int]]:
    """Decode the first frame (or raise a one-line VideoError) and up to STAMP_CHECK_FRAMES: the
    first frame's display rotation (see :attr:`VideoInfo.rotation`), whether the decoded frames'
    timestamps come out of order (:attr:`VideoInfo.reordered`; only where there is a map of them),
    and the first frame's (width, height), which every frame is given (its header may say another).
    An AVI has no presentation timestamps; FFmpeg gives its packets their decode order, and an H.264
    decoder hands them back reordered with its B-frames (1, 3, 2, 5, 4): placed by them, 120 of 600
    frames were a neighbour's."""
    with open_video(path) as container:
        frames = container.decode(video_stream(container, place))
        try:
            first = next(frames)
        except (av.error.FFmpegError, StopIteration) as exc:
            reason = _reason(exc) if isinstance(exc, av.error.FFmpegError) else "no frame decodes"
            raise VideoError(f"{path.name}: video data cannot be decoded ({reason})") from None
        size = (first.width, first.height)
        if not len(frame_pts):
            return quarter_turns(first), False, size
        known = set(frame_pts[:4 * STAMP_CHECK_FRAMES].tolist())
        stamps = [first.pts]
        try:
            stamps += [frame.pts for frame, _ in zip(frames, range(STAMP_CHECK_FRAMES - 1))]
        except av.error.FFmpegError:
            pass  # damage early on: the frames before it say what they can
        placed = [stamp for stamp in stamps if stamp in known]  # those of frames the probe counts
        return quarter_turns(first), any(b <= a for a, b in zip(placed, placed[1:])), size


def quarter_turns(frame: av.VideoFrame) -> int:
    """The display rotation of ``frame`` in degrees counterclockwise, as 0, 90, 180 or 270 (a camera
    turns by quarters; anything else rounds to the nearest)."""
    return int(round((frame.rotation or 0) / 90)) % 4 * 90


def shown(frame: av.VideoFrame, pixel_format: str, rotation: int, size: tuple[int, int] | None = None) -> np.ndarray:
    """``frame`` as an array, turned as players show it (as FFmpeg's autorotate does): a phone's
    video held upright is detected, reviewed and exported upright, not lying on its side.
    ``size``: the (width, height) every frame is given before it is turned, the probe's
    (:attr:`VideoInfo.coded_size`): a stream that changes size part-way (two recordings joined) kept
    its later frames at their own size, whose boxes no export could place, and past the probe's
    size check (320 x 240, then 7,000 x 7,000)."""
    if size is not None and (frame.width, frame.height) != size:
        image = frame.to_ndarray(format=pixel_format, width=size[0], height=size[1])
    else:
        image = frame.to_ndarray(format=pixel_format)
    return np.ascontiguousarray(np.rot90(image, rotation // 90)) if rotation else image


def iter_frames(
    video: str | Path | VideoInfo,
    pixel_format: str = "rgb24",
    threaded: bool | None = None,
    on_damage: Callable[[str], None] | None = None,
) -> Iterator[tuple[int, np.ndarray]]:
    """Decode every frame in order, yielding ``(index, HxWx3 uint8 array)``.

    ``threaded`` lets FFmpeg decode with frame and slice threads (``thread_type="AUTO"``). By
    default it is on with 4+ cores: on 2 cores the decoder threads compete with the RGB
    conversion and H.264 end-to-end decode is ~15% slower than FFmpeg's default (bench/video.py).

    Given a path, damage part-way through ends the iteration with a TruncatedVideoWarning instead
    of an exception: the frames before it are good and a user would rather have them. Given the
    video's :class:`VideoInfo` (its probe), it yields exactly the frames the probe counted: a
    packet that does not decode is skipped, as FFmpeg's player skips it, the frames after it are
    placed by their timestamps, and each frame that never decodes repeats the last one that did
    (with one TruncatedVideoWarning). Stopping at the first bad packet lost every frame after it,
    and the detections then covered fewer frames than the video has, which the export refused.
    ``on_damage``: called with that warning's text instead (decoding on a worker thread: the warning
    is the caller's to give, and to keep).
    """
    info = video if isinstance(video, VideoInfo) else None
    path = info.path if info is not None else Path(video)
    if threaded is None:
        threaded = (os.cpu_count() or 1) >= 4
    if info is None:
        with open_video(path) as container:
            place = stream_place(container)
    with open_video(path) as container:
        stream = video_stream(container, info.stream if info is not None else place)
        if threaded:
            stream.thread_type = "AUTO"
        if info is None:
            yield from _decoded_until_damage(container, stream, path, pixel_format)
        else:
            yield from _decoded_past_damage(container, stream, info, pixel_format, on_damage)


def _decoded_until_damage(container, stream, path: Path, pixel_format: str) -> Iterator[tuple[int, np.ndarray]]:
    index, rotation, size = 0, None, None
    try:
        for frame in container.decode(stream):
            rotation = quarter_turns(frame) if rotation is None else rotation  # as the probe reads it: the first frame's
            size = size or (frame.width, frame.height)
            yield index, shown(frame, pixel_format, rotation, size)
            index += 1
    except av.error.FFmpegError as exc:
        warnings.warn(f"{path.name}: decoding stopped after {index} frames ({_reason(exc)})", TruncatedVideoWarning,
                      stacklevel=3)


def _decoded_packets(container, stream) -> Iterator[list[av.VideoFrame] | str]:
    """Per packet, its decoded frames, or why it did not decode; a container that cannot be read
    further (a cut file) ends the packets, and then the decoder is flushed."""
    packets = container.demux(stream)
    while True:
        try:
            packet = next(packets)
        except StopIteration:
            return
        except av.error.FFmpegError as exc:
            yield _reason(exc)
            packet = None
        if packet is None:
            try:
                yield stream.codec_context.decode(None)  # what the decoder still holds
            except av.error.FFmpegError as exc:
                yield _reason(exc)
            return
        try:
            yield packet.decode()  # the last, empty packet flushes the decoder
        except av.error.FFmpegError as exc:
            yield _reason(exc)


def _decoded_past_damage(container, stream, info: VideoInfo, pixel_format: str,
                         on_damage: Callable[[str], None] | None = None) -> Iterator[tuple[int, np.ndarray]]:
    converted: tuple[av.VideoFrame | None, np.ndarray | None] = (None, None)  # a repeated frame is converted once
    for index, frame in placed_frames(container, stream, info, on_damage):
        if frame is not converted[0]:
            converted = (frame, shown(frame, pixel_format, info.rotation, info.coded_size))
        yield index, converted[1]


def placed_frames(container, stream, info: VideoInfo,
                  on_damage: Callable[[str], None] | None = None) -> Iterator[tuple[int, av.VideoFrame]]:
    """``(index, frame)`` for exactly the frames the probe counted, from ``container`` at its start:
    each decoded frame where its timestamp places it (counted, where timestamps do not map), and each
    frame that never decodes as the last one before it that did (before any: the first that did),
    said once through ``on_damage`` or a TruncatedVideoWarning. What detection reads (iter_frames),
    and what the seek proxy holds, so the viewer shows the frames the boxes were found on."""
    place = {int(p): i for i, p in enumerate(info.frame_pts)}  # empty when timestamps do not map: frames are counted
    index, last, held, reason = 0, None, 0, ""
    for frames in _decoded_packets(container, stream):
        if isinstance(frames, str):
            reason = reason or frames
            continue
        for frame in frames:
            at = index if not place or frame.pts is None else place.get(frame.pts, -1)
            if at < index or at >= info.frame_count:
                continue  # a timestamp already passed or left out by the probe, or a frame past those it counted
            for _ in range(at - index):  # frames lost to damage: the last good one again (before any: this one)
                yield index, frame if last is None else last
                index, held = index + 1, held + 1
            yield index, frame
            index, last = index + 1, frame
    while last is not None and index < info.frame_count:  # the tail did not decode
        yield index, last
        index, held = index + 1, held + 1
    if held:
        said = (f"{info.name}: {held:,} of {info.frame_count:,} frames could not be decoded ({reason or 'damaged data'}); "
                "each repeats the last frame before it that did")
        if on_damage is not None:
            on_damage(said)
        else:
            warnings.warn(said, TruncatedVideoWarning, stacklevel=4)


def _skipping_damage(container, stream, vouch: Callable[[av.Packet], None]) -> Iterator[av.VideoFrame]:
    """The frames of ``stream`` from where the container is, a packet that does not decode skipped
    (as players skip it): the frames after it, up to the next keyframe, show with the damage
    concealed rather than not at all. ``vouch`` sees each packet first and may refuse it (VideoError)."""
    for packet in container.demux(stream):
        vouch(packet)
        try:
            yield from packet.decode()
        except av.error.FFmpegError:
            continue


READER_CACHE_BYTES = 256 << 20  # decoded frames a reader keeps by default: 96 of the sample, 10 of 4K (96 were 2.2 GB)


def default_cache_frames(info: VideoInfo) -> int:
    """How many decoded frames fit in READER_CACHE_BYTES (4 to 96)."""
    return int(np.clip(READER_CACHE_BYTES // max(1, info.width * info.height * 3), 4, 96))


class FrameReader:
    """Random access to frames for scrubbing: keyframe-aware seeks plus an LRU cache.

    Jumping to frame i seeks to the last keyframe at or before i and decodes forward, caching
    the frames it passes (so i-1 and i+1 are usually free). Stepping forward continues the
    open decoder instead of seeking. Thread-safe: one reader can serve several app sessions.
    """

    def __init__(self, info: VideoInfo, cache_frames: int | None = None, pixel_format: str = "rgb24"):
        self.info = info
        self._pixel_format = pixel_format
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._cache_frames = cache_frames if cache_frames is not None else default_cache_frames(info)
        self._lock = threading.Lock()
        self._pts_to_index = {int(p): i for i, p in enumerate(info.frame_pts)}
        # Packet keyframe flags can lie (e.g. an AVI without its index marks every packet as key);
        # a seek that lands on a frame that does not decode as a keyframe removes it from this list.
        self._keyframes = list(info.keyframes)
        self._container = None
        self._decoder: Iterator | None = None
        self._next_index: int | None = None
        # How far before a keyframe's timestamp a seek aims: MPEG-TS seeks by decode timestamps, so a
        # seek to a keyframe with B-frames lands on the next keyframe; learnt from the first such landing.
        self._seek_margin = 0

    def __len__(self) -> int:
        return self.info.frame_count

    def __getitem__(self, index: int) -> np.ndarray:
        return self.get(index)

    def get(self, index: int) -> np.ndarray:
        index = int(index)
        if not 0 <= index < self.info.frame_count:
            raise IndexError(f"frame {index} is outside 0..{self.info.frame_count - 1}")
        with self._lock:
            if index in self._cache:
                self._cache.move_to_end(index)
                return self._cache[index]
            try:
                if not self._can_step_to(index):
                    self._seek_before(index)
                return self._decode_until(index)
            except av.error.FFmpegError as exc:  # damaged data: one line (the viewer's route says it), not PyAV's
                self._decoder, self._next_index = None, None  # the next frame asked for seeks afresh
                raise VideoError(f"{self.info.name}: frame {index} could not be decoded ({_reason(exc)})") from None

    def close(self) -> None:
        with self._lock:
            if self._container is not None:
                self._container.close()
            self._container, self._decoder, self._next_index = None, None, None

    def _keyframe_at_or_before(self, index: int) -> int:
        return self._keyframes[bisect.bisect_right(self._keyframes, index) - 1]

    def _can_step_to(self, index: int) -> bool:
        """Decoding forward beats seeking when no keyframe lies between here and the target."""
        nxt = self._next_index
        return nxt is not None and nxt <= index and self._keyframe_at_or_before(index) <= nxt

    def _seek_before(self, index: int) -> None:
        keyframe = self._keyframe_at_or_before(index)
        target = int(self.info.frame_pts[keyframe]) - self._seek_margin if len(self.info.frame_pts) else 0
        if keyframe == 0 or target <= int(self.info.frame_pts[0]):
            return self._rewind()
        if self._container is None:
            # No frame threads here: they hold frames back, which costs latency on every seek.
            self._container = open_video(self.info.path)
        stream = video_stream(self._container, self.info.stream)
        self._container.seek(target, stream=stream, backward=True)
        self._next_index = None  # learnt from the first decoded frame's timestamp
        self._decoder = _skipping_damage(self._container, stream, self._vouch)

    def _decode_until(self, index: int) -> np.ndarray:
        while (image := self._decode_from_here(index)) is None:
            pass  # the seek landed badly; the keyframes were corrected and the decoder sought again
        return image

    def _decode_from_here(self, index: int) -> np.ndarray | None:
        """Frame ``index``, decoding on from where the decoder is; None after a seek that landed
        where no frame can start (the keyframes are corrected and the next seek is made)."""
        for frame in self._decoder:
            current = self._next_index
            if current is None:  # first frame after a seek: find where we landed
                current = self._pts_to_index.get(frame.pts)
                if current is None:  # timestamps do not map: fall back to counting from the start
                    self._keyframes, self._pts_to_index = [0], {}
                    self._rewind()
                    return None
                if not frame.key_frame:  # landed mid-GOP: that "keyframe" was not one
                    return self._not_a_keyframe(index)
                if current > index:  # landed past the target
                    return self._landed_late(index)
            elif self._pts_to_index:  # by timestamp: a frame lost to a damaged packet is skipped, not counted
                if frame.pts is not None and frame.pts < self.info.frame_pts[0]:
                    continue  # before the first keyframe of a stream cut mid-GOP: the probe left it out
                current = self._pts_to_index.get(frame.pts, current)
            self._next_index = current + 1
            if current < index - _KEEP_BEFORE_TARGET:
                continue  # converting to RGB costs more than decoding: skip frames nobody asked for
            image = shown(frame, self._pixel_format, self.info.rotation, self.info.coded_size)
            self._remember(current, image)
            if current == index:
                return image
            if current > index:
                break
        if self._next_index is None and self._keyframe_at_or_before(index) > 0:
            # not one frame since the seek: a decoder waits past a point no picture starts at (an
            # intra-refresh stream flags every refresh as a keyframe), here to the end of the video
            return self._not_a_keyframe(index)
        raise VideoError(f"{self.info.name}: frame {index} could not be decoded")

    def _not_a_keyframe(self, index: int) -> None:
        """The keyframe before ``index`` is none: forget it and seek from the one before it."""
        self._keyframes.remove(self._keyframe_at_or_before(index))
        self._seek_before(index)

    def _landed_late(self, index: int) -> None:
        """A seek that landed after ``index``: aim further back (one frame, then twice as far each
        time, until the start) and seek again."""
        pts = self.info.frame_pts
        self._seek_margin = max(2 * self._seek_margin, int(pts[1] - pts[0]))
        self._seek_before(index)

    def _rewind(self) -> None:
        """Decode from the file's first packet. Where the first timestamp is below 0 (a TS whose clock
        wrapped) the file is opened afresh: a seek to timestamp 0 landed seconds in, and left the first
        GOP out of reach."""
        if self._container is not None and len(self.info.frame_pts) and self.info.frame_pts[0] < 0:
            self._container.close()
            self._container = None
        if self._container is None:
            self._container = open_video(self.info.path)  # at its start
        else:
            self._container.seek(0, stream=video_stream(self._container, self.info.stream), backward=True)
        stream = video_stream(self._container, self.info.stream)
        self._decoder = _skipping_damage(self._container, stream, self._vouch)
        self._next_index = 0

    def _vouch(self, packet: av.Packet) -> None:
        """Every packet read may be refused here (VideoError) before it is decoded: a seek proxy checks its
        packets' sums. The original is read as it is."""

    def _remember(self, index: int, image: np.ndarray) -> None:
        self._cache[index] = image
        self._cache.move_to_end(index)
        while len(self._cache) > self._cache_frames:
            self._cache.popitem(last=False)
