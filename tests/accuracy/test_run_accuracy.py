#!/usr/bin/python3
"""Unit tests of run_accuracy: the paired comparison, the strip/restore of per-face answers that --rescore relies on,
the trials' parsing and table, and the copy of the binaries a run starts. Needs no data, model or server."""
import math
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run_accuracy as ra  # noqa: E402


def answer(image, age, gender, ethnicity):
    """An answer that predicts `gender` and `ethnicity` with probability 0.9 and `age` years."""
    g = [0.1, 0.1]
    g[gender] = 0.9
    e = [0.025] * 5
    e[ethnicity] = 0.9
    return {"image": image, "age_years": age, "gender_probabilities": g, "ethnicity_probabilities": e}


# File names carry the truth: age 30, gender 1, ethnicity 2 (and 40, 0, 0 for the last).
FACES = ["30_1_2_a.jpg.chip.jpg", "30_1_2_b.jpg.chip.jpg", "30_1_2_c.jpg.chip.jpg", "40_0_0_d.jpg.chip.jpg"]


class PairedTest(unittest.TestCase):
    def setUp(self):
        # facet: right on gender for a, b, c; age errors 1, 2, 3. The reference: right on gender for a only; age
        # errors 2, 2, 5. Ethnicity: both right on a, only the reference right on b, neither on c.
        self.facet = [answer(FACES[0], 31, 1, 2), answer(FACES[1], 28, 1, 0), answer(FACES[2], 33, 1, 0)]
        self.reference = [answer(FACES[0], 32, 1, 2), answer(FACES[1], 32, 0, 2), answer(FACES[2], 35, 0, 1),
                          answer(FACES[3], 40, 0, 0)]  # a face facet did not answer: not paired

    def test_counts_faces_only_one_side_got_right(self):
        pair = ra.paired(self.facet, self.reference)
        self.assertEqual(pair["n"], 3)
        self.assertEqual((pair["gender"]["only_facet"], pair["gender"]["only_reference"]), (2, 0))
        self.assertAlmostEqual(pair["gender"]["z"], 2 / math.sqrt(2))
        self.assertEqual((pair["ethnicity"]["only_facet"], pair["ethnicity"]["only_reference"]), (0, 1))
        self.assertAlmostEqual(pair["ethnicity"]["z"], -1.0)

    def test_age_margin_is_the_mean_paired_difference_over_its_standard_error(self):
        age = ra.paired(self.facet, self.reference)["age"]
        # Differences -1, 0, -2: mean -1, sample deviation 1, standard error 1 / sqrt(3); facet better, so z > 0.
        self.assertAlmostEqual(age["mean_difference_years"], -1.0)
        self.assertAlmostEqual(age["standard_error"], 1 / math.sqrt(3))
        self.assertAlmostEqual(age["z"], math.sqrt(3))

    def test_no_discordant_faces_is_a_zero_margin(self):
        pair = ra.paired(self.facet, self.facet)
        self.assertEqual(pair["gender"], {"only_facet": 0, "only_reference": 0, "z": 0.0})
        self.assertEqual(pair["age"]["z"], 0.0)


    def test_no_common_faces_is_an_empty_pairing(self):
        pair = ra.paired(self.facet, [answer(FACES[3], 40, 0, 0)])
        self.assertEqual(pair["n"], 0)
        self.assertEqual(pair["age"], {"mean_difference_years": 0.0, "standard_error": 0.0, "z": 0.0})


class RescoreTest(unittest.TestCase):
    def test_restore_puts_back_what_strip_took(self):
        results = {"facet": {"predictions": [1], "predictions_flip": [2], "epochs": 3},
                   "reference": {"predictions": [4]},
                   "weighting_study": {"runs": {"equal": {"predictions": [5], "epochs": 8}}}}
        expected = {k: (dict(v) if isinstance(v, dict) else v) for k, v in results.items()}
        expected["weighting_study"] = {"runs": {"equal": {"predictions": [5], "epochs": 8}}}
        taken = ra.strip_predictions(results)
        self.assertNotIn("predictions", results["facet"])
        self.assertNotIn("predictions", results["weighting_study"]["runs"]["equal"])
        ra.restore_predictions(results, taken)
        self.assertEqual(results, expected)

    def test_score_pairs_and_keeps_a_carried_study(self):
        results = {"facet": {"predictions": self._answers(0), "predictions_flip": self._answers(1)},
                   "reference": {"predictions": self._answers(2)},
                   "weighting_study": {"runs": {"carried": {"metrics": {"n": 7}}}}}
        ra.score(results)
        self.assertEqual(results["facet"]["metrics"]["n"], 3)
        self.assertEqual(results["paired"]["n"], 3)
        self.assertEqual(results["paired_flip"]["n"], 3)
        self.assertEqual(results["weighting_study"]["runs"]["carried"]["metrics"], {"n": 7})

    @staticmethod
    def _answers(shift):
        return [answer(name, 30 + shift, 1, 2) for name in FACES[:3]]


