"""One-step push of an export to a bucket: the ``.lightly`` tree to the Lightly datasource URL and,
optionally, the videos to the input datasource URL, through fsspec (``s3://``, ``gs://``,
``az://``/``abfs://``, local paths).

Credentials come from each cloud's usual environment and config files (for S3 that includes
``AWS_ENDPOINT_URL``, so S3-compatible stores work); nothing here reads, prints or stores them.
Files already there with the same content are skipped; uploads run concurrently with retries.
"""
from __future__ import annotations

import base64
import contextlib
import errno
import hashlib
import os
import secrets
import stat
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Callable

from core.errors import CloudError
from core.lightly.datasource import LIGHTLY_DIR, Datasource
from core.lightly.export import read_manifest, writing
from core.paths import within
from core.secrets import mask
from core.video import VIDEO_EXTENSIONS, fingerprint_file, open_video
from core.words import counted

BACKENDS = {"s3": "s3fs", "s3a": "s3fs", "gs": "gcsfs", "gcs": "gcsfs", "az": "adlfs", "abfs": "adlfs", "abfss": "adlfs"}
SMALL_FILE = 8 << 20  # read into memory and sent in one request; larger files stream with put_file
READ_TIMEOUT_S = 30  # an S3 request's answer waited for this long at most


@dataclass(frozen=True)
class PushItem:
    local: Path
    remote: str  # full URL
    size: int
    target: str  # the URL it goes under (the Lightly or the input datasource's)


@dataclass
class PushReport:
    planned: list[PushItem]
    uploaded: list[PushItem] = field(default_factory=list)
    skipped: list[PushItem] = field(default_factory=list)
    seconds: float = 0.0
    dry_run: bool = False
    unchecked: list[str] = field(default_factory=list)  # a dry run's targets it could not list, and why

    def text(self) -> str:
        if self.dry_run:
            totals = (f"dry run: {counted(len(self.uploaded), 'file')} to upload{_sized(self.uploaded) if self.uploaded else ''}, "
                      f"{len(self.skipped):,} already there"
                      + "".join(f"; not compared with what is there (could not list it: {why})" for why in self.unchecked))
            if not self.uploaded:
                return totals
            # the totals and each folder's count first (1,594 lines of files hid them), the files, the totals again last
            targets = list(dict.fromkeys(item.target for item in self.uploaded))
            folders: dict[tuple[int, str], list[PushItem]] = {}
            for item in self.uploaded:  # each target's folders in name order, the Lightly datasource's first
                folders.setdefault((targets.index(item.target), _summary_folder(item)), []).append(item)
            return "\n".join([totals, *(f"  {counted(len(items), 'file')}{_sized(items)} to {folder}"
                                         for (_, folder), items in sorted(folders.items())),
                               *(f"would upload {item.local} -> {item.remote}" for item in self.uploaded), totals])
        targets = " and ".join(dict.fromkeys(item.target for item in self.planned)) or "the target"
        there = f"{len(self.skipped):,} already there with the same content"
        if not self.uploaded:
            return f"Nothing needed uploading to {targets}: {there}"
        rate = len(self.uploaded) / self.seconds if self.seconds else 0.0
        return (f"Uploaded {counted(len(self.uploaded), 'file')}{_sized(self.uploaded)} to {targets} in {self.seconds:.1f} s "
                f"({rate:,.0f} files/s); {there}")


def _sized(items: list[PushItem]) -> str:
    """`` (12.3 KB)``: the items' bytes in the unit that shows them (0.0 MB was said of 180 small files)."""
    size = float(sum(item.size for item in items))
    for unit in ("B", "KB", "MB"):
        if size < 1000:
            return f" ({size:.0f} {unit})" if unit == "B" else f" ({size:.1f} {unit})"
        size /= 1000
    return f" ({size:,.1f} GB)"


