import warnings

import av
import numpy as np
import pytest

from conftest import ENCODER_THREADS, sample_frames, write_video
from core.errors import VideoError
from core.video import FrameReader, TruncatedVideoWarning, fingerprint_file, iter_frames, probe


def test_probe_sample_matches_pyav_decode(sample_video):
    info = probe(sample_video)
    assert (info.width, info.height, info.fps, info.codec) == (768, 576, 10.0, "msmpeg4")
    assert info.frame_count == 795 == sum(1 for _ in iter_frames(sample_video))
    assert info.duration_s == pytest.approx(79.5)
    assert info.keyframes[0] == 0 and len(info.keyframes) > 1


def test_probe_slice_counts_decoded_frames(sample_slice):
    info = probe(sample_slice)
    assert info.frame_count == 40 == sum(1 for _ in iter_frames(sample_slice))
    assert info.codec == "mpeg4"


def test_fingerprint_is_stable_and_content_sensitive(sample_slice, tmp_path):
    copy = tmp_path / "copy.mp4"
    copy.write_bytes(sample_slice.read_bytes())
    assert fingerprint_file(copy) == fingerprint_file(sample_slice)
    other = write_video(tmp_path / "other.mp4", sample_frames(40, start=1))
    assert fingerprint_file(other) != fingerprint_file(sample_slice)


def test_threaded_and_plain_decode_agree(sample_slice):
    threaded = [f for _, f in iter_frames(sample_slice, threaded=True)]
    plain = [f for _, f in iter_frames(sample_slice, threaded=False)]
    assert len(threaded) == len(plain) == 40
    assert all(np.array_equal(a, b) for a, b in zip(threaded, plain))
    assert threaded[0].shape == (576, 768, 3) and threaded[0].dtype == np.uint8


def test_bgr_is_rgb_reversed(sample_slice):
    _, rgb = next(iter_frames(sample_slice))
    _, bgr = next(iter_frames(sample_slice, pixel_format="bgr24"))
    assert np.array_equal(rgb[..., ::-1], bgr)


def test_random_access_equals_sequential_decode(sample_video):
    info = probe(sample_video)
    frames = [f for _, f in iter_frames(sample_video)]
    reader = FrameReader(info, cache_frames=8)
    kf = info.keyframes[1]
    order = [0, 794, kf, kf - 1, kf + 1, 400, 401, 402, 10, 399, 5, 793, 250, 249]
    order += np.random.default_rng(0).integers(0, 795, 20).tolist()
    for index in order:
        assert np.array_equal(reader.get(index), frames[index]), index
    with pytest.raises(IndexError):
        reader.get(795)
    reader.close()


