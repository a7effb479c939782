"""Random-init Llama-architecture models with SmolLM2's real tokenizer, for timing where no weights can be fetched.

The numbers they give are speeds and code paths, never quality: `--random-init 1b` has Llama-3.2-1B's
dimensions (1.07B parameters with SmolLM2's 49,152-token vocabulary), `7b` Llama-2-7B's (6.88B), `tiny`
a 2-layer model that runs the same code on a CPU in seconds. The tokenizer comes from the offline model
package (`reasonalign.models.resolve`), so nothing here needs the network.
"""

from pathlib import Path

import torch

SHAPES = {  # hidden, intermediate, layers, attention heads, key/value heads, tied embeddings
    "tiny": dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                 num_key_value_heads=1, tie_word_embeddings=True),
    "1b": dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32,
               num_key_value_heads=8, tie_word_embeddings=True, rope_theta=500000.0),
    "7b": dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
               num_key_value_heads=32, tie_word_embeddings=False),
}


def build(shape: str, folder: str | Path, device: str | None = None) -> str:
    """Write a random-init model of `shape` (bf16 on a GPU, fp32 on a CPU) and the SmolLM2 tokenizer to `folder`."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from reasonalign.models import load_tokenizer

    folder = Path(folder)
    if (folder / "config.json").is_file():
        return str(folder)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    tokenizer = load_tokenizer("smollm2-135m-instruct")
    config = LlamaConfig(vocab_size=len(tokenizer), max_position_embeddings=2048, initializer_range=0.02,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id, **SHAPES[shape])
    torch.manual_seed(0)
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    with torch.device(device):
        model = LlamaForCausalLM._from_config(config, dtype=dtype)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)
