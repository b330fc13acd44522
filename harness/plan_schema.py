"""mergekit's config language without mergekit: its schema and its parameter resolution, mirrored.

`mergekit.config` imports `mergekit.common`, which imports torch, transformers and peft (seconds);
a plan needs none of them. These models copy the field types of mergekit's `MergeConfiguration`
(pydantic's default `extra="ignore"`, as there: an unknown key is dropped, not an error), so a
YAML mapping validates here exactly when it validates there; `evaluate_setting` and
`resolve_parameter` copy mergekit's filters, gradients and precedence. mergekit stays the
oracle: tests/test_plan_mergekit.py checks both against it on generated configs, and
`MERGE_METHODS` against `mergekit.merge_methods.registered_methods()`.

The cross-field validators raise ValueError (pydantic names where); the model-name parsers raise
RuntimeError as mergekit's do, because inside a union (a tokenizer embedding's `source`) a
RuntimeError ends validation where a ValueError would let another member match.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Iterable, List, Literal, Mapping, Optional, Tuple, TypeAlias, Union

from pydantic import BaseModel, ConfigDict, TypeAdapter, model_validator

# mergekit.merge_methods.registered_methods(), by spec name (the test keeps them equal)
MERGE_METHODS: tuple[str, ...] = (
    "arcee_fusion", "breadcrumbs", "breadcrumbs_ties", "dare_linear", "dare_ties", "della",
    "della_linear", "karcher", "linear", "model_stock", "multislerp", "nearswap", "nuslerp",
    "passthrough", "ram", "ramplus_tl", "sce", "slerp", "task_arithmetic", "ties",
)

ScalarParameter: TypeAlias = Union[bool, int, float, str]
ScalarOrGradient: TypeAlias = Union[ScalarParameter, List[ScalarParameter]]


class ModelPath(BaseModel):
    """`path` or `path@revision`."""

    model_config = ConfigDict(frozen=True)
    path: str
    revision: Optional[str] = None

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value):
        if isinstance(value, str):
            if value.count("@") > 1:
                raise RuntimeError(f"Invalid model path - multiple @: {value}")
            path, _, rev = value.partition("@")
            return {"path": path, "revision": rev} if "@" in value else {"path": value}
        return value

    def __str__(self) -> str:
        return f"{self.path}@{self.revision}" if self.revision else self.path


class ModelReference(BaseModel):
    """`model` or `model+lora`."""

    model_config = ConfigDict(frozen=True)
    model: ModelPath
    lora: Optional[ModelPath] = None
    override_architecture: Optional[str] = None

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value):
        if isinstance(value, str):
            chunks = value.split("+")
            if len(chunks) > 2:
                raise RuntimeError(f"Can't parse {value}")
            return {"model": chunks[0]} if len(chunks) == 1 else {"model": chunks[0], "lora": chunks[1]}
        return value

    def __str__(self) -> str:
        return f"{self.model}+{self.lora}" if self.lora else str(self.model)


class ConditionalParameter(BaseModel):
    value: ScalarOrGradient
    filter: Optional[str] = None


ParameterSetting: TypeAlias = Union[ConditionalParameter, List[ConditionalParameter], ScalarOrGradient]
Parameters: TypeAlias = Optional[Dict[str, ParameterSetting]]


class InputSliceDefinition(BaseModel):
    model: ModelReference
    layer_range: Tuple[int, int]
    parameters: Parameters = None


class InputModelDefinition(BaseModel):
    model: ModelReference
    parameters: Parameters = None


class OutputSliceDefinition(BaseModel):
    sources: List[InputSliceDefinition]
    base_model: Optional[ModelReference] = None
    residual_weight: Optional[float] = None
    parameters: Parameters = None


class OutputModuleDefinition(BaseModel):
    slices: Optional[List[OutputSliceDefinition]] = None
    models: Optional[List[InputModelDefinition]] = None
    parameters: Parameters = None

    @model_validator(mode="after")
    def _one_input_kind(self):
        if bool(self.slices) == bool(self.models):
            raise ValueError("Must specify either output slices or models to merge")
        return self


# -- mergekit.tokenizer.config --------------------------------------------------------------------

class ModelTokenEmbedding(BaseModel):
    model_config = ConfigDict(frozen=True)
    kind: Literal["model_token"]
    model: ModelReference
    token_id: Optional[int] = None
    token: Optional[str] = None

    @model_validator(mode="after")
    def _one_token(self):
        if (self.token_id is None) == (self.token is None):
            raise ValueError("exactly one of token_id or token must be specified")
        return self


class ZeroEmbedding(BaseModel):
    model_config = ConfigDict(frozen=True)
    kind: Literal["zero"]


class TokenEmbeddingConfig(BaseModel):
    model_config = ConfigDict(frozen=True)
    source: Union[ModelTokenEmbedding, ZeroEmbedding, ModelReference, None] = None
    force: bool = False


class TokenizerConfig(BaseModel):
    model_config = ConfigDict(frozen=True)
    source: Union[ModelReference, Literal["union"], Literal["base"]] = "union"
    tokens: Optional[Dict[str, TokenEmbeddingConfig]] = None
    pad_to_multiple_of: Optional[int] = None


class MergeConfiguration(BaseModel):
    modules: Optional[Dict[str, OutputModuleDefinition]] = None
    slices: Optional[List[OutputSliceDefinition]] = None
    models: Optional[List[InputModelDefinition]] = None

    merge_method: str
    base_model: Optional[ModelReference] = None
    dtype: Optional[str] = None
    tokenizer_source: Union[Literal["union"], Literal["base"], ModelReference, None] = None
    tokenizer: Optional[TokenizerConfig] = None
    chat_template: Optional[str] = None
    out_dtype: Optional[str] = None
    parameters: Parameters = None

    @model_validator(mode="after")
    def _one_input_kind(self):
        if sum(bool(x) for x in (self.modules, self.slices, self.models)) != 1:
            raise ValueError("Exactly one of 'models', 'slices', or 'modules' must be present")
        return self

    @model_validator(mode="after")
    def _one_tokenizer(self):
        if self.tokenizer_source and self.tokenizer:
            raise ValueError("Cannot specify both tokenizer_source and tokenizer")
        return self


# -- resolution: mergekit.config.evaluate_setting and mergekit.parameter_resolver ----------------

# passthrough's one parameter: `scale: Optional[float] = None` (mergekit/merge_methods/passthrough.py)
validate_scale: Callable[[Any], Optional[float]] = TypeAdapter(Optional[float]).validate_python


def evaluate_setting(tensor_name: str, setting: ParameterSetting, t: float = 0, *,
                     validate: Callable[[Any], Any]) -> Any:
    """One scope's value for `tensor_name`: the first matching filter wins (a substring of the
    name, or none, or '*'); a list of numbers is a gradient interpolated at t; None when no
    filter matches."""
    if isinstance(setting, ConditionalParameter):
        setting = [setting]
    if isinstance(setting, (float, int, bool, str)):
        return validate(setting)
    if not isinstance(setting, list):
        raise ValueError(f"Unexpected setting value: {setting}")
    if not setting:
        return None
    if all(isinstance(e, (float, int, bool, str)) for e in setting):
        values = [validate(e) for e in setting]
        if not all(isinstance(e, (int, float)) and not isinstance(e, bool) for e in values):
            return values[int(t * (len(values) - 1))]
        scaled = t * (len(setting) - 1)
        i0 = int(scaled)
        i1 = min(len(setting) - 1, i0 + 1)
        frac = scaled - i0
        return validate((1 - frac) * values[i0] + frac * values[i1])
    for cond in setting:
        if cond.filter is None or cond.filter == "*" or (tensor_name and cond.filter in tensor_name):
            return evaluate_setting(tensor_name, cond.value, t, validate=validate)
    return None


def resolve_parameter(name: str, scopes: Iterable[Optional[Mapping[str, ParameterSetting]]], *,
                      tensor_name: str, t: float = 0, validate: Callable[[Any], Any] = validate_scale,
                      default: Any = None) -> Any:
    """The first scope (highest precedence first) that sets `name` and resolves it to a value;
    else `default`, validated."""
    for scope in scopes:
        if scope is not None and name in scope:
            value = evaluate_setting(tensor_name, scope[name], t, validate=validate)
            if value is not None:
                return value
    return validate(default)