class TrialsTest(unittest.TestCase):
    def test_parses_names_and_shell_quoted_flags(self):
        self.assertEqual(ra.parse_trials(["recipe=", "light=--flip-probability 1 --max-warp '0.1'"]),
                         [("recipe", []), ("light", ["--flip-probability", "1", "--max-warp", "0.1"])])

    def test_refuses_a_trial_without_a_name_or_a_name_given_twice(self):
        for specs in (["--no-augment"], ["=--no-augment"], ["a=", "a=--no-augment"], ["a=", " a =--no-augment"]):
            with self.assertRaises(SystemExit, msg=str(specs)):
                ra.parse_trials(specs)

    def test_table_pairs_every_trial_with_the_first(self):
        baseline = [answer(FACES[0], 31, 1, 2), answer(FACES[1], 28, 1, 0), answer(FACES[2], 33, 1, 0)]
        other = [answer(FACES[0], 32, 1, 2), answer(FACES[1], 32, 0, 2), answer(FACES[2], 35, 0, 1)]
        flipped = [answer(FACES[0], 30, 1, 2), answer(FACES[1], 28, 1, 2), answer(FACES[2], 34, 0, 2)]
        # The baseline as a trial of an older JSON, which has no flip-averaged figures.
        runs = {"recipe": {"flags": [], "train_wall_s": 600, "metrics": ra.metrics(baseline)},
                "no-augment": {"flags": ["--no-augment"], "train_wall_s": 540, "metrics": ra.metrics(other),
                               "paired_with_baseline": ra.paired(other, baseline), "metrics_flip": ra.metrics(flipped)}}
        rows = ra.trials_table({"epochs": 8, "machine": {"commit": "abc"}, "trials": runs}).splitlines()[4:]
        self.assertEqual(len(rows), 2)
        self.assertTrue(rows[0].startswith("| recipe | `` | 10.0 | 2.00 | 100.0% | 33.3% |"), rows[0])
        self.assertTrue(rows[0].endswith("| baseline | - |"), rows[0])
        # Against the baseline: gender 0 faces only this trial got right, 2 only the baseline (z -1.4); ethnicity
        # 1 against 0 (z 1.0); age errors 2, 2, 5 against 1, 2, 3: differences 1, 0, 2, mean 1 over a standard
        # error of 1 / sqrt(3), the trial worse (z -1.7).
        self.assertTrue(rows[1].startswith("| no-augment | `--no-augment` | 9.0 | 3.00 | 33.3% | 66.7% |"), rows[1])
        # Flip-averaged: age errors 0, 2, 4 (mean 2.00), gender 2 of 3, ethnicity 3 of 3.
        self.assertTrue(rows[1].endswith("| -1.7 / -1.4 / 1.0 | 2.00 / 66.7% / 100.0% |"), rows[1])


class EveryFaceTest(unittest.TestCase):
    def test_a_run_that_missed_faces_is_named_with_its_count(self):
        ra.require_every_face("trial recipe", 1500, 1500)
        with self.assertRaises(SystemExit) as raised:
            ra.require_every_face("trial recipe flip-averaged", 1499, 1500)
        self.assertEqual(str(raised.exception), "trial recipe flip-averaged answered 1499 of 1500 sample faces")


class SnapshotTest(unittest.TestCase):
    def setUp(self):
        self.build = tempfile.TemporaryDirectory()
        for folder, name in (("server", "facet-server"), ("client", "facetctl")):
            os.makedirs(os.path.join(self.build.name, folder))
            with open(os.path.join(self.build.name, folder, name), "w") as f:
                f.write(f"#!/bin/sh\necho {name}\n")
            os.chmod(os.path.join(self.build.name, folder, name), 0o755)

    def tearDown(self):
        self.build.cleanup()

    def test_a_rebuild_during_the_run_leaves_the_copies_it_runs_alone(self):
        binaries = ra.snapshot_binaries(self.build.name)
        self.assertNotEqual(os.path.realpath(binaries), os.path.realpath(self.build.name))
        os.remove(os.path.join(self.build.name, "client", "facetctl"))  # what a relink does first
        for folder, name in (("server", "facet-server"), ("client", "facetctl")):
            copy = os.path.join(binaries, folder, name)
            self.assertTrue(os.access(copy, os.X_OK), copy)
            with open(copy) as f:
                self.assertIn(name, f.read())

    def test_a_missing_binary_is_named(self):
        os.remove(os.path.join(self.build.name, "server", "facet-server"))
        with self.assertRaises(SystemExit) as raised:
            ra.snapshot_binaries(self.build.name)
        self.assertIn("facet-server is absent", str(raised.exception))


if __name__ == "__main__":
    unittest.main()
