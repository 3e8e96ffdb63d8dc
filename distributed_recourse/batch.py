"""Batch explanation on Ray Data: a CSV or Parquet file (or a folder of them) in, Parquet out.

Flow of `explain_batch`: plan (list the input files, count their rows, fail fast on a missing
column; see what an earlier attempt on the same output committed) -> `InputFiles` streams the
rows not yet committed, in blocks -> `ExplainBatches` actors (one per CPU, the explainer sent
once through the object store) validate, assign scopes and choose counterfactuals
(`Explainer.explain`) -> this process commits each run of consecutive rows of an input file
as the explained blocks stream in -> manifest.json. Ray Data streams: memory holds a few
blocks per operator (`STORE_BYTES` at most), whatever the input's size.

Output folder:
    job.json        what this output is of (run, input files, alternatives); a rerun must match
    data/           explained rows: part-FFFFF-SSSSSSSSSSSS-EEEEEEEEEEEE.parquet holds rows
                    [S, E) of input file F (job.json order) that passed validation
    rejected/       the same names: rows of that range that failed validation, their values as
                    text and the `reason`
    manifest.json   written last: rows read = written + rejected, rows per status, rows per
                    Ray node that explained them

Exactly once: a part is written under a hidden temporary name and renamed; its rejected part
first, its data part last, so the data part's rename commits the range. A rerun after a crash
deletes temporary files, rejected parts whose data part is missing and parts whose ranges
overlap (none should, but one would otherwise fail every rerun), reads only the rows of no
committed range, and checks at the end that the committed ranges tile every input file.

Reading and writing run on the driver's node (the input and OUT need only exist there); the
explaining actors spread over the cluster.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pv
import pyarrow.parquet as pq
from ray.data import Datasource, ExecutionResources, ReadTask
from ray.data.block import BlockMetadata

from distributed_recourse.config import ConfigError
from distributed_recourse.data.schema import SchemaError

if TYPE_CHECKING:  # imported where rows are explained: read and write workers do without
    from distributed_recourse.explain import Explainer  # sklearn and the model (~60 MB each)

PART = re.compile(r"part-(\d{5})-(\d{12})-(\d{12})\.parquet")
RAW = "raw:"
"""Prefix, between the actors and the sink, of a rejected row's input values as text."""
SOURCE, ROW = "source", "row"
"""Output columns naming a row's input file (relative to the input) and its row there (from 0)."""
NODE = "node"
"""Column, between the actors and the sink, of the Ray node that explained the row; each part
keeps its rows per node in its Parquet metadata (`EXPLAINED_BY`), the manifest adds them up."""
EXPLAINED_BY = b"recourse.explained_by"
STORE_BYTES = 256 * 2**20
"""Object store the pipeline's blocks may hold at once: reading outpaces explaining, and Ray
Data's default budget (half the object store, GBs) would let it queue that much ahead. A few
blocks per operator fit (a 20,000-row Adult block is ~6 MB explained)."""
ACTOR_START_S = 600
"""How long the explaining actors may take to start (each loads the explainer) before the job
fails with Ray Data's timeout error, rather than waiting for ever on a pool it cannot place."""


# --------------------------------------------------------------------- input files
@dataclass(frozen=True)
class InputFile:
    path: str
    source: str
    """Name relative to the input folder: the `source` of its rows."""
    format: str
    rows: int
    size: int
    mtime_ns: int


def input_format(path: Path) -> str | None:
    suffixes = "".join(path.suffixes).lower()
    if suffixes.endswith(".parquet"):
        return "parquet"
    if ".csv" in suffixes:
        return "csv"
    return None


