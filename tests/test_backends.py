"""The ONNX and PyTorch backends give the boxes of Ultralytics' own ``predict``, with our letterbox,
normalisation and NMS; ONNX exports are cached per weights and failures fall back to PyTorch."""
import shutil
import warnings

import cv2
import numpy as np
import pytest
import torch

from core.backends import (Letterbox, OnnxBackend, TorchBackend, letterbox_array, letterbox_tensor, select_boxes,
                           square_input)
from core.detect import BackendFallbackWarning, YoloDetector, detect_video, resolve_backend
from core.errors import DetectorError
from core.paths import SAMPLE_VIDEO
from core.video import iter_frames, probe

pytest.importorskip("onnxruntime")
IMGSZ = 320


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A seeded yolov8n saved as Ultralytics saves checkpoints, with scores that depend on the image.

    Untrained layers shrink their input, so a YAML model's random weights give every anchor the same
    score and ties would decide NMS. Larger BatchNorm gains and a higher class bias spread the scores
    over 0.05..0.7 like a trained model's, which makes matching boxes a real test."""
    from ultralytics import YOLO

    torch.manual_seed(0)
    model = YOLO("yolov8n.yaml")
    with torch.no_grad():
        for layer in model.model.modules():
            if isinstance(layer, torch.nn.BatchNorm2d):
                layer.weight.fill_(2.5)
        for branch in model.model.model[-1].cv3:
            branch[-1].bias.add_(4)
    path = tmp_path_factory.mktemp("weights") / "spread.pt"
    model.save(path)
    return path


@pytest.fixture(scope="module")
def onnx_cache(tmp_path_factory):
    return tmp_path_factory.getbasetemp() / "onnx-export-cache"


@pytest.fixture(scope="module")
def onnx_yolo(checkpoint, onnx_cache):
    return YoloDetector(checkpoint, device="cpu", imgsz=IMGSZ, backend="onnx", cache_dir=onnx_cache)


@pytest.fixture(scope="module")
def torch_yolo(checkpoint):
    return YoloDetector(checkpoint, device="cpu", imgsz=IMGSZ, backend="torch")


def crops(sizes):
    """Natural content (people) at odd frame sizes: crops of the sample, enlarged where needed."""
    frame = next(iter_frames(SAMPLE_VIDEO, pixel_format="bgr24"))[1]
    out = []
    for width, height in sizes:
        scale = max(1.0, width / frame.shape[1] * 1.05, height / frame.shape[0] * 1.05)
        big = cv2.resize(frame, None, fx=scale, fy=scale) if scale > 1 else frame
        top, left = (big.shape[0] - height) // 2, (big.shape[1] - width) // 2
        out.append(np.ascontiguousarray(big[top:top + height, left:left + width]))
    return out


def assert_same_boxes(ours, reference):
    """Every box matched one to one: same class, IoU >= 0.99, score within 1e-3."""
    xyxy, score, cls = ours
    ref = reference.boxes
    ref_xyxy, ref_score, ref_cls = ref.xyxy.numpy(), ref.conf.numpy(), ref.cls.numpy().astype(int)
    assert len(score) == len(ref_score)
    if not len(score):
        return
    top_left = np.maximum(xyxy[:, None, :2], ref_xyxy[None, :, :2])
    bottom_right = np.minimum(xyxy[:, None, 2:], ref_xyxy[None, :, 2:])
    inter = np.clip(bottom_right - top_left, 0, None).prod(-1)
    area = (xyxy[:, 2:] - xyxy[:, :2]).prod(-1)
    ref_area = (ref_xyxy[:, 2:] - ref_xyxy[:, :2]).prod(-1)
    iou = inter / (area[:, None] + ref_area[None] - inter)
    match = (iou >= 0.99) & (np.abs(score[:, None] - ref_score[None]) <= 1e-3) & (cls[:, None] == ref_cls[None])
    assert match.any(1).all() and match.any(0).all()


def predict(detector, frames, conf):
    return detector.model.predict(frames, conf=conf, imgsz=IMGSZ, device="cpu", verbose=False)


@pytest.mark.parametrize("minimal", [True, False])
@pytest.mark.parametrize("height, width", [(217, 383), (333, 1001), (576, 768), (48, 64), (1080, 1920), (3000, 1)])
def test_letterbox_geometry_is_ultralytics(height, width, minimal):
    from ultralytics.data.augment import LetterBox

    params = LetterBox((640, 640), auto=minimal, stride=32).get_params({"img": np.zeros((height, width, 3), np.uint8)})
    box = Letterbox.fit((height, width), (640, 640), 32, minimal)
    assert box.resized_hw == params["new_unpad"][::-1]
    assert (box.top, box.bottom, box.left, box.right) == (params["top"], params["bottom"], params["left"], params["right"])


