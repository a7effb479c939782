"""Alignment fine-tuning (AFT, Wang et al., 2023): the pipeline is sample -> align.

`reasonalign sample` draws k responses per training question from the SFT model and marks each
correct or not (groups.jsonl); `reasonalign align` then trains a fresh LoRA on top of the SFT
model so that it scores correct responses above incorrect ones (`reasonalign.losses`), and
`reasonalign eval --task ranking` measures how often it does on held-out groups.
"""
