"""Domains: business-named durable steps, ``await run.Inventory(product).check()``, with hashed step ids.

A `Domain` groups handlers under a name; a workflow reaches it as ``run.Inventory`` (or
``run.domain("Inventory")``), gives it a *context* (``run.Inventory(product)``) and calls a method
(``.check()``). Each call is one durable step (`flareflow.engine.run.Execution.run_step`), named by
its human path, ``Inventory.check``: that is what events, ``runs show``, the console and
``flareflow.testing`` show and match.

**Hashed ids.** A call's step key is not name + occurrence like ``run.step``'s but its *hash* plus an
occurrence counter among identical calls::

    context_hash = sha256(canonical JSON of the context)[:16]
    args_hash    = sha256(canonical JSON of [{"args": [...], "kwargs": {...}}, ...])[:16]   # one per method
    hash         = sha256(f"{path}\\n{context_hash}\\n{args_hash}")[:16]
    key          = f"{path}@{hash}#{n}"        # n: 1, 2, ... among calls with this very hash

(canonical JSON: ``json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)`` of
the value's JSON copy -- stable across processes, hosts and Python versions). So reordering calls with
different contexts or arguments still replays each one's own result (a domain call found in the
history by its key replays wherever it was recorded), and identical calls in a loop stay distinct. A
call whose key the history lacks, at a position the history holds something else, is a replay
divergence naming both paths, like any changed call. The hash is also sent as ``hash`` on the step's
events and kept in the step's ``meta``.

**Pipelines.** ``await run.Order(order).validate().enrich().process()`` is *one* step, path
``Order.validate.enrich.process``, one checkpoint: each method receives the previous method's result
as its context (as it is: intermediate results are never recorded), and the last one's result is the
step's. A crash or a failed attempt anywhere in the chain re-runs the whole chain. The chain's retry
policy is the *strictest* of its methods': the policy of the method with the fewest attempts
(``limit``; the earliest such method on a tie), with the ``non_retryable`` types of every method of
the chain -- so a chain is never attempted more often than its least retryable method allows. Each
method's ``timeout`` bounds that method within an attempt.

**Handlers** are called as ``handler(context, *args, **kwargs)`` with JSON copies of the values (a
tuple arrives as a list); one that declares a keyword-only ``ctx`` parameter also gets a `StepContext`
(run id, attempt, a logger whose records go to the step's logs). They run in the run's own process --
the local runtime's (sync handlers in its step threads), the run's Durable Object on Cloudflare: there
is no per-call sandbox.

Pure Python, standard library only: this runs inside the Worker too.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import inspect
import json
import keyword
import logging
import sys
from collections.abc import Awaitable, Callable, Generator, Iterator
from dataclasses import dataclass, replace
from typing import Any

from .durations import parse_duration
from .errors import WorkflowDefinitionError, did_you_mean
from .history import STEP, Journal
from .retry import Retry
from .run import DEFAULT_RETRY, Run, _Pending, _Raised, _unwinds, bounded, encode_text, to_json

#: Hex characters of a hash kept in keys and events (64 bits: collisions are not a practical concern).
HASH_CHARS = 16
#: Parent of the loggers handed to handlers as ``ctx.log``: DEBUG and up, not propagated to the root
#: logger -- its records go to the step's logs (`flareflow.engine.capture`), whatever the app configures.
LOGGER = "flareflow.domains"


def canonical_json(value: Any) -> str:
    """The text a hash is taken over: sorted keys, no spaces, ASCII only. ``value`` must be plain JSON."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def json_hash(value: Any) -> str:
    """`HASH_CHARS` hex characters of the SHA-256 of ``value``'s canonical JSON."""
    return hashlib.sha256(canonical_json(value).encode("ascii")).hexdigest()[:HASH_CHARS]


def call_hash(path: str, context: Any, calls: list[dict[str, Any]]) -> str:
    """The hash of a domain call: ``path``, the JSON ``context`` and each method's ``{"args", "kwargs"}``."""
    text = f"{path}\n{json_hash(context)}\n{json_hash(calls)}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:HASH_CHARS]


