"""Ka1Guan/RASS's own stage-2 backbone code, importable without detectron2,
RAM/DAPE weights or a GPU, for the fixture scripts.

Reads a checkout of github:Ka1Guan/RASS given in RASS_SRC (kept outside this
repository; commit 3ee2847 was used) and runs, unmodified:
  restoration_adaptation/models/{autoencoder_kl,vae,unet_2d_condition}.py
      the VAE and UNet whose forwards return the feature taps,
  restoration_adaptation/ras.py: Generator_with_pretrain.forward,
      encode_prompt and unet_lora (the Seg LoRA's targets and adapters),
  rass/modeling/backbone/feature_projection.py: FeatureProjection.__init__,
      forward_features, single_forward, slide_forward.
Stand-ins (each written from detectron2's source, github:facebookresearch/
detectron2 commit 02b5c4e2, or for what needs weights we do not have):
  detectron2.modeling.Backbone           torch.nn.Module (only the base class is used)
  detectron2.modeling.backbone.resnet    BottleneckBlock (stride 1 path) and
                                         ResNet.make_stage as in resnet.py;
                                         Conv2d / get_norm from
                                         tests/nn/mask2former_reference.py
  restoration_adaptation.ram.*           RAM/DAPE: a module that returns the
                                         fixed tag line given to setup() (the
                                         tagger itself is not part of RAS's
                                         segmentation network: tags enter as text)
  Generator_with_pretrain.__init__       not run (it loads SD and scr.pkl from
                                         disk onto CUDA); the object is built
                                         with the given modules instead, and
                                         its .to('cuda') is a no-op.
"""
import os
import sys
import types

import torch
from torch import nn
from torch.nn import functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mask2former_reference as m2f  # noqa: E402

_state = {}


class BottleneckBlock(nn.Module):
    """detectron2 modeling/backbone/resnet.py BottleneckBlock."""

    def __init__(self, in_channels, out_channels, *, bottleneck_channels, stride=1, num_groups=1, norm="BN",
                 stride_in_1x1=False, dilation=1):
        super().__init__()
        Conv2d, get_norm = m2f.Conv2d, m2f.get_norm
        if in_channels != out_channels:
            self.shortcut = Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False,
                                   norm=get_norm(norm, out_channels))
        else:
            self.shortcut = None
        stride_1x1, stride_3x3 = (stride, 1) if stride_in_1x1 else (1, stride)
        self.conv1 = Conv2d(in_channels, bottleneck_channels, kernel_size=1, stride=stride_1x1, bias=False,
                            norm=get_norm(norm, bottleneck_channels))
        self.conv2 = Conv2d(bottleneck_channels, bottleneck_channels, kernel_size=3, stride=stride_3x3,
                            padding=1 * dilation, bias=False, groups=num_groups, dilation=dilation,
                            norm=get_norm(norm, bottleneck_channels))
        self.conv3 = Conv2d(bottleneck_channels, out_channels, kernel_size=1, bias=False,
                            norm=get_norm(norm, out_channels))

    def forward(self, x):
        out = self.conv1(x)
        out = F.relu_(out)
        out = self.conv2(out)
        out = F.relu_(out)
        out = self.conv3(out)
        shortcut = self.shortcut(x) if self.shortcut is not None else x
        out += shortcut
        out = F.relu_(out)
        return out


class ResNet:
    @staticmethod
    def make_stage(block_class, num_blocks, *, in_channels, out_channels, **kwargs):
        blocks = []
        for i in range(num_blocks):
            curr_kwargs = {}
            for k, v in kwargs.items():
                if k.endswith("_per_block"):
                    assert len(v) == num_blocks
                    curr_kwargs[k[:-len("_per_block")]] = v[i]
                else:
                    curr_kwargs[k] = v
            blocks.append(block_class(in_channels=in_channels, out_channels=out_channels, **curr_kwargs))
            in_channels = out_channels
        return blocks


class _Tagger(nn.Module):
    def forward(self, *a, **k):
        raise RuntimeError("stand-in tagger")


