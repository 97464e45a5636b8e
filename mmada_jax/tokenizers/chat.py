"""The chat template and the thinking prefix (spec section 2), on top of any text encoder.

`encode` is a function str -> list[int] that adds no special tokens; the specials come from the
`TokenLayout`.
"""

from __future__ import annotations

from typing import Callable, Sequence

from mmada_jax.token_layout import TokenLayout

# Prepended to the user turn when the model should reason before answering.
THINK_PREFIX = ("You should first think about the reasoning process in the mind and then provide "
                "the user with the answer. The reasoning process is enclosed within <think> "
                "</think> tags, i.e. <think> reasoning process here </think> answer here\n")


def chat_prompt_ids(messages: Sequence[dict], layout: TokenLayout,
                    encode: Callable[[str], list[int]], add_generation_prompt: bool = True,
                    think: bool = False) -> list[int]:
    """bos, then `<|start_header_id|>role<|end_header_id|>\\n content <|eot_id|>` per turn, then the
    assistant header (when `add_generation_prompt`). `think` prepends THINK_PREFIX to the last user
    turn. Roles and contents are encoded with `encode`."""
    if not messages:
        raise ValueError("chat_prompt_ids: no messages")
    last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=-1)
    ids = [layout.bos]
    for i, m in enumerate(messages):
        if "role" not in m or "content" not in m:
            raise ValueError(f"chat_prompt_ids: message {i} needs 'role' and 'content': {m!r}")
        content = m["content"]
        if think and i == last_user:
            content = THINK_PREFIX + content
        ids += [layout.start_header, *encode(m["role"]), layout.end_header, *encode("\n"),
                *encode(content), layout.eot_id]
    if add_generation_prompt:
        ids += [layout.start_header, *encode("assistant"), layout.end_header, *encode("\n")]
    return ids


def chat_prompt_text(messages: Sequence[dict], layout: TokenLayout,
                     add_generation_prompt: bool = True, think: bool = False) -> str:
    """The same template as `chat_prompt_ids`, as one string with the specials' surface strings
    (what a Hugging Face chat template renders before tokenizing the whole string)."""
    if not messages:
        raise ValueError("chat_prompt_text: no messages")
    s = {n: layout_string(layout, n) for n in ("bos", "start_header", "end_header", "eot_id")}
    last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=-1)
    parts = [s["bos"]]
    for i, m in enumerate(messages):
        if "role" not in m or "content" not in m:
            raise ValueError(f"chat_prompt_text: message {i} needs 'role' and 'content': {m!r}")
        content = THINK_PREFIX + m["content"] if think and i == last_user else m["content"]
        parts.append(f"{s['start_header']}{m['role']}{s['end_header']}\n{content}{s['eot_id']}")
    if add_generation_prompt:
        parts.append(f"{s['start_header']}assistant{s['end_header']}\n")
    return "".join(parts)


def layout_string(layout: TokenLayout, name: str) -> str:
    """Surface string of the special `name` (e.g. 'bos' -> '<|startoftext|>')."""
    from mmada_jax.token_layout import SPECIAL_STRINGS
    if name not in SPECIAL_STRINGS or name not in layout.specials:
        raise KeyError(f"no special token named {name!r}")
    return SPECIAL_STRINGS[name]