def csv_batches(path: str, columns: list[str], block_bytes: int = 1 << 24) -> Iterator[pa.RecordBatch]:
    """The file's `columns`, streamed, every value as text (empty and `NA`-like fields are
    missing): a bad value then rejects its row instead of failing type inference for the file."""
    try:
        reader = pv.open_csv(
            pa.input_stream(path),  # decompresses by extension
            read_options=pv.ReadOptions(block_size=block_bytes),
            convert_options=pv.ConvertOptions(include_columns=columns, strings_can_be_null=True,
                                              column_types={c: pa.string() for c in columns}),
        )
        yield from reader
    except pa.ArrowInvalid as error:
        raise SchemaError(f"{path}: not a readable CSV file: {error}") from None


def plan_inputs(input: str | Path, columns: list[str]) -> list[InputFile]:
    """The input's files (a file, or a folder's CSV/Parquet files, hidden ones left out), with
    their rows counted; a file without one of `columns` is an error naming both."""
    root = Path(input).resolve()
    if root.is_dir():
        paths = sorted(p for p in root.rglob("*") if p.is_file() and input_format(p)
                       and not any(part.startswith((".", "_")) for part in p.relative_to(root).parts))
    elif root.is_file() and input_format(root):
        paths = [root]
    else:
        raise SchemaError(f"input {input}: not a CSV or Parquet file, nor a folder of them")
    if not paths:
        raise SchemaError(f"input {input}: the folder holds no CSV or Parquet file")
    files = []
    for path in paths:
        kind = input_format(path)
        if kind == "parquet":
            meta = pq.ParquetFile(path)
            present, rows = meta.schema_arrow.names, meta.metadata.num_rows
        else:
            try:
                present = pv.open_csv(pa.input_stream(str(path))).schema.names
            except pa.ArrowInvalid as error:
                raise SchemaError(f"{path}: not a readable CSV file: {error}") from None
        missing = [c for c in columns if c not in present]
        if missing:
            raise SchemaError(f"{path}: column {missing[0]!r} is missing")
        if kind == "csv":
            rows = sum(len(batch) for batch in csv_batches(str(path), columns[:1]))
        stat = path.stat()
        source = path.name if path == root else str(path.relative_to(root))
        files.append(InputFile(str(path), source, kind, rows, stat.st_size, stat.st_mtime_ns))
    return files


