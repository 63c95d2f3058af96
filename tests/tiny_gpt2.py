"""Build a tiny GPT-2 with a locally trained tokenizer, saved as safetensors: no hub download needed."""

from __future__ import annotations

from pathlib import Path

CORPUS = [
    "Once upon a time there was a small model that served predictions.",
    "The quick brown fox jumps over the lazy dog.",
    "gpuserve renders one model for Modal, RunPod, Replicate and Docker.",
    "A tiny language model still generates tokens, one at a time.",
]


def build_tiny_gpt2(directory: Path) -> Path:
    """Write a 2-layer GPT-2 and its BPE tokenizer to directory (about 0.5 MB) and return it."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<unk>", "<|endoftext|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tokenizer.train_from_iterator(CORPUS, trainer=trainer)
    # transformers leaves this constructor unannotated; nothing on our side can type it.
    fast = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=tokenizer, unk_token="<unk>", bos_token="<|endoftext|>", eos_token="<|endoftext|>"
    )
    eos = fast.convert_tokens_to_ids("<|endoftext|>")
    assert isinstance(eos, int)  # one token in, one id out
    config = GPT2Config(
        n_layer=2, n_head=2, n_embd=64, n_positions=128, vocab_size=len(fast), bos_token_id=eos, eos_token_id=eos
    )
    torch.manual_seed(0)
    model = GPT2LMHeadModel(config)
    model.save_pretrained(directory, safe_serialization=True)
    fast.save_pretrained(directory)
    return directory
