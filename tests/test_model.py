"""maskedu.model: the split, a tiny model that learns, FLOPs, safe save/load, the fast predict function."""

from __future__ import annotations

import numpy as np
import pytest
from shared_photos import shared_folder

keras = pytest.importorskip("keras")

from maskedu.model import (  # noqa: E402
    Evaluation,
    build_resnet,
    count_flops,
    evaluate,
    load_model,
    make_predict_fn,
    save_model,
    stratified_split,
    train,
)


# --------------------------------------------------------------------------- split


def test_split_is_stratified_disjoint_complete_and_reproducible():
    labels = np.array([0] * 70 + [1] * 30 + [-1] * 5)
    s = stratified_split(labels, validation=0.1, test=0.2, seed=3)
    parts = [s.train, s.validation, s.test]
    everything = np.concatenate(parts)
    assert len(everything) == len(set(everything)) == 100  # disjoint, unmapped left out, nothing else lost
    assert set(everything) == set(np.flatnonzero(labels >= 0))
    assert np.bincount(labels[s.test]).tolist() == [14, 6]
    assert np.bincount(labels[s.validation]).tolist() == [7, 3]
    again = stratified_split(labels, validation=0.1, test=0.2, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(parts, [again.train, again.validation, again.test]))
    other = stratified_split(labels, validation=0.1, test=0.2, seed=4)
    assert not np.array_equal(other.test, s.test)


def test_split_keeps_faces_of_one_photo_together():
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(40), 3)
    labels = np.repeat(rng.integers(0, 2, 40), 3)
    s = stratified_split(labels, validation=0.1, test=0.25, seed=0, groups=groups)
    owner = {}
    for name, idx in (("train", s.train), ("val", s.validation), ("test", s.test)):
        for g in groups[idx]:
            assert owner.setdefault(g, name) == name, f"photo {g} is in two splits"
    assert len(owner) == 40


@pytest.mark.parametrize("kwargs, match", [({"validation": 0.5, "test": 0.5}, "leave something"),
                                           ({"test": -0.1}, "at least")])
def test_split_rejects_bad_fractions(kwargs, match):
    with pytest.raises(ValueError, match=match):
        stratified_split([0, 1, 0, 1], **kwargs)


# --------------------------------------------------------------------------- network and FLOPs


def test_default_network_shape_and_budget():
    model = build_resnet()
    assert model.input_shape == (None, 50, 50, 3)
    assert model.output_shape == (None, 2)
    assert model.layers[-1].name == "probs" and model.layers[-2].name == "logits"
    assert count_flops(model) <= 25e6
    deeper = build_resnet(widths=(16, 32), blocks=(2, 3), separable=False)
    assert sum(isinstance(layer, keras.layers.Add) for layer in deeper.layers) == 5


def test_count_flops_matches_a_hand_count():
    L = keras.layers
    inp = keras.Input((8, 8, 3))
    x = L.Conv2D(4, 3, padding="same", use_bias=False)(inp)           # 2*8*8*9*3*4   = 13,824
    x = L.SeparableConv2D(6, 3, strides=2, padding="same", use_bias=True)(x)  # dw 2*4*4*9*4 = 1,152; pw 2*16*4*6 = 768; bias 96
    x = L.DepthwiseConv2D(3, padding="same", use_bias=False)(x)        # 2*4*4*9*6     = 1,728
    x = L.GlobalAveragePooling2D()(x)
    x = L.Dense(5)(x)                                                  # 2*6*5 + 5     = 65
    model = keras.Model(inp, x)
    assert count_flops(model) == 13_824 + 1_152 + 768 + 96 + 1_728 + 65
    total, rows = count_flops(model, per_layer=True)
    assert total == sum(f for _, f in rows) and len(rows) == 4


def test_build_resnet_rejects_bad_arguments():
    with pytest.raises(ValueError, match="same length"):
        build_resnet(widths=(16, 32), blocks=(1,))
    with pytest.raises(ValueError, match="RGB"):
        build_resnet(input_shape=(50, 50))


# --------------------------------------------------------------------------- a tiny model that learns real faces


