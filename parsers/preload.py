"""Import, ahead of time, everything parsing may import lazily.

The parse sandbox's child drops root for `nobody` before it reads any mail; from then on it
may be unable to read the Python installation (e.g. under /root), so a module first imported
in the middle of a parse — a codec for a rare charset, a submodule of a document library —
would fail there.  `preload()` imports them all while the child can still read them.
"""

from __future__ import annotations

import contextlib
import importlib
import pkgutil

# Third-party packages the parsers use; their submodules are often imported on first use.
_PACKAGES = ("encodings", "email", "mailparser", "docx", "openpyxl", "xlrd", "pypdf", "lxml", "charset_normalizer",
             "et_xmlfile", "html", "xml", "zoneinfo", "json", "dateutil")  # fmt: skip
# Standard modules imported lazily by functions the parsers call.
_MODULES = ("unicodedata", "_strptime", "locale", "zlib", "bz2", "lzma", "_decimal", "decimal", "hashlib", "uuid",
            "quopri", "base64", "binascii", "uu", "calendar", "ipaddress", "fractions", "codecs", "stringprep",
            "encodings.idna", "copy", "csv", "difflib", "textwrap", "struct", "array", "io", "tempfile", "shutil",
            # imported by the readers on first use (images, OLE, encrypted zips, Outlook): loaded
            # whole, their own imports of standard modules happen now too
            "PIL.Image", "pillow_heif", "olefile", "pyzipper", "extract_msg", "tnefparse")  # fmt: skip
# What OCR alone needs (page rendering, the models' runtime): ~55 MB, left out of a parser process
# that never OCRs (the text lane's, pipeline.inbound.pool).
_OCR_MODULES = ("numpy", "cv2", "onnxruntime", "rapidocr_onnxruntime", "pypdfium2")


def preload(*, ocr: bool = True) -> int:
    """Import the packages above with all their submodules (`ocr`: and OCR's); returns how many modules were loaded."""
    count = 0
    for name in (*_MODULES, *(_OCR_MODULES if ocr else ())):
        with contextlib.suppress(Exception):
            importlib.import_module(name)
            count += 1
    for name in _PACKAGES:
        try:
            package = importlib.import_module(name)
        except Exception:  # noqa: S112 - not installed here: nothing to preload
            continue
        count += 1
        for info in pkgutil.walk_packages(getattr(package, "__path__", []), prefix=name + "."):
            if ".tests" in info.name or ".test_" in info.name or info.name.endswith((".__main__", ".testing")):
                continue
            with contextlib.suppress(Exception, SystemExit):
                importlib.import_module(info.name)
                count += 1
    return count


def preload_ocr_engine(threads: int) -> bool:
    """Build the OCR engine now (its models are read from the installation); False when it cannot be."""
    try:
        from parsers.documents import ocr

        ocr.engine(threads)
    except Exception:  # noqa: BLE001 - not installed, or no memory: OCR says so when a scan comes
        return False
    return True