@dataclass(frozen=True)
class StepContext:
    """What a handler declaring a keyword-only ``ctx`` receives: where and how often it runs.

    ``log`` is a logger (``flareflow.domains.<Domain>``) whose records, DEBUG and up, go to the step's
    logs (its ``step.*`` events' ``logs``, ``runs show``), not to the app's logging handlers."""

    run_id: str
    workflow: str
    #: The step's path (``Order.validate.enrich.process``) and the method running (``enrich``).
    path: str
    method: str
    #: The step key and the call's hash.
    step: str
    hash: str
    #: 1 for the first attempt of the step (of the whole chain, for a pipeline).
    attempt: int
    log: logging.Logger


def _step_logger(domain: str) -> logging.Logger:
    parent = logging.getLogger(LOGGER)
    if parent.level != logging.DEBUG or parent.propagate:
        parent.setLevel(logging.DEBUG)
        parent.propagate = False
    return parent.getChild(domain)


class Method:
    """A domain method with its own policy: ``Method(reserve, retry=Retry(limit=10), timeout="30s")``.

    ``retry`` defaults to the default step policy (three attempts); ``timeout`` bounds each attempt."""

    def __init__(self, fn: Callable[..., Any], *, retry: Retry | None = None,
                 timeout: float | str | None = None) -> None:
        if isinstance(fn, Method):
            raise WorkflowDefinitionError("Method(...) wraps a function, not another Method")
        if not callable(fn):
            raise WorkflowDefinitionError(f"a domain method must be callable, got {type(fn).__name__}")
        if retry is not None and not isinstance(retry, Retry):
            raise WorkflowDefinitionError(f"Method retry must be a flareflow.Retry, got {type(retry).__name__}")
        self.fn = fn
        self.retry = retry
        self.timeout = parse_duration(timeout) if timeout is not None else None
        try:
            self.signature: inspect.Signature | None = inspect.signature(fn)
        except (TypeError, ValueError):  # some builtins: nothing to check
            self.signature = None
        params = self.signature.parameters if self.signature is not None else {}
        ctx = params.get("ctx")
        self.wants_ctx = ctx is not None and ctx.kind is inspect.Parameter.KEYWORD_ONLY
        self.is_async = inspect.iscoroutinefunction(fn)

    @property
    def policy(self) -> Retry:
        """The retry policy the method's steps use."""
        return self.retry if self.retry is not None else DEFAULT_RETRY

    def unexpected_keywords(self, names: list[str]) -> str:
        """``unexpected keyword argument 'qty' (did you mean "quantity"?)`` for the first keyword the
        handler cannot take (``""`` when it takes them all): said before the missing ones, which a
        misspelt keyword also causes."""
        params = self.signature.parameters if self.signature is not None else {}
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            return ""
        accepted = [n for n, p in params.items() if n != "ctx" and p.kind in (
            inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)]
        for name in names:
            if name not in accepted:
                return f"unexpected keyword argument '{name}'{did_you_mean(name, accepted)}"
        return ""

    def check_call(self, path: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """TypeError naming ``path`` when ``handler(context, *args, **kwargs)`` cannot be called so."""
        if "ctx" in kwargs and self.wants_ctx:
            raise TypeError(f"{path}: 'ctx' is passed by flareflow (the step context), not by the caller")
        if self.signature is None:
            return
        unexpected = self.unexpected_keywords(list(kwargs))
        if unexpected:
            raise TypeError(f"{path}: the handler cannot take these arguments: {unexpected}")
        extra = {"ctx": None} if self.wants_ctx else {}
        try:
            self.signature.bind(None, *args, **kwargs, **extra)
        except TypeError as exc:
            raise TypeError(f"{path}: the handler cannot take these arguments: {exc}") from None

    def __repr__(self) -> str:
        return f"Method({getattr(self.fn, '__qualname__', self.fn)!r})"


def run_attributes() -> set[str]:
    """Names a domain may not take: what ``run.NAME`` already means (methods, properties, attributes)."""
    return set(dir(Run)) | set(getattr(Run, "__annotations__", {}))


def _check_identifier(what: str, name: Any) -> str:
    if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name) or name.startswith("_"):
        raise WorkflowDefinitionError(
            f"{what} must be a Python identifier not starting with '_' (it is reached as an attribute), "
            f"got {name!r}")
    return name