def _summary_folder(item: PushItem) -> str:
    """Where a dry run's summary counts a file: a prediction task's folder, the metadata folder, the predictions folder
    (tasks.json), or the input datasource for the videos (a fleet's sub folders counted with their top folder)."""
    parts = PurePosixPath(item.remote[len(item.target.rstrip("/")) + 1:]).parent.parts
    keep = 3 if parts[:2] == (LIGHTLY_DIR, "predictions") and len(parts) > 2 else 2 if parts[:1] == (LIGHTLY_DIR,) else 0
    return _join(item.target, "/".join(parts[:keep]) + "/" if keep else "")


def check_target(url: str | None, what: str) -> str:
    """A target URL a push may write to: s3://, gs://, az:// (and their aliases) or a local folder."""
    url = (url or "").strip()
    if not url:
        raise CloudError(f"Give the {what} URL: s3://bucket/prefix/, gs://bucket/prefix/, az://container/prefix/ "
                         "or a local folder")
    protocol = url.split("://", 1)[0].lower() if "://" in url else "file"
    if protocol not in BACKENDS and protocol != "file":
        raise CloudError(f"The {what} URL {url!r} uses {protocol}://, which push does not support: use s3://, gs://, "
                         "az:// or a local folder")
    if protocol != "file" and not url.split("://", 1)[1].strip("/"):
        raise CloudError(f"The {what} URL {url!r} names no bucket")
    return url


def filesystem(url: str, fail_fast: bool = False):
    """fsspec filesystem and root path for a URL, with a clear message when its backend is missing.
    ``fail_fast`` (a push, whose uploads are tried again file by file): one try of each S3 call; a
    batch's downloads keep s3fs's own retries of a dropped connection or a throttled request."""
    import fsspec

    protocol = url.split("://", 1)[0] if "://" in url else "file"
    options: dict = {"auto_mkdir": True} if protocol in ("file", "local") else {}
    if protocol in ("s3", "s3a"):
        # Fail fast on a dead endpoint instead of botocore's long default retry loop.
        retries = {"total_max_attempts": 1} if fail_fast else {"max_attempts": 2}
        options = {"config_kwargs": {"connect_timeout": 5, "read_timeout": READ_TIMEOUT_S, "retries": retries},
                   "skip_instance_cache": fail_fast}  # s3fs keeps instances: a batch's would be reused with one try
    try:
        fs, root = fsspec.url_to_fs(url, **options)
    except ImportError:
        raise CloudError(f"{protocol}:// needs the {BACKENDS.get(protocol, protocol)} package: pip install "
                         f"{BACKENDS.get(protocol, protocol)}") from None
    except ValueError as exc:  # e.g. Azure without an account: credentials come from the environment
        raise CloudError(f"Cannot use {url!r}: {str(exc).splitlines()[0]}") from None
    if fail_fast and protocol in ("s3", "s3a"):
        # s3fs tries each call 5 times over botocore's own attempts: an endpoint that takes the
        # connection and never answers held a push for 7 min 45 s. Now one try, READ_TIMEOUT_S, one line.
        fs.retries = 1
    return fs, root


def _join(url: str, relative: str) -> str:
    return url.rstrip("/") + "/" + relative


def plan_push(export_dir: str | Path, url: str, input_url: str | None = None) -> list[PushItem]:
    """Every file to send: ``export_dir/.lightly/**`` under ``url/.lightly/``, and with ``input_url``
    the export's videos under ``input_url/<relpath>`` (the paths their frames' file_names expect)."""
    url = check_target(url, "Lightly datasource")
    datasource = Datasource(export_dir)
    if not datasource.exists():
        raise CloudError(f"{export_dir} holds no export (.lightly is missing): run the export first")
    _check_outside_export(datasource, url)
    items = [PushItem(path, _join(url, path.relative_to(datasource.root).as_posix()), path.stat().st_size, url)
             for path in datasource.files()]
    if input_url is not None:
        input_url = check_target(input_url, "input datasource")
        _check_outside_export(datasource, input_url)  # the videos too: the next push sent them along as .lightly files
        videos = read_manifest(export_dir)
        if not videos:
            raise CloudError(f"{export_dir} does not say which videos it was made from: export again, then push")
        check_local_sources([str(video.get("source") or "") for video in videos])
        for video in videos:
            source = _verified_source(video)
            items.append(PushItem(source, _join(input_url, video["relpath"]), source.stat().st_size, input_url))
    _check_no_version_query(items)
    return items


