import threading
import time

import numpy as np

from core.proxy import PROXY_GOP, build_seek_proxy, proxy_building, proxy_path, reader_for_display
from core.video import iter_frames, probe


def test_display_reader_builds_a_seek_proxy_with_every_frame_in_order(sample_video, tmp_path):
    info = probe(sample_video)  # 250-frame GOPs: worth a proxy
    reader = reader_for_display(info, tmp_path)
    assert reader.info.path == info.path  # the original serves while the proxy is built in the background
    deadline = time.time() + 120
    while proxy_building(info, tmp_path) and time.time() < deadline:
        time.sleep(0.2)
    proxy_info = probe(proxy_path(info, tmp_path))
    assert proxy_info.frame_count == info.frame_count
    assert len(proxy_info.keyframes) >= info.frame_count // PROXY_GOP
    reader = reader_for_display(info, tmp_path)
    assert reader.info.path == proxy_path(info, tmp_path)
    wanted = (0, 299, 300, 301, 794)
    original = dict((i, f) for i, f in iter_frames(sample_video) if i in wanted)
    for index in wanted:
        shown = reader.get(index).astype(float)
        psnr = 10 * np.log10(255**2 / ((shown - original[index]) ** 2).mean())
        assert psnr > 35, (index, psnr)
    for index in (299, 300, 301):  # frame i of the proxy is frame i, not a neighbour
        error = ((reader.get(index).astype(float) - original[index]) ** 2).mean()
        assert all(error < ((reader.get(j).astype(float) - original[index]) ** 2).mean() for j in (index - 1, index + 1))


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
