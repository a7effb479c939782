"""What `reasonalign train` (SFT) and `reasonalign align` share: the options (`config.py`) and the
setup -> train -> save recipe skeleton (`recipe.py`). Each command is a subclass that says only
what is its own: its data, its trainer, what it measures and records."""