@pytest.mark.parametrize("width, height", [(383, 217), (1001, 333), (64, 48)])
def test_both_letterboxes_give_ultralytics_input(width, height):
    from ultralytics.data.augment import LetterBox

    frame = crops([(width, height)])[0]
    expected = LetterBox((640, 640), auto=True, stride=32)(image=frame).transpose(2, 0, 1)[::-1] / np.float32(255)
    box = Letterbox.fit((height, width), square_input(640, 32), 32, True)
    assert np.array_equal(letterbox_array([frame], box)[0], expected)
    on_device = letterbox_tensor(torch.from_numpy(frame[None]), box, torch.float32)[0].numpy()
    off = np.abs(on_device - expected) * 255
    # OpenCV's fixed-point resize, repeated: exact when shrinking, one grey level now and then when enlarging
    assert off.max() <= 1.0001 and (off > 0.5).mean() < (0.005 if width < 640 else 1e-9)


def test_numpy_nms_is_ultralytics_nms():
    import torchvision  # noqa: F401  as in predict, where Ultralytics' NMS runs torchvision's kernel
    from ultralytics.utils.nms import non_max_suppression

    rng = np.random.default_rng(0)
    centres = rng.uniform(0, 320, (2, 2, 500))
    sizes = rng.uniform(5, 80, (2, 2, 500))
    scores = rng.uniform(0, 1, (2, 3, 500)).round(2)  # rounding makes ties, which order must break alike
    preds = np.concatenate([centres, sizes, scores], axis=1).astype(np.float32)
    for classes in (None, [0, 2]):
        expected = non_max_suppression(torch.from_numpy(preds), 0.25, 0.7, classes, max_det=300)
        for (xyxy, score, cls), ref in zip(select_boxes(preds, 0.25, classes, False), expected):
            assert np.array_equal(xyxy, ref[:, :4].numpy()) and np.array_equal(score, ref[:, 4].numpy())
            assert np.array_equal(cls, ref[:, 5].numpy())


def test_nms_free_output_is_only_filtered():
    rows = np.float32([[[0, 0, 10, 10, 0.9, 1], [0, 0, 10, 10, 0.2, 0], [5, 5, 9, 9, 0.6, 2]]])
    xyxy, score, cls = select_boxes(rows, 0.5, [1, 2], True)[0]
    assert score.tolist() == pytest.approx([0.9, 0.6]) and cls.tolist() == [1, 2]


def test_onnx_detection_of_a_video_gives_predicts_boxes(onnx_yolo, tiny_slice, tmp_path):
    assert isinstance(onnx_yolo.backend, OnnxBackend)
    detections = detect_video(probe(tiny_slice), onnx_yolo, conf=0.1, cache_dir=tmp_path)
    frames = [frame for _, frame in iter_frames(tiny_slice, pixel_format="bgr24")]
    assert len(detections) > 5 * len(frames)
    for index, reference in enumerate(predict(onnx_yolo, frames, 0.1)):
        rows = detections.rows(index)
        assert_same_boxes((detections.xyxy[rows], detections.score[rows], detections.cls[rows]), reference)


@pytest.mark.parametrize("backend", ["onnx", "torch", "torch, letterbox as tensor code"])
def test_odd_frame_sizes_give_predicts_boxes(backend, onnx_yolo, torch_yolo):
    detector = onnx_yolo if backend == "onnx" else torch_yolo
    run = detector.backend
    if backend.endswith("tensor code"):  # what a GPU runs, here on the CPU
        run = TorchBackend(torch_yolo.model.model, "cpu", False, IMGSZ, letterbox_on_device=True)
    for frame in crops([(383, 217), (1001, 333)]):
        ours = run.infer(run.prepare([frame]), 0.05, None)[0]
        assert len(ours[1]) > 3
        assert_same_boxes(ours, predict(detector, [frame], 0.05)[0])  # alone: a mixed list gets square padding


def test_torch_backend_batches_frames(torch_yolo, sample_slice):
    assert isinstance(torch_yolo.backend, TorchBackend) and not torch_yolo.half
    frames = [frame for index, frame in iter_frames(sample_slice, pixel_format="bgr24") if index < 3]
    one_by_one = [torch_yolo.detect([frame], 0.1, [0, 1])[0] for frame in frames]
    for (xyxy, score, cls), (xyxy1, score1, cls1) in zip(torch_yolo.detect(frames, 0.1, [0, 1]), one_by_one):
        np.testing.assert_allclose(xyxy, xyxy1, atol=1e-3)
        np.testing.assert_allclose(score, score1, atol=1e-5)
        assert set(cls.tolist()) <= {0, 1}


