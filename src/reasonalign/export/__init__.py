"""`reasonalign export`: an adapter (LoRA, and the SFT adapter an aligned one sits on) merged into a
standalone Hugging Face model folder with a model card, for serving stacks that load one folder.

config.py  ExportConfig (the command's options; no torch)
merge.py   merge, save (safetensors, tokenizer, generation config), verify by label log-likelihoods
card.py    README.md in the Hub's format, from run.json, the run's summary and its eval folders
"""
