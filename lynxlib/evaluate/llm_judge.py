"""The paper's GPT-4 referee, for any OpenAI-compatible chat endpoint (``POST /v1/chat/completions``).

Configuration comes from arguments or the environment: ``LYNX_JUDGE_BASE_URL`` (e.g.
``https://api.openai.com`` or ``http://127.0.0.1:8000/v1``), ``LYNX_JUDGE_MODEL`` and
``LYNX_JUDGE_API_KEY`` (optional for local servers). The key only goes into the request's
Authorization header: it is held in a wrapper that prints as '<hidden>', and is never cached or
written.

Requests use the paper's prompt verbatim at temperature 0; timeouts, connection errors, HTTP 429
and 5xx are retried with exponential backoff. A reply that is not JSON or whose text does not start
with Yes/No is a ``malformed`` verdict (``correct=None``); a request that never succeeds is
``failed``. Neither is ever scored as right or wrong.
"""
from __future__ import annotations

import http.client
import json
import os
import re
import socket
import time
import urllib.error
import urllib.request
from typing import Any, Callable, Mapping, Sequence

from lynxlib.evaluate.judges import Verdict, sha

# Sec. 3.1 of the paper (the PDF typesets the quotes as curly quotes).
PAPER_PROMPT = ('Given the question "{question}", does the answer "{prediction}" imply the answer '
                '"{ground_truth}"? Answer with Yes or No.')
REFERENCE_JOINER = " or "
ENV_BASE_URL, ENV_MODEL, ENV_KEY = "LYNX_JUDGE_BASE_URL", "LYNX_JUDGE_MODEL", "LYNX_JUDGE_API_KEY"
_RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
_LEADING_WORD = re.compile(r"[A-Za-z]+")


class _Retryable(Exception):
    pass


class _Secret:
    """Holds the API key; prints, formats and json-dumps (via ``default=str``) as '<hidden>'."""

    __slots__ = ("value",)

    def __init__(self, value: str):
        self.value = value

    def __repr__(self) -> str:
        return "<hidden>"

    __str__ = __repr__


def chat_url(base_url: str) -> str:
    """``.../v1/chat/completions`` for a base URL given with or without ``/v1``."""
    base = base_url.rstrip("/")
    if base.endswith("/chat/completions"):
        return base
    return f"{base}/chat/completions" if base.endswith("/v1") else f"{base}/v1/chat/completions"


def parse_reply(body: str) -> Verdict:
    """A Verdict from a chat-completions response body: Yes -> True, No -> False, else malformed."""
    try:
        content = json.loads(body)["choices"][0]["message"]["content"]
        if not isinstance(content, str):
            raise TypeError("content is not a string")
    except (ValueError, KeyError, IndexError, TypeError) as err:
        return Verdict(None, f"bad reply ({type(err).__name__}): {body[:300]}", "malformed")
    match = _LEADING_WORD.search(content)
    word = match.group(0).lower() if match else ""
    if word in ("yes", "no"):
        return Verdict(word == "yes", content)
    return Verdict(None, content, "malformed")


class LLMJudge:
    """The paper's prompt against an OpenAI-compatible endpoint. All arguments keyword-only;
    ``backoff`` seconds doubles each retry up to ``max_backoff`` (tests pass tiny values)."""

    name = "llm"

    def __init__(self, *, base_url: str | None = None, model: str | None = None, api_key: str | None = None,
                 timeout: float = 30.0, max_retries: int = 4, backoff: float = 1.0, max_backoff: float = 30.0,
                 max_tokens: int | None = 3, prompt: str = PAPER_PROMPT, env: Mapping[str, str] | None = None,
                 sleep: Callable[[float], None] = time.sleep):
        env = os.environ if env is None else env
        base_url = base_url or env.get(ENV_BASE_URL)
        model = model or env.get(ENV_MODEL)
        if not base_url:
            raise ValueError(f"LLMJudge needs a base URL: pass base_url= or set {ENV_BASE_URL}")
        if not model:
            raise ValueError(f"LLMJudge needs a model name: pass model= or set {ENV_MODEL}")
        self.url = chat_url(base_url)
        self.model = model
        self.prompt = prompt
        self.prompt_hash = sha(prompt + "|joiner=" + REFERENCE_JOINER)
        self.timeout, self.max_retries = float(timeout), int(max_retries)
        self.backoff, self.max_backoff, self.max_tokens = float(backoff), float(max_backoff), max_tokens
        self._sleep = sleep
        self._key = _Secret(api_key or env.get(ENV_KEY) or "")
        self.n_requests = 0

    def __repr__(self) -> str:
        return f"LLMJudge(url={self.url!r}, model={self.model!r}, prompt_hash={self.prompt_hash!r})"

    def render(self, *, question: str, prediction: str, references: Sequence[str]) -> str:
        refs = [references] if isinstance(references, str) else list(references)
        return self.prompt.format(question=question, prediction=prediction,
                                  ground_truth=REFERENCE_JOINER.join(refs))

    def judge(self, *, question: str, prediction: str, references: Sequence[str]) -> Verdict:
        content = self.render(question=question, prediction=prediction, references=references)
        body: dict[str, Any] = {"model": self.model, "messages": [{"role": "user", "content": content}],
                                "temperature": 0}
        if self.max_tokens is not None:   # None omits it (some endpoints reject max_tokens)
            body["max_tokens"] = self.max_tokens
        try:
            reply = self._post(json.dumps(body).encode("utf-8"))
        except RuntimeError as err:
            return Verdict(None, str(err), "failed")
        return parse_reply(reply)

    def _post(self, data: bytes) -> str:
        """The response body; retries retryable errors, raises RuntimeError when giving up."""
        last = ""
        for attempt in range(self.max_retries + 1):
            if attempt:
                self._sleep(min(self.max_backoff, self.backoff * 2 ** (attempt - 1)))
            try:
                return self._once(data)
            except _Retryable as err:
                last = str(err)
        raise RuntimeError(f"no reply after {self.max_retries + 1} attempts: {last}")

    def _once(self, data: bytes) -> str:
        self.n_requests += 1
        headers = {"Content-Type": "application/json"}
        if self._key.value:
            headers["Authorization"] = f"Bearer {self._key.value}"
        request = urllib.request.Request(self.url, data=data, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return response.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as err:
            if err.code in _RETRYABLE_STATUS:
                raise _Retryable(f"HTTP {err.code}") from None
            detail = err.read()[:200].decode("utf-8", "replace") if err.fp else ""
            raise RuntimeError(f"HTTP {err.code} from {self.url}: {detail}") from None
        except (urllib.error.URLError, TimeoutError, socket.timeout, ConnectionError,
                http.client.HTTPException) as err:
            raise _Retryable(f"{type(err).__name__}: {getattr(err, 'reason', err)}") from None

    def describe(self) -> dict[str, Any]:
        """Identity for results files (no credentials)."""
        return {"judge": self.name, "judge_model": self.model, "prompt_hash": self.prompt_hash,
                "url": self.url, "prompt": self.prompt}
