"""ocr_core: the captcha OCR and MNIST library (data, models, CTC, decoding, metrics, plots).

Pure library: it never imports prefect. Heavy modules (TensorFlow) load on first use of the
submodules that need them, so `import ocr_core` stays cheap.
"""

from ocr_core.version import __version__, code_version

__all__ = ["__version__", "code_version"]
