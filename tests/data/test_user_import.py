"""Importing the user's images: every awkward file converted correctly or skipped with its reason, hostile
zips and over-cap inputs refused with the cap in one line, and nothing written when an import is refused."""
from __future__ import annotations

import io
import multiprocessing
import stat
import zipfile
from pathlib import Path

import numpy as np
import pytest

from sslcore.config import ConfigError
from sslcore.userdata import store
from sslcore.userdata.decode import Decoded, DecodeOptions, Skipped, decode_bytes, read_capped
from sslcore.userdata.importer import import_options, stage_import
from sslcore.userdata.sources import ImportLimits, ImportRefused
from tests.data import image_files as f

OPTIONS = DecodeOptions(size=16)


def decode(data: bytes, options: DecodeOptions = OPTIONS) -> Decoded:
    out = decode_bytes(data, options)
    assert isinstance(out, Decoded), out
    return out


def skipped(data: bytes, options: DecodeOptions = OPTIONS) -> Skipped:
    out = decode_bytes(data, options)
    assert isinstance(out, Skipped), "expected the file to be skipped"
    return out


def write_tree(folder: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    return folder


def two_classes(n: int = 6, fmt: str = "PNG") -> dict[str, bytes]:
    files = {f"red/r{i}.{fmt.lower()}": f.solid(f.RED, fmt=fmt, seed=i) for i in range(n)}
    files.update({f"blue/b{i}.{fmt.lower()}": f.solid(f.BLUE, fmt=fmt, seed=100 + i) for i in range(n)})
    return files


def visible(root: Path) -> list[str]:
    folder = store.store_dir(root)
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# ---------------------------------------------------------------------------------------------- one file


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "BMP", "GIF"])
def test_every_allowed_format_decodes_to_the_target_size(fmt: str) -> None:
    pixels = decode(f.solid(f.RED, (50, 30), fmt)).pixels
    assert pixels.shape == (16, 16, 3) and pixels.dtype == np.uint8
    assert abs(int(pixels[..., 0].mean()) - f.RED[0]) < 20 and pixels[..., 2].mean() < 60


def test_exif_orientation_is_applied() -> None:
    # 40x20, red left / blue right, shown rotated 90° clockwise: 20x40 with red on top.
    pixels = decode(f.exif_rotated_jpeg(6)).pixels.astype(int)
    top, bottom = pixels[:6].mean(axis=(0, 1)), pixels[-6:].mean(axis=(0, 1))
    assert top[0] > 150 and top[2] < 80, top
    assert bottom[2] > 150 and bottom[0] < 80, bottom


def test_cmyk_jpeg_becomes_the_right_rgb_colour() -> None:
    mean = decode(f.cmyk_jpeg()).pixels.reshape(-1, 3).mean(axis=0)
    assert mean[0] > 230 and mean[1] < 25 and mean[2] < 25, mean


def test_16_bit_png_is_scaled_not_clipped() -> None:
    pixels = decode(f.grey16_png(0x8000)).pixels
    assert pixels.ndim == 2 and int(pixels.min()) == int(pixels.max()) == 128  # clipping would give 255
    rgb = decode(f.rgb16_png((0xFF00, 0x8000, 0x0100))).pixels
    assert tuple(int(v) for v in rgb[8, 8]) == (255, 128, 1)


def test_palette_transparency_is_flattened_onto_white() -> None:
    pixels = decode(f.palette_png_with_transparency()).pixels.astype(int)
    assert (pixels[:, :5] == 255).all()  # the transparent half (its palette colour is black)
    assert tuple(pixels[8, 12]) == f.GREEN


def test_animated_gif_gives_its_first_frame() -> None:
    pixels = decode(f.animated_gif()).pixels.astype(int)
    assert pixels[..., 0].mean() > 180 and pixels[..., 2].mean() < 60


def test_grey_files_stay_grey_in_auto_mode_and_follow_a_forced_mode() -> None:
    assert decode(f.grey(100)).pixels.shape == (16, 16)
    assert decode(f.grey_in_rgb(90)).pixels.ndim == 2  # a colour JPEG holding a grey picture
    assert decode(f.grey(100), DecodeOptions(16, "rgb")).pixels.shape == (16, 16, 3)
    assert decode(f.solid(f.RED), DecodeOptions(16, "grey")).pixels.shape == (16, 16)


