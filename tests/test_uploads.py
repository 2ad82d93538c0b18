"""Uploads kept under the data folder: named by content, read in chunks, nothing left on failure."""
import io

import numpy as np
import pytest

from core.uploads import discard_upload, save_upload, uploads_dir


class ChunksOnly(io.BytesIO):
    def getvalue(self):  # the whole upload as one bytes object is never asked for
        raise AssertionError("read in chunks, please")


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("FLICKER_DATA_DIR", str(tmp_path))
    return tmp_path


def test_uploads_are_named_by_content_and_kept_once(data_dir):
    data = np.random.default_rng(0).integers(0, 256, 9 << 20, dtype=np.uint8).tobytes()
    first = save_upload("../../evil name.mp4", ChunksOnly(data))
    again = save_upload("../../evil name.mp4", ChunksOnly(data))
    assert first == again and first.read_bytes() == data
    assert first.parent.parent == data_dir / "uploads" and first.name == "evil name.mp4"
    assert [p.name for p in uploads_dir().rglob("*")] == [first.parent.name, first.name]  # no temporary files
    assert save_upload("..", io.BytesIO(b"x")).name == "upload"


def test_an_upload_that_fails_half_way_leaves_nothing_behind(data_dir):
    class Breaks(io.BytesIO):
        reads = 0

        def read(self, size=-1):
            self.reads += 1
            if self.reads > 4:  # the key takes 3 reads (two chunks, then the end); the copy fails after one chunk
                raise OSError("connection reset")
            return super().read(size)

    with pytest.raises(OSError, match="connection reset"):
        save_upload("clip.mp4", Breaks(b"x" * (5 << 20)))
    assert not list(uploads_dir().iterdir())


@pytest.mark.parametrize("name, kept", [
    ("视频" * 50 + ".mp4", "视频" * 32 + "视.mp4"),  # 300 bytes in UTF-8: "File name too long" crashed the Load page
    ("cam\x00era.mp4", "cam_era.mp4"),  # NUL: "embedded null byte"
    ("a" * 1_000_000 + ".mp4", "a" * 196 + ".mp4"),  # a megabyte of name: cut once, in bytes
    ("line\nbreak.pt", "line_break.pt"),
    ("../../etc/passwd", "passwd"),
    ("..", "upload"),
])
def test_an_uploaded_name_is_kept_as_a_name_the_disk_takes(data_dir, name, kept):
    path = save_upload(name, io.BytesIO(b"x"))
    assert path.name == kept and path.parent.parent == uploads_dir() and len(path.name.encode()) <= 200
    assert path.read_bytes() == b"x"


def test_a_discarded_upload_goes_with_its_folder(data_dir):
    kept = save_upload("notes.mp4", io.BytesIO(b"a shopping list"))
    discard_upload(kept)
    assert not list(uploads_dir().iterdir())
    outside = data_dir / "mine" / "clip.mp4"
    outside.parent.mkdir()
    outside.write_bytes(b"x")
    discard_upload(outside)  # only what save_upload kept
    assert outside.is_file()


def test_an_upload_read_as_a_file_is_gone_afterwards_and_copied_only_past_the_limit(data_dir):
    """Label files are read through a temporary copy: named like the upload (last part only),
    never more than limit + 1 bytes (so a capped reader refuses it), removed even when the
    reader fails."""
    from core.uploads import upload_as_file

    data = b"1,1,10,10,20,20\n" * 100
    with upload_as_file("../../gt.txt", ChunksOnly(data), limit=1 << 20) as path:
        assert path.name == "gt.txt" and path.read_bytes() == data and data_dir not in path.parents
    assert not path.exists() and not path.parent.exists()
    with pytest.raises(RuntimeError), upload_as_file("big.json", ChunksOnly(data), limit=100) as path:
        assert path.stat().st_size == 101
        raise RuntimeError("the reader refused it")
    assert not path.parent.exists() and not any(data_dir.iterdir())


def test_a_refused_upload_is_named_as_uploaded_not_by_its_private_temporary_path(walk_hog):
    """A reader's message names the file it read; for an upload that is a private temporary copy,
    which means nothing to the user (and says where the server keeps its temporary files)."""
    from core.errors import PredictionFormatError
    from core.label_formats import import_boxes
    from core.uploads import upload_as_file

    info, _ = walk_hog
    with pytest.raises(PredictionFormatError) as refused, \
            upload_as_file("bad.json", ChunksOnly(b'{"images": [1 2]}'), limit=1 << 20) as path:
        import_boxes(path, info, "walk.mp4", "coco", "bad.json", single_file=True)
    message = str(refused.value)
    assert message.startswith("bad.json") and "flicker-upload" not in message and str(path.parent) not in message, message


def test_the_private_folder_is_left_out_however_a_reader_quotes_it(tmp_path, monkeypatch):
    """A temporary folder reached through a link (TMPDIR=/tmp on macOS is /private/tmp) may be quoted
    resolved or as given: neither form reaches the user."""
    import tempfile

    from core.errors import UserError
    from core.uploads import upload_as_file

    (tmp_path / "real").mkdir()
    (tmp_path / "linked").symlink_to(tmp_path / "real")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "linked"))
    for quoted in (lambda path: path.resolve(), lambda path: path, lambda path: path.parent.resolve()):
        with pytest.raises(UserError) as refused, upload_as_file("gt.txt", ChunksOnly(b"1,2\n"), limit=100) as path:
            raise UserError(f"{quoted(path)}: expected frame,id,x,y,w,h")
        assert str(tmp_path) not in str(refused.value) and "flicker-upload" not in str(refused.value), str(refused.value)


def test_each_uploader_states_the_limit_its_reader_takes(app):
    """The boxes uploader said "2GB per file" (the server's limit, which videos take) while the label
    readers refuse a file above 512 MiB (JSON 256, CVAT 128): a user waited through a large upload to be
    refused. It states its readers' limits now; videos are kept whole, so their uploader keeps 2 GB."""
    from core.label_formats import MAX_JSON_LABEL_BYTES, MAX_LABEL_BYTES, MAX_XML_LABEL_BYTES

    next(b for b in app.button if b.label == "Load the sample").click().run()  # the boxes panel needs a video
    boxes = app.file_uploader(key="boxes_upload")
    assert boxes.proto.max_upload_size_mb << 20 == MAX_LABEL_BYTES
    assert all(f"{cap >> 20} MiB" in boxes.help for cap in (MAX_LABEL_BYTES, MAX_JSON_LABEL_BYTES, MAX_XML_LABEL_BYTES))
    app.segmented_control(key="source").set_value("Upload").run()
    video = next(u for u in app.file_uploader if u.label == "Video file")
    assert video.proto.max_upload_size_mb == 2048
