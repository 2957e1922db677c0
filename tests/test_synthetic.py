"""maskedu.synthetic: masks painted on real unmasked faces (the astronaut, Grace Hopper), training photos only."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib import cbook
from PIL import Image
from skimage import data as skdata

from maskedu.crop import FaceDetector, crop_faces
from maskedu.dataset import CLASS_NAMES, Dataset, ImageRecord, LoadReport
from maskedu.imaging import crop_box, load_image
from maskedu.sample import MASK_STYLES, draw_mask
from maskedu.synthetic import add_synthetic_masks, masked_face_crop


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector()


@pytest.fixture(scope="module")
def astronaut_face(detector):
    image = skdata.astronaut()
    faces = detector.detect(image)
    assert faces, "MTCNN should find the astronaut's face"
    return image, faces[0]


def _lower_upper_change(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    diff = np.abs(a.astype(np.float32) - b.astype(np.float32)).mean(axis=2)
    return float(diff[30:].mean()), float(diff[:12].mean())


def test_masked_face_crop_covers_the_lower_face_only(astronaut_face):
    image, face = astronaut_face
    plain = crop_box(image, face.box, size=50, margin=0.1)  # what the crop stage cuts
    for style in MASK_STYLES:
        masked = masked_face_crop(image, face.box, face.keypoints, style=style)
        assert masked.shape == (50, 50, 3) and masked.dtype == np.uint8
        lower, upper = _lower_upper_change(masked, plain)
        assert lower > 15, f"{style}: the mouth/chin area should change a lot (mean change {lower:.1f})"
        assert upper < 2, f"{style}: the forehead should stay as it was (mean change {upper:.1f})"
    n95 = masked_face_crop(image, face.box, face.keypoints, style="n95")
    cloth = masked_face_crop(image, face.box, face.keypoints, style="cloth", color=(170, 40, 45))
    assert not np.array_equal(n95, cloth)
    assert masked_face_crop(image, face.box, face.keypoints, size=64, margin=0.0).shape == (64, 64, 3)


def test_masked_face_crop_rejects_bad_arguments(astronaut_face):
    image, face = astronaut_face
    with pytest.raises(ValueError, match="style"):
        masked_face_crop(image, face.box, face.keypoints, style="bandana")
    with pytest.raises(ValueError, match="RGB"):
        masked_face_crop(image[..., 0], face.box, face.keypoints)
    with pytest.raises(ValueError, match="box"):
        masked_face_crop(image, (50, 50, 10, 10), face.keypoints)
    with pytest.raises(ValueError, match="keypoints"):
        masked_face_crop(image, face.box, {"nose": (1.0, 2.0)})


@pytest.fixture(scope="module")
def folder_crops(tmp_path_factory, detector):
    """Real class-folder crops: astronaut and Grace Hopper unmasked, a masked astronaut in with_mask."""
    root = tmp_path_factory.mktemp("folders")
    astro = skdata.astronaut()
    face = detector.detect(astro)[0]
    paths = {"astronaut": root / "without_mask" / "astronaut.png", "hopper": root / "without_mask" / "hopper.png",
             "masked": root / "with_mask" / "masked.png"}
    for p in paths.values():
        p.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(astro).save(paths["astronaut"])
    Image.fromarray(load_image(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))).save(paths["hopper"])
    Image.fromarray(draw_mask(astro, face.keypoints, style="cloth")).save(paths["masked"])
    ds = Dataset(root=root, layout="folders", report=LoadReport(), class_map={c: c for c in CLASS_NAMES},
                 images=[ImageRecord(path=paths[k], label=lab) for k, lab in
                         [("astronaut", "without_mask"), ("hopper", "without_mask"), ("masked", "with_mask")]])
    # MTCNN misses the masked astronaut (masks hide its landmarks): it gets a whole-photo fallback crop
    crops = crop_faces(ds, detector=detector, cache=False, verbose=False, fallback="whole")
    assert len(crops) == 3 and sorted(crops.origin.tolist()) == ["detector", "detector", "fallback"]
    return crops, {k: str(v) for k, v in paths.items()}


def test_add_synthetic_masks_uses_training_photos_only(folder_crops, detector):
    crops, paths = folder_crops
    with_mask, without_mask = CLASS_NAMES.index("with_mask"), CLASS_NAMES.index("without_mask")
    train_crops = crops.subset(np.asarray(crops.paths) != paths["hopper"])  # Grace Hopper is the test photo
    more = add_synthetic_masks(train_crops, seed=0, detector=detector)

    assert len(more) == len(train_crops) + 1  # one unmasked training photo -> one synthetic crop
    # the originals are untouched and first, the unmasked astronaut still labelled without_mask
    assert np.array_equal(more.images[:len(train_crops)], train_crops.images)
    assert more.labels[:len(train_crops)].tolist() == train_crops.labels.tolist()
    # the synthetic crop: the astronaut's photo (never the test photo, never the masked photo), with_mask
    assert more.paths[-1] == paths["astronaut"] and more.labels[-1] == with_mask and more.origin[-1] == "synthetic"
    assert paths["hopper"] not in set(more.paths.tolist())
    assert more.class_counts() == {"with_mask": 2, "without_mask": 1}
    assert more.origin.tolist() == train_crops.origin.tolist() + ["synthetic"]
    original = train_crops.images[(train_crops.paths == paths["astronaut"]) & (train_crops.labels == without_mask)][0]
    lower, upper = _lower_upper_change(more.images[-1], original)
    assert lower > 15 and upper < 2
    # seeded: the same seed gives the same crops; fields keep their dtypes
    again = add_synthetic_masks(train_crops, seed=0, detector=detector)
    assert np.array_equal(again.images, more.images)
    for name in ("images", "labels", "boxes", "scores", "ious"):
        assert getattr(more, name).dtype == getattr(crops, name).dtype
    # a style restriction and another seed still give one crop; fallback crops (no face found) give none
    n95 = add_synthetic_masks(train_crops, styles="n95", seed=3, detector=detector)
    assert len(n95) == len(more) and not np.array_equal(n95.images[-1], more.images[-1])
    back = add_synthetic_masks(train_crops, from_class="with_mask", to_class="without_mask", detector=detector)
    assert len(back) == len(train_crops)  # the masked photo's only crop is a fallback


@pytest.mark.slow  # builds and trains a Keras model: over 10 s on 2 cores
def test_add_synthetic_masks_output_trains_a_model(folder_crops, detector):
    from maskedu.model import build_resnet, train

    crops, _ = folder_crops
    more = add_synthetic_masks(crops, detector=detector)
    r = train(build_resnet(widths=(8,), blocks=(1,), stem_filters=8), more, epochs=1, validation=0.0, test=0.0,
              verbose=False, live_plot=False)
    assert r.epochs_run == 1 and len(r.split.train) == len(more)


def test_add_synthetic_masks_rejects_bad_arguments(folder_crops, detector):
    crops, _ = folder_crops
    with pytest.raises(TypeError, match="Crops"):
        add_synthetic_masks((crops.images, crops.labels))
    with pytest.raises(ValueError, match="differ"):
        add_synthetic_masks(crops, from_class="with_mask", to_class="with_mask", detector=detector)
    with pytest.raises(ValueError, match="from_class"):
        add_synthetic_masks(crops, from_class="masked", detector=detector)
    with pytest.raises(ValueError, match="styles"):
        add_synthetic_masks(crops, styles=("surgical", "bandana"), detector=detector)
    with pytest.raises(ValueError, match="styles"):
        add_synthetic_masks(crops, styles=(), detector=detector)