def test_a_grey_picture_in_a_colour_file_gets_pils_own_grey_values() -> None:
    png = f.grey_in_rgb(90, "PNG")
    assert np.array_equal(decode(png).pixels, decode(png, DecodeOptions(16, "grey")).pixels)


def test_the_shorter_side_is_resized_then_the_centre_cropped() -> None:
    # 60x20: green | red | green in thirds; the centred square is all red.
    img = f.halves(f.GREEN, f.GREEN, (60, 20))
    img.paste(f.RED, (20, 0, 40, 20))
    pixels = decode(f.encode(img, "PNG")).pixels.astype(int)
    assert (np.abs(pixels[2:-2, 2:-2] - np.array(f.RED)) <= 2).all()


@pytest.mark.parametrize("data, reason", [
    (b"", "not an image"), (b"hello, not a picture\n", "not an image"), (f.tiny_png(), "too small"),
    (f.truncated_jpeg(), "corrupt"), (f.bomb_png(), "too large"), (f.bomb_png(10_000), "too large"),
    (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n", "not an image"),  # EPS would run ghostscript
])
def test_bad_files_are_skipped_with_a_reason(data: bytes, reason: str) -> None:
    assert skipped(data).reason == reason


def test_the_pixel_cap_is_ours_and_named_in_the_reason() -> None:
    out = skipped(f.solid(f.RED, (100, 100)), DecodeOptions(16, max_pixels=5000))
    assert out.reason == "too large" and "100x100" in out.detail and "5,000" in out.detail


# ---------------------------------------------------------------------------------------------- a whole import


def test_a_folder_of_class_folders_imports_with_its_labels_and_skips_bad_files(tmp_path: Path) -> None:
    files = two_classes()
    files.update({"red/empty.png": b"", "red/notes.txt": b"text", "blue/copy.png": files["blue/b0.png"],
                  "red/.DS_Store": b"junk", "blue/tiny.png": f.tiny_png(), "loose.png": f.solid(f.RED)})
    write_tree(tmp_path / "pets", files)
    staging = stage_import(tmp_path / "pets", tmp_path, import_options(size=16), workers=1)
    manifest = store.read_manifest(staging)
    samples, labels, _ = store.load_arrays(staging, manifest)
    assert samples.shape == (12, 3, 16, 16) and manifest["class_names"] == ["blue", "red"]
    assert labels.tolist() == [0] * 6 + [1] * 6 and manifest["class_counts"] == [6, 6]
    assert samples[labels == 1][:, 0].mean() > 180 and samples[labels == 0][:, 2].mean() > 180
    assert manifest["skipped"] == {"not an image": 2, "too small": 1, "duplicate": 1, "not in a class folder": 1}
    assert manifest["ignored"] == 1
    assert ["blue/copy.png", "duplicate", "the same file as blue/b0.png"] in manifest["skipped_files"]


def test_a_flat_folder_is_unlabelled_and_grey_stays_grey(tmp_path: Path) -> None:
    write_tree(tmp_path / "pile", {f"g{i}.png": f.grey(40 * i % 255, seed=i) for i in range(12)})
    staging = stage_import(tmp_path / "pile", tmp_path, import_options(size=8), workers=1)
    manifest = store.read_manifest(staging)
    samples, labels, _ = store.load_arrays(staging, manifest)
    assert samples.shape == (12, 1, 8, 8) and manifest["class_names"] == [] and (labels == -1).all()


@pytest.mark.parametrize("as_zip", [False, True])
def test_parallel_decoding_gives_the_same_arrays_as_one_process(tmp_path: Path, as_zip: bool) -> None:
    files = two_classes(40, "JPEG")
    source = _zip(tmp_path / "pets.zip", list(files.items())) if as_zip else write_tree(tmp_path / "pets", files)
    arrays = []
    for workers in (1, 2, 1):  # in-process first: its open archive must not leak into the forked workers
        staging = stage_import(source, tmp_path, import_options(size=16), workers=workers)
        manifest = store.read_manifest(staging)
        arrays.append(store.load_arrays(staging, manifest)[0])
        store.discard(staging)
    assert np.array_equal(arrays[0], arrays[1]) and np.array_equal(arrays[0], arrays[2])


def test_a_zip_with_a_wrapping_folder_and_one_colour_image_becomes_colour(tmp_path: Path) -> None:
    files = {f"export/{k}": v for k, v in two_classes().items()}
    files = {k: (f.grey(90, seed=i) if "red" in k else v) for i, (k, v) in enumerate(files.items())}
    files["export/blue/b0.png"] = f.solid(f.BLUE)  # the only colour file: the whole set is stored in colour
    path = tmp_path / "pets.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    staging = stage_import(path, tmp_path, import_options(size=16), workers=1)
    manifest = store.read_manifest(staging)
    samples, labels, _ = store.load_arrays(staging, manifest)
    assert manifest["class_names"] == ["blue", "red"] and samples.shape[1] == 3
    red = samples[labels == 1]
    assert (red[:, 0] == red[:, 1]).all() and (red[:, 1] == red[:, 2]).all()  # grey images kept grey in RGB


@pytest.mark.parametrize("files, message", [
    ({f"only/x{i}.png": f.solid(f.RED, seed=i) for i in range(12)} | {"only/sub/y.png": f.solid(f.BLUE)},
     "only one class folder"),
    (two_classes() | {"green/g0.png": f.solid(f.GREEN)}, "'green' has 1"),
    ({"a.png": f.solid(f.RED), "b.png": f.solid(f.BLUE, seed=3)}, "only 2 usable images"),
])
def test_unusable_label_layouts_are_refused_with_the_way_out(tmp_path: Path, files: dict, message: str) -> None:
    write_tree(tmp_path / "set" / "inner", files)
    with pytest.raises(ImportRefused, match=message) as info:
        stage_import(tmp_path / "set" / "inner", tmp_path, workers=1)
    if "class" in message:
        assert "unlabelled" in str(info.value)
    assert visible(tmp_path) == []  # nothing half-written


def test_folders_outside_the_data_root_or_the_root_itself_are_refused(tmp_path: Path) -> None:
    (tmp_path / "root").mkdir()
    write_tree(tmp_path / "elsewhere", two_classes())
    for folder in (tmp_path / "elsewhere", tmp_path / "root", tmp_path / "root" / ".." / "elsewhere"):
        with pytest.raises(ImportRefused, match="inside the data root"):
            stage_import(folder, tmp_path / "root", workers=1)


def test_symlinked_files_in_a_folder_are_not_followed(tmp_path: Path) -> None:
    write_tree(tmp_path / "pets", two_classes())
    (tmp_path / "secret.png").write_bytes(f.solid(f.GREEN))
    (tmp_path / "pets" / "red" / "link.png").symlink_to(tmp_path / "secret.png")
    staging = stage_import(tmp_path / "pets", tmp_path, workers=1)
    manifest = store.read_manifest(staging)
    assert manifest["count"] == 12 and "red/link.png" not in manifest["files"]
    assert manifest["skipped"] == {"not an image": 1}


def _zip(path: Path, members: list[tuple[zipfile.ZipInfo | str, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for info, data in members:
            zf.writestr(info, data)
    return path


def _symlink(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


@pytest.mark.parametrize("entry, message", [
    ("../escape.png", "climbs out"), ("/etc/evil.png", "absolute path"), (_symlink("red/link.png"), "symbolic link"),
])
def test_hostile_zip_entries_refuse_the_whole_zip(tmp_path: Path, entry: object, message: str) -> None:
    path = _zip(tmp_path / "bad.zip", [(k, v) for k, v in two_classes().items()] + [(entry, f.solid(f.RED))])
    with pytest.raises(ImportRefused, match=message):
        stage_import(path, tmp_path, workers=1)
    assert visible(tmp_path) == []


def test_a_zip_bomb_is_cut_at_the_file_cap(tmp_path: Path) -> None:
    bomb = b"\x00" * (8 * 1024 * 1024)  # 8 MiB of zeros deflate to about 8 KB
    path = _zip(tmp_path / "bomb.zip", list(two_classes().items()) + [("red/bomb.png", bomb)])
    assert path.stat().st_size < 64 * 1024
    staging = stage_import(path, tmp_path, limits=ImportLimits(max_file_bytes=1024 * 1024), workers=1)
    manifest = store.read_manifest(staging)
    assert manifest["skipped"] == {"too large": 1} and manifest["count"] == 12


def test_a_zip_member_that_lies_about_its_size_is_skipped_as_corrupt(tmp_path: Path) -> None:
    path = _zip(tmp_path / "liar.zip", list(two_classes().items()) + [("red/liar.png", b"\x00" * 100_000)])
    data = bytearray(path.read_bytes())
    name = b"red/liar.png"
    local, central = data.find(name) - 30, data.rfind(name) - 46  # the file name follows each header
    data[local + 22:local + 26] = data[central + 24:central + 28] = (10).to_bytes(4, "little")  # "10 bytes"
    path.write_bytes(bytes(data))
    staging = stage_import(path, tmp_path, workers=1)
    manifest = store.read_manifest(staging)
    assert manifest["skipped"] == {"corrupt": 1} and manifest["count"] == 12


@pytest.mark.parametrize("limits, message", [
    (ImportLimits(max_files=10), "holds 13 files, over the cap of 10"),
    (ImportLimits(max_files=5), "has 13 members, over the cap of 5 files"),
    (ImportLimits(max_total_bytes=1000), "of files, over the cap of 1,000 bytes"),
    (ImportLimits(max_decoded_bytes=10_000),
     "13 images of 3x32x32 could take up to 39.0 KiB in memory, over the cap of 9.8 KiB"),
    (ImportLimits(max_archive_bytes=100), "over the 100 bytes an upload may have"),
])
def test_caps_refuse_the_import_with_the_numbers(tmp_path: Path, limits: ImportLimits, message: str) -> None:
    path = _zip(tmp_path / "pets.zip", list(two_classes().items()) + [("red/x.txt", b"x")])
    with pytest.raises(ImportRefused, match=message.replace("(", r"\(")):
        stage_import(path, tmp_path, limits=limits, workers=1)
    assert visible(tmp_path) == []


def test_options_are_validated_with_the_field_and_range() -> None:
    with pytest.raises(ConfigError, match=r"import.size = 500 is not allowed: expected an integer between 8 and 128"):
        import_options(size=500)
    with pytest.raises(ConfigError, match="import.mode = 'sepia'"):
        import_options(mode="sepia")


def test_a_failure_while_writing_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_tree(tmp_path / "pets", two_classes())

    def full_disk(path: Path, array: np.ndarray) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store, "_save", full_disk)
    with pytest.raises(OSError, match="No space"):
        stage_import(tmp_path / "pets", tmp_path, workers=1)
    assert visible(tmp_path) == []


@pytest.mark.parametrize("expected", [0, 5, 100, 1000, 10_000])
def test_reading_a_file_trusts_its_size_only_as_a_hint(expected: int) -> None:
    """The stat size or zip header size read first can be wrong (a file that grew, a lying header): the
    bytes read are the stream's own, cut one past the cap so an oversized file is still told apart."""
    content = bytes(range(256)) * 4  # 1,024 bytes
    assert read_capped(io.BytesIO(content), expected, max_bytes=4096) == content
    assert read_capped(io.BytesIO(content), expected, max_bytes=1024) == content
    assert read_capped(io.BytesIO(content), expected, max_bytes=1000) == content[:1001]  # over the cap


def test_a_refused_import_leaves_no_decoding_processes(tmp_path: Path) -> None:
    """The decoding pool is forked before the scan (to overlap it); a refusal by the scan shuts it down."""
    with pytest.raises(ImportRefused, match="does not exist"):
        stage_import(tmp_path / "missing", tmp_path, workers=2)
    assert multiprocessing.active_children() == []
