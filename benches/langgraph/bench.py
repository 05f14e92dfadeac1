"""LangGraph baseline for Weir's workflow benchmark: a 5-node linear graph of trivial
functions, checkpointed to SQLite with SqliteSaver, one run (thread) per input.

Usage: bench.py [RUNS] [SYNCHRONOUS]. SYNCHRONOUS is SQLite's `synchronous` setting for the
checkpointer's connection: FULL (SQLite's default, which SqliteSaver keeps: an fsync per
commit) or NORMAL (no fsync per commit in WAL mode, the durability of Weir's `normal`).
Prints runs_per_sec=<float>."""
import os
import sqlite3
import sys
import tempfile
import time
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
    with tempfile.TemporaryDirectory() as tmp:
        conn = sqlite3.connect(os.path.join(tmp, "langgraph.db"), check_same_thread=False)
        conn.execute(f"PRAGMA synchronous={synchronous}")
        app = build(SqliteSaver(conn))
        for i in range(10):
            app.invoke({"value": {"ticket": i}}, {"configurable": {"thread_id": f"warmup-{i}"}})
        start = time.perf_counter()
        for i in range(runs):
            app.invoke({"value": {"ticket": i}}, {"configurable": {"thread_id": f"run-{i}"}})
        elapsed = time.perf_counter() - start
        print(f"runs_per_sec={runs / elapsed:.1f}")


if __name__ == "__main__":
    main()