def _module(name, **attrs):
    m = types.ModuleType(name)
    m.__dict__.update(attrs)
    sys.modules[name] = m
    return m


def setup(tags):
    """Imports RASS's modules; `tags` is what the stand-in RAM/DAPE return."""
    if _state:
        _state["tags"][0] = tags
        return _state
    # transformers probes for detectron2 with importlib.util.find_spec at import
    # time, which fails on the stand-in modules: import it (and the rest) first.
    import diffusers  # noqa: F401
    import peft  # noqa: F401
    import transformers  # noqa: F401
    m2f.setup()
    src = os.environ.get("RASS_SRC")
    if not src:
        sys.exit("set RASS_SRC to a checkout of github:Ka1Guan/RASS")
    sys.modules["detectron2.modeling"].Backbone = nn.Module
    _module("detectron2.modeling.backbone", __path__=[])
    _module("detectron2.modeling.backbone.resnet", BottleneckBlock=BottleneckBlock, ResNet=ResNet)
    tag_box = [tags]
    _module("restoration_adaptation", __path__=[os.path.join(src, "restoration_adaptation")])
    _module("restoration_adaptation.ram", __path__=[], inference_ram=lambda image, model: [tag_box[0]] * image.shape[0])
    _module("restoration_adaptation.ram.models", __path__=[])
    _module("restoration_adaptation.ram.models.ram_lora", ram=lambda **kw: _Tagger())
    sys.path.insert(0, src)
    import importlib
    ras = importlib.import_module("restoration_adaptation.ras")
    _module("rass", __path__=[os.path.join(src, "rass")])
    _module("rass.modeling", __path__=[os.path.join(src, "rass", "modeling")])
    _module("rass.modeling.backbone", __path__=[os.path.join(src, "rass", "modeling", "backbone")])
    fp = importlib.import_module("rass.modeling.backbone.feature_projection")
    from restoration_adaptation.models.autoencoder_kl import AutoencoderKL
    from restoration_adaptation.models.unet_2d_condition import UNet2DConditionModel
    _state.update(ras=ras, fp=fp, tags=tag_box, AutoencoderKL=AutoencoderKL, UNet2DConditionModel=UNet2DConditionModel)
    return _state


class _Cfg:
    def __init__(self, **kw):
        self.__dict__.update(kw)


def build_generator(tokenizer, text_encoder, vae, unet, rank=4):
    """A Generator_with_pretrain holding the given modules (SCR already merged
    into `unet`), with RASS's own unet_lora adding the Seg LoRA adapters."""
    ras = _state["ras"]

    class Gen(ras.Generator_with_pretrain):
        def to(self, *a, **k):  # the reference moves to CUDA; everything stays on the CPU here
            return self

    g = Gen.__new__(Gen)
    nn.Module.__init__(g)
    g.tokenizer, g.text_encoder, g.vae, g.unet = tokenizer, text_encoder, vae, unet
    g.lora_rank_unet = rank
    g.l_target_modules_encoder, g.l_target_modules_decoder, g.l_modules_others = [], [], []
    g.unet_lora(rank=rank)
    g.timesteps = torch.tensor([1]).long()
    return g


def build_feature_projection(generator, dims, strides, out_features=("res2", "res3", "res4", "res5"), projection_dim=512):
    """RASS's FeatureProjection.__init__ run with the given generator (and the
    stand-in taggers); eval mode."""
    fp = _state["fp"]
    fp.Generator = lambda cfg: generator
    cfg = _Cfg(MODEL=_Cfg(
        FEATURE_PROJECTION=_Cfg(FEATURE_DIMS=list(dims), GROUPED_INDICES=[[i] for i in range(len(dims))],
                                FEATURE_STRIDES=list(strides), OUT_FEATURES=list(out_features)),
        RASS=_Cfg(enable_xformers_memory_efficient_attention=False, gradient_checkpointing=False, ram_path="",
                  ram_ft_path="", pos_prompt_vsd="", use_degradation=True)))
    m = fp.FeatureProjection(cfg, projection_dim=projection_dim)
    return m.eval()
