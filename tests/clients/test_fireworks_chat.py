"""The old Fireworks Python SDK (fireworks-ai 0.15.12) `Fireworks().chat.completions`,
unchanged, against Ember's chat endpoint (SmolLM2-135M-Instruct behind whatever model
name the client sends).

The SDK posts to `{base_url}/chat/completions`, its default base URL being
`https://api.fireworks.ai/inference/v1`, so it is given `<ember>/inference/v1`. It parses
replies into its own pydantic models (`ChatCompletionResponse`, and
`ChatCompletionStreamResponse` per SSE line, whose `finish_reason` is a Literal). The
grammar and JSON examples are the ones in Fireworks' structured-output docs: grammar mode
must answer one of the grammar's strings, JSON mode with a schema must parse into the
pydantic model whatever the tiny model knows."""

from __future__ import annotations

import json

import pytest
from fireworks.client import Fireworks
from fireworks.client.api import ChatCompletionResponse, ChatCompletionStreamResponse
from pydantic import BaseModel

MODEL = "accounts/fireworks/models/llama-v3p1-8b-instruct"

DIAGNOSES = ["arthritis", "dengue", "urinary tract infection", "impetigo", "cervical spondylosis"]
DIAGNOSIS_GRAMMAR = """
root      ::= diagnosis
diagnosis ::= "arthritis" | "dengue" | "urinary tract infection" | "impetigo" | "cervical spondylosis"
"""
SYMPTOMS = (
    "I have a rash on my face that is getting worse. It is red, inflamed, and has blisters "
    "that are bleeding clear pus. It is really painful."
)


class Result(BaseModel):
    winner: str


@pytest.fixture(scope="module")
def fw(base_url):
    return Fireworks(api_key="x", base_url=f"{base_url}/inference/v1", timeout=300)


def check_usage(response: ChatCompletionResponse) -> None:
    usage = response.usage
    assert usage is not None, "usage missing"
    assert usage.prompt_tokens > 0 and usage.completion_tokens and usage.completion_tokens > 0, usage
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens, usage


def test_chat_completion(fw):
    response = fw.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Say hello in one short sentence."}],
        max_tokens=40,
        temperature=0,
    )
    assert isinstance(response, ChatCompletionResponse)
    assert response.object == "chat.completion"
    assert response.model == MODEL, "the model name sent must be echoed"
    assert response.id and response.created > 0
    assert len(response.choices) == 1
    choice = response.choices[0]
    assert choice.message.role == "assistant"
    assert isinstance(choice.message.content, str) and choice.message.content.strip(), choice
    assert choice.finish_reason in ("stop", "length"), choice.finish_reason
    check_usage(response)
    print(f"\n[fireworks] chat -> {choice.message.content!r}")


def test_chat_completion_stream(fw):
    chunks = list(
        fw.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "Count from one to five."}],
            max_tokens=30,
            temperature=0,
            stream=True,
        )
    )
    assert chunks, "no SSE chunks"
    assert all(isinstance(c, ChatCompletionStreamResponse) for c in chunks)
    assert all(c.object == "chat.completion.chunk" for c in chunks), {c.object for c in chunks}
    assert len({c.id for c in chunks}) == 1, "every chunk must carry the same id"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip(), "streamed no text"
    reasons = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert reasons in (["stop"], ["length"]), f"want exactly one finish_reason, on the last chunk: {reasons}"
    assert chunks[-1].choices[0].finish_reason == reasons[0]
    print(f"\n[fireworks] stream: {len(chunks)} chunks -> {text!r}")


def test_grammar_mode_diagnosis(fw):
    """Fireworks' grammar-mode example: a GBNF grammar with five labels."""
    response = fw.chat.completions.create(
        model=MODEL,
        response_format={"type": "grammar", "grammar": DIAGNOSIS_GRAMMAR},
        messages=[{
            "role": "user",
            "content": (
                "**Instruction**: Given the symptoms, give the most likely diagnosis, one of: "
                + ", ".join(DIAGNOSES)
                + f".\n**Symptoms**: {SYMPTOMS}"
            ),
        }],
        temperature=0,
    )
    answer = response.choices[0].message.content
    assert answer in DIAGNOSES, f"grammar mode answered {answer!r}"
    assert response.choices[0].finish_reason == "stop", response.choices[0].finish_reason
    check_usage(response)
    print(f"\n[fireworks] grammar -> {answer!r}")


def test_json_mode_with_schema(fw):
    """Fireworks' JSON-mode example: `{"type": "json_object", "schema": ...}`."""
    response = fw.chat.completions.create(
        model=MODEL,
        response_format={"type": "json_object", "schema": Result.model_json_schema()},
        messages=[{
            "role": "user",
            "content": "Who won the US presidential election in 2012? Reply just in one JSON.",
        }],
        temperature=0,
    )
    content = response.choices[0].message.content
    assert isinstance(content, str), content
    result = Result.model_validate_json(content)
    assert isinstance(result.winner, str)
    assert response.choices[0].finish_reason == "stop", response.choices[0].finish_reason
    print(f"\n[fireworks] json -> {content!r}")


def test_tool_call(fw):
    """Function calling through the SDK: `tool_calls` parse into its models, and the
    arguments are a JSON string valid for the function's parameters."""
    tools = [{
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Get the current weather in a city.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }]
    response = fw.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "What is the weather in Paris?"}],
        tools=tools,
        tool_choice="auto",
        temperature=0,
    )
    choice = response.choices[0]
    assert choice.finish_reason == "tool_calls", choice
    calls = choice.message.tool_calls
    assert calls and len(calls) == 1, choice.message
    call = calls[0]
    assert call.type == "function" and call.id, call
    assert call.function.name == "get_weather", call
    assert isinstance(call.function.arguments, str), call.function.arguments
    arguments = json.loads(call.function.arguments)
    assert isinstance(arguments, dict) and isinstance(arguments.get("city"), str), arguments
    print(f"\n[fireworks] tool call -> {call.function.name}({call.function.arguments})")
