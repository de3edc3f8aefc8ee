"""Makes the diffusers source tree importable without its hub dependencies.

The reference fixtures are built by running the public diffusers source (a
checkout at tag v0.25.1 whose src/ is given in DIFFUSERS_SRC; kept outside
this repository) on Debian's python3-torch. diffusers imports huggingface_hub
and safetensors at module level only for downloading and loading, which the
fixture scripts never do (modules are built from configs with random
weights), so both are replaced here by permissive stand-ins.
"""
import importlib.abc
import importlib.machinery
import os
import sys
import types


class _Any:
    """Any attribute, call or decorator: returns something harmless."""

    def __init__(self, name="stub"):
        self._name = name

    def __call__(self, *args, **kwargs):
        if len(args) == 1 and callable(args[0]) and not kwargs:
            return args[0]  # used as a decorator
        return _Any(self._name + "()")

    def __getattr__(self, item):
        if item.startswith("__"):
            raise AttributeError(item)
        return _Any(self._name + "." + item)

    def __mro_entries__(self, bases):
        return (Exception,)  # used as a base class (errors)

    def __iter__(self):
        return iter(())

    def __str__(self):
        return ""


class _StubModule(types.ModuleType):
    def __getattr__(self, item):
        if item.startswith("__"):
            raise AttributeError(item)
        if item.isupper():
            return "" if "REGEX" not in item else r"^[0-9a-f]{40}$"
        return _Any(self.__name__ + "." + item)


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    ROOTS = ("huggingface_hub", "safetensors")

    def find_spec(self, fullname, path, target=None):
        if fullname.split(".")[0] in self.ROOTS:
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec):
        m = _StubModule(spec.name)
        m.__path__ = []
        m.__version__ = "0.20.0"
        return m

    def exec_module(self, module):
        pass


_FAKE_VERSIONS = {"huggingface-hub": "0.20.3", "huggingface_hub": "0.20.3", "safetensors": "0.4.2",
                  "tokenizers": "0.15.2", "accelerate": "0.0.0"}


def _patch_metadata():
    """transformers checks installed versions of its dependencies at import."""
    import importlib.metadata as md

    real = md.version

    def version(name):
        return _FAKE_VERSIONS.get(name) or real(name)

    md.version = version


def setup(env="DIFFUSERS_SRC"):
    """Puts the reference source named by `env` (diffusers' or transformers' src/) on sys.path."""
    sys.meta_path.insert(0, _Finder())
    _patch_metadata()
    src = os.environ.get(env)
    if not src:
        sys.exit(f"set {env} to the src/ directory of the reference checkout (see the script's docstring)")
    sys.path.insert(0, src)
