"""Mask2Former's own head modules, importable without detectron2.

Imports the head code of a checkout of github:facebookresearch/Mask2Former
(given in MASK2FORMER_SRC, kept outside this repository; commit
9b0651c6c1d5b3af2e6da0589b719c514ec0d69a was used; Ka1Guan/RASS ships the same
files byte for byte) and builds MaskFormerHead(MSDeformAttnPixelDecoder,
MultiScaleMaskedTransformerDecoder) from a dict config whose keys are those of
rass::nn::MaskFormerHeadConfig (lib/rass/nn/mask_former_head.hpp).

Needs torch and fvcore (the real package: pip install fvcore; it provides
weight_init.c2_xavier_fill). detectron2 is not packaged, so the few pieces the
head files import from it are stood in here, each written from detectron2's
source (github:facebookresearch/detectron2, commit 02b5c4e2):
  detectron2.config.configurable      identity decorator: the modules are only
                                      built with explicit keyword arguments,
                                      never from a detectron2 cfg
  detectron2.layers.Conv2d            torch.nn.Conv2d + optional `norm` child
                                      and activation, applied conv -> norm ->
                                      activation (layers/wrappers.py; the
                                      empty-input checks are left out)
  detectron2.layers.get_norm          "GN" -> nn.GroupNorm(32, C), "" / None ->
                                      None (layers/batch_norm.py; other norms
                                      raise: the head config uses GN)
  detectron2.layers.ShapeSpec         the dataclass (layers/shape_spec.py)
  detectron2.layers.DeformConv        a placeholder that raises when built (only
                                      fpn.py's unused deformable FPN names it)
  detectron2.modeling.SEM_SEG_HEADS_REGISTRY, detectron2.utils.registry.Registry
                                      a name -> class dict with register()
Mask2Former's package __init__ files (which import its data, evaluation and
backbone code) are skipped: the packages are created empty with their real
__path__, so only the head files run. The compiled MultiScaleDeformableAttention
extension is replaced by a module whose functions raise, as the compiled op
does on CPU tensors; MSDeformAttn.forward then falls back to
ms_deform_attn_core_pytorch (grid_sample), as it does on CPU officially.

Usage:
    sys.path.insert(0, "tests/nn"); import mask2former_reference as m2f
    m2f.setup()                       # reads MASK2FORMER_SRC
    head = m2f.build_head(cfg_dict)   # MaskFormerHead, eval mode
    out = head(features_dict)         # {"res2": ..., "res5": ...}
"""
import dataclasses
import os
import sys
import types

import torch
from torch import nn
from torch.nn import functional as F

DEFAULTS = dict(
    num_classes=150, num_queries=100, hidden_dim=256, nheads=8, dim_feedforward=2048, dec_layers=10,
    pre_norm=False, enforce_input_project=False, mask_dim=256, conv_dim=256, norm_groups=32, common_stride=4,
    enc_layers=6, enc_dim_feedforward=1024, enc_nheads=8, enc_n_points=4,
    in_channels=[512, 512, 512, 512], in_strides=[4, 8, 16, 32], deformable_levels=3)

_modules = {}


# ---- detectron2 stand-ins -------------------------------------------------
class Registry(dict):
    def __init__(self, name=""):
        super().__init__()
        self.name = name

    def register(self, obj=None):
        def deco(o):
            self[o.__name__] = o
            return o
        return deco(obj) if obj is not None else deco

    def get(self, name):
        return self[name]


def configurable(init_func=None, *, from_config=None):
    if init_func is not None:
        return init_func
    return lambda f: f


@dataclasses.dataclass
class ShapeSpec:
    channels: int = None
    height: int = None
    width: int = None
    stride: int = None


class Conv2d(nn.Conv2d):
    def __init__(self, *args, **kwargs):
        norm = kwargs.pop("norm", None)
        activation = kwargs.pop("activation", None)
        super().__init__(*args, **kwargs)
        self.norm = norm
        self.activation = activation

    def forward(self, x):
        x = F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)
        if self.norm is not None:
            x = self.norm(x)
        if self.activation is not None:
            x = self.activation(x)
        return x


def get_norm(norm, out_channels):
    if norm is None or norm == "":
        return None
    if norm == "GN":
        return nn.GroupNorm(32, out_channels)
    raise NotImplementedError(f"stand-in get_norm: only GN, not {norm!r}")


class DeformConv(nn.Module):
    def __init__(self, *args, **kwargs):
        raise NotImplementedError("stand-in: DeformConv is not needed by the MSDeformAttn head")


def _module(name, **attrs):
    m = types.ModuleType(name)
    m.__dict__.update(attrs)
    sys.modules[name] = m
    return m


def _install_detectron2_stand_ins():
    _module("detectron2", __path__=[])
    _module("detectron2.config", configurable=configurable)
    _module("detectron2.layers", Conv2d=Conv2d, ShapeSpec=ShapeSpec, get_norm=get_norm, DeformConv=DeformConv)
    _module("detectron2.modeling", SEM_SEG_HEADS_REGISTRY=Registry("SEM_SEG_HEADS"))
    _module("detectron2.utils", __path__=[])
    _module("detectron2.utils.registry", Registry=Registry)

    def _cpu_only(*args, **kwargs):
        raise RuntimeError("stand-in MultiScaleDeformableAttention: not compiled (CPU fallback)")
    _module("MultiScaleDeformableAttention", ms_deform_attn_forward=_cpu_only, ms_deform_attn_backward=_cpu_only)


