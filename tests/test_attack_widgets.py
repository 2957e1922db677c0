"""The explorer's logic as plain functions (ipywidgets swallows exceptions raised in button callbacks)."""

from __future__ import annotations

import numpy as np
import pytest

from maskedu.attack_widgets import (
    AttackExplorer,
    attack_explorer,
    describe_result,
    filter_faces,
    friendly_error,
    live_png,
    panel_settings,
    parse_mutation,
    result_png,
    thumbnail_png,
)
from maskedu.attack import one_pixel_attack

from test_attack import constant_probs, fragile_logits, grey

NAMES = ("with_mask", "without_mask")
GOOD = dict(pixels=1, popsize=12, maxiter=4, mutation="0.5, 1", recombination=1.0, fitness="margin", seed=0)


def faces():
    imgs = np.stack([grey(value=v) for v in (80, 90, 100, 110)])
    imgs[3, 2, 5] = (255, 0, 0)  # the fragile model calls this one without_mask
    return imgs, np.array([0, 0, 1, 0])  # face 2 is labelled 1 but predicted 0


def test_filter_faces():
    labels, pred = [0, 1, 1, 0, 1], [0, 1, 0, 1, 1]
    assert filter_faces(labels, pred).tolist() == [0, 1, 2, 3, 4]
    assert filter_faces(labels, pred, correctness="correct").tolist() == [0, 1, 4]
    assert filter_faces(labels, pred, cls="without_mask", class_names=NAMES).tolist() == [1, 2, 4]
    assert filter_faces(labels, pred, cls=0, correctness="incorrect").tolist() == [3]
    with pytest.raises(ValueError, match="not one of"):
        filter_faces(labels, pred, cls="cat", class_names=NAMES)
    with pytest.raises(ValueError, match="correctness"):
        filter_faces(labels, pred, correctness="right")


def test_parse_mutation():
    assert parse_mutation("0.5, 1") == (0.5, 1.0)
    assert parse_mutation("0.8") == 0.8 and parse_mutation(0.7) == 0.7
    with pytest.raises(ValueError, match="not a number"):
        parse_mutation("fast")
    with pytest.raises(ValueError, match="not 3"):
        parse_mutation("0.1 0.2 0.3")


def test_panel_settings_good_and_bad():
    s = panel_settings(GOOD)
    assert s["mutation"] == (0.5, 1.0) and s["popsize"] == 12 and s["colors"] == "any"
    for bad, words in [(dict(popsize=3), "popsize must be at least 5"), (dict(pixels=0), "pixels must be at least 1"),
                       (dict(recombination=2.0), "recombination must be at most 1"), (dict(seed=-4), "seed"),
                       (dict(mutation="0.9, 0.2"), "low <= high")]:
        with pytest.raises(ValueError, match=words):
            panel_settings({**GOOD, **bad})
    with pytest.raises(ValueError, match="missing settings: seed"):
        panel_settings({k: v for k, v in GOOD.items() if k != "seed"})
    assert "popsize must be at least 5" in friendly_error(ValueError("popsize must be at least 5, got 3."))


def test_pictures_and_description():
    res = one_pixel_attack(fragile_logits, grey(), 0, popsize=20, maxiter=10, seed=0)
    from PIL import Image
    import io

    thumb = Image.open(io.BytesIO(thumbnail_png(grey(), scale=3)))
    assert thumb.size == (24, 24)
    for png in (live_png(res.history, maxiter=10), result_png(res)):
        fig = Image.open(io.BytesIO(png))
        assert fig.format == "PNG" and fig.size[0] > 300
    text = describe_result(res)
    assert "Label flipped" in text and f"{res.queries:,} model queries" in text


