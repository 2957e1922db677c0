"""The attack on the whole photo-to-label pipeline (maskedu.attack.photo_attack), with the real MTCNN weights
on a real photo (scikit-image's astronaut, one of the embedded sample's sources) and real tiny Keras models."""

from __future__ import annotations

import numpy as np
import pytest

from maskedu.common import MaskeduError, ParameterError, ParameterTypeError

SIZE = 50


def _tiny(kernel: np.ndarray, bias: np.ndarray):
    import keras
    from keras import layers

    inp = keras.Input((SIZE, SIZE, 3), dtype="uint8")
    x = layers.Rescaling(1 / 255.0)(inp)
    x = layers.Flatten()(x)
    logits = layers.Dense(2, name="logits")(x)
    out = layers.Activation("softmax", name="probs")(logits)
    model = keras.Model(inp, out)
    model.get_layer("logits").set_weights([kernel.astype(np.float32), bias.astype(np.float32)])
    return model


@pytest.fixture(scope="module")
def astronaut():
    from skimage import data

    from maskedu.imaging import resize

    return resize(data.astronaut(), 256)  # small: every query runs MTCNN on the whole photo


@pytest.fixture(scope="module")
def face_crop(astronaut):
    """The astronaut's face as detect_masks crops it (box from the default detector, the crop stage's margin)."""
    from maskedu.crop.cropping import DEFAULT_MARGIN
    from maskedu.detect import _default_detector
    from maskedu.imaging import crop_box

    box = _default_detector().detect(astronaut)[0].box
    return crop_box(astronaut, box, size=SIZE, margin=DEFAULT_MARGIN)


@pytest.fixture(scope="module")
def weak_model(face_crop):
    """A deliberately weak classifier: "without_mask" grows with the crop's total redness (R - G), and the
    astronaut's clean crop is "with_mask" by a logit margin of 0.3, so a few red photo pixels flip it."""
    k = np.zeros((SIZE, SIZE, 3), np.float32)
    k[..., 0], k[..., 1] = 4.0, -4.0
    kernel = np.zeros((SIZE * SIZE * 3, 2), np.float32)
    kernel[:, 1] = k.reshape(-1)
    redness = 4.0 * float((face_crop[..., 0].astype(np.float64) - face_crop[..., 1]).sum() / 255.0)
    return _tiny(kernel, np.array([0.0, -redness - 0.3]))


@pytest.fixture(scope="module")
def constant_model():
    """Says "with_mask" whatever it sees: no pixel can flip it."""
    return _tiny(np.zeros((SIZE * SIZE * 3, 2)), np.array([3.0, 0.0]))


def _changed(a: np.ndarray, b: np.ndarray) -> list[tuple[int, int]]:
    ys, xs = np.nonzero((a != b).any(axis=2))
    return sorted(zip(xs.tolist(), ys.tolist()))


def _check_faithful(r, photo, pixels: int, budget: int) -> None:
    """What every result must honour: only the reported pixels changed, with the reported colours and the
    right originals; the query count within the budget; the verdict is detect_masks's own."""
    assert r.adversarial.dtype == np.uint8 and r.adversarial.shape == photo.shape
    assert _changed(r.adversarial, photo) == sorted(map(tuple, r.pixels[:, :2].tolist()))
    assert r.n_pixels <= pixels
    xs, ys = r.pixels[:, 0], r.pixels[:, 1]
    assert (r.adversarial[ys, xs] == r.pixels[:, 2:]).all() and (photo[ys, xs] == r.original_values).all()
    rx0, ry0, rx1, ry1 = r.region
    assert ((xs >= rx0) & (xs < rx1) & (ys >= ry0) & (ys < ry1)).all()  # inside the face's crop region
    assert 3 <= r.queries <= budget


