#!/usr/bin/python3
"""Per-image answers of a reference checkpoint (mtl_reference.py train --save), with the reference's own
preprocessing, so that `make accuracy` can break its errors down exactly as it does facet's.

usage: reference_predict.py REFERENCE.py CHECKPOINT FOLDER [--arch resnet34] [--size 64] [--threads 2]
Prints one JSON object per image: image, age_years, gender_probabilities, ethnicity_probabilities.
"""
import argparse
import importlib.util
import json
import os
import sys

import torch


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("reference")
    parser.add_argument("checkpoint")
    parser.add_argument("folder")
    parser.add_argument("--arch", default="resnet34")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    spec = importlib.util.spec_from_file_location("mtl_reference", args.reference)
    ref = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ref)
    ref.set_threads(args.threads)
    state = torch.load(args.checkpoint, map_location="cpu")
    state.pop("log_vars")
    model = ref.MultiTaskNet(args.arch)
    model.load_state_dict(state)
    model.eval()
    items, _ = ref.list_utk_folder(args.folder)
    loader_args = argparse.Namespace(size=args.size, batch=64, workers=0)
    loader = ref.make_loader(items, loader_args, augment=False, shuffle=False, seed=0)
    index = 0
    with torch.no_grad():
        for x, _, _, _ in loader:
            age, gender, race = model(x)
            years = torch.exp(age * ref.AGE_SCALE)
            pg, pr = torch.softmax(gender, 1), torch.softmax(race, 1)
            for i in range(len(x)):
                print(json.dumps({"image": os.path.basename(items[index][0]), "age_years": years[i].item(),
                                  "gender_probabilities": pg[i].tolist(),
                                  "ethnicity_probabilities": pr[i].tolist()}))
                index += 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