S3_VERSION_QUERY = "?versionId="


def _check_no_version_query(items: list[PushItem]) -> None:
    """s3fs reads ``?versionId=`` in a key as a version query and cuts the key there: ``q?versionId=1.mp4`` went to
    ``q``, reported sent, and was sent again at every push."""
    for item in items:
        if item.target.split("://", 1)[0].lower() in ("s3", "s3a") and S3_VERSION_QUERY in item.remote:
            raise CloudError(f"{item.remote} holds {S3_VERSION_QUERY!r}, which S3 clients read as a version query: "
                             "rename the video (and export again)")


def _check_outside_export(datasource: Datasource, url: str) -> None:
    folder = _local_folder(url)
    if folder is not None and within(folder, datasource.lightly):
        raise CloudError(f"{url} is inside the export's own .lightly folder: push to another folder")


def _local_folder(url: str) -> Path | None:
    """The folder a local target names, a path or a file:// URL (which passed the own-.lightly check unchecked and
    wrote the export into itself, one level deeper at every push); None for a bucket."""
    protocol, found, rest = url.partition("://")
    return Path(url) if not found else Path(rest) if protocol.lower() == "file" else None


def check_local_sources(sources: list[str]) -> None:
    """Videos a batch read from a bucket are not on this machine to be pushed: one line that says
    so (the app's Export page says the same, before a push that would stop at the first of them)."""
    remote = [source for source in sources if "://" in source]
    if remote:
        raise CloudError(f"{len(remote):,} videos of this batch were read from a bucket ({remote[0]}"
                         f"{', ...' if len(remote) > 1 else ''}): leave the input datasource URL empty; "
                         "Lightly's input datasource is the bucket prefix the batch read them from")


def _verified_source(video: dict) -> Path:
    """The video file an export was made from, checked to be that very video: the manifest is
    untrusted, so a ``source`` that names any other file (or a changed video) is refused."""
    relpath = video["relpath"]
    source = Path(video.get("source") or "")
    if not video.get("source") or not source.is_file():
        raise CloudError(f"Video {relpath} is no longer at {source}: export again, then push")
    if source.suffix.lower() not in VIDEO_EXTENSIONS or not video.get("fingerprint"):
        raise CloudError(f"The export does not record {relpath} as a video it was made from: export again, then push")
    if fingerprint_file(source) != video["fingerprint"]:
        raise CloudError(f"{source} changed since the export (or is not the exported video): export again, then push")
    with open_video(source):  # a video container, not a renamed file
        pass
    return source


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _remote_md5(info: dict) -> str | None:
    """The content MD5 a store reports, where it reports one (S3 single-part ETag, GCS md5Hash,
    Azure content_md5); None when unknown (then the file is sent again)."""
    etag = str(info.get("ETag") or info.get("etag") or "").strip('"')
    if len(etag) == 32 and all(c in "0123456789abcdef" for c in etag.lower()):
        return etag.lower()
    settings = info.get("content_settings")
    md5_b64 = info.get("md5Hash") or (settings.get("content_md5") if isinstance(settings, dict)
                                      else getattr(settings, "content_md5", None))
    if md5_b64:
        raw = md5_b64 if isinstance(md5_b64, (bytes, bytearray)) else base64.b64decode(md5_b64)
        return bytes(raw).hex()
    return None


def _is_local(fs) -> bool:
    return "file" in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,))


def _same_content(item: PushItem, info: dict | None) -> bool:
    if info is None or int(info.get("size", -1)) != item.size:
        return False
    remote = _remote_md5(info)
    return remote is not None and remote == _md5(item.local)


# A local target is written without following a link planted in it: every folder below the target
# is opened with O_NOFOLLOW from its parent's descriptor (a link or a file there is refused), and a
# file is written beside its name and renamed over it (a link in its place is replaced, never written
# through). The target folder itself is the user's choice, followed like any path they give.