def test_explorer_runs_an_attack_without_a_browser():
    imgs, labels = faces()
    ex = attack_explorer(fragile_logits, imgs, labels, **{**GOOD, "maxiter": 20, "popsize": 20})
    assert ex.candidates.tolist() == [0, 1]  # the correct filter is on by default
    ex.w_correct.value = "incorrect"
    assert ex.candidates.tolist() == [2, 3] and ex.face_index == 2
    ex.select(1)
    assert ex.face_index == 1 and "face #1" in ex.w_caption.value
    res = ex.run_attack()
    assert res is not None and res.success
    assert [s.generation for s in ex.history] == [s.generation for s in res.history]
    kinds = [list(o["data"]) for o in ex.out_result.outputs]
    assert kinds[0][0] == "image/png" and "text/html" in kinds[1]
    assert ex.out_live.outputs and "done: success" in ex.status.value


def test_explorer_shows_invalid_input_in_the_panel():
    imgs, labels = faces()
    ex = AttackExplorer(fragile_logits, imgs, labels)
    ex.w_popsize.value = 3
    assert "popsize must be at least 5" in ex.w_budget.value
    assert ex.run_attack() is None
    assert "popsize must be at least 5" in ex.out_result.outputs[0]["data"]["text/html"]
    ex.w_popsize.value = 10
    ex.w_class.value, ex.w_correct.value = "without_mask", "correct"
    assert ex.face_index is None and ex.run_attack() is None
    assert "no face matches" in ex.out_result.outputs[0]["data"]["text/html"]


def test_stop_button_stops_a_background_run():
    imgs, labels = faces()
    ex = AttackExplorer(constant_probs, imgs, labels, settings={**GOOD, "maxiter": 100000, "popsize": 10})
    ex.live_interval = 0.0
    thread = ex.start()
    assert thread is not None and ex.run_button.disabled and ex.start() is None  # one run at a time
    for _ in range(200):  # wait until it is really searching
        if len(ex.history) >= 3:
            break
        thread.join(0.05)
    ex.stop()
    res = ex.wait(30)
    assert not ex.running and res is not None and res.stop_reason == "stopped"
    assert 2 <= res.generations < 100000 and len(res.history) == res.generations + 1 and not ex.run_button.disabled


def test_presets_fill_the_panel():
    imgs, labels = faces()
    ex = AttackExplorer(fragile_logits, imgs, labels)
    ex.w_preset.value = "paper"
    assert ex.values()["popsize"] == 400 and ex.values()["fitness"] == "probability"
    assert "30,400 candidates" in ex.w_budget.value


# --------------------------------------------------------------------------- the defense choice


def test_defense_settings_and_make_defense():
    from maskedu.attack_widgets import DEFENSE_CHOICES, MODE_CHOICES, defense_settings, make_defense
    from maskedu.defend import BitDepth, JpegDefense, MedianFilter

    assert defense_settings({}) == ("none", "adaptive")
    assert defense_settings(dict(defense="bit-depth squeeze", mode="transfer")) == ("bit-depth squeeze", "transfer")
    with pytest.raises(ValueError, match="defense='blur' is not one of the choices: 'none', 'median filter'"):
        defense_settings(dict(defense="blur"))
    with pytest.raises(ValueError, match="mode='sideways' is not one of the choices: 'adaptive', 'transfer'"):
        defense_settings(dict(mode="sideways"))
    assert defense_settings(dict(defense="adv"), (*DEFENSE_CHOICES, "adv"))[0] == "adv"
    kinds = [type(make_defense(d, fragile_logits)) for d in DEFENSE_CHOICES[1:]]
    assert kinds == [MedianFilter, JpegDefense, BitDepth] and make_defense("none", fragile_logits) is fragile_logits
    assert make_defense("adv", fragile_logits, {"adv": constant_probs}) is constant_probs
    assert set(MODE_CHOICES) == {"adaptive", "transfer"}