def test_export_is_cached_and_fingerprints_are_stable(onnx_yolo, checkpoint, onnx_cache):
    again = YoloDetector(checkpoint, device="cpu", imgsz=IMGSZ, backend="auto", cache_dir=onnx_cache)
    assert isinstance(again.backend, OnnxBackend) and again.fingerprint == onnx_yolo.fingerprint
    assert "model" not in again.__dict__, "a cached export needs no PyTorch model"
    assert sorted(p.suffix for p in onnx_cache.joinpath("onnx").iterdir()) == [".onnx", ".sha256"], "no staging leftovers"
    torch_one = YoloDetector(checkpoint, device="cpu", imgsz=IMGSZ, backend="torch")
    assert torch_one.fingerprint != onnx_yolo.fingerprint and torch_one.fingerprint.endswith(":torch-fp32")


def test_failed_export_falls_back_to_torch_with_one_warning(checkpoint, tmp_path, monkeypatch):
    def broken_export(*args):
        raise RuntimeError("onnx exporter exploded\nsecond line")

    monkeypatch.setattr("core.detect.export_onnx", broken_export)
    with pytest.warns(BackendFallbackWarning, match=r"ONNX export of spread.pt failed \(onnx exporter exploded\); "
                                                    r"running it on PyTorch instead$") as caught:
        detector = YoloDetector(checkpoint, device="cpu", imgsz=IMGSZ, cache_dir=tmp_path)
    assert len(caught) == 1 and isinstance(detector.backend, TorchBackend)
    with pytest.raises(DetectorError, match="Could not run spread.pt on ONNX Runtime: onnx exporter exploded$"):
        YoloDetector(checkpoint, device="cpu", imgsz=IMGSZ, backend="onnx", cache_dir=tmp_path)


@pytest.mark.parametrize("planted", ["half a model", "a working model this tool did not export"])
def test_a_cached_export_this_tool_did_not_write_is_exported_again(onnx_yolo, checkpoint, onnx_cache, tmp_path,
                                                                  monkeypatch, planted):
    good = next(onnx_cache.joinpath("onnx").glob("*.onnx"))
    (tmp_path / "onnx").mkdir()
    if planted == "half a model":
        (tmp_path / "onnx" / good.name).write_bytes(b"half a model")
    else:  # a real model put there by hand, with a digest file that does not describe it
        shutil.copyfile(good, tmp_path / "onnx" / good.name)
        (tmp_path / "onnx" / f"{good.name}.sha256").write_text("0" * 64)
    exports = []

    def copy_export(network, target, imgsz):
        exports.append(target)
        return shutil.copyfile(good, target)

    monkeypatch.setattr("core.detect.export_onnx", copy_export)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        detector = YoloDetector(checkpoint, device="cpu", imgsz=IMGSZ, cache_dir=tmp_path)
    assert isinstance(detector.backend, OnnxBackend) and exports == [tmp_path / "onnx" / good.name]


def test_an_onnx_file_runs_on_onnx_runtime(onnx_yolo, onnx_cache, tmp_path):
    user_file = tmp_path / "exported.onnx"
    shutil.copyfile(next(onnx_cache.joinpath("onnx").glob("*.onnx")), user_file)
    detector = YoloDetector(user_file, device="cpu", imgsz=IMGSZ)
    assert isinstance(detector.backend, OnnxBackend) and detector.names == onnx_yolo.names
    assert detector.fingerprint.endswith(":onnx") and detector.fingerprint != onnx_yolo.fingerprint
    with pytest.raises(DetectorError, match="runs on ONNX Runtime"):
        YoloDetector(user_file, device="cpu", backend="torch")
    (tmp_path / "broken.onnx").write_bytes(b"not a model")
    with pytest.raises(DetectorError, match="Could not load model broken.onnx: "):
        YoloDetector(tmp_path / "broken.onnx", device="cpu")


def test_backend_choice():
    assert resolve_backend("auto", ".yaml", "cpu") == "onnx"
    assert resolve_backend("auto", ".pt", "cuda:0") == "torch"
    assert resolve_backend("torch", ".pt", "cpu") == "torch"
    with pytest.raises(DetectorError, match="Unknown backend 'tensorrt'"):
        resolve_backend("tensorrt", ".pt", "cpu")
