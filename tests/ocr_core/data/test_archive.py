"""Safe extraction: hand-built malicious zips are refused, naming the entry; nothing is left behind."""

import stat
import struct
import zipfile
import zlib
from pathlib import Path

import pytest

from ocr_core.data.archive import ArchiveLimits, extract_zip, find_image_folder
from ocr_core.errors import DataError, UnsafeArchiveError

MIB = 2**20


def build_zip(path: Path, entries: dict[str, bytes], symlinks: dict[str, str] | None = None) -> Path:
    """A zip with the given entries, names kept verbatim (zipfile.writestr does not clean them)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as bundle:
        for name, data in entries.items():
            bundle.writestr(zipfile.ZipInfo(name), data)
        for name, link_target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            bundle.writestr(info, link_target)
    return path


def zeros_zip(path: Path, size: int, declared: int | None = None,
              name: str = "captcha_images_v2/zeros.png") -> Path:
    """A one-entry zip that inflates to `size` zero bytes from about size / 1000 bytes.

    After a full flush deflate starts afresh, so every MiB of zeros compresses to the same bytes:
    the stream is built by repetition instead of compressing `size` bytes. `declared` (default
    `size`) is the uncompressed size the headers claim.
    """
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = compressor.compress(bytes(MIB)) + compressor.flush(zlib.Z_FULL_FLUSH)
    data = block * (size // MIB) + b"\x03\x00"  # an empty final block ends the stream
    crc = 0
    for _ in range(size // MIB):
        crc = zlib.crc32(bytes(MIB), crc)
    declared = size if declared is None else declared
    encoded = name.encode()
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, zipfile.ZIP_DEFLATED, 0, 0, crc,
                        len(data), declared, len(encoded), 0) + encoded
    central = struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, zipfile.ZIP_DEFLATED, 0, 0,
                          crc, len(data), declared, len(encoded), 0, 0, 0, 0, 0, 0) + encoded
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(central), len(local) + len(data), 0)
    path.write_bytes(local + data + central + end)
    return path


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


class TestRefusesUnsafeEntries:
    @pytest.mark.parametrize(("entry", "reason"), [
        ("../evil", "climbs out"),
        ("captcha_images_v2/../../evil.png", "climbs out"),
        ("..\\evil.png", "climbs out"),
        ("/etc/x", "absolute path"),
        ("C:/Windows/x.png", "absolute path"),
    ])
    def test_path_escapes(self, tmp_path, entry, reason):
        archive = build_zip(tmp_path / "bad.zip", {"ok/abcde.png": b"png", entry: b"boom"})
        with pytest.raises(UnsafeArchiveError, match=f"entry {entry!r}.*{reason}".replace("\\", "\\\\")):
            extract_zip(archive, tmp_path / "out")
        assert leftovers(tmp_path) == ["bad.zip"]
        assert not (tmp_path.parent / "evil").exists()

    def test_symlink_entry(self, tmp_path):
        archive = build_zip(tmp_path / "bad.zip", {"ok/abcde.png": b"png"},
                            symlinks={"ok/bcdef.png": "/etc/passwd"})
        with pytest.raises(UnsafeArchiveError, match="'ok/bcdef.png' is a symbolic link"):
            extract_zip(archive, tmp_path / "out")
        assert leftovers(tmp_path) == ["bad.zip"]

    def test_duplicate_names(self, tmp_path):
        archive = tmp_path / "bad.zip"
        with zipfile.ZipFile(archive, "w") as bundle:
            bundle.writestr("a/abcde.png", b"one")
            with pytest.warns(UserWarning, match="Duplicate name"):
                bundle.writestr("a/abcde.png", b"two")
        with pytest.raises(UnsafeArchiveError, match="'a/abcde.png' appears twice"):
            extract_zip(archive, tmp_path / "out")


class TestRefusesBombs:
    def test_a_gigabyte_of_zeros(self, tmp_path):
        archive = zeros_zip(tmp_path / "bomb.zip", 2**30)
        assert archive.stat().st_size < 2 * MIB
        with pytest.raises(UnsafeArchiveError, match=r"'captcha_images_v2/zeros.png' expands "
                                                     r"\d+ bytes to 1073741824"):
            extract_zip(archive, tmp_path / "out")
        assert leftovers(tmp_path) == ["bomb.zip"]

    def test_total_size_limit(self, tmp_path, captcha_zip):
        archive = tmp_path / "captchas.zip"
        archive.write_bytes(captcha_zip)
        with pytest.raises(UnsafeArchiveError, match="more than 20000 bytes uncompressed"):
            extract_zip(archive, tmp_path / "out", ArchiveLimits(max_total_bytes=20_000))
        assert leftovers(tmp_path) == ["captchas.zip"]

    def test_entry_count_limit(self, tmp_path):
        archive = build_zip(tmp_path / "many.zip", {f"{i}.png": b"x" for i in range(20)})
        with pytest.raises(UnsafeArchiveError, match="20 entries, more than the limit of 10"):
            extract_zip(archive, tmp_path / "out", ArchiveLimits(max_entries=10))

    def test_header_that_understates_the_size(self, tmp_path):
        archive = zeros_zip(tmp_path / "liar.zip", 4 * MIB, declared=1000)
        with pytest.raises(DataError, match="Bad CRC-32 for file 'captcha_images_v2/zeros.png'"):
            extract_zip(archive, tmp_path / "out")
        assert leftovers(tmp_path) == ["liar.zip"]


class TestExtracts:
    def test_captcha_zip_lands_whole_and_is_found(self, tmp_path, captcha_zip, captcha_dir):
        archive = tmp_path / "captchas.zip"
        archive.write_bytes(captcha_zip)
        result = extract_zip(archive, tmp_path / "out")
        folder = find_image_folder(result.path)
        assert folder == tmp_path / "out" / "captcha_images_v2"
        assert result.files == 40
        for original in captcha_dir.glob("*.png"):
            assert (folder / original.name).read_bytes() == original.read_bytes()
        assert leftovers(tmp_path) == ["captchas.zip", "out"]

    def test_mac_resource_forks_and_hidden_files_are_skipped(self, tmp_path):
        archive = build_zip(tmp_path / "mac.zip", {
            "set/abcde.png": b"png",
            "__MACOSX/set/._abcde.png": b"fork",
            "set/.DS_Store": b"finder",
            ".hidden/bcdef.png": b"png",
        })
        result = extract_zip(archive, tmp_path / "out")
        assert [p.relative_to(result.path).as_posix() for p in result.path.rglob("*")] == [
            "set", "set/abcde.png"]

    def test_an_existing_folder_is_kept_whole(self, tmp_path):
        first = build_zip(tmp_path / "one.zip", {"abcde.png": b"1"})
        second = build_zip(tmp_path / "two.zip", {"bcdef.png": b"2"})
        extract_zip(first, tmp_path / "out")
        extract_zip(second, tmp_path / "out")  # another run may be reading the one there
        assert leftovers(tmp_path / "out") == ["abcde.png"]
        assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".tmp-")] == []

    def test_not_a_zip(self, tmp_path):
        archive = tmp_path / "page.zip"
        archive.write_text("<html>rate limited</html>")
        with pytest.raises(DataError, match="page.zip is not a readable zip archive"):
            extract_zip(archive, tmp_path / "out")


class TestFindImageFolder:
    def test_top_folder_itself(self, tmp_path):
        (tmp_path / "abcde.png").write_bytes(b"x")
        assert find_image_folder(tmp_path) == tmp_path

    def test_no_images(self, tmp_path):
        (tmp_path / "readme.txt").write_text("hi")
        with pytest.raises(DataError, match="no .png files"):
            find_image_folder(tmp_path)

    def test_images_in_two_folders(self, tmp_path):
        for folder in ("train", "test"):
            (tmp_path / folder).mkdir()
            (tmp_path / folder / "abcde.png").write_bytes(b"x")
        with pytest.raises(DataError, match="spread over 2 folders.*test, train"):
            find_image_folder(tmp_path)


def test_zeros_zip_is_a_real_archive(tmp_path):
    """The bomb builder makes a zip that inflates to what it claims (checked on a small one)."""
    archive = zeros_zip(tmp_path / "small.zip", 3 * MIB)
    with zipfile.ZipFile(archive) as bundle:
        assert bundle.read("captcha_images_v2/zeros.png") == bytes(3 * MIB)
    assert archive.stat().st_size < 10_000