class Domain:
    """A named group of step handlers, reached in a workflow as ``run.<name>(context).<method>(...)``::

        Inventory = Domain("Inventory", check=check,
                           reserve=Method(reserve, retry=Retry(limit=10, delay="2s"), timeout="30s"))

    The name must be an identifier that does not shadow a `Run` attribute (``run.step``, ``run.state``
    ...); two domains of one name defined in different modules are an error (importing the module that
    defines one again, edited or not, is not: the new definition replaces the old)."""

    def __init__(self, name: str, /, **methods: Callable[..., Any] | Method) -> None:
        self.name = _check_identifier("a domain name", name)
        if name in run_attributes():
            raise WorkflowDefinitionError(
                f"domain '{name}' would shadow run.{name} of flareflow's Run; choose another name")
        if not methods:
            raise WorkflowDefinitionError(f"domain '{name}' has no methods: Domain('{name}', check=check, ...)")
        self.methods: dict[str, Method] = {}
        for method_name, fn in methods.items():
            _check_identifier(f"a method name of domain '{name}'", method_name)
            try:
                self.methods[method_name] = fn if isinstance(fn, Method) else Method(fn)
            except WorkflowDefinitionError as exc:
                frame = sys._getframe(1)
                raise WorkflowDefinitionError(f"{name}.{method_name} at {frame.f_code.co_filename}:{frame.f_lineno}: "
                                              f"{exc}") from None
        frame = sys._getframe(1)
        #: Where the domain is defined: ``file:line`` for messages, and the defining module's name, which
        #: tells a module imported again (after an edit, say) from a second definition elsewhere.
        self.location = f"{frame.f_code.co_filename}:{frame.f_lineno}"
        self.module = str(frame.f_globals.get("__name__", ""))
        default_domains.register(self)

    def __repr__(self) -> str:
        return f"Domain({self.name!r}, {', '.join(self.methods)})"


class DomainRegistry:
    """Name -> domain; `Domain` fills the default one, ``run.<name>`` reads it."""

    def __init__(self) -> None:
        self._domains: dict[str, Domain] = {}

    def register(self, domain: Domain) -> None:
        existing = self._domains.get(domain.name)
        if existing is not None and existing.module != domain.module:
            raise WorkflowDefinitionError(
                f"two domains are named '{domain.name}': {existing.location} and {domain.location}")
        self._domains[domain.name] = domain

    def get(self, name: str) -> Domain | None:
        return self._domains.get(name)

    def names(self) -> list[str]:
        return sorted(self._domains)

    def __iter__(self) -> Iterator[Domain]:
        return iter(sorted(self._domains.values(), key=lambda d: d.name))

    def forget(self, name: str) -> None:
        """Drop one domain (tests that define the same name in several places)."""
        self._domains.pop(name, None)

    def forget_unloaded(self) -> None:
        """Drop the domains whose defining module is no longer imported: a project's discovery calls it
        after dropping the project's modules, so a domain moved to another module is no clash."""
        for name, domain in list(self._domains.items()):
            if domain.module not in sys.modules:
                del self._domains[name]


default_domains = DomainRegistry()


def find_domain(name: Any) -> Domain:
    """``run.domain(name)``: the domain called ``name`` (or ``name`` itself, a `Domain`)."""
    if isinstance(name, Domain):
        return name
    found = default_domains.get(name) if isinstance(name, str) else None
    if found is None:
        known = ", ".join(default_domains.names()) or "none defined"
        raise WorkflowDefinitionError(f"no domain is named {name!r} (domains: {known})")
    return found


def domain_attribute(run: Run, name: str) -> DomainHandle:
    """``run.<name>`` for a name that is no attribute of `Run`: the domain's handle, else AttributeError."""
    domain = None if name.startswith("_") else default_domains.get(name)
    if domain is None:
        known = default_domains.names()
        hint = "" if name.startswith("_") else \
            f"{did_you_mean(name, known)} (nor a domain: {', '.join(known) or 'none defined'})"
        raise AttributeError(f"'Run' object has no attribute '{name}'{hint}")
    return DomainHandle(run, domain)


