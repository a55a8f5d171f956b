"""Scale benchmark harness: the simulated cluster and the real metrics server, each in its own
process, measured from the outside (the server's `/metrics`, `/proc`, and API latency under load).

`python -m bench run --nodes N --pods-per-node M --resolution 15s --cycles K --out DIR` runs one
scenario and writes `DIR/result-<N>x<M>.json`; `python -m bench report DIR` renders every result
in DIR as a markdown table and a PNG plot. See docs/performance.md.
"""
