#!/usr/bin/env python3
"""Fetch AlphaEdit's general-ability task files and write them as JSON for `deltaedit glue --data DIR`.

The harness (AlphaEdit repository, glue_eval/dataset/*.pkl) ships its items as pickled Python lists
of dicts (evaluation spec section 5.2). They are read here with a restricted unpickler that refuses to
import any class, so a pickle can only yield lists, dicts, strings and numbers, and written as
JSON arrays with the same fields:

    python3 tools/glue/convert_pickles.py OUT_DIR                       # download (needs internet)
    python3 tools/glue/convert_pickles.py OUT_DIR --from DIR_WITH_PKLS   # convert local copies

Standard library only.
"""
import argparse
import io
import json
import os
import pickle
import sys
import urllib.request

BASE_URL = "https://raw.githubusercontent.com/jianghoucheng/AlphaEdit/main/glue_eval/dataset/"
FILES = ["sst2", "mrpc", "cola", "rte", "mmlu", "nli"]


class SafeUnpickler(pickle.Unpickler):
    """Builds only the built-in containers and scalars: any class reference is an error."""

    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: the task files hold only lists, dicts, strings and numbers")


def read_source(src, name):
    if src.startswith("http://") or src.startswith("https://"):
        with urllib.request.urlopen(src + name + ".pkl", timeout=60) as r:
            return r.read()
    with open(os.path.join(src, name + ".pkl"), "rb") as f:
        return f.read()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", help="output directory for sst2.json, mrpc.json, cola.json, rte.json, mmlu.json, nli.json")
    ap.add_argument("--from", dest="src", default=BASE_URL, help="directory of the .pkl files, or a base URL (default: the AlphaEdit repository)")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    for name in FILES:
        data = SafeUnpickler(io.BytesIO(read_source(a.src, name))).load()
        if not isinstance(data, list) or not all(isinstance(x, dict) for x in data):
            sys.exit(f"{name}.pkl: expected a list of dicts, got {type(data).__name__}")
        with open(os.path.join(a.out, name + ".json"), "w", encoding="utf-8") as f:
            json.dump(data, f, ensure_ascii=False)
        print(f"{name}.json: {len(data)} items")


if __name__ == "__main__":
    main()