class DomainHandle:
    """``run.Inventory``: call it with the context of the calls that follow."""

    def __init__(self, run: Run, domain: Domain) -> None:
        self._run = run
        self._domain = domain

    def __call__(self, context: Any = None) -> DomainCall:
        return DomainCall(self._run, self._domain, context, ())

    def __repr__(self) -> str:
        return f"<domain {self._domain.name} of run {self._run.id}>"


@dataclass(frozen=True)
class _Link:
    """One method of a call's chain, with the JSON copies of its arguments."""

    name: str
    method: Method
    args: tuple[Any, ...]
    kwargs: dict[str, Any]


class DomainMethod:
    """``run.Inventory(product).check``: call it to get the (awaitable) call."""

    def __init__(self, call: DomainCall, name: str, method: Method) -> None:
        self._call = call
        self._name = name
        self._method = method

    def __call__(self, *args: Any, **kwargs: Any) -> DomainCall:
        return self._call._then(self._name, self._method, args, kwargs)


class DomainCall(Awaitable[Any]):
    """A domain call: await it to run it as one durable step; call another method on it first to make it
    a pipeline (``run.Order(order).validate().enrich()``). Its key is reserved when it is awaited, or
    when ``run.parallel`` receives it (in argument order, so parallel calls' keys never depend on which
    finishes first)."""

    def __init__(self, run: Run, domain: Domain, context: Any, links: tuple[_Link, ...]) -> None:
        self._run = run
        self._domain = domain
        self._context = context
        self._links = links
        self._pending: _Pending[Any] | None = None

    @property
    def _path(self) -> str:
        """``Domain.method.method...``: the step's name. (A call has no public attributes: every public
        name is free for the domain's methods.)"""
        return ".".join([self._domain.name, *(link.name for link in self._links)])

    def __getattr__(self, name: str) -> DomainMethod:
        if name.startswith("_"):
            raise AttributeError(name)
        method = self._domain.methods.get(name)
        if method is None:
            raise AttributeError(f"domain '{self._domain.name}' has no method '{name}' "
                                 f"(methods: {', '.join(self._domain.methods)})")
        return DomainMethod(self, name, method)

    def _then(self, name: str, method: Method, args: tuple[Any, ...], kwargs: dict[str, Any]) -> DomainCall:
        path = f"{self._path}.{name}"
        if not self._links:
            self._context, _ = to_json(self._context, f"the context of {path}")
        method.check_call(path, args, kwargs)
        copies = tuple(to_json(arg, f"argument {i + 1} of {path}")[0] for i, arg in enumerate(args))
        named = {k: to_json(v, f"argument '{k}' of {path}")[0] for k, v in kwargs.items()}
        return DomainCall(self._run, self._domain, self._context, (*self._links, _Link(name, method, copies, named)))

    def _start(self) -> _Pending[Any]:
        """Reserve the step's key (once) and return the awaitable step."""
        if self._pending is not None:
            return self._pending
        if not self._links:
            raise TypeError(f"await run.{self._domain.name}(...) needs a method: "
                            f"run.{self._domain.name}(...).{next(iter(self._domain.methods))}()")
        path = self._path
        calls = [{"args": list(link.args), "kwargs": link.kwargs} for link in self._links]
        digest = call_hash(path, self._context, calls)
        x = self._run._x
        key, pos, rec = x.reserve(STEP, path, ident=f"{path}@{digest}")
        policy = chain_policy([link.method for link in self._links])
        payload = encode_text([self._context, [[c["args"], c["kwargs"]] for c in calls]])
        runner = _Runner(self._run, self._domain.name, path, key, digest, payload, self._links,
                         rec.attempts if rec is not None else 0)
        if len(self._links) == 1:
            fn, timeout = runner.single(), self._links[0].method.timeout
        else:
            fn, timeout = runner.chain, None
        self._pending = _Pending(x.run_step(key, pos, rec, path, fn, (), {}, policy, timeout,
                                            extra={"hash": digest}))
        return self._pending

    def __await__(self) -> Generator[Any, None, Any]:
        return self._start().__await__()

    def __repr__(self) -> str:
        return f"<domain call {self._path}>"


