"""LangGraph baseline for Weir's workflow benchmark: a 5-node linear graph of trivial
functions, checkpointed to SQLite with SqliteSaver, one run (thread) per input.

Usage: bench.py [RUNS] [SYNCHRONOUS] [CONCURRENCY]. SYNCHRONOUS is SQLite's `synchronous`
setting for the checkpointer's connection: FULL (SQLite's default, which SqliteSaver keeps:
an fsync per commit) or NORMAL (no fsync per commit in WAL mode, the durability of Weir's
`normal`). CONCURRENCY is how many runs are in flight at once, each on a worker thread of a
pool sharing the one checkpointer (1, the default, runs them one after another on the main
thread, as the sequential rows always have). Prints runs_per_sec=<float>."""
import os
import sqlite3
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TypedDict

from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, StateGraph


class State(TypedDict):
    value: dict


def step(state: State) -> State:
    return {"value": state["value"]}


def build(saver):
    graph = StateGraph(State)
    for i in range(5):
        graph.add_node(f"s{i}", step)
    graph.add_edge(START, "s0")
    for i in range(4):
        graph.add_edge(f"s{i}", f"s{i + 1}")
    graph.add_edge("s4", END)
    return graph.compile(checkpointer=saver)


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    synchronous = sys.argv[2].upper() if len(sys.argv) > 2 else "FULL"
    if synchronous not in ("FULL", "NORMAL"):
        sys.exit(f"error: SYNCHRONOUS must be FULL or NORMAL, not {synchronous!r}")
    concurrency = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    if concurrency < 1:
        sys.exit(f"error: CONCURRENCY must be at least 1, not {concurrency}")
    with tempfile.TemporaryDirectory() as tmp:
        conn = sqlite3.connect(os.path.join(tmp, "langgraph.db"), check_same_thread=False)
        conn.execute(f"PRAGMA synchronous={synchronous}")
        app = build(SqliteSaver(conn))
        for i in range(10):
            app.invoke({"value": {"ticket": i}}, {"configurable": {"thread_id": f"warmup-{i}"}})

        def run(i: int) -> None:
            app.invoke({"value": {"ticket": i}}, {"configurable": {"thread_id": f"run-{i}"}})

        start = time.perf_counter()
        if concurrency == 1:
            for i in range(runs):
                run(i)
        else:
            with ThreadPoolExecutor(concurrency) as pool:
                list(pool.map(run, range(runs)))
        elapsed = time.perf_counter() - start
        print(f"runs_per_sec={runs / elapsed:.1f}")


if __name__ == "__main__":
    main()
