"""Random weight files in the community layout, and an independent pure-PyTorch pipeline.

Written from the layout table in docs/weights.md, without the package's own builders, so
that the package's networks and stylization can be checked against it.
"""

from __future__ import annotations

import torch
from torch import nn

# conv index -> (out, in, k) for vgg_normalised.pth (53 modules) and decoder.pth (29 modules)
VGG_CONVS = {
    0: (3, 3, 1),
    2: (64, 3, 3),
    5: (64, 64, 3),
    9: (128, 64, 3),
    12: (128, 128, 3),
    16: (256, 128, 3),
    19: (256, 256, 3),
    22: (256, 256, 3),
    25: (256, 256, 3),
    29: (512, 256, 3),
    32: (512, 512, 3),
    35: (512, 512, 3),
    38: (512, 512, 3),
    42: (512, 512, 3),
    45: (512, 512, 3),
    48: (512, 512, 3),
    51: (512, 512, 3),
}
DECODER_CONVS = {
    1: (256, 512, 3),
    5: (256, 256, 3),
    8: (256, 256, 3),
    11: (256, 256, 3),
    14: (128, 256, 3),
    18: (128, 128, 3),
    21: (64, 128, 3),
    25: (64, 64, 3),
    28: (3, 64, 3),
}
VGG_POOLS = {7, 14, 27, 40}
DECODER_UPSAMPLES = {3, 16, 23}


def random_state(convs: dict, seed: int) -> dict[str, torch.Tensor]:
    """He-initialised random weights, so activations keep a sensible scale through the stack."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for index, (out_c, in_c, k) in convs.items():
        std = (2.0 / (in_c * k * k)) ** 0.5
        state[f"{index}.weight"] = torch.randn(out_c, in_c, k, k, generator=g) * std
        state[f"{index}.bias"] = torch.randn(out_c, generator=g) * 0.05
    return state


def write_weight_files(folder, vgg_seed: int = 3, decoder_seed: int = 4):
    """Random vgg.pth and dec.pth in the community layout in ``folder``; returns their paths."""
    vgg, dec = folder / "vgg.pth", folder / "dec.pth"
    torch.save(random_state(VGG_CONVS, vgg_seed), vgg)
    torch.save(random_state(DECODER_CONVS, decoder_seed), dec)
    return vgg, dec


def vgg_sequential(modules: int = 31) -> nn.Sequential:
    layers = []
    for i in range(53):
        if i in VGG_CONVS:
            out_c, in_c, k = VGG_CONVS[i]
            layers.append(nn.Conv2d(in_c, out_c, k))
        elif i in VGG_POOLS:
            layers.append(nn.MaxPool2d(2, 2, 0, ceil_mode=True))
        elif i - 1 in VGG_CONVS and i != 1:
            layers.append(nn.ReLU())
        else:
            layers.append(nn.ReflectionPad2d(1))
    return nn.Sequential(*layers[:modules])


def decoder_sequential() -> nn.Sequential:
    layers = []
    for i in range(29):
        if i in DECODER_CONVS:
            out_c, in_c, k = DECODER_CONVS[i]
            layers.append(nn.Conv2d(in_c, out_c, k))
        elif i in DECODER_UPSAMPLES:
            layers.append(nn.Upsample(scale_factor=2, mode="nearest"))
        elif i - 1 in DECODER_CONVS:
            layers.append(nn.ReLU())
        else:
            layers.append(nn.ReflectionPad2d(1))
    return nn.Sequential(*layers)


def calc_mean_std(feat, eps=1e-5):
    n, c = feat.shape[:2]
    var = feat.reshape(n, c, -1).var(dim=2) + eps
    return feat.reshape(n, c, -1).mean(dim=2).view(n, c, 1, 1), var.sqrt().view(n, c, 1, 1)


def plain_adain(content, style_mean, style_std):
    c_mean, c_std = calc_mean_std(content)
    return (content - c_mean) / c_std * style_std + style_mean


def coral(source, target, eps=1e-5):
    """Mean and covariance matching of (3, H, W) images, written independently of the package."""
    s, t = source.reshape(3, -1).double(), target.reshape(3, -1).double()
    ms, mt = s.mean(1, keepdim=True), t.mean(1, keepdim=True)
    cs = (s - ms) @ (s - ms).T / s.shape[1] + eps * torch.eye(3, dtype=torch.float64)
    ct = (t - mt) @ (t - mt).T / t.shape[1] + eps * torch.eye(3, dtype=torch.float64)
    es, vs = torch.linalg.eigh(cs)
    et, vt = torch.linalg.eigh(ct)
    cs_inv_sqrt = vs @ torch.diag(es.clamp_min(eps) ** -0.5) @ vs.T
    ct_sqrt = vt @ torch.diag(et.clamp_min(eps) ** 0.5) @ vt.T
    return (ct_sqrt @ cs_inv_sqrt @ (s - ms) + mt).reshape(source.shape).float().clamp(0, 1)


class PlainPipeline:
    """The common PyTorch AdaIN test script, as plain code over plain nn.Sequential networks."""

    def __init__(self, vgg_state, decoder_state):
        self.vgg = vgg_sequential().eval()
        self.vgg.load_state_dict({k: v for k, v in vgg_state.items() if int(k.split(".")[0]) < 31})
        self.decoder = decoder_sequential().eval()
        self.decoder.load_state_dict(decoder_state)

    @torch.no_grad()
    def __call__(self, content, styles, *, alpha=1.0, weights=None, preserve_color=False, mask=None):
        c = content.unsqueeze(0)
        h, w = content.shape[-2:]
        if preserve_color:
            styles = [coral(s, content) for s in styles]
        fc = self.vgg(c)
        stats = [calc_mean_std(self.vgg(s.unsqueeze(0))) for s in styles]
        if mask is not None:  # binary (h/8, w/8) mask: style 0 inside, style 1 outside
            t = fc.clone()
            for region, (sm, ss) in zip((mask > 0.5, mask <= 0.5), stats):
                pixels = fc[0][:, region]  # (C, count)
                mean = pixels.mean(1, keepdim=True)
                std = (pixels.var(1, keepdim=True) + 1e-5).sqrt()
                t[0][:, region] = (pixels - mean) / std * ss.view(-1, 1) + sm.view(-1, 1)
        else:
            weights = weights or [1.0]
            total = sum(weights)
            t = sum((wk / total) * plain_adain(fc, *st) for wk, st in zip(weights, stats))
        t = alpha * t + (1 - alpha) * fc
        return self.decoder(t)[0, :, :h, :w]