def chain_policy(methods: list[Method]) -> Retry:
    """The retry policy of a chain: its strictest method's (fewest attempts; the earliest on a tie), with
    every method's ``non_retryable`` types."""
    strictest = min(methods, key=lambda m: m.policy.limit)  # min keeps the first of equal limits
    kinds: list[type[BaseException]] = []
    for method in methods:
        kinds.extend(k for k in method.policy.non_retryable if k not in kinds)
    policy = strictest.policy
    return policy if tuple(kinds) == policy.non_retryable else replace(policy, non_retryable=tuple(kinds))


class _Runner:
    """Calls a domain call's handlers for each attempt, building each one's `StepContext`."""

    def __init__(self, run: Run, domain: str, path: str, key: str, digest: str, payload: str,
                 links: tuple[_Link, ...], attempts: int) -> None:
        self.run = run
        self.domain = domain
        self.path = path
        self.key = key
        self.digest = digest
        #: JSON text of ``[context, [[args, kwargs], ...]]``: each attempt decodes fresh copies, so what
        #: one attempt's handlers change in their arguments never reaches the next attempt.
        self.payload = payload
        self.links = links
        #: Attempts recorded before this activation; each call of the runner is the next attempt.
        self.attempts = attempts

    def _ctx(self, link: _Link, attempt: int) -> dict[str, Any]:
        if not link.method.wants_ctx:
            return {}
        return {"ctx": StepContext(self.run.id, self.run.workflow, self.path, link.name, self.key, self.digest,
                                   attempt, _step_logger(self.domain))}

    def single(self) -> Callable[[], Any]:
        """The step function of a one-method call: sync or async like its handler, so the host runs a
        sync handler where it runs sync steps (the local runtime's step threads)."""
        link = self.links[0]
        fn = link.method.fn

        def bound() -> Any:
            self.attempts += 1
            context, [[args, kwargs]] = json.loads(self.payload)
            return fn(context, *args, **kwargs, **self._ctx(link, self.attempts))

        if not link.method.is_async:
            return bound

        async def bound_async() -> Any:
            return await bound()

        return bound_async

    async def chain(self) -> Any:
        """One attempt of a pipeline: each method gets the previous result as its context."""
        self.attempts += 1
        attempt = self.attempts
        journal: Journal = self.run._x.journal
        value, arguments = json.loads(self.payload)
        for link, (args, kwargs) in zip(self.links, arguments, strict=True):
            call = functools.partial(link.method.fn, value, *args, **kwargs, **self._ctx(link, attempt))
            value = await _bounded(journal, call, link.method, f"{self.path}: method '{link.name}'")
        return value


async def _bounded(journal: Journal, call: Callable[[], Any], method: Method, what: str) -> Any:
    """``call()`` awaited if it returns an awaitable -- sync handlers through the host's offload (a
    thread) when it has one -- and bounded by ``method.timeout`` on the host's clock, as a step's
    attempt is (`flareflow.engine.run.Execution._invoke`)."""
    offload = journal.offload

    async def work() -> Any:
        owner = asyncio.current_task()
        try:
            if offload is not None and not method.is_async:
                value = await offload(call)
            else:
                value = call()
            if inspect.isawaitable(value):
                value = await value
            return value
        except Exception:
            raise
        except BaseException as exc:  # SystemExit & co. from a handler: a failure of the step, never the loop's
            if _unwinds(exc, owner):
                raise
            raise _Raised(exc) from exc

    return await bounded(journal, work, method.timeout, what)


__all__ = ["Domain", "DomainCall", "DomainHandle", "DomainMethod", "DomainRegistry", "Method", "StepContext",
           "call_hash", "canonical_json", "default_domains", "domain_attribute", "find_domain", "json_hash"]
