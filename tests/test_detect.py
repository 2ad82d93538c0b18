import os
import threading
import time

import av
import cv2
import numpy as np
import pytest
from conftest import ENCODER_THREADS, sample_frames

import core.video
from core.detect import (
    BUILTIN_HOG,
    DetectionCancelled,
    HogPeopleDetector,
    YoloDetector,
    _in_background,
    batches,
    cached_detections,
    detect_video,
    load_detector,
    resolve_device,
)
from core.errors import DetectorError
from core.proxy import proxy_path
from core.video import iter_frames, probe


@pytest.fixture(scope="module")
def yolo():
    return YoloDetector("yolov8n.yaml", device="cpu", imgsz=320, backend="torch")


def test_yaml_model_builds_the_same_random_weights_every_time(yolo):
    again = YoloDetector("yolov8n.yaml", device="cpu", imgsz=320, backend="torch")
    assert again.fingerprint == yolo.fingerprint
    first = next(iter(yolo.model.model.parameters())).detach().numpy()
    assert np.array_equal(first, next(iter(again.model.model.parameters())).detach().numpy())
    assert len(yolo.names) == 80


def test_yolo_detection_runs_real_inference_and_caches(yolo, tiny_slice, tmp_path):
    info = probe(tiny_slice)
    seen = []
    detections = detect_video(info, yolo, conf=0.0001, cache_dir=tmp_path, progress=seen.append)
    assert detections.n_frames == 6 and detections.image_size == (384, 288)
    assert len(detections) > 0, "random weights at a tiny floor still produce boxes"
    assert detections.score.min() >= 0.0001
    assert (detections.xyxy >= 0).all() and (detections.xyxy[:, [0, 2]] <= 384).all() and (detections.xyxy[:, [1, 3]] <= 288).all()
    assert seen[-1].done == seen[-1].total == 6
    assert set(seen[-1].stage_fps) == {"decode", "prepare", "infer"} and min(seen[-1].stage_fps.values()) > 0
    # batches of frames must give what frame-by-frame prediction gives
    frames = [f for _, f in iter_frames(tiny_slice, pixel_format="bgr24")]
    one = yolo.model.predict(frames[2], conf=0.0001, imgsz=320, device="cpu", verbose=False)[0].boxes
    rows = detections.rows(2)
    assert len(one) == rows.stop - rows.start
    np.testing.assert_allclose(np.sort(detections.score[rows]), np.sort(one.conf.numpy()), rtol=1e-4, atol=1e-5)

    started = time.perf_counter()
    cached = detect_video(info, yolo, conf=0.0001, cache_dir=tmp_path)
    assert time.perf_counter() - started < 1.0
    assert np.array_equal(cached.xyxy, detections.xyxy) and cached.names == detections.names
    [entry] = list((tmp_path / "detections").glob("*.npz"))

    # A damaged entry (bytes garbled by a disk, a file cut short) is dropped and detected again: a
    # zip's CRC error or an end of file escaped as a traceback, on every run after, in run, batch and app.
    data = entry.read_bytes()
    for damaged in (data[:100] + bytes(400) + data[500:], data[: len(data) // 2], b""):
        entry.write_bytes(damaged)
        assert cached_detections(info, yolo, conf=0.0001, cache_dir=tmp_path) is None and not entry.exists()
        entry.write_bytes(damaged)
        again = detect_video(info, yolo, conf=0.0001, cache_dir=tmp_path)
        assert np.array_equal(again.xyxy, detections.xyxy) and entry.is_file()
    rng = np.random.default_rng(0)  # garbled anywhere (a zip fails in many ways: compression method, header tokens)
    for _ in range(300):
        garbled = bytearray(data)
        at = int(rng.integers(0, len(data) - 8))
        garbled[at:at + 8] = rng.integers(0, 256, 8, dtype=np.uint8).tobytes()
        entry.write_bytes(bytes(garbled))
        found = cached_detections(info, yolo, conf=0.0001, cache_dir=tmp_path)  # never raises
        assert found is None or found.n_frames == 6


def test_a_higher_floor_is_read_from_a_lower_floors_cache_without_running_the_model(yolo, tiny_slice, tmp_path):
    """``run --conf 0.3`` after a run at 0.1 ran the model again, for boxes the cache already held:
    what a run keeps above a floor is the lower floor's boxes above it (none under it suppressed one
    above). The same boxes as a fresh run at that floor, and no new entry (the model did not run)."""
    info = probe(tiny_slice)
    low = detect_video(info, yolo, conf=0.0, cache_dir=tmp_path / "cache")
    scores = np.unique(low.score)
    floor = float(scores[len(scores) // 2] + scores[len(scores) // 2 + 1]) / 2  # between two scores: half the boxes
    entries = sorted((tmp_path / "cache" / "detections").glob("*.npz"))
    reused = detect_video(info, yolo, conf=floor, cache_dir=tmp_path / "cache")
    assert sorted((tmp_path / "cache" / "detections").glob("*.npz")) == entries
    fresh = detect_video(info, yolo, conf=floor, cache_dir=tmp_path / "fresh")
    assert 0 < len(fresh) < len(low)
    for field in ("frame", "xyxy", "score", "cls"):
        assert np.array_equal(getattr(reused, field), getattr(fresh, field)), field


def test_the_detection_cache_keeps_within_its_size(yolo, tiny_slice, tmp_path, monkeypatch):
    """Past FLICKER_RESULTS_CACHE_GB the cache sheds its entries (least recently used first:
    tests/test_paths.py), and the run just cached always stays."""
    info = probe(tiny_slice)
    for conf in (0.0001, 0.001):
        detect_video(info, yolo, conf=conf, cache_dir=tmp_path)
    folder = tmp_path / "detections"
    assert len(list(folder.glob("*.npz"))) == 2
    monkeypatch.setenv("FLICKER_RESULTS_CACHE_GB", "0")
    detect_video(info, yolo, conf=0.01, cache_dir=tmp_path)
    [left] = folder.glob("*.npz")
    started = time.perf_counter()
    assert len(detect_video(info, yolo, conf=0.01, cache_dir=tmp_path)) >= 0 and time.perf_counter() - started < 1.0  # cached


def test_class_filter_keeps_only_asked_classes(yolo, tiny_slice, tmp_path):
    detections = detect_video(probe(tiny_slice), yolo, conf=0.0001, classes=[0, 2], cache_dir=tmp_path)
    assert set(np.unique(detections.cls)) <= {0, 2}
    with pytest.raises(DetectorError, match="Unknown class ids"):
        detect_video(probe(tiny_slice), yolo, classes=[999], cache_dir=tmp_path)


def test_hog_detector_finds_people_in_the_sample(sample_slice, tmp_path):
    info = probe(sample_slice)
    detector = load_detector(BUILTIN_HOG)
    frames = [f for i, f in iter_frames(sample_slice, pixel_format="bgr24") if i < 4]
    per_frame = detector.detect(frames, conf=0.1, classes=None)
    assert sum(len(score) for _, score, _ in per_frame) >= 4  # vtest shows several pedestrians
    for xyxy, score, cls in per_frame:
        assert ((score > 0) & (score < 1)).all() and (cls == 0).all()
        assert (xyxy[:, 2] > xyxy[:, 0]).all() and (xyxy[:, 3] > xyxy[:, 1]).all()
    assert detector.detect(frames[:1], conf=0.1, classes=[1])[0][1].size == 0
    assert info.width == 768


def test_hog_gives_each_frames_boxes_in_one_order_best_first(sample_video):
    """OpenCV's HOG hands back its pyramid levels' boxes in the order its threads finish: the same frame's
    boxes came out in another order on another run (on these frames, in 1 run of 3 or more)."""
    wanted, frames = (56, 144, 296), []
    for index, frame in iter_frames(sample_video, pixel_format="bgr24"):
        if index in wanted:
            frames.append(frame)
        if index >= max(wanted):
            break
    detector = HogPeopleDetector()
    runs = [detector.detect(frames, conf=0.05, classes=None) for _ in range(2)]
    for (xyxy, score, _), (again_xyxy, again_score, _) in zip(*runs):
        assert len(score) >= 2 and (np.diff(score) <= 0).all()  # best first, as YOLO's NMS gives them
        assert np.array_equal(xyxy, again_xyxy) and np.array_equal(score, again_score)


class UnsortedHog(HogPeopleDetector):
    """The HOG detector as it was before each frame's boxes were sorted (a4142cc): same fingerprint, boxes in
    another order (reversed here, for certain)."""

    def infer(self, frames, conf, classes):
        return [(xyxy[::-1], score[::-1], cls) for xyxy, score, cls in super().infer(frames, conf, classes)]


def test_a_cached_entry_does_not_depend_on_the_order_a_detector_gives_boxes(sample_slice, tmp_path):
    """Why sorting HOG's boxes kept its fingerprint: every run stores its boxes in canonical order (as
    every entry under this cache version was stored), so an entry written before the sort holds them
    as a run now does. Were it not so, entries of the old fingerprint would have come back unsorted."""
    info = probe(sample_slice)
    before = detect_video(info, UnsortedHog(), conf=0.05, cache_dir=tmp_path / "before")
    now = detect_video(info, HogPeopleDetector(), conf=0.05, cache_dir=tmp_path / "now")
    assert (np.bincount(now.frame) >= 2).any()  # frames with several boxes, whose order could differ
    for field in ("frame", "xyxy", "score", "cls"):
        assert np.array_equal(getattr(before, field), getattr(now, field)), field


def test_hog_survives_frames_smaller_than_its_window():
    tiny = np.zeros((48, 64, 3), np.uint8)
    assert HogPeopleDetector().detect([tiny], conf=0.1, classes=None)[0][0].shape == (0, 4)


def test_cancel_stops_and_caches_nothing(yolo, sample_slice, tmp_path):
    cancel = threading.Event()
    threads_before = threading.active_count()

    def stop_after_first_batch(progress):
        cancel.set()

    with pytest.raises(DetectionCancelled, match="cancelled after"):
        detect_video(probe(sample_slice), yolo, cache_dir=tmp_path, progress=stop_after_first_batch, cancel=cancel)
    assert not (tmp_path / "detections").exists() or not list((tmp_path / "detections").iterdir())
    assert threading.active_count() == threads_before, "the decode and prepare threads have stopped"


def test_read_ahead_is_bounded_in_bytes():
    produced = []

    def frames():
        for index in range(40):
            produced.append(index)
            yield np.zeros(1 << 20, np.uint8)  # 1 MiB each

    consumed = 0
    for _ in _in_background(frames(), budget=4 << 20, cost=lambda frame: frame.nbytes):
        time.sleep(0.002)  # a slow model
        consumed += 1
        assert len(produced) - consumed <= 5, "4 MiB queued plus the one being put"
    assert consumed == 40


def test_one_item_passes_however_large_and_errors_reach_the_consumer():
    def items():
        yield np.zeros(10, np.uint8)
        raise ValueError("decoder broke")

    with pytest.raises(ValueError, match="decoder broke"):
        list(_in_background(items(), budget=1, cost=lambda item: item.nbytes))


def test_batches_end_where_the_frame_size_changes():
    frames = [np.zeros((4, 4, 3))] * 3 + [np.zeros((8, 8, 3))] * 2
    assert [len(b) for b in batches(frames, 2)] == [2, 1, 2]


@pytest.mark.parametrize(
    "weights, message",
    [
        ("/nonexistent/yolov8x.pt", "Weights file not found"),
        ("model.pth", "Unsupported model file"),
        ("yolov8n.onnx", "Weights file not found"),
    ],
)
def test_bad_weights_get_clear_errors(weights, message):
    with pytest.raises(DetectorError, match=message):
        load_detector(weights, device="cpu")


def test_corrupt_weights_file_gets_clear_error(tmp_path):
    bad = tmp_path / "broken.pt"
    bad.write_bytes(b"definitely not a torch checkpoint")
    with pytest.raises(DetectorError, match="Could not load model broken.pt") as info:
        load_detector(bad, device="cpu")
    assert "\n" not in str(info.value)


def write_malicious_checkpoint(path, marker):
    """A .pt whose unpickling runs a shell command (what a booby-trapped weights file does)."""
    import torch

    class RunsCode:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    torch.save({"model": RunsCode()}, path)


@pytest.mark.parametrize("backend", ["torch", "auto"])
def test_weights_that_run_code_are_refused_before_they_run(tmp_path, monkeypatch, backend):
    from ultralytics.nn import tasks

    monkeypatch.setattr(tasks, "SAFE_LOAD", False)  # the check must not depend on Ultralytics' own switch
    marker = tmp_path / "PWNED"
    write_malicious_checkpoint(tmp_path / "evil.pt", marker)
    with pytest.raises(DetectorError, match=r"refuses to load evil.pt: it contains code "
                                            r"\(pickle global (posix|nt|os).system\)") as info:
        load_detector(tmp_path / "evil.pt", device="cpu", backend=backend, cache_dir=tmp_path)
    assert "\n" not in str(info.value)
    assert not marker.exists(), "nothing in the file was executed"


def test_real_checkpoints_load_and_detect(tmp_path, tiny_slice):
    """Both ways Ultralytics writes checkpoints: ``model.save`` and the trainer's dictionary."""
    import copy

    import torch
    from ultralytics import YOLO

    torch.manual_seed(0)
    model = YOLO("yolov8n.yaml")
    model.save(tmp_path / "saved.pt")
    optimizer = torch.optim.SGD(model.model.parameters(), lr=0.01)
    torch.save({"epoch": 3, "best_fitness": 0.5, "model": None, "ema": copy.deepcopy(model.model).half(),
                "updates": 10, "optimizer": optimizer.state_dict(),
                "train_args": {"model": "yolov8n.yaml", "imgsz": 640, "save_dir": tmp_path / "runs"},
                "train_metrics": {"metrics/mAP50(B)": 0.1}, "date": "2025-01-01T00:00:00", "version": "8.4.190"},
               tmp_path / "trained.pt")
    frames = [frame for _, frame in iter_frames(tiny_slice, pixel_format="bgr24")][:2]
    for name in ("saved.pt", "trained.pt"):
        detector = load_detector(tmp_path / name, device="cpu", imgsz=320, backend="torch")
        assert len(detector.names) == 80
        assert all(len(score) > 0 for _, score, _ in detector.detect(frames, conf=0.0001, classes=None))


@pytest.mark.parametrize("content", ["tensor", "dict", "data where the model goes"])
def test_a_pt_that_holds_no_model_says_so(tmp_path, content):
    """A tensor or a plain dictionary saved with torch.save loads safely but is no model: one line
    that says so, not Ultralytics' advice to run an official model (which would be downloaded)."""
    import torch

    path = tmp_path / "weights.pt"
    torch.save({"tensor": torch.zeros(3), "dict": {"x": 1}, "data where the model goes": {"model": None, "ema": {"a": 1}}}[content],
               path)
    with pytest.raises(DetectorError, match=r"^weights.pt is not an Ultralytics model checkpoint") as info:
        load_detector(path, device="cpu", backend="torch", cache_dir=tmp_path)
    assert "yolo predict" not in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("content", [b"", bytes(4096), b"PK\x03\x04 not a zip", bytes(range(256)) * 8, b"hello world\n"])
def test_a_damaged_pt_is_one_line_that_never_advises_an_unsafe_load(tmp_path, content):
    """Zeros, a cut or garbled file: torch's own message goes on to advise loading it with
    weights_only=False (arbitrary code); the one line says what is wrong with the file instead."""
    path = tmp_path / "weights.pt"
    path.write_bytes(content)
    with pytest.raises(DetectorError, match=r"^Could not load model weights.pt: it is ") as info:
        load_detector(path, device="cpu", backend="torch", cache_dir=tmp_path)
    message = str(info.value)
    assert "\n" not in message and "arbitrary code" not in message and "False" not in message, message


def test_device_resolution_on_a_cpu_machine():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert resolve_device("auto") == "cpu"
    with pytest.raises(DetectorError, match="no CUDA GPU"):
        resolve_device("cuda")
    with pytest.raises(DetectorError, match="Unknown device"):
        resolve_device("tpu")


def test_bad_confidence_floor_is_rejected(yolo, tiny_slice, tmp_path):
    with pytest.raises(DetectorError, match="Confidence floor"):
        detect_video(probe(tiny_slice), yolo, conf=1.5, cache_dir=tmp_path)


def test_a_video_read_from_a_later_video_stream_never_gets_the_first_streams_cached_boxes(tmp_path, monkeypatch):
    """The main video stream is FFmpeg's pick, and before it was the first: a file whose pick is another stream of
    as many frames (a camera's small preview track first) got the boxes cached from the first stream, none here."""
    path = tmp_path / "preview_first.mkv"
    frames = sample_frames(8)
    with av.open(str(path), "w", format="matroska") as container:
        preview, main = container.add_stream("libx264", rate=10), container.add_stream("libx264", rate=10)
        preview.width, preview.height = 96, 72  # under HOG's window: no boxes
        main.height, main.width = frames[0].shape[:2]
        main.disposition = av.stream.Disposition.default
        for stream in (preview, main):
            stream.pix_fmt, stream.codec_context.thread_count = "yuv420p", ENCODER_THREADS
        for frame in frames:
            for stream in (preview, main):
                picture = av.VideoFrame.from_ndarray(cv2.resize(frame, (stream.width, stream.height)), format="rgb24")
                for packet in stream.encode(picture):
                    container.mux(packet)
        for stream in (preview, main):
            for packet in stream.encode():
                container.mux(packet)
    picked = core.video._longest
    with monkeypatch.context() as patched:  # the reading before the pick: the first video stream
        patched.setattr(core.video, "_longest", lambda container, candidates, indexes: container.streams.video[0])
        before = probe(path)
        assert (before.width, before.frame_count, len(detect_video(before, HogPeopleDetector(), cache_dir=tmp_path))) == (96, 8, 0)
    assert core.video._longest is picked
    info = probe(path)
    assert (info.width, info.frame_count) == (frames[0].shape[1], 8)
    fresh = detect_video(info, HogPeopleDetector(), cache_dir=tmp_path / "fresh")
    again = detect_video(info, HogPeopleDetector(), cache_dir=tmp_path)
    assert len(fresh) > 0 and np.array_equal(again.xyxy, fresh.xyxy) and np.array_equal(again.frame, fresh.frame)
    assert proxy_path(info, tmp_path) != proxy_path(before, tmp_path)  # nor the first stream's seek proxy
