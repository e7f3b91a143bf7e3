"""The `instructor` library (structured outputs over the OpenAI SDK), unchanged, pointed
at Ember's `/v1/chat/completions` (SmolLM2-135M-Instruct).

Instructor is the most common way Python code asks an OpenAI-compatible server for a
Pydantic object:
- TOOLS sends the model's JSON schema as a forced function (`tools` + named
  `tool_choice`) and parses `tool_calls[0].function.arguments`;
- JSON sends `response_format={"type": "json_object"}` plus the schema in a system
  message;
- MD_JSON sends the schema in a system message and asks for a fenced ```json block, with
  no `response_format`;
- JSON_SCHEMA sends the schema as `response_format={"type": "json_schema", ...}`.
`create_partial` and `create_iterable` stream (`stream=True`) and parse the answer as
it comes.

Ember constrains tool-call arguments to the schema, and in JSON and MD_JSON modes
constrains the answer to the schema it finds in the prompt (EMBER_LLM_PROMPT_SCHEMAS),
so in every mode the first answer must validate: the tests run with `max_retries=0`
(one request) and count the requests with instructor's hooks. The model is tiny (135M
parameters), so extracted values are checked loosely (types and ranges) except where
greedy decoding reliably gets them right."""

from __future__ import annotations

from enum import Enum

import instructor
import openai
import pytest
from pydantic import BaseModel, Field, field_validator

MODEL = "smollm2-135m-instruct"
JASON = [{"role": "user", "content": "Extract the user: Jason is 25 years old."}]


class User(BaseModel):
    name: str
    age: int


class Status(str, Enum):
    scheduled = "scheduled"
    cancelled = "cancelled"
    done = "done"


class Person(BaseModel):
    name: str


class Meeting(BaseModel):
    title: str
    # maxItems keeps a looping model from filling the context with attendees.
    attendees: list[Person] = Field(max_length=5)
    status: Status


class CheckedUser(BaseModel):
    name: str
    age: int

    @field_validator("age")
    @classmethod
    def age_not_negative(cls, age: int) -> int:
        if age < 0:
            raise ValueError("age must be >= 0")
        return age

    @field_validator("name")
    @classmethod
    def name_not_blank(cls, name: str) -> str:
        if not name.strip():
            raise ValueError("name must not be blank")
        return name


@pytest.fixture(scope="module")
def openai_client(base_url):
    return openai.OpenAI(base_url=f"{base_url}/v1", api_key="x", max_retries=0, timeout=300)


def patched(openai_client, mode: instructor.Mode):
    """An instructor client in `mode`, and the list its hooks fill with each request's
    kwargs and each raw response (so a test can say how many requests were made)."""
    client = instructor.from_openai(openai_client, mode=mode)
    calls: list[dict] = []
    client.on("completion:kwargs", lambda *args, **kwargs: calls.append({"kwargs": kwargs}))
    client.on("completion:response", lambda response: calls[-1].__setitem__("response", response))
    return client, calls


def check_user(user) -> None:
    assert isinstance(user, User), type(user)
    User.model_validate(user.model_dump())
    assert isinstance(user.name, str) and user.name.strip(), f"empty name: {user!r}"
    assert isinstance(user.age, int) and 0 <= user.age <= 150, f"implausible age: {user!r}"


# --------------------------------------------------------------------------- create


def test_tools_mode_user(openai_client):
    client, calls = patched(openai_client, instructor.Mode.TOOLS)
    user, raw = client.chat.completions.create_with_completion(
        model=MODEL, response_model=User, messages=JASON, temperature=0, max_retries=0
    )
    check_user(user)
    # Greedy decoding gets this one right (measured: User(name='Jason', age=25)).
    assert "jason" in user.name.lower() and user.age == 25, user
    assert len(calls) == 1, f"{len(calls)} requests for one create()"
    sent = calls[0]["kwargs"]
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "User"}}, sent["tool_choice"]
    assert raw.choices[0].finish_reason == "tool_calls", raw.choices[0]
    assert raw.choices[0].message.tool_calls[0].function.name == "User"
    print(f"\n[instructor] TOOLS -> {user!r}")


@pytest.mark.parametrize("mode", [instructor.Mode.JSON, instructor.Mode.MD_JSON])
def test_prompt_schema_modes_user(openai_client, mode):
    """JSON mode sends `response_format={"type": "json_object"}` with the schema only in
    the system prompt; MD_JSON sends no constraint and asks for a ```json block. Ember
    finds the schema in the prompt and constrains to it (EMBER_LLM_PROMPT_SCHEMAS), so
    the first answer validates even from a 135M model."""
    client, calls = patched(openai_client, mode)
    user = client.chat.completions.create(
        model=MODEL, response_model=User, messages=JASON, temperature=0, max_retries=0
    )
    check_user(user)
    # Greedy decoding gets this one right (measured: User(name='Jason', age=25)).
    assert "jason" in user.name.lower() and user.age == 25, user
    assert len(calls) == 1, f"{len(calls)} requests for one create()"
    sent = calls[0]["kwargs"]
    if mode == instructor.Mode.JSON:
        assert sent["response_format"] == {"type": "json_object"}, sent["response_format"]
    else:
        assert "response_format" not in sent, sent
        assert calls[0]["response"].choices[0].message.content.startswith("```json")
    print(f"\n[instructor] {mode.name} -> {user!r}")