def _target_folder(root: str, parts: tuple[str, ...], url: str, create: bool) -> int | None:
    """A descriptor of ``root/parts...`` reached without following links; None when it does not exist
    and ``create`` is off."""
    if create:
        os.makedirs(root, exist_ok=True)
    try:
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    except FileNotFoundError:
        return None
    for depth, part in enumerate(parts):
        try:
            if create:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, dir_fd=fd)
            child = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
        except FileNotFoundError:
            os.close(fd)
            if create:
                raise
            return None
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                raise CloudError(f"Cannot write under {url}: {'/'.join(parts[:depth + 1])} is a symbolic link or a "
                                 "file, not a folder; push never writes through links") from None
            raise
        os.close(fd)
        fd = child
    return fd


def _same_local_content(item: PushItem, root: str, path: str, url: str) -> bool:
    *parts, name = Path(path).relative_to(root).parts
    fd = _target_folder(root, tuple(parts), url, create=False)
    if fd is None:
        return False
    try:
        status = os.stat(name, dir_fd=fd, follow_symlinks=False)
        if not stat.S_ISREG(status.st_mode) or status.st_size != item.size:
            return False  # a link in a file's place is replaced, never read
        with os.fdopen(os.open(name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=fd), "rb") as f:
            return hashlib.file_digest(f, "md5").hexdigest() == _md5(item.local)
    except OSError:
        return False
    finally:
        os.close(fd)


def _upload_local(item: PushItem, root: str, path: str, url: str) -> None:
    *parts, name = Path(path).relative_to(root).parts
    fd = _target_folder(root, tuple(parts), url, create=True)
    partial = f".{name}.{secrets.token_hex(6)}.partial"
    try:
        out = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644, dir_fd=fd)
        with os.fdopen(out, "wb") as f, item.local.open("rb") as source:
            while chunk := source.read(1 << 22):
                f.write(chunk)
        os.rename(partial, name, src_dir_fd=fd, dst_dir_fd=fd)  # replaces a link in its place
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(partial, dir_fd=fd)
        raise
    finally:
        os.close(fd)


def _listing(fs, root: str, url: str) -> dict[str, dict]:
    try:
        return {fs._strip_protocol(name): info for name, info in fs.find(root, detail=True).items()}
    except FileNotFoundError:
        return {}
    except (AttributeError, TypeError, NameError):  # a bug here, not the bucket's answer
        raise
    except Exception as exc:  # backends raise their own types; _explain maps them
        raise _explain(exc, url, "Listing") from None


def _explain(exc: BaseException, url: str, action: str = "Upload to") -> CloudError:
    """One line a user can act on, without credentials or signed URLs in it."""
    text, kind = mask(str(exc)), type(exc).__name__
    if isinstance(exc, FileNotFoundError) and "bucket" in text.lower():
        return CloudError(f"Bucket not found for {url}: check its name (and region)")
    if kind in ("NoCredentialsError", "PartialCredentialsError") or "credentials" in text.lower() and "no " in text.lower():
        return CloudError(f"No credentials for {url}: set AWS_PROFILE or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
                          "(GOOGLE_APPLICATION_CREDENTIALS for gs://, AZURE_STORAGE_ACCOUNT_NAME and a key or SAS token "
                          "for az://)")
    if isinstance(exc, PermissionError) or "AccessDenied" in text or "Forbidden" in text:
        return CloudError(f"Access denied to {url}: check the credentials and the bucket's permissions")
    if kind == "InvalidUrlClientError" or "Invalid endpoint" in text:
        return CloudError(f"The storage endpoint for {url} is not a valid URL: check AWS_ENDPOINT_URL "
                          "(e.g. http://localhost:9000)")
    if isinstance(exc, (NotADirectoryError, FileExistsError)):
        return CloudError(f"Cannot write under {url}: part of that path is a file, not a folder; choose a folder")
    if "ReadTimeout" in kind or "Read timeout" in text:
        return CloudError(f"The storage endpoint for {url} took the connection but did not answer in {READ_TIMEOUT_S} s: check "
                          "AWS_ENDPOINT_URL (an S3-compatible store there?) and the network")
    if isinstance(exc, (ConnectionError, TimeoutError)) or "Could not connect" in text or "Connect" in kind:
        return CloudError(f"Cannot reach the storage endpoint for {url}: check the network "
                          "(and AWS_ENDPOINT_URL for S3-compatible stores)")
    return CloudError(f"{action} {url} failed: {kind}: {text.splitlines()[0] if text else ''}"[:300])


