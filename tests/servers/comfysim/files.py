"""The server's input/, output/ and temp/ folders, with ComfyUI's naming and path rules.

Ports of folder_paths.get_save_image_path (counters per prefix and subfolder), annotated
file names ("x.png [output]") and server.image_upload (rename on clash, dedupe by hash,
overwrite, traversal checks), operating on a real temporary directory so /view can be a
FileResponse (Range, HEAD, Etag come for free). Paths shown in error messages use the
install folder of the captured server, /opt/ComfyUI.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import shutil
import threading

from . import media

SHOWN_ROOT = "/opt/ComfyUI"  # how server paths appear in messages and tracebacks
FOLDER_TYPES = ("input", "output", "temp")
IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff"}


class SaveOutsideOutput(Exception):
    """ComfyUI raises a bare Exception with this text; exception_type is 'Exception'."""


class FileStore:
    def __init__(self, base_dir: str):
        self.base = os.path.abspath(base_dir)
        self.lock = threading.RLock()
        for kind in FOLDER_TYPES:
            os.makedirs(self.dir(kind), exist_ok=True)
        self.ensure_example()

    def dir(self, kind: str) -> str:
        return os.path.join(self.base, kind)

    def get_directory_by_type(self, kind: str | None) -> str | None:
        return self.dir(kind) if kind in FOLDER_TYPES else None

    def shown(self, path: str) -> str:
        """A real path rewritten under /opt/ComfyUI, for messages."""
        rel = os.path.relpath(path, self.base)
        return posixpath.join(SHOWN_ROOT, rel.replace(os.sep, "/"))

    # ---- lifecycle ----------------------------------------------------------------------

    def ensure_example(self) -> None:
        """ComfyUI ships input/example.png; LoadImage's combo lists it."""
        path = os.path.join(self.dir("input"), "example.png")
        if not os.path.exists(path):
            with open(path, "wb") as fh:
                fh.write(media.png(64, 64, (200, 120, 40)))

    def wipe(self, *kinds: str) -> None:
        with self.lock:
            for kind in kinds:
                shutil.rmtree(self.dir(kind), ignore_errors=True)
                os.makedirs(self.dir(kind), exist_ok=True)
            self.ensure_example()

    def listing(self) -> dict[str, list[str]]:
        out = {}
        for kind in FOLDER_TYPES:
            root = self.dir(kind)
            names = []
            for folder, _, files in os.walk(root):
                for name in files:
                    names.append(os.path.relpath(os.path.join(folder, name), root).replace(os.sep, "/"))
            out[kind] = sorted(names)
        return out

    def input_images(self) -> list[str]:
        """Top-level image files of input/, as LoadImage.INPUT_TYPES lists them."""
        root = self.dir("input")
        names = [n for n in os.listdir(root) if os.path.isfile(os.path.join(root, n))]
        return sorted(n for n in names if os.path.splitext(n)[1].lower() in IMAGE_EXTENSIONS)

    # ---- annotated names ---------------------------------------------------------------

    def annotated_filepath(self, name: str) -> tuple[str, str | None]:
        for kind in FOLDER_TYPES:
            suffix = f"[{kind}]"
            if name.endswith(suffix):
                return name[:-(len(suffix) + 1)], self.dir(kind)
        return name, None

    def annotated_path(self, name: str, default: str = "input") -> str:
        name, base = self.annotated_filepath(name)
        return os.path.join(base or self.dir(default), name)

    def exists_annotated(self, name: str) -> bool:
        return os.path.exists(self.annotated_path(name))

    # ---- saving -------------------------------------------------------------------------

    def save_path(self, filename_prefix: str, kind: str = "output") -> tuple[str, str, int, str]:
        """(full folder, file name stem, next counter, subfolder) like get_save_image_path."""
        shown_dir = posixpath.join(SHOWN_ROOT, kind)
        subfolder = posixpath.dirname(posixpath.normpath(filename_prefix))
        filename = posixpath.basename(posixpath.normpath(filename_prefix))
        shown_full = posixpath.abspath(posixpath.join(shown_dir, subfolder))
        common = posixpath.commonpath((shown_dir, shown_full))
        if common != shown_dir:
            raise SaveOutsideOutput(
                "**** ERROR: Saving image outside the output folder is not allowed."
                f"\n full_output_folder: {shown_full}\n         output_dir: {shown_dir}"
                f"\n         commonpath: {common}")
        full = os.path.join(self.dir(kind), subfolder)
        with self.lock:
            os.makedirs(full, exist_ok=True)
            return full, filename, self._next_counter(full, filename), subfolder

    @staticmethod
    def _next_counter(folder: str, filename: str) -> int:
        prefix_len = len(filename)
        best = 0
        for entry in os.listdir(folder):
            head = entry[:prefix_len + 1]
            try:
                digits = int(entry[prefix_len + 1:].split("_")[0])
            except ValueError:
                digits = 0
            if head[:-1].lower() == filename.lower() and head[-1:] == "_":
                best = max(best, digits)
        return best + 1

    def write(self, folder: str, name: str, data: bytes) -> None:
        with open(os.path.join(folder, name), "wb") as fh:
            fh.write(data)

    # ---- upload (server.image_upload) ----------------------------------------------------

    def upload(self, post) -> tuple[int, dict | None]:
        """(status, json body or None). Raises like ComfyUI where it answers 500."""
        image = post.get("image")
        overwrite = post.get("overwrite")
        upload_type = post.get("type")
        if upload_type is None:
            upload_type = "input"
        if upload_type not in FOLDER_TYPES:
            raise UnboundLocalError("cannot access local variable 'type_dir' where it is not associated with a value")
        upload_dir = self.dir(upload_type)
        if not (image and image.file):
            return 400, None
        filename = image.filename
        if not filename:
            return 400, None
        subfolder = post.get("subfolder", "")
        full_folder = os.path.join(upload_dir, os.path.normpath(subfolder))
        filepath = os.path.abspath(os.path.join(full_folder, filename))
        if os.path.commonpath((upload_dir, filepath)) != upload_dir:
            return 400, None
        content = image.file.read()
        image.file.seek(0)
        with self.lock:
            os.makedirs(full_folder, exist_ok=True)
            stem, ext = os.path.splitext(filename)
            duplicate = False
            if not (overwrite is not None and overwrite in ("true", "1")):
                index = 1
                while os.path.exists(filepath):
                    if _same_bytes(filepath, content):
                        duplicate = True
                        break
                    filename = f"{stem} ({index}){ext}"
                    filepath = os.path.join(full_folder, filename)
                    index += 1
            if not duplicate:
                with open(filepath, "wb") as fh:
                    fh.write(content)
        return 200, {"name": filename, "subfolder": subfolder, "type": upload_type}


def _same_bytes(path: str, content: bytes) -> bool:
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).digest() == hashlib.sha256(content).digest()


def file_sha256(path: str) -> str:
    try:
        with open(path, "rb") as fh:
            return hashlib.sha256(fh.read()).hexdigest()
    except OSError:
        return "missing"