def test_json_schema_mode_user(openai_client):
    """JSON_SCHEMA mode (OpenAI structured outputs): `response_format={"type": "json_schema",
    ...}` is constrained by Ember, so unlike JSON/MD_JSON the first answer must validate."""
    client, calls = patched(openai_client, instructor.Mode.JSON_SCHEMA)
    user = client.chat.completions.create(
        model=MODEL, response_model=User, messages=JASON, temperature=0, max_retries=0
    )
    check_user(user)
    assert calls[0]["kwargs"]["response_format"]["type"] == "json_schema"
    print(f"\n[instructor] JSON_SCHEMA -> {user!r}")


@pytest.mark.parametrize("mode", [instructor.Mode.TOOLS, instructor.Mode.JSON, instructor.Mode.MD_JSON])
def test_nested_list_and_enum(openai_client, mode):
    """`$defs`/`$ref`s, an array of objects and a string enum, in the tool's parameters
    (TOOLS) or in the prompt (JSON, MD_JSON)."""
    client, calls = patched(openai_client, mode)
    meeting = client.chat.completions.create(
        model=MODEL,
        response_model=Meeting,
        messages=[{
            "role": "user",
            "content": "Extract the meeting: The budget review with Alice and Bob is scheduled for Friday.",
        }],
        temperature=0,
        max_retries=0,
    )
    assert isinstance(meeting, Meeting), type(meeting)
    Meeting.model_validate(meeting.model_dump())
    assert isinstance(meeting.status, Status), meeting.status
    assert isinstance(meeting.title, str)
    assert isinstance(meeting.attendees, list) and len(meeting.attendees) <= 5, meeting.attendees
    assert all(isinstance(p, Person) and isinstance(p.name, str) for p in meeting.attendees), meeting.attendees
    assert len(calls) == 1
    if mode == instructor.Mode.TOOLS:
        params = calls[0]["kwargs"]["tools"][0]["function"]["parameters"]
        assert "$defs" in params, f"expected a schema with $defs, instructor sent {params}"
    print(f"\n[instructor] nested {mode.name} -> {meeting!r}")


def test_tools_mode_validators_with_max_retries(openai_client):
    """Field validators the model can satisfy, with retries allowed: the result validates
    (a retry would mean the constrained answer broke a validator)."""
    client, calls = patched(openai_client, instructor.Mode.TOOLS)
    user = client.chat.completions.create(
        model=MODEL, response_model=CheckedUser, messages=JASON, temperature=0, max_retries=2
    )
    assert isinstance(user, CheckedUser)
    CheckedUser.model_validate(user.model_dump())
    assert user.age >= 0 and user.name.strip(), user
    assert 1 <= len(calls) <= 3, f"{len(calls)} requests with max_retries=2"
    print(f"\n[instructor] validators -> {user!r} after {len(calls)} request(s)")


# --------------------------------------------------------------------------- streaming


@pytest.mark.parametrize("mode", [instructor.Mode.TOOLS, instructor.Mode.JSON, instructor.Mode.MD_JSON])
def test_create_partial(openai_client, mode):
    """`stream=True`: tool-call arguments (TOOLS) and content (JSON, MD_JSON) arrive in
    pieces while they are generated, so instructor yields several growing partials; the
    last one is the complete object."""
    client, _ = patched(openai_client, mode)
    partials = list(
        client.chat.completions.create_partial(
            model=MODEL, response_model=User, messages=JASON, temperature=0, max_retries=0
        )
    )
    assert len(partials) > 1, f"one partial only: the answer came in one piece {partials}"
    final = User.model_validate(partials[-1].model_dump())
    check_user(final)
    print(f"\n[instructor] partial {mode.name}: {len(partials)} partial(s), final {final!r}")


@pytest.mark.parametrize("mode", [instructor.Mode.TOOLS, instructor.Mode.JSON])
def test_create_iterable(openai_client, mode):
    """`create_iterable` wraps the model in `{"tasks": [User, ...]}` and streams it."""
    client, _ = patched(openai_client, mode)
    users = list(
        client.chat.completions.create_iterable(
            model=MODEL,
            response_model=User,
            messages=[{
                "role": "user",
                "content": "Extract every user: Jason is 25 years old. Sarah is 31 years old.",
            }],
            temperature=0,
            max_retries=0,
        )
    )
    assert users, "create_iterable yielded no users"
    for user in users:
        check_user(user)
    print(f"\n[instructor] iterable {mode.name} -> {users!r}")
