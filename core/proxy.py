"""Seek proxies: a short-GOP H.264 copy of a video, so scrubbing to any frame is fast.

Jumping to frame i decodes from the keyframe before it; real-world videos often have GOPs of
hundreds of frames (the bundled sample: 250), which makes a random jump cost ~75 ms. The proxy
has a keyframe every 12 frames and the same frame count and order (checked after the build), at
visually lossless quality (CRF 18: ~40 dB PSNR on the sample). It is used for display only;
detection and export always read the original.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path

import av

from core import paths
from core.video import FrameReader, VideoInfo, open_video, probe

PROXY_GOP = 12
_builds: dict[str, threading.Thread] = {}
_builds_lock = threading.Lock()


def proxy_path(info: VideoInfo, cache_dir: Path | None = None) -> Path:
    return (cache_dir or paths.cache_dir()) / "proxies" / f"{info.fingerprint}-{info.frame_count}.mp4"


def build_seek_proxy(info: VideoInfo, target: Path, cancel: threading.Event | None = None) -> Path | None:
    """Transcode ``info`` to ``target`` (atomically). Returns None when cancelled or when the
    proxy would not match the original frame for frame."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.partial.mp4")
    try:
        with open_video(info.path) as source, av.open(str(partial), "w") as out:
            stream = out.add_stream("libx264", rate=max(int(round(info.fps)), 1))
            stream.width, stream.height, stream.pix_fmt = info.width - info.width % 2, info.height - info.height % 2, "yuv420p"
            stream.options = {"preset": "ultrafast", "tune": "fastdecode", "crf": "18", "g": str(PROXY_GOP), "bf": "0"}
            decoded = source.streams.video[0]
            decoded.thread_type = "AUTO"
            for frame in source.decode(decoded):
                if cancel is not None and cancel.is_set():
                    return None
                frame = frame.reformat(width=stream.width, height=stream.height, format="yuv420p")
                frame.pts = None
                for packet in stream.encode(frame):
                    out.mux(packet)
            for packet in stream.encode():
                out.mux(packet)
        if probe(partial).frame_count != info.frame_count:
            return None
        os.replace(partial, target)
        return target
    except (av.error.FFmpegError, OSError):
        return None
    finally:
        partial.unlink(missing_ok=True)


def reader_for_display(info: VideoInfo, cache_dir: Path | None = None, build: bool = True) -> FrameReader:
    """A FrameReader on the seek proxy when it exists; otherwise on the original, after starting
    the proxy build in a background thread (once per video), so later calls get the fast one."""
    target = proxy_path(info, cache_dir)
    if target.is_file():
        proxy = probe(target)
        if proxy.frame_count == info.frame_count and (proxy.width, proxy.height) == (info.width, info.height):
            return FrameReader(proxy)
    if build and len(info.keyframes) * PROXY_GOP < info.frame_count:  # long GOPs only
        with _builds_lock:
            if str(target) not in _builds:
                thread = threading.Thread(target=build_seek_proxy, args=(info, target), daemon=True,
                                          name=f"seek-proxy-{info.name}")
                _builds[str(target)] = thread
                thread.start()
    return FrameReader(info)


def proxy_building(info: VideoInfo, cache_dir: Path | None = None) -> bool:
    with _builds_lock:
        thread = _builds.get(str(proxy_path(info, cache_dir)))
    return thread is not None and thread.is_alive()