def test_truncated_video_decodes_what_it_can_and_warns(sample_video, tmp_path):
    truncated = tmp_path / "cut.avi"
    truncated.write_bytes(sample_video.read_bytes()[:3_000_000])
    with pytest.warns(TruncatedVideoWarning, match="truncated"):
        info = probe(truncated)
    assert 100 < info.frame_count < 795
    assert info.warning.startswith(f"cut.avi looks truncated: {info.frame_count} frames can be read")  # kept for reports
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frames = [f for _, f in iter_frames(truncated)]
    assert len(frames) == info.frame_count
    with warnings.catch_warnings():  # the way detection decodes it: the same frames
        warnings.simplefilter("ignore")
        assert all(np.array_equal(a, b) for (_, a), b in zip(iter_frames(info), frames, strict=True))
    reader = FrameReader(info)
    for index in (info.frame_count - 1, 5, info.frame_count // 2):
        assert np.array_equal(reader.get(index), frames[index])



def _damaged_h264(tmp_path, step: int = 1) -> tuple:
    """An H.264 clip of 60 sample frames (keyframes at 0, 20, 40; every ``step``-th pixel) and a copy
    whose packets 25-27 hold random bytes, as a disk or a network leaves a file; returns (clean, damaged)."""
    clean = tmp_path / "clean.mp4"
    with av.open(str(clean), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 768 // step, 576 // step, "yuv420p"
        stream.options, stream.codec_context.thread_count = {"g": "20", "bf": "0", "crf": "23"}, ENCODER_THREADS
        for frame in (np.ascontiguousarray(frame[::step, ::step]) for frame in sample_frames(60, start=100)):
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    with av.open(str(clean)) as container:
        packets = [(p.pos, p.size) for p in container.demux(container.streams.video[0]) if p.size]
    data, noise = bytearray(clean.read_bytes()), np.random.default_rng(0)
    for pos, size in packets[25:28]:
        data[pos + 4: pos + size] = noise.integers(0, 256, size - 4, dtype=np.uint8).tobytes()
    damaged = tmp_path / "damaged.mp4"
    damaged.write_bytes(bytes(data))
    return clean, damaged


def test_damaged_data_mid_video_keeps_every_frame_the_probe_counts(tmp_path):
    """Decoding stopped at the first bad packet: 25 of 60 frames, the detections covered fewer frames
    than the video has, and the export refused the run after a full detection ("run detection
    again", which cannot help). Now the bad packets are skipped, later frames land where their
    timestamps say, and the frames that never decode repeat the one before."""
    from core.run import RunConfig, run_pipeline

    clean, damaged = _damaged_h264(tmp_path)
    info = probe(damaged)
    assert info.frame_count == 60 and not info.warning  # every packet is there: nothing looks wrong yet
    with pytest.warns(TruncatedVideoWarning, match=r"damaged.mp4: 3 of 60 frames could not be decoded .*repeats the last"):
        decoded = list(iter_frames(info))
    assert [index for index, _ in decoded] == list(range(60))
    originals = [frame for _, frame in iter_frames(clean)]
    assert all(np.array_equal(decoded[i][1], originals[i]) for i in [*range(25), *range(40, 60)])  # before, and from the next keyframe
    assert all(np.array_equal(decoded[i][1], decoded[24][1]) for i in (25, 26, 27))
    with pytest.warns(TruncatedVideoWarning, match="decoding stopped after 25 frames"):  # by path: as before, up to the damage
        assert len(list(iter_frames(damaged))) == 25

    reader = FrameReader(info)  # the viewer: each frame that decodes, where iter_frames has it (was PyAV's exception)
    assert np.array_equal(reader.get(50), originals[50])
    with pytest.raises(VideoError, match="damaged.mp4: frame 26 could not be decoded"):
        reader.get(26)  # its packet is damaged: one line
    assert all(np.array_equal(reader.get(i), decoded[i][1]) for i in (30, 24, 28, 39, 0))  # 28-39: damage concealed

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TruncatedVideoWarning)
        summary = run_pipeline(RunConfig(out=tmp_path / "out", video=damaged))
    assert summary.videos[0].detections.n_frames == 60 and summary.export.frames == 60


@pytest.mark.parametrize(
    "kind, message",
    [
        ("missing", "No such file"),
        ("directory", "is a directory"),
        ("empty", "is empty"),
        ("random", "not a video"),
        ("text", "not a video"),
        ("header_only", "not a video"),
        ("device", "is not a regular file"),
        ("fifo", "is not a regular file"),
        ("loop", "is a symbolic link that leads to no file"),  # was "No such file", of a file that is there
        ("dangling", "is a symbolic link that leads to no file"),
        ("still", r"still.mp4 is a still image \(PNG\), not a video"),  # was a one-frame video
        # were "not a video FFmpeg can read (End of file)" and "has no video stream (or its index is missing...)"
        ("no_frames_mkv", "no_frames.mkv ends before any video data: an empty recording, or a file cut short"),
        ("no_frames_mp4", "no_frames.mp4 holds no streams, so no frames: an empty recording"),
        # was a one-frame video at 90,000 fps: the sound's cover picture
        ("cover_art", r"podcast.mp4 has no video stream, only a still picture \(cover art\)"),
    ],
)
def test_bad_input_gets_one_line_video_error(bad_files, kind, message):
    with pytest.raises(VideoError, match=message) as info:
        probe(bad_files[kind])
    assert "\n" not in str(info.value)


def test_a_frame_larger_than_any_camera_makes_is_refused_before_decoding(sample_slice, monkeypatch):
    monkeypatch.setattr("core.video.MAX_FRAME_PIXELS", 768 * 576 - 1)  # the sample's frames, less one pixel
    with pytest.raises(VideoError, match=r"has 768 x 576 frames; at most 0 million pixels") as info:
        probe(sample_slice)
    assert "\n" not in str(info.value)


def test_a_phone_video_turned_by_its_display_matrix_is_read_upright(tmp_path):
    """A phone held upright records landscape frames and a display matrix that turns them; players
    show them turned. They were read lying on their side: detected, reviewed and exported so."""
    import av

    from dataclasses import replace

    from core.detect import cache_key, load_detector
    from core.proxy import build_seek_proxy, proxy_path

    frames = sample_frames(12, start=100)
    path = tmp_path / "phone.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 768, 576, "yuv420p"
        stream.options, stream.codec_context.thread_count = {"g": "4", "crf": "18"}, ENCODER_THREADS
        stream.set_display_rotation(90)  # a quarter turn counterclockwise, as the camera app records it
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    info = probe(path)
    assert (info.width, info.height, info.rotation) == (576, 768, 90)
    with av.open(str(path)) as container:
        as_stored = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    upright = [frame for _, frame in iter_frames(info)]
    assert all(np.array_equal(shown, np.rot90(stored)) for shown, stored in zip(upright, as_stored, strict=True))
    assert upright[0].shape == (768, 576, 3) and upright[0].flags.c_contiguous
    assert np.array_equal(FrameReader(info).get(7), upright[7])
    assert np.array_equal(next(iter_frames(path))[1], upright[0])  # by path too
    proxy = build_seek_proxy(info, proxy_path(info, tmp_path))  # stored turned: it matches the frames as shown
    assert proxy is not None and "-r90-" in proxy.name and probe(proxy).rotation == 0
    detector = load_detector(None)  # boxes cached from frames read on their side are never taken for these
    assert cache_key(info, detector, 0.1, None) != cache_key(replace(info, rotation=0), detector, 0.1, None)


def test_an_intra_refresh_stream_seeks_to_every_frame(tmp_path):
    """x264's intra refresh (low-latency cameras) flags each refresh's packet as a keyframe though
    no picture starts there; after a seek to the last one the decoder gave no frame at all, and
    the reader said the last frames could not be decoded."""
    import av
    import cv2

    path = tmp_path / "refresh.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 384, 288, "yuv420p"
        stream.options = {"x264-params": "intra-refresh=1:keyint=20", "bf": "0"}
        stream.codec_context.thread_count = ENCODER_THREADS
        for frame in sample_frames(70, start=100):
            for packet in stream.encode(av.VideoFrame.from_ndarray(cv2.resize(frame, (384, 288)), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    info = probe(path)
    assert len(info.keyframes) > 3  # the packets' flags: every refresh
    decoded = [frame for _, frame in iter_frames(info)]
    for index in (69, 65, 30, 0, 61):  # a fresh reader's jump into the last refresh period first
        assert np.array_equal(FrameReader(info).get(index), decoded[index]), index


def test_a_variable_rate_mkv_has_the_rate_its_timestamps_give(tmp_path, sample_video):
    """An MKV's header said 25 fps (FFmpeg's guess for Matroska) for frames 10-199 ms apart: Play
    ran 2.7 times too fast and a 33 s video's duration read 12 s."""
    from fractions import Fraction

    import av

    path = tmp_path / "vfr.mkv"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 192, 144, "yuv420p"
        stream.codec_context.thread_count = ENCODER_THREADS
        stream.codec_context.time_base = Fraction(1, 1000)  # each frame's own time, not rounded to 1/25 s
        milliseconds = np.cumsum([0, *np.random.default_rng(0).integers(10, 200, 39)])  # 10-199 ms apart
        for frame, at in zip(sample_frames(40, start=100), milliseconds):
            picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame[::4, ::4]), format="rgb24")
            picture.pts, picture.time_base = int(at), Fraction(1, 1000)
            for packet in stream.encode(picture):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    info = probe(path)
    assert info.fps == pytest.approx(39 / (milliseconds[-1] / 1000), rel=1e-6)
    assert info.duration_s == pytest.approx(40 / info.fps)
    assert probe(sample_video).fps == 10.0  # a constant rate keeps its header's


def test_a_recording_paused_for_an_hour_keeps_the_rate_of_its_frames(tmp_path):
    """A camera that records on motion: 10 fps, then nothing for an hour, then 10 fps again. Its rate
    was its frames over the whole span, 0.005 fps: Play showed one frame every 3 minutes."""
    from fractions import Fraction

    import av

    path = tmp_path / "motion.mkv"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 192, 144, "yuv420p"
        stream.codec_context.thread_count = ENCODER_THREADS
        stream.codec_context.time_base = Fraction(1, 10)
        for k, frame in enumerate(sample_frames(20, start=100)):
            picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame[::4, ::4]), format="rgb24")
            picture.pts, picture.time_base = k if k < 10 else k + 36_000, Fraction(1, 10)
            for packet in stream.encode(picture):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    info = probe(path)
    assert info.frame_count == 20 and info.fps == pytest.approx(10.0)


