"""CaptchaParams fields of the url/dir sources: checked where they are given."""

import pytest
from pydantic import ValidationError

from ocr_core.config import DEFAULT_CAPTCHA_URL, CaptchaParams


def test_defaults():
    params = CaptchaParams()
    assert params.url == DEFAULT_CAPTCHA_URL and params.sha256 is None
    assert params.validation_policy == "fail"
    assert params.image_width_height == (200, 50)
    assert (params.download_attempts, params.download_timeout) == (5, 60.0)


@pytest.mark.parametrize(("field", "value", "message"), [
    ("url", "ftp://example.org/a.zip", "only http, https, file URLs"),
    ("url", "https:///a.zip", "no host"),
    ("label_pattern", "[abc", "not a regular expression"),
    ("image_size", "200by50", "should match pattern"),
    ("validation_policy", "warn", "'fail' or 'skip'"),
    ("download_attempts", 0, "greater than or equal to 1"),
    ("download_timeout", 0, "greater than 0"),
    ("sha256", "abc", "should match pattern"),
])
def test_bad_values_are_refused(field, value, message):
    with pytest.raises(ValidationError, match=message):
        CaptchaParams(**{field: value})


def test_file_url_and_custom_size():
    params = CaptchaParams(source="url", url="file:///data/captchas.zip", image_size="160x60")
    assert params.image_width_height == (160, 60)