def subtract(total: int, done: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The ranges of [0, total) outside the sorted, disjoint `done` ranges."""
    pending, at = [], 0
    for start, stop in done:
        if start > at:
            pending.append((at, start))
        at = max(at, stop)
    if at < total:
        pending.append((at, total))
    return pending


def pending_slices(offset: int, length: int, pending: list[tuple[int, int]]) -> Iterator[tuple[int, int]]:
    """Within rows [offset, offset + length), the (start, stop) of the pending ones."""
    for start, stop in pending:
        lo, hi = max(start, offset), min(stop, offset + length)
        if lo < hi:
            yield lo, hi


class InputFiles(Datasource):
    """The input rows no committed part holds, each with its `source` and `row`, which
    exactly-once resumption needs and Ray Data's own readers do not give. Parquet is read by
    row groups (a task per run of row groups of about `block_rows` rows), CSV by file
    (streamed, as text), both in blocks of at most about `block_rows` rows."""

    def __init__(self, files: list[InputFile], pending: dict[int, list[tuple[int, int]]],
                 columns: list[str], block_rows: int) -> None:
        super().__init__()
        self.files, self.pending, self.columns, self.block_rows = files, pending, columns, block_rows

    def estimate_inmemory_data_size(self) -> int:
        rows = sum(stop - start for ranges in self.pending.values() for start, stop in ranges)
        return rows * (len(self.columns) + 2) * 8

    @property
    def supports_distributed_reads(self) -> bool:
        return False

    def get_read_tasks(self, parallelism: int, per_task_row_limit: int | None = None,
                       data_context: Any = None) -> list[ReadTask]:
        tasks = []
        for index, file in enumerate(self.files):
            pending = self.pending.get(index, [])
            for first, rows, groups in self.chunks(file, pending):
                todo = sum(hi - lo for lo, hi in pending_slices(first, rows, pending))
                meta = BlockMetadata(num_rows=todo, size_bytes=None, exec_stats=None,
                                     input_files=[file.path])
                tasks.append(ReadTask(
                    lambda f=file, p=pending, g=groups, o=first: self.read(f, p, g, o),
                    meta, per_task_row_limit=per_task_row_limit))
        return tasks

    def chunks(self, file: InputFile, pending: list[tuple[int, int]]) -> Iterator[tuple]:
        """(first row, rows, row groups) of each read task with pending rows."""
        if not pending:
            return
        if file.format == "csv":
            yield 0, file.rows, None
            return
        meta = pq.ParquetFile(file.path).metadata
        first, groups, rows = 0, [], 0
        for g in range(meta.num_row_groups):
            groups.append(g)
            rows += meta.row_group(g).num_rows
            if rows >= self.block_rows or g == meta.num_row_groups - 1:
                if any(True for _ in pending_slices(first, rows, pending)):
                    yield first, rows, groups
                first, groups, rows = first + rows, [], 0

    def read(self, file: InputFile, pending: list[tuple[int, int]], groups: list[int] | None,
             offset: int) -> Iterator[pa.Table]:
        if file.format == "csv":
            batches = csv_batches(file.path, self.columns,
                                  max(1 << 20, self.block_rows * file.size // max(file.rows, 1)))
        else:
            batches = pq.ParquetFile(file.path).iter_batches(
                batch_size=self.block_rows, row_groups=groups, columns=self.columns)
        for batch in batches:
            for lo, hi in pending_slices(offset, len(batch), pending):
                part = pa.Table.from_batches([batch.slice(lo - offset, hi - lo)])
                part = part.append_column(SOURCE, pa.repeat(file.source, hi - lo))
                yield part.append_column(ROW, pa.array(np.arange(lo, hi), pa.int64()))
            offset += len(batch)


# --------------------------------------------------------------------- explaining
def feature_type(explainer: Explainer, column: str) -> pa.DataType:
    """A feature's type as `FeatureSpace.decode` gives it back."""
    space = explainer.space
    if column not in space.categories:
        return pa.float64()
    if column in space.category_dtypes:
        return pa.from_numpy_dtype(np.dtype(space.category_dtypes[column]))
    return pa.string()


def output_schema(explainer: Explainer, alternatives: int) -> pa.Schema:
    """The actors' output: `Explainer.explain`'s columns after `source` and `row`, then the
    rejected rows' input values as text; one schema for every block, whatever its rows."""
    from distributed_recourse.explain import CF

    space = explainer.space
    fields = [(SOURCE, pa.string()), (ROW, pa.int64()),
              *((c, feature_type(explainer, c)) for c in space.columns),
              ("scope", pa.string()), ("group", pa.string()), ("status", pa.string()),
              ("reason", pa.string()), ("flipped", pa.bool_()), ("action", pa.int64()),
              ("action_text", pa.string()),
              *((CF + name, feature_type(explainer, name)) for name in explainer.actions.names),
              ("gower", pa.float64()), ("sparsity", pa.int64())]
    for i in range(1, 1 + alternatives):
        fields += [(f"alternative_{i}", pa.int64()), (f"alternative_{i}_text", pa.string()),
                   (f"alternative_{i}_gower", pa.float64())]
    fields += [(RAW + c, pa.string()) for c in space.columns]
    return pa.schema([*fields, (NODE, pa.string())])


class ExplainBatches:
    """Ray Data actor (`map_batches`): keeps one explainer for all its batches, and says which
    node explained each row (the `NODE` column, which the driver moves into the manifest)."""

    def __init__(self, explainer: Explainer, alternatives: int) -> None:
        import ray

        self.explainer = explainer
        self.alternatives = alternatives
        self.schema = output_schema(explainer, alternatives)
        self.fields = pa.schema([f for f in self.schema if f.name not in (SOURCE, ROW, NODE)
                                    and not f.name.startswith(RAW)])
        self.node = ray.get_runtime_context().get_node_id()

    def __call__(self, batch: pd.DataFrame) -> pa.Table:
        n = len(batch)
        explained = self.explainer.explained(batch, self.alternatives)
        rejected = np.flatnonzero(explained["reason"] != None)  # noqa: E711 (elementwise)
        columns = {SOURCE: pa.array(batch[SOURCE], pa.string()), ROW: pa.array(batch[ROW], pa.int64()),
                   **{f.name: pa.array(explained[f.name], f.type, from_pandas=True) for f in self.fields}}
        for column in self.explainer.space.columns:
            text = np.full(n, None, dtype=object)
            text[rejected] = [None if pd.isna(v) else str(v) for v in batch[column].iloc[rejected]]
            columns[RAW + column] = pa.array(text, pa.string()) if len(rejected) else pa.nulls(n, pa.string())
        columns[NODE] = pa.repeat(self.node, n)
        return pa.Table.from_pydict(columns, schema=self.schema)


# --------------------------------------------------------------------- committing
def part_name(file: int, start: int, stop: int) -> str:
    return f"part-{file:05d}-{start:012d}-{stop:012d}.parquet"


def atomic_parquet(table: pa.Table, path: Path) -> None:
    """Written under a hidden name (readers skip it), then renamed: never seen half-written.
    Without column statistics, which cost a fifth of the writing and serve no reader here."""
    partial = path.with_name(f".{path.name}.{uuid.uuid4().hex}.partial")
    pq.write_table(table, partial, write_statistics=False)
    os.replace(partial, path)


def consecutive_runs(table: pa.Table) -> Iterator[tuple[str, int, int, pa.Table]]:
    """(source, first row, stop row, rows) of each stretch of the table holding consecutive
    rows of one input file. Blocks come in reading order (one run, or a few); in any other
    order the runs would just be more, and still disjoint."""
    encoded = table[SOURCE].combine_chunks().dictionary_encode()
    sources, names = encoded.indices.to_numpy(), encoded.dictionary.to_pylist()
    rows = table[ROW].to_numpy()
    breaks = np.flatnonzero((sources[1:] != sources[:-1]) | (rows[1:] != rows[:-1] + 1)) + 1
    for start, stop in zip([0, *breaks], [*breaks, len(table)], strict=True):
        yield (names[sources[start]], int(rows[start]), int(rows[stop - 1]) + 1,
               table.slice(start, stop - start))


def commit(table: pa.Table, output: Path, files: dict[str, int], columns: list[str]) -> None:
    """Commit each run of consecutive rows of an input file in an explained block: its rejected
    rows, then its explained rows (the commit point; written even when empty, and carrying in
    its metadata how many of the range's rows each node explained)."""
    raw = [RAW + c for c in columns]
    for source, start, stop, rows in consecutive_runs(table):
        name = part_name(files[source], start, stop)
        nodes = {str(count["values"]): int(count["counts"])
                 for count in pc.value_counts(rows[NODE].combine_chunks()).to_pylist()}
        rows = rows.drop_columns([NODE])
        if rows["reason"].null_count < len(rows):  # some rows were rejected
            is_rejected = pc.is_valid(rows["reason"])
            rejected = rows.filter(is_rejected)
            atomic_parquet(rejected.select([SOURCE, ROW, "reason", *raw])
                           .rename_columns([SOURCE, ROW, "reason", *columns]),
                           output / "rejected" / name)
            rows = rows.filter(pc.invert(is_rejected))
        data = rows.drop_columns(["reason", *raw])
        atomic_parquet(data.replace_schema_metadata({EXPLAINED_BY: json.dumps(nodes)}),
                       output / "data" / name)


def committed(output: Path) -> dict[int, list[tuple[int, int]]]:
    """Per input file, the sorted row ranges of the committed data parts."""
    ranges: dict[int, list[tuple[int, int]]] = {}
    for path in (output / "data").glob("part-*.parquet"):
        match = PART.fullmatch(path.name)
        if match:
            file, start, stop = map(int, match.groups())
            ranges.setdefault(file, []).append((start, stop))
    return {file: sorted(found) for file, found in ranges.items()}


def recover(output: Path) -> None:
    """Undo what a crashed attempt left uncommitted: temporary files, and rejected parts whose
    data part (the commit) was never renamed into place; and drop parts that overlap another,
    so that their rows are explained again, once."""
    for folder in ("data", "rejected"):
        (output / folder).mkdir(parents=True, exist_ok=True)
        for partial in (output / folder).glob(".*.partial"):
            partial.unlink()
    for file, ranges in committed(output).items():
        for start, stop in ranges:
            if any(a < stop and start < b for a, b in ranges if (a, b) != (start, stop)):
                (output / "data" / part_name(file, start, stop)).unlink()
    for part in (output / "rejected").glob("part-*.parquet"):
        if not (output / "data" / part.name).exists():
            part.unlink()


def claim(output: Path, job: dict[str, Any]) -> None:
    """Record what this output is of; a rerun must be the same job, or it would mix outputs."""
    path = output / "job.json"
    if path.exists():
        before = json.loads(path.read_text())
        differ = [key for key in job if before.get(key) != job[key]]
        if differ:
            raise ConfigError(f"{output} holds the output of another job (its {differ} differ); "
                              "use a new --output folder or delete it")
        return
    partial = path.with_name(".job.json.partial")
    partial.write_text(json.dumps(job, indent=2))
    os.replace(partial, path)


# --------------------------------------------------------------------- the job
def explaining_slots(resources: dict[str, float], worker_resources: dict[str, float] | None) -> int:
    """How many explaining actors (a CPU and `worker_resources` each) `resources` can hold."""
    return min([int(resources.get("CPU", 0)), *(
        int(resources.get(name, 0) // amount) for name, amount in (worker_resources or {}).items()
        if amount > 0)])


def explain_batch(
    run: str | Path, input: str | Path, output: str | Path, address: str | None = None,
    alternatives: int = 2, block_rows: int = 20_000,
    worker_resources: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Explain every row of `input` with the run's (or saved explainer's) action sets into
    `output`; finish an interrupted job there. Returns the manifest, also written last to
    `output/manifest.json`. `worker_resources`: custom Ray resources each explaining actor
    asks for (e.g. `{"explain_slot": 1}` to place them on the nodes that offer it)."""
    from distributed_recourse.explain import Explainer
    from distributed_recourse.runtime import connect

    started = time.time()
    explainer = Explainer.open(run)
    columns = list(dict.fromkeys([*explainer.space.columns, *explainer.schema.protected.columns]))
    files = plan_inputs(input, columns)
    output = Path(output).resolve()
    output.mkdir(parents=True, exist_ok=True)
    with open(output / ".lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(f"another job is writing {output}") from None
        claim(output, {"run": str(Path(run).resolve()), "alternatives": alternatives,
                       "sets": explainer.sets.tolist(), "files": [asdict(f) for f in files]})
        recover(output)
        done = committed(output)
        pending = {i: subtract(f.rows, done.get(i, [])) for i, f in enumerate(files)}
        todo = sum(stop - start for ranges in pending.values() for start, stop in ranges)
        workers = 0
        if todo:
            import ray.data

            ray = connect(address)
            blocks = -(-todo // block_rows)
            offered = ray.cluster_resources()
            if explaining_slots(offered, worker_resources) < 1:
                raise ConfigError(f"no node offers a CPU and the --worker-resources {worker_resources} "
                                  f"an explaining worker asks for (the cluster offers {offered})")
            # As many actors as are free now (one at least, which waits for its slot): every
            # actor must start before the first block goes out, and one that other work keeps
            # from starting would hold the job.
            workers = max(1, min(blocks, explaining_slots(ray.available_resources(),
                                                          worker_resources)))
            # An explaining actor per CPU (fewer for fewer blocks), each owning one. Reading
            # costs little beside the model (0.4 CPU-s per million Adult rows): one task at a
            # time, owning no CPU, so that it runs on this node even when, as Ray advises for
            # large clusters, the head offers none (Ray Data pins a driver-local read there).
            # This process commits the explained blocks as they stream in (no write worker,
            # and OUT need only exist here). Blocks of `block_rows` rows (Ray Data merges a
            # read task's output, and would split it to reach 200 blocks): a forest predicts a
            # row 20% slower in calls of 5,000 rows than of 20,000.
            rows = ray.data.read_datasource(InputFiles(files, pending, columns, block_rows),
                                            override_num_blocks=blocks, num_cpus=0, concurrency=1)
            explained = rows.map_batches(
                ExplainBatches, fn_constructor_args=(explainer, alternatives), batch_format="pandas",
                batch_size=None, compute=ray.data.ActorPoolStrategy(size=workers), num_cpus=1,
                resources=worker_resources or None)
            explained.context.execution_options.resource_limits = ExecutionResources.for_limits(
                object_store_memory=STORE_BYTES)
            # Every explaining actor is up before the first block goes out: Ray Data otherwise
            # starts them asynchronously, and on a loaded cluster the first actor ready could
            # take every block while the others still load the explainer.
            explained.context.wait_for_min_actors_s = ACTOR_START_S
            sources = {f.source: i for i, f in enumerate(files)}
            for block in explained.iter_batches(batch_size=None, batch_format="pyarrow"):
                commit(block, output, sources, columns)
        manifest = summarize(output, files, run, input, todo, workers, time.time() - started)
        partial = output / ".manifest.json.partial"
        partial.write_text(json.dumps(manifest, indent=2))
        os.replace(partial, output / "manifest.json")
    return manifest


def summarize(output: Path, files: list[InputFile], run: str | Path, input: str | Path,
              this_run: int, workers: int, seconds: float) -> dict[str, Any]:
    """Counts from the committed parts, after checking that they hold every input row once.
    `workers`: the explaining actors this run started. Ray Data gives each block to the
    first idle one, so when blocks are explained faster than they are read, one of them can
    explain every block: `nodes` says who did."""
    done = committed(output)
    for i, file in enumerate(files):
        ranges = done.get(i, [])
        tiled = [start for start, _ in ranges] == [0, *(stop for _, stop in ranges[:-1])]
        if not tiled or (ranges[-1][1] if ranges else 0) != file.rows:
            raise RuntimeError(f"{output}: the committed parts of {file.source} do not hold its "
                               f"{file.rows} rows exactly once: {ranges}")
    data = sorted((output / "data").glob("part-*.parquet"))
    rejected = sorted((output / "rejected").glob("part-*.parquet"))
    metadata = [pq.read_metadata(p) for p in data]
    written = sum(meta.num_rows for meta in metadata)
    nodes: dict[str, int] = {}
    for meta in metadata:
        for node, rows in json.loads((meta.metadata or {}).get(EXPLAINED_BY, b"{}")).items():
            nodes[node] = nodes.get(node, 0) + rows
    refused = sum(pq.read_metadata(p).num_rows for p in rejected)
    read = sum(f.rows for f in files)
    if read != written + refused:
        raise RuntimeError(f"{output}: {read} rows read but {written} written and {refused} rejected")
    statuses = pa.concat_tables([pq.read_table(p, columns=["status"]) for p in data]) if data else None
    counts = {} if statuses is None else {
        str(row["values"]): int(row["counts"])
        for row in pc.value_counts(statuses["status"].combine_chunks()).to_pylist()}
    return {
        "run": str(run), "input": str(input), "output": str(output),
        "rows_read": read, "rows_written": written, "rows_rejected": refused,
        "status": counts,
        "nodes": nodes,
        "files": {"inputs": len(files), "data": len(data), "rejected": len(rejected)},
        "rows_this_run": this_run,
        "workers": workers,
        "seconds": round(seconds, 3),
        "rows_per_s": round(this_run / seconds, 1) if seconds else None,
    }
