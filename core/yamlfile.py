"""Load YAML keeping line numbers, so config errors name file, line and field."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)
Path_ = tuple[str | int, ...]


class ConfigError(ValueError):
    """A config or profile file is wrong; the message lists every problem with its line."""

    def __init__(self, file: str, problems: Sequence[str]) -> None:
        self.file = file
        self.problems = list(problems)
        super().__init__("\n".join(f"{file}:{p}" for p in self.problems))


class ConfigErrors(ValueError):
    """Several files were wrong; raised after all were read, so one run names them all."""

    def __init__(self, errors: Sequence[ConfigError]) -> None:
        self.errors = list(errors)
        super().__init__("\n".join(str(e) for e in self.errors))


# The composer has resolved each scalar's tag (int, float, bool, null, str, timestamp);
# the safe constructor turns it into the Python value. One instance: it is stateless here.
_SCALARS = yaml.constructor.SafeConstructor()
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: faster


def _construct(node: yaml.Node, path: Path_, lines: dict[Path_, int]) -> Any:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _construct(key_node, (*path, "<key>"), {})
            out[key] = _construct(value_node, (*path, str(key)), lines)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_construct(item, (*path, i), lines) for i, item in enumerate(node.value)]
    return _SCALARS.construct_object(node, deep=True)


def load_yaml(text: str, file: str) -> tuple[Any, dict[Path_, int]]:
    lines: dict[Path_, int] = {}
    try:
        node = yaml.compose(text, Loader=_LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 0
        raise ConfigError(file, [f"{line}: YAML syntax: {getattr(exc, 'problem', exc)}"]) from exc
    if node is None:
        raise ConfigError(file, ["1: file is empty"])
    return _construct(node, (), lines), lines


def validation_problems(exc: ValidationError, lines: dict[Path_, int]) -> list[str]:
    problems = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if isinstance(p, str | int))
        # Unions add a tag to loc ("transport.mqtt.max_bytes") that is not in the file:
        # step over parts the file does not have, to the deepest line it does.
        found: Path_ = ()
        for part in loc:
            if (*found, part) in lines:
                found = (*found, part)
        line = lines.get(found, 0)
        field = ".".join(str(p) for p in loc) or "(top level)"
        problems.append(f"{line}: {field}: {err['msg']}")
    return problems


# Plain scalar tags the fast path turns into values itself; any other tag (a merge key `<<`,
# binary, ...), an explicit tag, an anchor or alias sends the file down yaml.load's path.
_PLAIN_TAGS = frozenset(
    f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "timestamp")
)
_STR_TAG = "tag:yaml.org,2002:str"


class _NotPlain(Exception):
    pass


def _load_plain(text: str) -> Any:
    """The one document's mappings, sequences and scalars, built from the parser's events.

    The same values as `yaml.load` with the safe loader (libyaml's parser, PyYAML's resolver
    and constructors), without first building the node graph: for a 10,000-device site file
    that graph is ~50 MB at its peak, which a gateway keeps as resident memory for good,
    where this stays under 10 MB (and is 4x faster). Anything but plain data raises
    _NotPlain; the caller then loads the usual way.
    """
    loader = _LOADER(text)
    try:
        root: Any = None
        stack: list[Any] = []  # the containers being filled
        keys: list[Any] = []  # per container: a mapping's pending key (_NotPlain: none)

        def add(value: Any) -> None:
            nonlocal root
            if not stack:
                root = value
                return
            top = stack[-1]
            if type(top) is list:
                top.append(value)
            elif keys[-1] is _NotPlain:
                keys[-1] = value  # unhashable keys raise TypeError: the usual way says so
            else:
                top[keys[-1]] = value
                keys[-1] = _NotPlain

        documents = 0
        while True:
            ev = loader.get_event()
            kind = type(ev)
            if kind is yaml.ScalarEvent:
                if ev.anchor is not None or ev.tag is not None:
                    raise _NotPlain
                if not ev.implicit[0]:  # quoted or block: a string
                    add(ev.value)
                    continue
                tag = loader.resolve(yaml.ScalarNode, ev.value, (True, False))
                if tag == _STR_TAG:
                    add(ev.value)
                elif tag in _PLAIN_TAGS:
                    add(loader.yaml_constructors[tag](loader, yaml.ScalarNode(tag, ev.value)))
                else:
                    raise _NotPlain
            elif kind is yaml.MappingStartEvent or kind is yaml.SequenceStartEvent:
                if ev.anchor is not None or ev.tag is not None:
                    raise _NotPlain
                container: Any = {} if kind is yaml.MappingStartEvent else []
                add(container)
                stack.append(container)
                keys.append(_NotPlain)
            elif kind is yaml.MappingEndEvent or kind is yaml.SequenceEndEvent:
                stack.pop()
                keys.pop()
            elif kind is yaml.DocumentStartEvent:
                documents += 1
                if documents > 1:  # yaml.load refuses several documents, and says why
                    raise _NotPlain
            elif kind is yaml.StreamEndEvent:
                return root
            elif kind is yaml.AliasEvent:
                raise _NotPlain
    finally:
        loader.dispose()


def parse_model(model: type[M], text: str, file: str, context: dict[str, Any] | None = None) -> M:
    # Fast path: plain data straight from libyaml's events. Line numbers are only needed to
    # explain a problem, so the slower line-tracking parse runs only then (a 10,000-device
    # site stays cheap).
    try:
        data = _load_plain(text)
    except (_NotPlain, yaml.YAMLError, TypeError, ValueError):
        data = None  # the line-tracking load below explains (or takes) it
    if data is not None:
        try:
            return model.model_validate(data, context=context)
        except ValidationError:
            pass
    data, lines = load_yaml(text, file)
    try:
        return model.model_validate(data, context=context)
    except ValidationError as exc:
        raise ConfigError(file, validation_problems(exc, lines)) from exc


def load_model(model: type[M], path: Path, context: dict[str, Any] | None = None) -> M:
    """`context` reaches the model's validators (the catalogue a name must be in)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), [f"0: cannot read: {exc.strerror}"]) from exc
    return parse_model(model, text, str(path), context)