def setup(src=None):
    """Makes Mask2Former's head modules importable; returns a dict of them."""
    if _modules:
        return _modules
    src = src or os.environ.get("MASK2FORMER_SRC")
    if not src:
        sys.exit("set MASK2FORMER_SRC to a checkout of github:facebookresearch/Mask2Former")
    _install_detectron2_stand_ins()
    root = os.path.join(src, "mask2former")
    # Empty packages with the real __path__: their __init__ files are not run.
    for pkg in ("", ".modeling", ".modeling.pixel_decoder", ".modeling.transformer_decoder", ".modeling.meta_arch"):
        _module("mask2former" + pkg, __path__=[os.path.join(root, *pkg.split(".")[1:])])
    import importlib
    imp = importlib.import_module
    _modules["msdeformattn"] = imp("mask2former.modeling.pixel_decoder.msdeformattn")
    _modules["ms_deform_attn"] = imp("mask2former.modeling.pixel_decoder.ops.modules.ms_deform_attn")
    _modules["ms_deform_attn_func"] = imp("mask2former.modeling.pixel_decoder.ops.functions.ms_deform_attn_func")
    _modules["decoder"] = imp("mask2former.modeling.transformer_decoder.mask2former_transformer_decoder")
    _modules["position_encoding"] = imp("mask2former.modeling.transformer_decoder.position_encoding")
    _modules["head"] = imp("mask2former.modeling.meta_arch.mask_former_head")
    return _modules


def full_config(cfg=None):
    c = dict(DEFAULTS)
    for k, v in (cfg or {}).items():
        if k not in c:
            raise KeyError(f"unknown head config key {k!r}")
        c[k] = v
    return c


def feature_names(cfg):
    return [f"res{i + 2}" for i in range(len(cfg["in_channels"]))]


def build_pixel_decoder(cfg):
    m = setup()
    c = full_config(cfg)
    if c["norm_groups"] != 32:
        raise ValueError("Mask2Former hard-codes GroupNorm(32, C) (input_proj and get_norm('GN'))")
    if c["enc_n_points"] != 4:
        raise ValueError("MSDeformAttnPixelDecoder builds its encoder with 4 points (not configurable there)")
    names = feature_names(c)
    shapes = {n: ShapeSpec(channels=ch, stride=s) for n, ch, s in zip(names, c["in_channels"], c["in_strides"])}
    return m["msdeformattn"].MSDeformAttnPixelDecoder(
        shapes, transformer_dropout=0.0, transformer_nheads=c["enc_nheads"],
        transformer_dim_feedforward=c["enc_dim_feedforward"], transformer_enc_layers=c["enc_layers"],
        conv_dim=c["conv_dim"], mask_dim=c["mask_dim"], norm="GN",
        transformer_in_features=names[len(names) - c["deformable_levels"]:], common_stride=c["common_stride"])


def build_predictor(cfg):
    m = setup()
    c = full_config(cfg)
    # MaskFormerHead.from_config: the predictor's input is the pixel decoder's
    # conv_dim features; DEC_LAYERS - 1 layers are built.
    return m["decoder"].MultiScaleMaskedTransformerDecoder(
        c["conv_dim"], True, num_classes=c["num_classes"], hidden_dim=c["hidden_dim"],
        num_queries=c["num_queries"], nheads=c["nheads"], dim_feedforward=c["dim_feedforward"],
        dec_layers=c["dec_layers"] - 1, pre_norm=c["pre_norm"], mask_dim=c["mask_dim"],
        enforce_input_project=c["enforce_input_project"])


def build_head(cfg=None):
    """MaskFormerHead as detectron2 builds it for RASS; eval mode, fp32."""
    m = setup()
    c = full_config(cfg)
    names = feature_names(c)
    shapes = {n: ShapeSpec(channels=ch, stride=s) for n, ch, s in zip(names, c["in_channels"], c["in_strides"])}
    head = m["head"].MaskFormerHead(
        shapes, num_classes=c["num_classes"], pixel_decoder=build_pixel_decoder(c), loss_weight=1.0,
        ignore_value=255, transformer_predictor=build_predictor(c),
        transformer_in_feature="multi_scale_pixel_decoder")
    return head.eval()


def semantic_inference(pred_logits, pred_masks):
    """maskformer_model.MaskFormer.semantic_inference applied per image. It is a
    method of the meta-architecture, whose module imports much of detectron2, so
    the method alone is compiled from maskformer_model.py's source text."""
    return torch.stack([_SEMSEG(lg, mk) for lg, mk in zip(pred_logits, pred_masks)])


def _semantic_inference_from_source():
    """Runs the official method's own source text: compiled from
    maskformer_model.py so a change there would show up here."""
    import ast
    path = os.path.join(os.environ["MASK2FORMER_SRC"], "mask2former", "maskformer_model.py")
    tree = ast.parse(open(path).read())
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == "semantic_inference":
            mod = ast.Module(body=[node], type_ignores=[])
            ns = {"F": F, "torch": torch}
            exec(compile(mod, path, "exec"), ns)
            fn = ns["semantic_inference"]
            return lambda cls, pred: fn(None, cls, pred)
    raise RuntimeError(f"{path}: no semantic_inference")


class _Lazy:
    fn = None

    def __call__(self, cls, pred):
        if self.fn is None:
            self.fn = _semantic_inference_from_source()
        return self.fn(cls, pred)


_SEMSEG = _Lazy()
