"""The bottom layer: what every other package may use and nothing here may import from them.

errors (one-line user errors), files (JSON lines in and out), config (dataclass options = CLI
flags), stats (confidence intervals, classification metrics), batching (tokenised examples with
exact answer masks), verdict (reading a label out of text), generation (batched generate), and
run_record (what a finished run leaves behind for the next stage).
"""
