"""maskedu: face-mask detection, the one-pixel attack and an adversarial mask pattern, as a course.

The modules follow the notebooks:

==========================  ==============================================================
``maskedu.common``          setup(), fast mode, data folder, seeds, parameter checks, errors
``maskedu.imaging``         load_image() for every image kind, boxes, IoU, crops
``maskedu.plotting``        class colours, bare_figure(), show_boxes(), image grids
``maskedu.dataset``         01: the records every loader returns (Dataset, FaceBox, ...), class maps
``maskedu.annotations``     01: loaders for the Kaggle, class-folder and PASCAL VOC layouts
``maskedu.download``        01: the known Kaggle downloads, get_dataset() (MASKEDU_DATASET, Kaggle or the
                            sample), forget()
``maskedu.sample``          01: the embedded offline sample dataset, in the exact Kaggle layout
``maskedu.crop``            02: crop_faces() with MTCNN, cached, honest about misses; Face, FaceDetector
``maskedu.model``           03: build_resnet(), train(), evaluate(), the split a model carries, fast prediction
``maskedu.detect``          03: detect_masks(): photo in, labelled faces out (crowd=True for group photos)
``maskedu.scenes``          03: face finding scored on annotated crowd scenes, by face size
``maskedu.attack``          04-05: one_pixel_attack() with scipy's differential evolution, sparse_attack()
``maskedu.pattern``         06: the adversarial mask pattern and simulated annealing
``maskedu.worn``            06: the pattern searched over wear conditions, held-out evaluation, print export
``maskedu.oracle``          07: the attacker's access (label, probabilities, logits, gradients) and budget
``maskedu.defend``          07: white-box attacks, defenses, adaptive evaluation
``maskedu.claims``          judge() and say(): the notebooks' claims checked against this run's figures
``maskedu.exercises``       checkable exercises for every notebook
``maskedu.course``          the nbgrader student release and autograding
==========================  ==============================================================

See ARCHITECTURE.md for how the stages fit together.

Names are imported lazily, so ``import maskedu`` does not start TensorFlow.

>>> import maskedu
>>> maskedu.CLASS_NAMES
('with_mask', 'without_mask')
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    # common
    "setup": "common", "MaskeduError": "common", "ParameterError": "common", "DataFolderError": "common",
    "is_fast": "common", "budget": "common", "data_dir": "common", "set_seed": "common",
    "find_artifact": "common",
    # imaging
    "load_image": "imaging", "ImageError": "imaging", "iou": "imaging", "clip_box": "imaging", "crop_box": "imaging",
    # 01: data
    "CLASS_NAMES": "dataset", "CLASS_NAMES_3": "dataset", "INCORRECT_CLASS": "dataset", "Dataset": "dataset", "FaceBox": "dataset", "ImageRecord": "dataset",
    "LoadReport": "dataset", "load_annotations": "annotations", "load_class_folders": "annotations",
    "load_voc": "annotations", "load_dataset": "annotations", "DEFAULT_CLASS_MAP": "dataset",
    "download_dataset": "download", "get_dataset": "download", "KAGGLE_SLUG": "download",
    "DownloadError": "download", "CredentialsError": "download", "forget": "download", "DATASETS": "download",
    "install_archive": "download", "find_credentials": "download", "ArchiveError": "download",
    "csv_column_quirk": "annotations", "compare_with_kaggle": "annotations", "KAGGLE_CLASS_NAMES": "dataset",
    "LayoutError": "annotations", "check_box": "annotations",
    "make_sample_dataset": "sample", "draw_mask": "sample", "face_sources": "sample", "MASK_STYLES": "sample",
    # 02: crops
    "crop_faces": "crop", "Crops": "crop", "get_crops": "crop", "FaceDetector": "crop", "Detection": "crop",
    "CropReport": "crop", "Face": "crop", "KEYPOINT_NAMES": "crop",
    # 03: model and detection
    "build_resnet": "model", "count_flops": "model", "train": "model", "evaluate": "model",
    "save_model": "model", "load_model": "model", "make_predict_fn": "model", "ModelError": "model",
    "detect_masks": "detect", "draw_detections": "detect", "get_model": "model", "stratified_split": "model",
    "Evaluation": "model", "TrainResult": "model", "PredictFn": "model", "TFLitePredictFn": "model", "LiveTrainingPlot": "model",
    "residual_block": "model", "show_model": "model", "PAPER_ACCURACY": "model",
    "held_out": "model", "SplitMismatchError": "model", "SplitRecord": "model", "RECIPES": "model",
    "model_path": "model", "split_path": "model", "find_model": "model",
    "FaceResult": "detect", "ImageResult": "detect",
    "add_synthetic_masks": "synthetic", "masked_face_crop": "synthetic",
    "score_scenes": "scenes", "plot_found_by_size": "scenes", "show_scene": "scenes",
    # 04-05: attack
    "one_pixel_attack": "attack", "attack_many": "attack", "perturb": "attack", "sparse_attack": "attack",
    "AttackResult": "attack", "AttackStudy": "attack", "PAPER": "attack", "SPARSE": "attack",
    "plot_attack": "attack", "plot_history": "attack", "attack_explorer": "attack_widgets",
    # 06: pattern
    "simulated_annealing": "pattern", "search_pattern": "pattern", "PatternSpace": "pattern", "make_decoy": "pattern",
    "get_detector": "pattern", "evaluate_worn": "pattern", "count_fitness": "pattern", "smooth_fitness": "pattern",
    "pattern_panel": "pattern_widgets", "make_schedule": "anneal", "acceptance_probability": "anneal",
    "sample_conditions": "worn", "search_worn_pattern": "worn", "evaluate_patterns": "worn", "export_print": "worn",
    "non_printability": "worn",
    # claims: the notebooks' statements checked against this run's figures
    "Claim": "claims", "judge": "claims", "say": "claims", "ClaimContradicted": "claims",
    "wilson_interval": "claims", "faces_to_distinguish": "claims",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'maskedu' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"maskedu.{module}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
