"""maskedu.detect: real photos of every kind in, labelled faces out; the same clear errors as load_image."""

from __future__ import annotations

import io

import numpy as np
import pytest
from matplotlib import cbook
from PIL import Image

pytest.importorskip("keras")

from maskedu.annotations import CLASS_NAMES  # noqa: E402
from maskedu.crop import KEYPOINT_NAMES, Face  # noqa: E402
from maskedu.detect import FaceResult, ImageResult, detect_masks, draw_detections  # noqa: E402
from maskedu.imaging import ImageError  # noqa: E402
from maskedu.model import build_resnet, make_predict_fn  # noqa: E402

GRACE = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)


@pytest.fixture(scope="module")
def model():
    return build_resnet(widths=(8,), blocks=(1,), stem_filters=8)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """grace_hopper and astronaut as files of every kind: RGB JPEG, RGBA PNG, greyscale PNG, CMYK JPEG."""
    from skimage import data

    folder = tmp_path_factory.mktemp("photos")
    grace = Image.open(GRACE).convert("RGB")
    astro = Image.fromarray(data.astronaut())
    files = {
        "grace.jpg": grace,
        "astronaut_rgba.png": astro.convert("RGBA"),
        "grace_grey.png": grace.convert("L"),
        "astronaut_cmyk.jpg": astro.convert("CMYK"),
    }
    for name, img in files.items():
        img.save(folder / name)
    return folder


def _check_one_face(faces, width, height):
    assert len(faces) == 1, f"expected the one face, found {len(faces)}"
    f = faces[0]
    assert isinstance(f, Face) and FaceResult is Face  # one face type, the old name kept
    x1, y1, x2, y2 = f.box
    assert 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height
    # the label is the most probable class and its confidence that class's probability
    assert f.label == CLASS_NAMES[int(np.argmax(f.probs))] and f.confidence == max(f.probs)
    assert abs(sum(f.probs) - 1) < 1e-4 and f.masked == (f.label == "with_mask")
    assert f.score > 0.9 and set(f.keypoints) == set(KEYPOINT_NAMES)  # the detector's landmarks come along


def test_every_image_kind_gives_the_face(photos, model):
    results = detect_masks(photos, model)  # a folder: one ImageResult per photo, sorted by name
    assert [r.source.rsplit("/", 1)[-1] for r in results] == sorted(p.name for p in photos.iterdir())
    for r in results:
        assert isinstance(r, ImageResult)
        _check_one_face(r.faces, r.width, r.height)
    by_name = {r.source.rsplit("/", 1)[-1]: r for r in results}
    # the greyscale copy of grace_hopper finds the same face as the colour one
    a, b = by_name["grace.jpg"].faces[0].box, by_name["grace_grey.png"].faces[0].box
    assert max(abs(p - q) for p, q in zip(a, b)) <= 12


def test_single_image_as_array_bytes_and_path(photos, model):
    arr = np.asarray(Image.open(GRACE).convert("RGB"))
    from_array = detect_masks(arr, model)
    from_bytes = detect_masks((photos / "grace.jpg").read_bytes(), model)
    from_grey_array = detect_masks(arr.mean(axis=2).astype(np.uint8), model)
    for result in (from_array, from_bytes, from_grey_array):
        # one image in, its one ImageResult out (a list-like of its faces)
        assert isinstance(result, ImageResult) and result.ok and (result.width, result.height) == arr.shape[1::-1]
        _check_one_face(result, arr.shape[1], arr.shape[0])
    # same photo, same face, same prediction whichever way it came in
    predict = make_predict_fn(model)
    assert np.allclose(from_array[0].probs, detect_masks(arr, predict)[0].probs, atol=1e-5)


def test_one_classifier_call_per_batch(photos, model):
    predict = make_predict_fn(model)
    files = sorted(photos.iterdir())
    before = predict.calls  # make_predict_fn keeps one PredictFn per model: count this test's calls only
    detect_masks(files, predict, batch_size=len(files))
    assert predict.calls - before == 1
    detect_masks(files, predict, batch_size=2)
    assert predict.calls - before == 3


def test_clear_errors(tmp_path, model):
    with pytest.raises(ImageError, match="not found"):
        detect_masks(tmp_path / "missing.jpg", model)
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    with pytest.raises(ImageError, match="broken.jpg"):
        detect_masks(bad, model)
    with pytest.warns(UserWarning, match="1 of 2 images could not be read.*broken.jpg"):
        grace, broken = detect_masks([GRACE, bad], model)  # in a list it costs only its own result
    assert grace.ok and len(grace) == 1 and not broken.ok and "broken.jpg" in broken.error
    with pytest.raises(TypeError, match="item 1 of the list is a NoneType"):
        detect_masks([GRACE, None], model)
    truncated = tmp_path / "cut.jpg"
    buf = io.BytesIO()
    Image.open(GRACE).save(buf, "JPEG")
    truncated.write_bytes(buf.getvalue()[:2000])
    with pytest.raises(ImageError, match="cut.jpg"):
        detect_masks(truncated, model)
    with pytest.raises(TypeError, match="detect_masks takes"):
        detect_masks(12, model)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ImageError, match="no image files"):
        detect_masks(tmp_path / "empty", model)


def test_no_face_gives_an_image_result_with_no_faces(model):
    sky = np.full((120, 160, 3), 200, np.uint8)
    result = detect_masks(sky, model)
    assert isinstance(result, ImageResult) and result.ok and len(result) == 0 and result.faces == []
    assert [len(r) for r in detect_masks([sky, sky], model)] == [0, 0]  # a list in, a list of ImageResults out


def test_draw_detections(photos, model):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.colors import to_hex
    from matplotlib.figure import Figure

    from maskedu.plotting import colour_for, new_figure

    faces = detect_masks(photos / "grace.jpg", model)
    fig = draw_detections(photos / "grace.jpg", faces)
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    ax = fig.axes[0]
    assert len(ax.patches) == 1 and faces[0].label in ax.texts[0].get_text()
    assert to_hex(ax.patches[0].get_edgecolor()) == colour_for(faces[0].label)
    mine, axes = new_figure((4, 4), 1, 2)
    assert draw_detections(photos / "grace.jpg", faces, ax=axes[0, 1]) is mine and len(axes[0, 1].patches) == 1
