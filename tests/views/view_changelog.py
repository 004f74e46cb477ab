"""A view's changelog topic, `_evert.view.<name>`, folded back into rows.

Every change is a JSON record {"key": [...], "before": {...}|null, "after":
{...}|null, "source_offsets": ...} keyed by the view key (docs/SQL.md). The
changes of one key stay in one partition, so folding them in partition order
must give the view's rows, and each change's `before` must be exactly the row
the previous change of that key left (null when there was none).
"""

import json


class ChangelogFold:
    """The rows a changelog describes, {key tuple: row dict}, built one record
    at a time. `problems` collects records that contradict the fold (a
    `before` that is not the row last given for the key); `format_problems`
    collects records shaped otherwise than docs/SQL.md and docs/FORMATS.md say
    (a key that is not a JSON array, `source_offsets` missing, not
    {"<partition>": next offset} or going back, a record key that is not the
    change's key). The fold assumes the records of one changelog partition in
    order (the changelog has one). They are kept apart so that a test can check the rows first."""

    def __init__(self):
        self.rows = {}
        self.source_offsets = {}  # source partition -> the last next-offset seen
        self.records = 0
        self.problems = []
        self.format_problems = []

    def add(self, record_key, value, where):
        """Folds one changelog record: `record_key` is the Kafka record key
        (bytes or str or None), `value` its value (bytes or str)."""
        self.records += 1
        try:
            change = json.loads(value)
        except (TypeError, ValueError):
            self.problems.append(f"{where}: value is not JSON: {value!r:.200}")
            return
        missing = [f for f in ("key", "before", "after") if f not in change]
        if missing:
            self.problems.append(f"{where}: not a change record (missing {missing}): {change}")
            return
        self._check_source_offsets(change, where)
        key = change["key"]
        if not isinstance(key, list):
            self.format_problems.append(f"{where}: key {key!r} is not a JSON array")
            key = [_scalar(key)]  # fold it anyway, as the one-column key it stands for
        if record_key is not None:
            rk = record_key.decode() if isinstance(record_key, bytes) else record_key
            try:
                rk_json = json.loads(rk)
            except ValueError:
                rk_json = None
            if rk_json != change["key"]:
                self.format_problems.append(f"{where}: record key {rk!r} is not the JSON of the change's key "
                                            f"{change['key']!r}")
        key = tuple(key)
        before, after = change["before"], change["after"]
        if before is None and after is None:
            self.problems.append(f"{where}: a change with neither before nor after: {change}")
        if self.rows.get(key) != before:
            self.problems.append(f"{where}: key {list(key)}: before={before} but the fold holds {self.rows.get(key)}")
        if after is None:
            self.rows.pop(key, None)
        else:
            self.rows[key] = after

    def _check_source_offsets(self, change, where):
        """`source_offsets` is {"<partition>": next offset}; a changelog is
        written in the order its source was read, so (folded in order, one
        partition) no source partition's offset goes back."""
        offsets = change.get("source_offsets")
        if not isinstance(offsets, dict):
            self.format_problems.append(f"{where}: source_offsets {offsets!r} is not an object: {change}")
            return
        for partition, offset in offsets.items():
            if not partition.isdigit() or not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
                self.format_problems.append(f"{where}: source_offsets entry {partition!r}: {offset!r} is not "
                                            f"partition: next offset")
                continue
            last = self.source_offsets.get(partition, 0)
            if offset < last:
                self.format_problems.append(f"{where}: source partition {partition} went back from offset {last} "
                                            f"to {offset}")
            self.source_offsets[partition] = max(last, offset)


def _scalar(text):
    """A key given as text ("297") as the value it spells (297) when it is JSON."""
    try:
        return json.loads(text) if isinstance(text, str) else text
    except ValueError:
        return text


def rows_by_key(columns, rows, key_columns):
    """SELECT output as {key tuple: row dict}, to compare with a fold."""
    idx = [columns.index(c) for c in key_columns]
    out = {}
    for r in rows:
        out[tuple(r[i] for i in idx)] = dict(zip(columns, r))
    return out
