"""Where every benchmark writes its result: ``<out>/<stem>.json`` (the data) and
``<out>/<stem>.md`` (the table printed to the terminal)."""

import json
import os


def save_report(out_dir, stem, data, text):
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, f"{stem}.json"), "w") as fh:
        json.dump(data, fh, indent=2)
    with open(os.path.join(out_dir, f"{stem}.md"), "w") as fh:
        fh.write(text + "\n")