def _check_reachable(fs, root: str, url: str) -> None:
    """One cheap request first, so a wrong bucket, key or endpoint fails before anything is sent."""
    if _is_local(fs):
        return
    bucket = root.split("/", 1)[0]
    try:
        fs.ls(bucket, refresh=True)
    except Exception as exc:  # backends raise their own types; _explain maps them
        raise _explain(exc, url) from None


def _upload(fs, item: PushItem, path: str, retries: int) -> None:
    for attempt in range(retries + 1):
        try:
            if item.size < SMALL_FILE:
                fs.pipe_file(path, item.local.read_bytes())
            else:
                fs.put_file(str(item.local), path)
            return
        except (PermissionError, FileNotFoundError):
            raise
        except Exception:
            if attempt == retries:
                raise
            time.sleep(0.2 * 2**attempt)  # transient: back off and try again


def push(
    export_dir: str | Path,
    url: str,
    input_url: str | None = None,
    dry_run: bool = False,
    workers: int = 32,
    retries: int = 3,
    progress: Callable[[int, int], None] | None = None,
) -> PushReport:
    """Upload what :func:`plan_push` lists, skipping files already there with the same content. The
    export folder is locked meanwhile, so an export cannot swap it half-way through the upload."""
    if not Datasource(export_dir).root.is_dir():
        raise CloudError(f"{export_dir} holds no export (.lightly is missing): run the export first")
    with writing(Path(export_dir)):
        return _push_locked(export_dir, url, input_url, dry_run, workers, retries, progress)


def _push_locked(export_dir, url, input_url, dry_run, workers, retries, progress) -> PushReport:
    planned = plan_push(export_dir, url, input_url)
    report = PushReport(planned=planned, dry_run=dry_run)
    start = time.perf_counter()
    # each file under the one target it was planned for: by URL prefix, an input URL that holds the Lightly one (or
    # is it, written with another trailing slash) took the .lightly files twice, and the progress past 100%. The
    # Lightly one is reached even with nothing to send: an unreachable bucket is said, not a push of 0 files
    for target_url in dict.fromkeys([check_target(url, "Lightly datasource"), *(item.target for item in planned)]):
        mine = [item for item in planned if item.target == target_url]
        try:
            fs, root = filesystem(target_url, fail_fast=True)
            local = _is_local(fs)
            _check_reachable(fs, root, target_url)
            existing = {} if local else _listing(fs, root, target_url)
        except CloudError as error:  # a dry run still says what it would send; the push itself stops here
            if not dry_run:
                raise
            report.unchecked.append(str(error))
            report.uploaded.extend(mine)
            continue
        todo = []
        for item in mine:
            path = fs._strip_protocol(item.remote)
            if (_same_local_content(item, root, path, target_url) if local else _same_content(item, existing.get(path))):
                report.skipped.append(item)
            else:
                todo.append((item, path))
        if dry_run:
            report.uploaded.extend(item for item, _ in todo)
            continue
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = {(pool.submit(_upload_local, item, root, path, target_url) if local
                        else pool.submit(_upload, fs, item, path, retries)): item for item, path in todo}
            for future in as_completed(futures):
                try:
                    future.result()
                except Exception as exc:
                    for pending in futures:
                        pending.cancel()
                    raise exc if isinstance(exc, CloudError) else _explain(exc, target_url) from None
                report.uploaded.append(futures[future])
                if progress:
                    progress(len(report.uploaded) + len(report.skipped), len(planned))
    report.seconds = time.perf_counter() - start
    return report