@pytest.fixture(scope="module")
def real_faces():
    """120 real photos per class as centre crops (skips without ../shared/realfaces)."""
    from maskedu.imaging import crop_box, load_image

    root = shared_folder("realfaces")
    images, labels, paths = [], [], []
    for label, name in enumerate(("with_mask", "without_mask")):
        for p in sorted((root / name).iterdir())[:120]:
            img = load_image(p)
            h, w = img.shape[:2]
            s = min(h, w)
            images.append(crop_box(img, ((w - s) // 2, (h - s) // 2, (w + s) // 2, (h + s) // 2), size=50))
            labels.append(label)
            paths.append(str(p))
    return np.stack(images), np.array(labels), np.array(paths)


@pytest.fixture(scope="module")
def trained(real_faces):
    images, labels, _ = real_faces
    model = build_resnet(widths=(16, 32), blocks=(1, 1), stem_filters=16)
    return train(model, (images, labels), epochs=20, batch_size=16, seed=0, validation=0.15, test=0.25,
                 patience=20, verbose=False, live_plot=False)


@pytest.mark.slow
def test_tiny_model_learns_real_faces_above_chance(trained):
    result = trained
    assert set(result.split.sizes()) == {"train", "validation", "test"}
    assert len(result.test_labels) == 60
    ev = evaluate(result.model, result.test_images, result.test_labels)
    assert isinstance(ev, Evaluation)
    # 60 balanced held-out faces: 0.75 is far above chance (0.5; p < 1e-4) and far below what it reaches
    assert ev.accuracy >= 0.75, f"held-out accuracy {ev.accuracy:.2f} is barely above chance (0.5)"
    assert ev.confusion.sum() == 60 and np.trace(ev.confusion) == round(ev.accuracy * 60)
    assert "94.20%" in str(ev) and "94.20%" in ev._repr_html_()
    assert len(ev.misclassified) == 60 - np.trace(ev.confusion)
    assert 1 <= result.best_epoch <= result.epochs_run
    assert set(result.history) >= {"loss", "accuracy", "val_loss", "val_accuracy"}


@pytest.mark.slow
def test_training_is_reproducible(real_faces):
    images, labels, _ = real_faces
    sub = (images[::4], labels[::4])
    runs = []
    for _ in range(2):
        r = train(build_resnet(widths=(8,), blocks=(1,), stem_filters=8), sub, epochs=2, seed=1,
                  verbose=False, live_plot=False)
        runs.append(r.model.get_weights())
    assert all(np.array_equal(a, b) for a, b in zip(*runs))


@pytest.mark.slow
def test_save_load_round_trip_uses_safe_mode(tmp_path, trained):
    model = trained.model
    path = save_model(model, tmp_path / "m.keras")
    back = load_model(path)
    x = trained.test_images[:8]
    np.testing.assert_allclose(make_predict_fn(back)(x), make_predict_fn(model)(x), atol=1e-6)
    with pytest.raises(ValueError, match=".keras"):
        save_model(model, tmp_path / "m.pkl")
    with pytest.raises(FileNotFoundError, match="get_model"):
        load_model(tmp_path / "missing.keras")
    # a Lambda layer (arbitrary code) is refused by safe mode
    inp = keras.Input((2,))
    out = keras.layers.Lambda(lambda t: t * 2)(inp)
    keras.Model(inp, out).save(tmp_path / "lambda.keras")
    with pytest.raises(ValueError, match="(?i)safe"):
        load_model(tmp_path / "lambda.keras")


@pytest.mark.slow
def test_predict_fn_equals_model_predict_for_any_batch_size(trained):
    model = trained.model
    predict = make_predict_fn(model)
    x = trained.test_images
    for n in (1, 7, 40):
        probs, logits = predict.both(x[:n])
        assert probs.dtype == np.float32 and probs.shape == (n, 2)
        np.testing.assert_allclose(probs, model.predict(x[:n], verbose=0), atol=1e-5)
        np.testing.assert_allclose(predict.logits(x[:n]), logits, atol=1e-6)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert predict(x[0]).shape == (1, 2)  # a single image gets a batch axis
    with pytest.raises(ValueError, match="batch of shape"):
        predict(np.zeros((2, 32, 32, 3), np.uint8))


def test_predict_fn_is_compiled_once_per_model_and_sees_new_weights():
    model = build_resnet(widths=(8,), blocks=(1,), stem_filters=8)
    predict = make_predict_fn(model)
    assert make_predict_fn(model) is predict  # detect_masks called again: no new tracing
    assert make_predict_fn(build_resnet(widths=(8,), blocks=(1,), stem_filters=8)) is not predict
    x = np.random.default_rng(0).integers(0, 256, (3, 50, 50, 3), dtype=np.uint8)
    before = predict.logits(x)
    model.set_weights([w * 0.5 for w in model.get_weights()])  # as training would change them
    probs, after = make_predict_fn(model).both(x)
    assert not np.allclose(before, after)
    np.testing.assert_allclose(probs, model(x.astype(np.float32), training=False).numpy(), rtol=1e-4, atol=1e-5)


def _fragile_model(size: int = 8, input_dtype: str = "float32"):
    """A real Keras model with a logits layer that flips to class 1 when the pixels near (x=5, y=2) turn red."""
    inp = keras.Input((size, size, 3), dtype=input_dtype)
    x = keras.layers.Flatten()(keras.layers.Rescaling(1 / 255.0)(inp))
    logits = keras.layers.Dense(2, name="logits")(x)
    model = keras.Model(inp, keras.layers.Activation("softmax", name="probs")(logits))
    yy, xx = np.mgrid[0:size, 0:size]
    weight = np.exp(-((xx - 5) ** 2 + (yy - 2) ** 2) / 2.0)
    k = np.zeros((size, size, 3), np.float32)
    k[..., 0], k[..., 1] = weight, -weight
    kernel = np.zeros((size * size * 3, 2), np.float32)
    kernel[:, 1] = k.reshape(-1)
    model.get_layer("logits").set_weights([kernel, np.array([0.8, 0.0], np.float32)])
    return model


def test_tflite_engine_gives_the_keras_logits_for_any_batch_size_and_dtype():
    from maskedu.model import TFLitePredictFn

    model = build_resnet(widths=(8,), blocks=(1,), stem_filters=8, seed=3)
    keras_fn, lite = make_predict_fn(model), make_predict_fn(model, engine="tflite")
    assert isinstance(lite, TFLitePredictFn) and lite.model is model  # the leak guard follows .model
    assert (lite.input_shape, lite.n_classes) == (keras_fn.input_shape, keras_fn.n_classes) == ((50, 50, 3), 2)
    x = np.random.default_rng(0).integers(0, 256, (40, 50, 50, 3), dtype=np.uint8)
    for n in (0, 1, 7, 40, 3):  # sizes change back and forth: the interpreter is resized each time
        for batch in (x[:n], x[:n].astype(np.float32)):
            probs, logits = lite.both(batch)
            assert probs.dtype == logits.dtype == np.float32 and probs.shape == logits.shape == (n, 2)
            np.testing.assert_allclose(logits, keras_fn.logits(batch), atol=1e-4)
            np.testing.assert_allclose(probs, keras_fn(batch), atol=1e-4)
    assert lite(x[0]).shape == (1, 2)  # a single image gets a batch axis
    assert lite.calls == 11
    with pytest.raises(ValueError, match="batch of shape"):
        lite(np.zeros((2, 32, 32, 3), np.uint8))


def test_tflite_engine_is_cached_per_model_and_converted_again_for_new_weights():
    model = _fragile_model()
    lite = make_predict_fn(model, engine="tflite")
    assert make_predict_fn(model, engine="tflite") is lite
    assert make_predict_fn(lite, engine="tflite") is lite and make_predict_fn(lite) is make_predict_fn(model)
    x = np.random.default_rng(1).integers(0, 256, (5, 8, 8, 3), dtype=np.uint8)
    before = lite.logits(x)
    model.set_weights([w * 0.5 for w in model.get_weights()])
    again = make_predict_fn(model, engine="tflite")
    assert again is not lite  # the old copy of the weights is stale
    np.testing.assert_allclose(again.logits(x), before * 0.5, atol=1e-5)


def test_tflite_engine_runs_in_threads_and_on_a_model_taking_uint8():
    import threading

    model = _fragile_model(input_dtype="uint8")
    lite = make_predict_fn(model, engine="tflite")
    x = np.random.default_rng(2).integers(0, 256, (6, 8, 8, 3), dtype=np.uint8)
    want = make_predict_fn(model).logits(x)
    got = {}
    threads = [threading.Thread(target=lambda i=i: got.__setitem__(i, lite.logits(x))) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 3
    for z in got.values():
        np.testing.assert_allclose(z, want, atol=1e-4)


def test_tflite_engine_finds_the_same_one_pixel_attack_as_keras():
    from maskedu.attack import one_pixel_attack

    model = _fragile_model()
    img = np.full((8, 8, 3), 100, np.uint8)
    runs = [one_pixel_attack(make_predict_fn(model, engine=e), img, 0, popsize=30, maxiter=30, seed=0)
            for e in ("keras", "tflite")]
    assert runs[0].success and runs[1].success
    np.testing.assert_array_equal(runs[0].pixels, runs[1].pixels)
    np.testing.assert_array_equal(runs[0].adversarial, runs[1].adversarial)
    assert runs[0].queries == runs[1].queries
    np.testing.assert_allclose(runs[1].final_probs, runs[0].final_probs, atol=1e-4)


def test_tflite_engine_is_silent(capfd):
    model = _fragile_model()
    capfd.readouterr()
    lite = make_predict_fn(model, engine="tflite")  # conversion: MLIR lines on the C level
    lite(np.zeros((2, 8, 8, 3), np.uint8))  # the interpreter and its XNNPACK delegate: "Created ..." on stderr
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_make_predict_fn_refuses_an_unknown_engine():
    from maskedu.common import ParameterError

    with pytest.raises(ParameterError, match="engine='onnx' is not one of the choices: 'keras', 'tflite'"):
        make_predict_fn(_fragile_model(), engine="onnx")


@pytest.mark.slow
def test_train_accepts_crops_and_rejects_mismatches(real_faces):
    images, labels, paths = real_faces
    from maskedu.crop import Crops

    n = len(images)
    crops = Crops(images=images, labels=labels, paths=paths, boxes=np.zeros((n, 4), int),
                  scores=np.full(n, np.nan, np.float32), ious=np.full(n, np.nan, np.float32),
                  origin=np.array(["fallback"] * n))
    r = train(build_resnet(widths=(8,), blocks=(1,), stem_filters=8), crops, epochs=1, verbose=False, live_plot=False)
    assert r.epochs_run == 1 and len(r.test_labels) == 48
    with pytest.raises(ValueError, match="input_shape"):
        train(build_resnet(input_shape=(32, 32, 3)), (images, labels), epochs=1, verbose=False)
    with pytest.raises(ValueError, match="pair up"):
        train(build_resnet(), (images, labels[:-1]), epochs=1, verbose=False)


@pytest.mark.slow
def test_train_options_old_recipe_and_bad_values():
    # synthetic two-class faces: no realfaces needed; one epoch each, tiny network
    from maskedu.model import make_augmenter

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (40, 50, 50, 3), dtype=np.uint8)
    labels = np.array([0, 1] * 20)
    images[labels == 1, 30:, :, :] //= 4  # a dark lower half: "a mask"
    tiny = lambda: build_resnet(widths=(8,), blocks=(1,), stem_filters=8)  # noqa: E731
    # the new defaults (label smoothing, AdamW, cosine) and the first version's recipe both train
    r = train(tiny(), (images, labels), epochs=2, verbose=False, live_plot=False)
    assert r.epochs_run == 2 and set(r.history) >= {"loss", "accuracy", "val_loss", "val_accuracy"}
    old = train(tiny(), (images, labels), epochs=2, label_smoothing=0.0, weight_decay=0.0, schedule="plateau",
                augment={"shift": 0.08, "zoom": 0.08, "rotation": 0.0, "brightness": 0.2, "contrast": 0.15},
                verbose=False, live_plot=False)
    assert old.epochs_run == 2 and "learning_rate" in old.history  # ReduceLROnPlateau logs the rate
    none = train(tiny(), (images, labels), epochs=1, augment=False, verbose=False, live_plot=False)
    assert none.epochs_run == 1
    # the augmenter keeps shapes and the 0..255 range
    out = np.asarray(make_augmenter(seed=0)(images[:4].astype(np.float32), training=True))
    assert out.shape == (4, 50, 50, 3) and out.min() >= 0 and out.max() <= 255
    # early stopping watches only from min_epochs on: it can neither stop nor pick a best epoch before it
    late = train(tiny(), (images, labels), epochs=6, patience=1, min_epochs=4, verbose=False, live_plot=False)
    assert late.epochs_run >= 5 and 5 <= late.best_epoch <= late.epochs_run
    assert late.best_epoch == 5 + int(np.argmin(late.history["val_loss"][4:]))
    never = train(tiny(), (images, labels), epochs=2, min_epochs=5, verbose=False, live_plot=False)
    assert never.epochs_run == 2 and never.best_epoch == 2  # not watched at all: the last epoch's weights stay
    with pytest.raises(ValueError, match="min_epochs"):
        train(tiny(), (images, labels), epochs=2, min_epochs=-1, verbose=False)
    with pytest.raises(ValueError, match="schedule"):
        train(tiny(), (images, labels), epochs=1, schedule="step", verbose=False)
    with pytest.raises(ValueError, match="label_smoothing"):
        train(tiny(), (images, labels), epochs=1, label_smoothing=0.9, verbose=False)
    with pytest.raises(TypeError, match="augment"):
        train(tiny(), (images, labels), epochs=1, augment="strong", verbose=False)


def test_random_face_transform_is_one_correct_affine_resampling():
    from maskedu.model import RandomFaceTransform, make_augmenter

    rng = np.random.default_rng(1)
    faces = rng.uniform(0, 255, (16, 50, 40, 3)).astype(np.float32)  # not square: width and height kept apart
    # nothing asked for: every face comes back exactly
    still = RandomFaceTransform(flip=False, shift=0, zoom=0, rotation=0)
    assert np.array_equal(np.asarray(still(faces, training=True)), faces)
    # flips only: each face is either itself or its left-right mirror, and both happen
    out = np.asarray(RandomFaceTransform(shift=0, zoom=0, rotation=0, seed=1)(faces, training=True))
    same = [np.allclose(o, f, atol=1e-3) for o, f in zip(out, faces)]
    mirrored = [np.allclose(o, f[:, ::-1], atol=1e-3) for o, f in zip(out, faces)]
    assert all(s or m for s, m in zip(same, mirrored)) and any(same) and any(mirrored)
    # the drawn matrices stay within the asked amounts and keep the centre of the crop fixed (zoom and tilt)
    m = np.asarray(RandomFaceTransform(flip=False, shift=0.1, zoom=0, rotation=0, seed=2).matrices(500, 50, 40))
    assert np.allclose(m[:, [0, 4]], 1) and np.allclose(m[:, [1, 3, 6, 7]], 0)
    assert 3.5 < np.abs(m[:, 2]).max() <= 4.0 and 4.5 < np.abs(m[:, 5]).max() <= 5.0  # 10% of 40 and of 50 px
    m = np.asarray(RandomFaceTransform(flip=False, shift=0, zoom=0.15, rotation=0.03, seed=3).matrices(500, 50, 50))
    scale = np.hypot(m[:, 0], m[:, 3])
    angle = np.degrees(np.arctan2(m[:, 3], m[:, 0]))
    assert 0.85 <= scale.min() < 0.9 and 1.1 < scale.max() <= 1.15
    assert -10.8 <= angle.min() < -9 and 9 < angle.max() <= 10.8  # 0.03 of a turn
    c = 24.5
    assert np.allclose(m[:, 0] * c + m[:, 1] * c + m[:, 2], c, atol=1e-4)
    assert np.allclose(m[:, 3] * c + m[:, 4] * c + m[:, 5], c, atol=1e-4)
    # a pure shift moves the picture: a face shifted by the matrix equals the numpy shift inside the frame
    one = RandomFaceTransform(flip=False, shift=0.1, zoom=0, rotation=0, seed=4)
    moved = np.asarray(one(faces[:1], training=True))[0]
    mat = np.asarray(RandomFaceTransform(flip=False, shift=0.1, zoom=0, rotation=0, seed=4).matrices(1, 50, 40))[0]
    dx, dy = mat[2], mat[5]
    assert abs(dx) > 0.5 or abs(dy) > 0.5  # a real move
    ix, iy = int(np.floor(dx)), int(np.floor(dy))
    fx, fy = dx - ix, dy - iy  # bilinear: each output pixel mixes the four input pixels around (x + dx, y + dy)
    ys, xs = slice(6, 44), slice(6, 34)  # well inside: no edge filling involved
    src = faces[0]
    expect = ((1 - fy) * (1 - fx) * np.roll(src, (-iy, -ix), (0, 1)) + (1 - fy) * fx * np.roll(src, (-iy, -ix - 1), (0, 1))
              + fy * (1 - fx) * np.roll(src, (-iy - 1, -ix), (0, 1)) + fy * fx * np.roll(src, (-iy - 1, -ix - 1), (0, 1)))
    assert np.allclose(moved[ys, xs], expect[ys, xs], atol=1e-2)
    # one face (3-D) in, one face out; outside training nothing changes; seeds reproduce
    assert tuple(RandomFaceTransform()(faces[0], training=True).shape) == (50, 40, 3)
    assert np.array_equal(np.asarray(RandomFaceTransform()(faces, training=False)), faces)
    a = np.asarray(RandomFaceTransform(seed=7)(faces, training=True))
    b = np.asarray(RandomFaceTransform(seed=7)(faces, training=True))
    assert np.array_equal(a, b)
    assert [type(x).__name__ for x in make_augmenter(brightness=0, contrast=0).layers] == ["RandomFaceTransform"]
    assert make_augmenter(flip=False, shift=0, zoom=0, rotation=0, brightness=0, contrast=0).layers == []
    with pytest.raises(ValueError, match="shift"):
        RandomFaceTransform(shift=0.8)
    with pytest.raises(TypeError, match="flip"):
        RandomFaceTransform(flip="yes")
