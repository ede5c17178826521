#!/usr/bin/env python3
"""Writes tests/chat/golden/hf_templates.json: chat templates rendered by Hugging Face
transformers' apply_chat_template(..., tokenize=False), the reference that ignis' Jinja
interpreter must match byte for byte (tests/chat/test_chat_templates.c).

Templates come from two places:
  - the tokenizer_config.json of the tokenizers under $IGNIS_ASSETS/tokenizers (rendered
    by the real tokenizer, so special tokens come from its config);
  - tests/chat/templates/*.jinja: chat templates in the style of popular model families,
    rendered with transformers' own Jinja environment and the special tokens listed in
    tests/chat/templates/special_tokens.json.

Usage: python3 tests/chat/make_template_golden.py   (pip install transformers jinja2; no torch)
"""
import json
import os
import sys
from pathlib import Path

import jinja2
import transformers
from transformers import AutoTokenizer
from transformers.utils.chat_template_utils import render_jinja_template

HERE = Path(__file__).resolve().parent
ASSETS = Path(os.environ.get("IGNIS_ASSETS", HERE.parent.parent.parent / "shared" / "assets"))

SYSTEM = "You are a terse assistant. Answer in one sentence."
CONVERSATIONS = {
    "single_user": [{"role": "user", "content": "Hello! Who are you?"}],
    "system_user": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "What is 2+2?"}],
    "multi_turn": [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "Name a prime number."},
        {"role": "assistant", "content": "7 is a prime number."},
        {"role": "user", "content": "And an even one?"},
    ],
    "multi_turn_no_system": [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello, how can I help?"},
        {"role": "user", "content": "Tell me a joke."},
        {"role": "assistant", "content": "Why did the chicken cross the road?"},
        {"role": "user", "content": "Why?"},
    ],
    "whitespace_unicode": [
        {"role": "system", "content": "  Réponds en français.\n"},
        {"role": "user", "content": "\n  多少钱？ 🚀 café\t\n"},
        {"role": "assistant", "content": " Ça coûte 3 € — \"cher\" ? \\n "},
        {"role": "user", "content": "Merci 👍🏽"},
    ],
    "empty_content": [{"role": "user", "content": ""}],
    "content_parts": [
        {"role": "system", "content": [{"type": "text", "text": "Parts system."}]},
        {"role": "user", "content": [{"type": "text", "text": "Look:"}, {"type": "text", "text": "two parts"}]},
    ],
}

# Extra inputs for templates that support them.
QWEN3_EXTRA = {
    "thinking_history": [
        {"role": "user", "content": "Solve x+1=3."},
        {"role": "assistant", "content": "<think>\nSubtract 1.\n</think>\n\nx = 2."},
        {"role": "user", "content": "Now x+2=5."},
    ],
    "tools": [
        {"role": "system", "content": "You can call tools."},
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris", "unit": "C"}}}
            ],
        },
        {"role": "tool", "content": "{\"temp\": 21.5, \"sky\": \"clear\"}"},
        {"role": "tool", "content": "second result"},
        {"role": "user", "content": "Thanks"},
    ],
}
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Get the weather for a city — «quoted» text.",
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string", "description": "  City name "},
                    "unit": {"type": "string", "enum": ["C", "F"]},
                    "days": {"type": "array", "items": {"type": "integer"}},
                    "extra": {"type": "object", "additionalProperties": {"type": ["number", "integer"]}},
                    "ratio": {"type": "number", "default": 0.5},
                },
                "required": ["city"],
            },
        },
    }
]


def render(tokenizer, template, messages, add_generation_prompt, **kw):
    if tokenizer is not None:
        return tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=add_generation_prompt, chat_template=template, **kw
        )
    rendered, _ = render_jinja_template(
        conversations=[messages], chat_template=template, add_generation_prompt=add_generation_prompt, **kw
    )
    return rendered[0]


def case(cases, family, source, name, template, tokenizer, messages, agp, variables, **kw):
    entry = {
        "name": f"{family}/{name}" + ("" if agp else "/no_gen_prompt"),
        "family": family,
        "source": source,
        "messages": messages,
        "add_generation_prompt": agp,
        "variables": variables,
    }
    if "tools" in kw:
        entry["tools"] = kw["tools"]
    for k, v in kw.items():
        if k != "tools":
            entry["variables"] = {**entry["variables"], k: v}
    try:
        entry["expected"] = render(tokenizer, template, messages, agp, **kw)
    except Exception as e:  # templates that reject a conversation must be rejected by ignis too
        entry["error"] = f"{type(e).__name__}: {e}"
    cases.append(entry)


def main():
    cases = []
    templates = {}
    for fam in ("llama3", "qwen2", "qwen3", "internlm2", "llama2"):
        d = ASSETS / "tokenizers" / fam
        cfg = d / "tokenizer_config.json"
        if not cfg.exists() or "chat_template" not in json.loads(cfg.read_text()):
            continue
        tok = AutoTokenizer.from_pretrained(str(d))
        template = tok.chat_template
        variables = dict(tok.special_tokens_map)
        for name, msgs in CONVERSATIONS.items():
            for agp in (True, False):
                case(cases, fam, f"asset:tokenizers/{fam}", name, template, tok, msgs, agp, variables)
        if fam == "qwen3":
            for name, msgs in QWEN3_EXTRA.items():
                kw = {"tools": TOOLS} if name == "tools" else {}
                case(cases, fam, f"asset:tokenizers/{fam}", name, template, tok, msgs, True, variables, **kw)
            case(cases, fam, f"asset:tokenizers/{fam}", "no_thinking", template, tok,
                 CONVERSATIONS["multi_turn"], True, variables, enable_thinking=False)
    tdir = HERE / "templates"
    special = json.loads((tdir / "special_tokens.json").read_text())
    for path in sorted(tdir.glob("*.jinja")):
        fam = path.stem
        template = path.read_text()
        templates[fam] = template
        variables = special.get(fam, {})
        for name, msgs in CONVERSATIONS.items():
            for agp in (True, False):
                case(cases, fam, f"file:templates/{path.name}", name, template, None, msgs, agp, variables, **variables)
        if "tools" in template:
            case(cases, fam, f"file:templates/{path.name}", "tools", template, None, QWEN3_EXTRA["tools"], True,
                 variables, tools=TOOLS, **variables)
    out = {
        "generator": {
            "script": "tests/chat/make_template_golden.py",
            "transformers": transformers.__version__,
            "jinja2": jinja2.__version__,
            "python": sys.version.split()[0],
        },
        "cases": cases,
    }
    dst = HERE / "golden" / "hf_templates.json"
    tmp = dst.with_suffix(".tmp")
    tmp.write_text(json.dumps(out, ensure_ascii=False, indent=1) + "\n")
    tmp.replace(dst)
    print(f"wrote {len(cases)} cases to {dst}")


if __name__ == "__main__":
    main()