@pytest.mark.parametrize("name, codec, container_format", [("cam.ts", "libx264", None), ("cam.mpg", "mpeg2video", None),
                                                           ("cam.m2ts", "libx264", "mpegts")])
def test_mpeg_ts_and_ps_with_b_frames_seek_to_every_frame(tmp_path, name, codec, container_format):
    """MPEG-TS and MPEG-PS seek by decode timestamps: a seek to a keyframe with B-frames landed on
    the next keyframe, and 26 of 40 random jumps said "frame N could not be decoded" until a seek
    proxy existed (and always, where the GOPs were too short for one)."""
    frames = [np.ascontiguousarray(frame[::2, ::2]) for frame in sample_frames(70, start=100)]
    info = probe(write_video(tmp_path / name, frames, codec=codec, options={"g": "20", "bf": "2"},
                             container_format=container_format))
    assert info.frame_count == 70 and len(info.keyframes) >= 4
    decoded = [frame for _, frame in iter_frames(info)]
    reader = FrameReader(info, cache_frames=2)  # a jump is never served from the cache
    for index in np.random.default_rng(0).integers(0, 70, 30):
        assert np.array_equal(reader.get(int(index)), decoded[index]), index


def test_a_ts_cut_mid_stream_is_read_from_its_first_keyframe(tmp_path):
    """A TS segment cut from a live recording starts mid-GOP: its first frames refer to pictures
    the file does not hold. They were counted as frames that never decode (the viewer said "frame 0
    could not be decoded"); now the video starts at its first keyframe, as players start it."""
    frames = [np.ascontiguousarray(frame[::2, ::2]) for frame in sample_frames(60, start=100)]
    whole = write_video(tmp_path / "whole.ts", frames, codec="libx264", options={"g": "20", "bf": "2", "sc_threshold": "0"})
    data = whole.read_bytes()
    cut = tmp_path / "cut.ts"
    cut.write_bytes(data[len(data) // 4 // 188 * 188:])  # a quarter in, on a TS packet's boundary
    with pytest.warns(TruncatedVideoWarning, match=r"cut.ts starts mid-stream .*its first \d+ frames come before any keyframe"):
        info = probe(cut)
    assert info.warning.startswith("cut.ts starts mid-stream")
    assert info.frame_count == 40  # from the keyframe at 20 of the whole
    originals = [frame for _, frame in iter_frames(whole)]
    with warnings.catch_warnings():
        warnings.simplefilter("error", TruncatedVideoWarning)  # every frame counted decodes
        decoded = [frame for _, frame in iter_frames(info)]
    assert len(decoded) == 40 and all(np.array_equal(a, b) for a, b in zip(decoded, originals[20:]))
    reader = FrameReader(info, cache_frames=2)
    for index in (0, 25, 3, 39, 19, 20):
        assert np.array_equal(reader.get(index), decoded[index]), index


def _pyav_frames(path) -> list[np.ndarray]:
    """The frames as PyAV decodes them, in order: what Lightly counts and names."""
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def _reads_as_pyav_decodes(info, expected: list[np.ndarray]) -> None:
    """Every frame, in order and by random jumps, is PyAV's frame of that index, with no warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", TruncatedVideoWarning)
        decoded = [frame for _, frame in iter_frames(info)]
    assert len(decoded) == len(expected) == info.frame_count
    assert all(np.array_equal(a, b) for a, b in zip(decoded, expected))
    reader = FrameReader(info, cache_frames=2)  # a jump is never served from the cache
    for index in np.random.default_rng(0).integers(0, info.frame_count, 30):
        assert np.array_equal(reader.get(int(index)), expected[index]), index


@pytest.mark.parametrize("cut, gop", [(10, 20), (20, 7)])
def test_a_trimmed_mp4_counts_the_frames_it_shows(tmp_path, cut, gop):
    """A stream-copy trim off a keyframe writes an MP4 edit list that hides the packets before the
    cut. They were counted as frames ("10 of 60 frames could not be decoded"), so every frame was
    PyAV's (and so Lightly's) frame 10 later, and the export passed validation. A cut past a GOP
    (the demuxer drops the GOPs before it, which the header still counts) is no truncated file."""
    frames = [np.ascontiguousarray(frame[::2, ::2]) for frame in sample_frames(60, start=100)]
    path = write_video(tmp_path / "trim.mp4", frames, codec="libx264", options={"g": str(gop), "bf": "2"}, first_pts=-cut)
    expected = _pyav_frames(path)
    assert len(expected) == 60 - cut, "the edit list hides the frames before the cut from PyAV"
    with warnings.catch_warnings():
        warnings.simplefilter("error", TruncatedVideoWarning)
        info = probe(path)
    assert info.warning == ""
    _reads_as_pyav_decodes(info, expected)


def test_h264_with_b_frames_in_an_avi_is_read_in_decode_order(tmp_path):
    """An AVI has no presentation timestamps: FFmpeg stamps its packets in decode order, and the
    H.264 decoder hands the frames back with those stamps reordered (1, 3, 2, 5, 4). Placed by
    them, 120 of 600 frames were a neighbour's, for detection and for the viewer alike."""
    frames = [np.ascontiguousarray(frame[::2, ::2]) for frame in sample_frames(90, start=100)]
    path = write_video(tmp_path / "cam.avi", frames, codec="libx264",
                       options={"g": "90", "keyint_min": "90", "bf": "3", "sc_threshold": "0"})
    info = probe(path)
    assert info.reordered and len(info.frame_pts) == 0
    _reads_as_pyav_decodes(info, _pyav_frames(path))
    assert not probe(write_video(tmp_path / "cam.mp4", frames[:20], codec="libx264", options={"bf": "3"})).reordered


def test_a_stream_that_changes_size_part_way_is_read_at_its_first_size(tmp_path):
    """Two recordings joined (``cat a.ts b.ts``): the later frames kept their own size, whose boxes no
    export could place, and the seek proxy's build died on them with a traceback."""
    from core.proxy import build_seek_proxy, proxy_path

    small = [np.ascontiguousarray(frame[::4, ::4]) for frame in sample_frames(20, start=100)]
    large = [np.ascontiguousarray(frame[::2, ::2]) for frame in sample_frames(20, start=120)]
    options = {"g": "10", "bf": "2"}
    joined = tmp_path / "joined.ts"
    joined.write_bytes(write_video(tmp_path / "a.ts", small, codec="libx264", options=options).read_bytes()
                       + write_video(tmp_path / "b.ts", large, codec="libx264", options=options).read_bytes())
    info = probe(joined)
    assert (info.width, info.height) == (small[0].shape[1], small[0].shape[0]) and info.frame_count == 40
    assert {frame.shape for _, frame in iter_frames(info)} == {small[0].shape}
    reader = FrameReader(info, cache_frames=2)
    assert {reader.get(index).shape for index in (35, 5, 25)} == {small[0].shape}
    built = build_seek_proxy(info, proxy_path(info, tmp_path / "cache"))  # no traceback: built, or refused as None
    assert built is None or probe(built).frame_count == 40


def test_a_reader_keeps_fewer_large_frames(sample_slice, tmp_path):
    """96 decoded 4K frames held 2.2 GB in each reader that exports frames (select, prelabels)."""
    from dataclasses import replace

    from core.video import READER_CACHE_BYTES

    small = probe(sample_slice)
    assert FrameReader(small)._cache_frames == 96
    uhd = replace(small, width=3840, height=2160)
    assert FrameReader(uhd)._cache_frames * 3840 * 2160 * 3 <= READER_CACHE_BYTES


def test_a_ts_whose_clock_wraps_seeks_to_its_first_frames(tmp_path):
    """MPEG-TS stamps frames on a 33-bit clock that wraps every 26.5 hours: a recording across the wrap
    starts below 0 once FFmpeg unwraps it. A seek to timestamp 0 landed two seconds in, and every
    jump into the first GOP said "frame N could not be decoded"."""
    frames = [np.ascontiguousarray(frame[::2, ::2]) for frame in sample_frames(50, start=100)]
    wrap = 2**33 // 9000  # the clock's wrap, in frames of 1/10 s (90 kHz ticks)
    path = write_video(tmp_path / "wrap.ts", frames, codec="libx264", options={"g": "12", "bf": "2", "sc_threshold": "0"},
                       first_pts=wrap - 20)
    info = probe(path)
    assert info.frame_count == 50 and info.frame_pts[0] < 0, "unwrapped: the first two seconds below 0"
    _reads_as_pyav_decodes(info, _pyav_frames(path))
    reader = FrameReader(info, cache_frames=2)
    decoded = [frame for _, frame in iter_frames(info)]
    for index in (30, 5, 40, 0, 11, 3):  # into the first GOP from further on, each time
        assert np.array_equal(reader.get(index), decoded[index]), index


@pytest.mark.parametrize("container_format, picture_first, picture_default", [
    ("matroska", True, False),  # Matroska keeps no cover-art mark: the picture was read as the whole video
    ("mp4", False, True),  # FFmpeg's own pick puts a stream marked default first, however short
    ("matroska", True, True),
])
def test_a_one_frame_picture_track_beside_the_video_is_never_read_as_the_video(tmp_path, container_format, picture_first,
                                                                                picture_default):
    """A file can hold a cover picture as a one-frame MJPEG track beside its video: read first (the first video
    stream), or as FFmpeg picks (a stream marked default), it was taken for the whole video, one frame at 1 fps."""
    frames = sample_frames(12)
    path = tmp_path / f"with_picture.{'mkv' if container_format == 'matroska' else 'mp4'}"
    with av.open(str(path), "w", format=container_format) as container:
        def picture_track():
            cover = container.add_stream("mjpeg", rate=1)
            cover.width, cover.height, cover.pix_fmt = 64, 48, "yuvj420p"
            cover.disposition = av.stream.Disposition.default if picture_default else 0
            return cover

        cover = picture_track() if picture_first else None
        video = container.add_stream("libx264", rate=10)
        video.height, video.width = frames[0].shape[:2]
        video.pix_fmt, video.codec_context.thread_count, video.disposition = "yuv420p", ENCODER_THREADS, 0
        cover = cover or picture_track()
        picture = av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="rgb24")
        for packet in [*cover.encode(picture), *cover.encode()]:
            container.mux(packet)
        for frame in frames:
            for packet in video.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
    info = probe(path)
    assert (info.frame_count, info.fps, info.codec, info.width) == (12, 10.0, "h264", frames[0].shape[1])
    assert info.stream == (1 if picture_first else 0)
    decoded = [frame for _, frame in iter_frames(info)]
    assert len(decoded) == 12 and np.abs(decoded[-1].astype(int) - frames[-1]).mean() < 8
    by_path = [frame for _, frame in iter_frames(path)]  # no probe: the same stream, from its first frame
    assert len(by_path) == 12 and all(np.array_equal(a, b) for a, b in zip(by_path, decoded))
    reader = FrameReader(info)
    assert np.array_equal(reader[11], decoded[11]) and np.array_equal(reader[3], decoded[3])


def test_a_file_replaced_since_its_probe_by_one_with_fewer_video_streams_says_so(tmp_path):
    """The probe's pick is kept by its place among the video streams; a file with fewer of them since raised an
    IndexError in every reader."""
    from dataclasses import replace

    path = write_video(tmp_path / "one_stream.mp4", sample_frames(3))
    info = replace(probe(path), stream=1)  # as probed when the file held a second video stream
    with pytest.raises(VideoError, match="one_stream.mp4 changed since it was opened"):
        FrameReader(info)[0]
    with pytest.raises(VideoError, match="changed since"):
        next(iter_frames(info))
