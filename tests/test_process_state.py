"""Importing maskedu and using it leaves process-wide settings as they were, and TensorFlow stays quiet."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

#: Each test starts a Python that imports TensorFlow (10-20 s on 2 cores): all are in the slow tier.
pytestmark = pytest.mark.slow


def _run(code: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_")}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env,
                          timeout=300)


def test_importing_tensorflow_through_maskedu_is_silent_and_leaves_its_log_level_unset():
    proc = _run(
        """
        import json, os
        import maskedu.model                      # imports TensorFlow and Keras, quietly
        from maskedu.common import import_tensorflow
        tf = import_tensorflow()
        import keras
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
        model.predict(tf.zeros((3, 4)), verbose=0)   # the first ops after the import log nothing either
        print(json.dumps(sorted(k for k in os.environ if k.startswith("TF_"))))
        """
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []  # no TF_ setting left behind
    assert proc.stderr == "", proc.stderr[-2000:]


def test_maskedu_changes_no_environment_variable_or_warnings_filter():
    """Against a baseline where the libraries maskedu uses are already imported (their own import-time
    changes, such as TensorFlow's TF2_BEHAVIOR or numpy's filters, are theirs), importing every maskedu
    module and using the pipeline changes nothing process-wide."""
    proc = _run(
        """
        import json, os, warnings
        import numpy, scipy.optimize, PIL.Image, matplotlib, cv2, skimage, tensorflow, keras, mtcnn, tqdm.auto
        before = (dict(os.environ), [repr(f) for f in warnings.filters])
        import maskedu, maskedu.model, maskedu.crop, maskedu.detect, maskedu.attack, maskedu.pattern
        import maskedu.annotations, maskedu.download, maskedu.sample, maskedu.synthetic, maskedu.claims
        from skimage import data
        face = data.astronaut()
        model = maskedu.build_resnet(seed=0)
        results = maskedu.detect_masks([face, face], model)
        maskedu.one_pixel_attack(model, numpy.zeros((50, 50, 3), numpy.uint8), 0, maxiter=2, popsize=10, seed=0)
        after = (dict(os.environ), [repr(f) for f in warnings.filters])
        changed = sorted(k for k in set(before[0]) | set(after[0]) if before[0].get(k) != after[0].get(k))
        print(json.dumps({"env_changed": changed, "filters_added": [f for f in after[1] if f not in before[1]],
                          "filters_removed": [f for f in before[1] if f not in after[1]], "faces": len(results[0].faces)}))
        """
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["faces"] >= 1  # the pipeline really ran on the astronaut's face
    assert result["env_changed"] == [] and result["filters_added"] == [] and result["filters_removed"] == []


def test_a_plain_tensorflow_import_is_noisy_here_so_the_silence_above_is_real():
    """The control: without maskedu's import, this machine's TensorFlow writes start-up lines to stderr."""
    proc = _run("import tensorflow")
    assert proc.returncode == 0
    if proc.stderr.strip() == "":
        pytest.skip("this TensorFlow build prints nothing at import, so there is no noise to silence here")
    assert "absl" in proc.stderr or "cuda" in proc.stderr.lower() or "oneDNN" in proc.stderr


def test_train_leaves_op_determinism_as_it_was():
    from tensorflow.python.framework import config

    from maskedu.model import build_resnet, train

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(24, 50, 50, 3), dtype=np.uint8)
    labels = np.array([0, 1] * 12)
    assert not config.is_op_determinism_enabled()
    train(build_resnet(seed=0), (images, labels), epochs=1, verbose=False, live_plot=False)
    assert not config.is_op_determinism_enabled()