@pytest.mark.slow
def test_block_search_changes_whole_squares_and_only_those(astronaut, weak_model):
    from maskedu.attack import photo_attack
    from maskedu.detect import detect_masks

    r = photo_attack(astronaut, weak_model, pixels=36, budget=300, block=2, seed=0)
    _check_faithful(r, astronaut, 36, 300)
    rx0, ry0, rx1, ry1 = r.region
    assert r.block == 2
    assert r.success and detect_masks(r.adversarial, weak_model)[0].label == "without_mask"
    # every change is a whole block x block square of one colour, aligned on the region's grid
    b = r.block
    squares = {}
    for x, y, *rgb in r.pixels.tolist():
        squares.setdefault(((x - rx0) // b, (y - ry0) // b), set()).add(tuple(rgb))
    assert all(len(colours) == 1 for colours in squares.values())
    assert r.n_pixels == sum(min(b, rx1 - rx0 - sx * b) * min(b, ry1 - ry0 - sy * b) for sx, sy in squares)
    assert len(squares) <= 36 // (b * b)


@pytest.mark.slow
def test_flips_a_weak_model_changing_only_the_pixels_it_reports(astronaut, weak_model):
    from maskedu.attack import PhotoAttackResult, photo_attack, plot_photo_attack
    from maskedu.detect import detect_masks

    assert detect_masks(astronaut, weak_model)[0].label == "with_mask"
    r = photo_attack(astronaut, weak_model, pixels=10, budget=300, seed=0)
    assert isinstance(r, PhotoAttackResult)
    _check_faithful(r, astronaut, 10, 300)
    assert r.success and r.stop_reason == "success" and r.agreed
    assert (r.label_before, r.label_after) == ("with_mask", "without_mask")
    again = detect_masks(r.adversarial, weak_model)  # the verdict is detect_masks's on the whole photo
    assert again[0].label == "without_mask" and again[0].box == r.box_after
    assert (r.adversarial[r.pixels[:, 1], r.pixels[:, 0], 0] > 0).any()  # it added red, as the model rewards
    assert "SUCCESS (flip)" in r.summary()
    assert r.crop_before.shape == r.crop_after.shape == (SIZE, SIZE, 3)
    assert weak_model.predict(r.crop_after[None], verbose=0).argmax() == 1  # the crop detect_masks classified
    fig = plot_photo_attack(r)
    assert len(fig.axes) == 4 and "SUCCESS" in fig._suptitle.get_text()
    # reproducible from its seed
    assert np.array_equal(photo_attack(astronaut, weak_model, pixels=10, budget=300, seed=0).pixels, r.pixels)


@pytest.mark.slow
def test_a_model_no_pixel_can_flip_gives_a_faithful_failure(astronaut, constant_model):
    from maskedu.attack import photo_attack

    r = photo_attack(astronaut, constant_model, pixels=5, budget=120, method="de", seed=1)
    _check_faithful(r, astronaut, 5, 120)
    assert not r.success and r.stop_reason == "budget" and r.agreed
    assert r.label_before == r.label_after == "with_mask"
    assert r.queries >= 120 - 40  # it spent its budget (DE's last generation may not fit)
    assert r.search.queries <= r.queries - 2  # the detect_masks checks before and after are counted too


@pytest.mark.slow
def test_evasion_reports_detect_masks_verdict(astronaut, constant_model):
    from maskedu.attack import photo_attack
    from maskedu.detect import detect_masks
    from maskedu.imaging import iou

    r = photo_attack(astronaut, constant_model, goal="evade", pixels=20, budget=100, seed=0)
    _check_faithful(r, astronaut, 20, 100)
    found = [f for f in detect_masks(r.adversarial, constant_model) if iou(f.box, r.box) >= 0.4]
    assert r.success == (not found)
    assert (r.label_after is None) == r.success
    if not r.success:  # a face is not hidden by 20 pixels in 100 queries; if it were, the check above holds
        assert r.box_after is not None and iou(r.box_after, r.box) >= 0.4


@pytest.mark.parametrize("kwargs, err, words", [
    (dict(goal="hide"), ParameterError, "goal"),
    (dict(method="annealing"), ParameterError, "method"),
    (dict(pixels=0), ParameterError, "pixels"),
    (dict(budget=5), ParameterError, "budget"),
    (dict(context=-1), ParameterError, "context"),
    (dict(context="near"), ParameterError, "context"),
    (dict(face=3), ParameterError, "face"),
    (dict(face=(0, 0, 10, 10)), MaskeduError, "no face overlapping"),
    (dict(face="first"), ParameterTypeError, "face must be"),
    (dict(pixels=10**6), ParameterError, "crop region"),
    (dict(block="big"), ParameterError, "block must be"),
    (dict(block=0), ParameterError, "block"),
    (dict(block=4, pixels=10), ParameterError, "fewer than one 4 x 4 square"),
])
def test_bad_parameters_are_refused_with_what_to_do(astronaut, constant_model, kwargs, err, words):
    from maskedu.attack import photo_attack

    with pytest.raises(err, match=words):
        photo_attack(astronaut, constant_model, **kwargs)


def test_a_photo_without_a_face_is_refused(constant_model):
    from maskedu.attack import photo_attack

    with pytest.raises(MaskeduError, match="no face"):
        photo_attack(np.full((120, 160, 3), 90, np.uint8), constant_model, budget=100)


@pytest.mark.slow
def test_refuses_a_face_the_model_trained_on(tmp_path):
    """A real tiny model trained on the sample's MTCNN crops: a training photo is refused by its path, and its
    face by its crop's pixels when the photo comes as an array (checked before the first search query)."""
    from maskedu import model as M
    from maskedu.annotations import load_annotations
    from maskedu.attack import held_out_photos, photo_attack
    from maskedu.crop import crop_faces
    from maskedu.imaging import load_image
    from maskedu.sample import make_sample_dataset

    ds = load_annotations(make_sample_dataset(tmp_path / "sample", n_images=12, seed=0))
    crops = crop_faces(ds, source="mtcnn", verbose=False)
    trained = M.train(M.build_resnet(widths=(8,), blocks=(1,), stem_filters=8), crops, epochs=1, verbose=False,
                      live_plot=False)
    i = int(trained.split.train[0])
    path, box = crops.paths[i], tuple(int(v) for v in crops.boxes[i])
    with pytest.raises(M.SeenFaceError, match="training part"):
        photo_attack(path, trained.model, face=box, budget=100)
    with pytest.raises(M.SeenFaceError, match="training part"):
        photo_attack(load_image(path), trained.model, face=box, budget=100)
    # held_out_photos: only photos every face of which is in the test part
    held = held_out_photos(crops, trained.model)
    test_paths = [str(p) for p in M.held_out(crops, trained.model).paths]
    assert held and all(test_paths.count(p) == [str(q) for q in crops.paths].count(p) for p, _, _ in held)
    assert str(path) not in {p for p, _, _ in held}