def test_a_lone_pixel_beats_the_plain_model_but_not_the_median_filter():
    """The fragile model flips on one red pixel; a 3x3 median outvotes it: transfer and adaptive both fail."""
    imgs, labels = faces()
    ex = attack_explorer(fragile_logits, imgs, labels, **{**GOOD, "maxiter": 20, "popsize": 20})
    ex.select(0)
    plain = ex.run_attack()
    assert plain.success and ex.outcome.defense == "none" and "Defense: <b>none</b>" in ex.out_result.outputs[2]["data"]["text/html"]
    ex.w_defense.value, ex.w_mode.value = "median filter", "transfer"
    res = ex.run_attack()
    assert res.success, "transfer: the attack still beats the plain model"
    assert res.settings["defense"] == "median filter" and res.settings["mode"] == "transfer"
    assert ex.outcome.held and ex.outcome.plain_adversarial.argmax() == 1 and ex.outcome.defended_adversarial.argmax() == 0
    text = ex.out_result.outputs[2]["data"]["text/html"]
    assert "Defense: <b>median filter</b>, transfer" in text and "the defense held" in text
    assert "median filter held" in ex.status.value
    ex.w_mode.value = "adaptive"
    res = ex.run_attack()
    assert not res.success and ex.outcome.held, "one pixel cannot beat a 3x3 median, even when the search sees it"
    assert "adaptive: the search queried the defended model itself" in ex.out_result.outputs[2]["data"]["text/html"]


def test_the_panel_attacks_a_defended_real_tiny_model():
    """A real small attack against a real tiny Keras model behind each defense: the search queried the defended
    model (its answers are the defended model's), and the panel says which defense and what it did."""
    from maskedu.defend import BitDepth, JpegDefense, MedianFilter

    from test_defend import trained_tiny

    model, x, y = trained_tiny()
    ex = attack_explorer(model, x, y, pixels=3, popsize=12, maxiter=2, fitness="margin", seed=0, mutation="0.5, 1",
                         recombination=1.0, colors="extreme")
    ex.live_interval = 0.0
    for defense, cls in [("median filter", MedianFilter), ("JPEG", JpegDefense), ("bit-depth squeeze", BitDepth)]:
        ex.w_defense.value, ex.w_mode.value = defense, "adaptive"
        res = ex.run_attack()
        assert res is not None and res.settings["defense"] == defense
        guarded = cls(model).both(res.adversarial[None])[0][0]
        np.testing.assert_allclose(res.final_probs, guarded, rtol=1e-5, atol=1e-7)  # what the defense said
        np.testing.assert_allclose(ex.outcome.defended_adversarial, guarded, rtol=1e-5, atol=1e-7)
        assert res.queries > 1 and ex.history and ex.history[-1].queries == res.queries
        text = ex.out_result.outputs[2]["data"]["text/html"]
        assert f"Defense: <b>{defense}</b>, adaptive" in text
        assert ("the defense held" in text) == ex.outcome.held != ("the attack beat the defense" in text)
        assert (ex.outcome.held == (not res.success))
    ex.w_mode.value = "transfer"
    res = ex.run_attack()
    plain = model(res.adversarial[None].astype("float32")).numpy()[0]
    np.testing.assert_allclose(res.final_probs, plain, rtol=1e-4, atol=1e-6)  # transfer: the plain model was attacked


def test_extra_defenses_and_wrong_values_get_a_message():
    imgs, labels = faces()
    with pytest.raises(ValueError, match="defense name 'none' must be a new"):
        attack_explorer(fragile_logits, imgs, labels, defenses={"none": constant_probs})
    with pytest.raises(TypeError, match="must be a model"):
        attack_explorer(fragile_logits, imgs, labels, defenses={"adversarial training": 3})
    ex = attack_explorer(fragile_logits, imgs, labels, defenses={"adversarial training": constant_probs},
                         **{**GOOD, "maxiter": 3, "popsize": 10})
    assert ex.w_defense.options[-1] == "adversarial training"
    ex.w_defense.value = "adversarial training"
    res = ex.run_attack()
    assert res is not None and not res.success and "adversarial training" in ex.out_result.outputs[2]["data"]["text/html"]
    good = ex.values()
    ex.values = lambda: {**good, "defense": "blur"}  # a value the dropdown would never hold, typed from code
    assert ex.run_attack() is None
    assert "defense=&#x27;blur&#x27; is not one of the choices" in ex.out_result.outputs[0]["data"]["text/html"]
