"""A long Markdown reply with headings, lists, tables and code blocks, exactly N stand-in tokens long.

Every tenth section (the third, the thirteenth, ...) also holds a long code block and a long tight list:
the blocks that streaming must not parse again on every flush.

The stand-in streams one token per whitespace-attached word (``\\s*\\S+``), so the reply is cut to N such
tokens; a cut may leave the last code block open, as a stopped reply would.
"""

from __future__ import annotations

import re

_TOKEN = re.compile(r"\s*\S+|\s+$")


def block(i: int) -> str:
    return f"""## Step {i}: what the server does

The request goes through the **scheduler**, then the `model runner` (see [notes](https://example.com/{i}));
each step emits one token per sequence, and the client renders them as they arrive. Step {i} of the plan keeps
the cache warm and the batch full, which is why latency stays flat when the load grows.

- keep `max_num_seqs` at {i % 64 + 1}
- watch the KV cache (*{i % 100}%* used)
- retry on `429` with backoff

```python
def handler_{i}(items: list[int]) -> int:
    total = 0
    for k, value in enumerate(items):
        if value % {i % 7 + 2} == 0:
            total += k * value
    return total
```

| setting | value |
|---|---|
| step | {i} |
| tokens | {i * 37 % 1000} |

{long_blocks(i) if i % 10 == 3 else ""}"""


def long_blocks(i: int, lines: int = 150, items: int = 60) -> str:
    """A code block of ``lines`` lines and a tight list of ``items`` items (about 1,900 tokens)."""
    code = "".join(f"    total += weights[{k}] * step_{i}(x, {k % 9})  # term {k}\n" for k in range(lines))
    listed = "".join(f"- check `seq_{k}`: **{k % 5}** retries, then *drop*\n" for k in range(items))
    return (
        f"```python\ndef long_step_{i}(x: float, weights: list[float]) -> float:\n    total = 0.0\n{code}"
        f"    return total\n```\n\nWhat to check after step {i}:\n{listed}\n"
    )


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text)


def reply(n_tokens: int) -> str:
    """Markdown of exactly ``n_tokens`` stand-in tokens."""
    blocks: list[str] = []
    estimate = 0
    # A block's trailing blank line joins the next block's first token, so count generously, then cut.
    while estimate < n_tokens * 1.1 + 100:
        blocks.append(block(len(blocks) + 1))
        estimate += len(tokens(blocks[-1]))
    cut = tokens("".join(blocks))[:n_tokens]
    if len(cut) != n_tokens:
        raise AssertionError(f"generated {len(cut)} tokens instead of {n_tokens}")
    return "".join(cut)
